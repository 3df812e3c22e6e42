"""The run config's sections that every model family reads: the Teacher, the loss weights and training.

Importable without torch (every pipeline task reads its sections); `matta_core.config` composes them with the
data section (`matta_core.data.section`) and the chosen family's model section into the run config.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from matta_core.config_base import Section
from matta_core.loss_config import LossConfig
from matta_core.training.config import TrainConfig


class TeacherSection(Section):
    # A teacher spec for `matta_core.teachers.make_teacher`; the default is the frozen MiniLM with a fitted head.
    spec: dict[str, Any] = Field(default_factory=lambda: {"kind": "minilm"})
    # Rows per shard of a new Teacher cache entry: how outputs are stored, not what they are, so not in the cache
    # key; an entry written with another size is read with its own layout (`matta_core.teachers.cache.key`).
    shard_rows: int = Field(2048, gt=0)

    @field_validator("spec")
    @classmethod
    def _has_kind(cls, spec: dict[str, Any]) -> dict[str, Any]:
        from matta_core.teachers.factory import SPEC_FIELDS

        if spec.get("kind") not in SPEC_FIELDS:
            raise ValueError(f"kind {spec.get('kind')!r} unknown; allowed: {sorted(SPEC_FIELDS)}")
        return spec


class LossSection(Section):
    temperature: float = Field(LossConfig.temperature, gt=0.0)
    teacher_weight: float = Field(LossConfig.teacher_weight, ge=0.0, le=1.0)
    ta_distill_weight: float = Field(LossConfig.ta_distill_weight, ge=0.0)
    ta_distill_warmup: float = Field(LossConfig.ta_distill_warmup, ge=0.0, le=1.0)
    ta_weight: float = Field(LossConfig.ta_weight, ge=0.0)
    student_weight: float = Field(LossConfig.student_weight, ge=0.0)
    sampled_weight: float = Field(LossConfig.sampled_weight, ge=0.0)


class TrainSection(Section):
    epochs: float | None = Field(15.0, gt=0.0)
    steps: int | None = Field(None, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(TrainConfig.lr, gt=0.0)  # one source for the default and its why-comment
    weight_decay: float = Field(0.0, ge=0.0)
    optimizer: str = "adamw"
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    num_threads: int | None = Field(None, gt=0)
    # Which sub-models get a loss term each step besides the TA and the Student. "extracted": every width of the
    # run's `widths`, every step (the classifier's default: on Banking77 validation it beat sampling on every seed,
    # +0.58 points over widths 32-512 and +1.8 at width 32, for 1.38x the training time measured on a busy
    # machine; tune_matta.json, round "levers"). "sampled":
    # `sandwich_k` random widths per step (the causal_lm default: an LM head per width costs a full-vocabulary
    # projection). A causal_lm run samples.
    widths_per_step: Literal["extracted", "sampled"] = "extracted"
    sandwich_k: int = Field(TrainConfig.sandwich_k, ge=0)
    # Resolved by the run config from `widths_per_step` and `widths` (do not set it): what the train step trains.
    loss_widths: list[list[int]] | None = None
    checkpoint_every: int = Field(0, ge=0)
    # And after every this many seconds of training (0 = off): a killed run of any length loses at most about this
    # much work, and runs shorter than it write only the final checkpoint.
    checkpoint_every_seconds: float = Field(60.0, ge=0.0)
    # Where checkpoints go (a path or gs:// URI), outside the train task's output artifact, so a retried or
    # preempted task resumes from the newest one. None: inside the output (local runs).
    checkpoint_dir: str | None = None
    loss: LossSection = Field(default_factory=LossSection)
    # Baselines trained in the same step at equal budget, so the report compares like with like.
    baselines: list[Literal["kd", "ce_only"]] = Field(default_factory=lambda: ["kd", "ce_only"])

    @model_validator(mode="after")
    def _one_budget(self) -> TrainSection:
        if self.steps is not None and self.epochs is not None:
            object.__setattr__(self, "epochs", None)  # an explicit step budget wins over the default epochs
        if self.steps is None and self.epochs is None:
            raise ValueError("give a training budget: epochs or steps")
        return self

    def train_config(self, arm: str = "matta", progress: bool = True) -> TrainConfig:
        return TrainConfig(
            arm=arm,
            steps=self.steps,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            optimizer=self.optimizer,
            seed=self.seed,
            device=self.device,
            num_threads=self.num_threads,
            sandwich_k=self.sandwich_k,
            loss_widths=None if self.loss_widths is None else [list(w) for w in self.loss_widths],
            checkpoint_every=self.checkpoint_every,
            checkpoint_every_seconds=self.checkpoint_every_seconds,
            loss=LossConfig(**self.loss.model_dump()),
            progress=progress,
        )


class ExtractionSection(Section):
    """How each extracted width stores its embedding table (the classifier family; a causal_lm run's extraction
    writes its weights as trained and takes this section at its defaults only).

    The defaults shrink every width's file ~25x (Banking77: 130 MB -> ~5 MB at 128 dims) for an accuracy change
    measured at -0.16 to +0.03 points on Banking77's test split, within seed noise (the README's "Compact
    extraction"); every extraction measures it again on the validation split and records it in the model's
    config (``metadata.compression``).
    """

    # int8: one byte per value and a float32 scale per row (symmetric, per-row); float16; float32: as trained.
    embedding_dtype: Literal["float32", "float16", "int8"] = "int8"
    # Keep only the rows of buckets some training example hashed into: the others were never updated and hold
    # their random initialisation (on Banking77, 85 % of the 2^18 rows).
    drop_untrained_rows: bool = True

    @property
    def stores_as_trained(self) -> bool:
        """Whether nothing is compressed (the table is written whole, in float32)."""
        return self.embedding_dtype == "float32" and not self.drop_untrained_rows
