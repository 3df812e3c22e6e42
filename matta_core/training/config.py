"""How a training run is configured: `TrainConfig`, one dataclass shared by the MatTA arm and its baselines.

The baselines (`kd`, `ce_only`) read the same fields as `matta` so that a comparison is at equal budget: same
steps, batch size, data order, optimizer and learning rate; only the model and the loss differ.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from matta_core.loss_config import LossConfig

ARMS = ("matta", "kd", "ce_only")
DEVICES = ("cpu", "cuda", "auto")

# Fields that only change how a run is observed or where it runs, not what it computes: a run may be resumed
# with different values. Every other field must match the checkpoint, or the resumed run is a different run.
RESUMABLE_CHANGES = frozenset(
    {"device", "num_threads", "checkpoint_every", "checkpoint_every_seconds", "keep_checkpoints", "log_every",
     "progress", "eval_every"}
)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Give exactly one of `steps` and `epochs`."""

    # "matta": TA + Student (+ sampled widths) jointly; "kd": the Student alone, distilled from the Teacher;
    # "ce_only": the Student alone, on labels only. The baselines exist to measure what MatTA adds.
    arm: str = "matta"
    # Budget in optimizer steps; or in passes over the data, turned into steps = ceil(epochs * rows / batch_size).
    steps: int | None = None
    epochs: float | None = None
    # 128: large enough for stable soft-target gradients over ~100 classes, small enough for many updates on
    # datasets of a few thousand rows.
    batch_size: int = 128
    # 3e-3 (lazy Adam on the table, AdamW on the MLP): best of 1e-3, 3e-3, 1e-2, 3e-2 on Banking77 validation for
    # MatTA (mean over widths 32-512, 3 seeds: 92.1 % vs 91.5 % at 1e-2) AND for both baselines (widths 32 + 512,
    # 2 seeds: KD 92.1 vs 91.7 %, CE-only 88.7 vs 84.5 %: at 1e-2 a wide CE-only model overfits within 15
    # epochs), so the shared rate favours no arm; 1e-3 is too slow for the rarely updated embedding rows. Very
    # short runs (tens of steps) learn faster at 1e-2. Record: benchmarks/results/tune_matta.json.
    lr: float = 3e-3
    # 0: decoupled decay shrinks every embedding row every step, so rare (and most informative) n-grams, which
    # get few gradient updates, would decay towards zero between their occurrences.
    weight_decay: float = 0.0
    # "adamw" (see optim.py for why), "sgd", or any name added with `register_optimizer`.
    optimizer: str = "adamw"
    # Seeds the model initialisation, dropout, the width sampler and the per-epoch data order.
    seed: int = 0
    # "auto" picks CUDA when available. Bitwise reproducibility is guaranteed on CPU only.
    device: str = "cpu"
    # Torch intra-op threads during training; None leaves the process setting alone. Summation order can depend
    # on the thread count, so fix it when runs on different machines must agree bit for bit.
    num_threads: int | None = None
    # Sandwich rule: extra random widths per step (MatTA only), so every width between the extremes gets
    # gradient, not just the TA and Student. 2 roughly doubles the cheap head cost while the embedding is shared.
    # 0, 1 and 4 scored within validation noise of 2 in the recorded search (tune_matta.json).
    sandwich_k: int = 2
    # Lower bound of the sampled widths: an int for every layer or one per layer. None = the model's min_width,
    # i.e. widths BELOW the Student are sampled too; without them narrow extracted widths collapse.
    sample_low: int | tuple[int, ...] | None = None
    # Widths (per layer) whose loss is computed EVERY step in place of the `sandwich_k` sampled ones (MatTA only;
    # the classifier family): e.g. every width the run will extract, as in "Starbucks" training of nested
    # embeddings. None: sample. Tried on Banking77 validation against sampling (tune_matta.json, round "levers").
    loss_widths: tuple[tuple[int, ...], ...] | None = None
    loss: LossConfig = field(default_factory=LossConfig)
    # Steps between checkpoints; 0 = only at the end (when a checkpoint directory is given at all).
    checkpoint_every: int = 0
    # Also a checkpoint after this many seconds of training since the last one; 0 = off (see CheckpointSchedule).
    checkpoint_every_seconds: float = 0.0
    # 2: the newest plus one fallback, in case the newest turns out unreadable, at twice the disk of one.
    keep_checkpoints: int = 2
    # Steps per history record (each record averages the loss over its window) and progress-bar update.
    log_every: int = 50
    progress: bool = True
    # Steps between evaluations on the validation data (when given); 0 = only at the end.
    eval_every: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.loss, dict):
            object.__setattr__(self, "loss", LossConfig(**self.loss))
        if isinstance(self.sample_low, list):
            object.__setattr__(self, "sample_low", tuple(self.sample_low))
        if isinstance(self.loss_widths, list | tuple):
            object.__setattr__(self, "loss_widths", tuple(
                (w,) if isinstance(w, int) else tuple(w) if isinstance(w, list | tuple) else w
                for w in self.loss_widths))
        self._validate()

    def _validate(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"arm {self.arm!r} unknown; allowed: {list(ARMS)}")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"give exactly one of steps and epochs, got steps={self.steps}, epochs={self.epochs}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 1):
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        if self.epochs is not None and not (math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"epochs must be a positive number, got {self.epochs!r}")
        _positive_int("batch_size", self.batch_size)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        # Checked against the registry as it is now, so optimizers registered after import are accepted. Imported
        # here: the registry imports torch, and the run config imports this module in every task process.
        from matta_core.training.optim import optimizer_names

        if self.optimizer not in optimizer_names():
            raise ValueError(f"optimizer {self.optimizer!r} unknown; allowed: {optimizer_names()} "
                             "(add others with matta_core.training.register_optimizer)")
        if self.device not in DEVICES:
            raise ValueError(f"device {self.device!r} unknown; allowed: {list(DEVICES)}")
        if self.num_threads is not None:
            _positive_int("num_threads", self.num_threads)
        _non_negative_int("sandwich_k", self.sandwich_k)
        lows = (self.sample_low,) if isinstance(self.sample_low, int) else (self.sample_low or ())
        if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in lows):
            raise ValueError(f"sample_low must be a positive integer or one per layer, got {self.sample_low!r}")
        if self.loss_widths is not None and (not self.loss_widths or any(
                not isinstance(w, tuple) or not w or any(isinstance(x, bool) or not isinstance(x, int) or x < 1
                                                         for x in w) for w in self.loss_widths)):
            raise ValueError(f"loss_widths must be a non-empty list of widths (a positive integer, or one per "
                             f"layer), or None to sample; got {self.loss_widths!r}")
        _non_negative_int("checkpoint_every", self.checkpoint_every)
        seconds = self.checkpoint_every_seconds
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise ValueError(f"checkpoint_every_seconds must be a number >= 0, got {self.checkpoint_every_seconds!r}")
        _positive_int("keep_checkpoints", self.keep_checkpoints)
        _positive_int("log_every", self.log_every)
        _non_negative_int("eval_every", self.eval_every)

    def total_steps(self, num_rows: int) -> int:
        """The run's length in optimizer steps for a training set of `num_rows` rows."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        return max(1, math.ceil(self.epochs * num_rows / self.batch_size))

    def batch_size_warning(self, num_rows: int) -> dict[str, Any] | None:
        """A warning (``{"code", "message", ...numbers}``) when `batch_size` exceeds the `num_rows` training rows,
        else None. Batches wrap around the data (`BatchOrder`), so nothing fails: an epochs budget silently
        shrinks to a handful of optimizer steps, and every step repeats rows."""
        if num_rows < 1 or self.batch_size <= num_rows:
            return None
        steps, per_step = self.total_steps(num_rows), self.batch_size / num_rows
        head = f"train.batch_size={self.batch_size} is larger than the {num_rows} training rows"
        if self.epochs is not None:
            message = (f"{head}: one optimizer step covers {per_step:.1f} epochs, so train.epochs={self.epochs:g} "
                       f"gives {steps} optimizer step{'' if steps == 1 else 's'} in all "
                       f"({num_rows / self.batch_size:.2f} per epoch). Set "
                       f"train.batch_size to at most {num_rows}, or give train.steps.")
        else:
            message = (f"{head}: each of the {steps} optimizer steps repeats rows ({per_step:.1f} epochs per step). "
                       f"Set train.batch_size to at most {num_rows}.")
        return {"code": "batch_size_exceeds_rows", "message": message, "batch_size": self.batch_size,
                "train_rows": num_rows, "steps": steps, "steps_per_epoch": num_rows / self.batch_size}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["loss"] = self.loss.to_dict()
        if isinstance(self.sample_low, tuple):
            data["sample_low"] = list(self.sample_low)
        if self.loss_widths is None:
            del data["loss_widths"]  # absent when unused: checkpoints written before the field existed still resume
        else:
            data["loss_widths"] = [list(w) for w in self.loss_widths]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown train config fields {unknown}; allowed: {sorted(known)}")
        return cls(**data)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _non_negative_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
