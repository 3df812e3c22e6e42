"""The weights of the MatTA objective (`LossConfig`), apart from the loss code (`matta_core.families.classifier.loss`).

Apart because the run config (`matta_core.config`) reads these defaults when it is imported, and every pipeline
task imports the run config: here they cost no torch import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LossConfig:
    """Weights of the MatTA objective (the terms: `matta_core.families.classifier.loss`). Defaults: see README
    ("Defaults and why").

    Checked by a one-at-a-time search on Banking77 validation (benchmarks/results/tune_matta.json; mean accuracy
    over widths 32-512 of one MatTA run): tau 1 / 2 / 8, alpha 0.2 / 0.8 / 1.0, gamma 0 / 1 / 2 and warm-up 0 / 0.5
    none beat these defaults by more than validation noise (~0.3 points on 1,009 rows); tau = 1 (-2.8 points) and
    alpha = 1.0 (-1.8 points: the labels matter) clearly lost.
    """

    # tau: 4 softens a confident Teacher enough that the ranking of wrong classes (its "dark knowledge") matters.
    temperature: float = 4.0
    # alpha: the share of the Teacher's soft targets vs ground-truth labels. 0.5 trusts both equally; with no labels
    # the soft term takes all the weight, with no Teacher the labels do.
    teacher_weight: float = 0.5
    # gamma: weight of online TA -> Student distillation at the end of the warm-up.
    ta_distill_weight: float = 0.5
    # Fraction of training steps over which gamma ramps up from 0.
    ta_distill_warmup: float = 0.15
    ta_weight: float = 1.0
    student_weight: float = 1.0
    sampled_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise ValueError(f"teacher_weight (alpha) must be in [0, 1], got {self.teacher_weight}")
        if not 0.0 <= self.ta_distill_warmup <= 1.0:
            raise ValueError(f"ta_distill_warmup must be a fraction in [0, 1], got {self.ta_distill_warmup}")
        for name in ("ta_distill_weight", "ta_weight", "student_weight", "sampled_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
