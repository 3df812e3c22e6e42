"""The arms of `benchmarks/quality.py`: which train every width in one run, their order in tables, which use the
MatTA loss."""

from __future__ import annotations

# Single-run arms train every width at once; per-width arms train one model per width.
SINGLE_RUN_ARMS = ("matta", "matta+shampoo", "matta_equal_compute")
ARM_ORDER = ("ce_only", "ce_only+shampoo", "kd", "matta_separate", "matta", "matta_equal_compute", "matta+shampoo")
# Arms trained with the MatTA loss (the TA route): the size-class goal accepts a width served by any of them.
MATTA_ARMS = ("matta", "matta_equal_compute", "matta+shampoo", "matta_separate")
# Arm -> the trainer's arm (TrainConfig.arm); the rest is the arm's own name (before any "+optimizer").
BASE_ARM = {"matta_separate": "matta", "matta_equal_compute": "matta"}
