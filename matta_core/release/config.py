"""The release stage's configuration (``release:`` in a run config): size classes, gate, handoff, registry names.

Validated like the rest of the run config (pydantic, unknown keys refused). The defaults fit Banking77 at the
default model shape: every width shares the same hashed embedding table (2^18 x 128 = 33.5M parameters), so
size classes tell widths apart by their *dense* parameters (the MLP and head, where widths differ), and bound the
bytes on disk only as a guard, until extraction stops shipping the whole table (see `_default_classes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from matta_core.release.gate import GateConfig
from matta_core.release.handoff import HandoffConfig
from matta_core.release.size_classes import SizeClass, check_size_classes

#: What a registered-model prefix may be: letters, digits, '_', '.', '-', starting with a letter or digit.
MODEL_PREFIX_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def _default_classes() -> list[SizeClass]:
    """Three products for a fleet of CPU serving pods, bounded by what serving pays for.

    - ``xs``: a model small enough for a sidecar beside another service, or for many replicas per node: the
      Student's width and below (dense params <= 15k: one hidden layer of width <= 64).
    - ``s``: a standard CPU pod's model: widths up to 256 (dense params <= 60k).
    - ``m``: the most accurate model a CPU pod still serves cheaply: widths up to the TA's 1024 (<= 250k).

    Dense params of one hidden layer of width w at embed 128, 77 classes: 206 w + 77 (w=64: 13.3k; w=256: 52.8k;
    w=1024: 211k).

    Bytes on disk bound what a pod pulls, caches and (decoded) holds in memory. With compact extraction (the
    ``extraction`` section's defaults: trained rows only, int8) a width of the default model is 5.3-6.1 MB on
    Banking77; without it, 135 MB (33.5 M float32 table values) or 34 MB (int8, every row). The limits: xs 8 MB (a
    sidecar's model, pulled in a second), s 16 MB, m 64 MB (still far below the whole float table, so a run that
    turns compaction off finds no candidate rather than shipping 135 MB as a small model). A nested embedding
    (``model.student_embed_dim``) shrinks the narrow widths' files further; the byte limits then tell them apart.

    No latency or resident-memory limit by default: both are measured only with ``measure_speed`` on (a run
    without it would find no candidate for any class), and their right values depend on the serving nodes' CPUs;
    set ``max_latency_p95_ms`` / ``max_resident_bytes`` in a run config for a known fleet.
    """
    return [SizeClass(name="xs", max_dense_params=15_000, max_bytes_on_disk=8_000_000),
            SizeClass(name="s", max_dense_params=60_000, max_bytes_on_disk=16_000_000),
            SizeClass(name="m", max_dense_params=250_000, max_bytes_on_disk=64_000_000)]


class ReleaseConfig(BaseModel):
    """Everything `release_step` needs besides its inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Registered model of a class: "<model_prefix>-<class>" (matta-banking77-s). None: the run's `name`, filled in
    # when the run config is loaded (`PipelineConfig`), so two pipelines sharing one MLflow server never gate
    # against each other's champion; the compiled pipeline and `matta show-config` carry the resolved value.
    model_prefix: str | None = Field(None, min_length=1, pattern=MODEL_PREFIX_PATTERN)
    size_classes: list[SizeClass] = Field(default_factory=_default_classes, min_length=1)
    # Evaluation-record key that picks the best width of a class (higher is better).
    primary_metric: str = "accuracy"
    gate: GateConfig = Field(default_factory=GateConfig)
    handoff: HandoffConfig = Field(default_factory=HandoffConfig)
    # The arm whose model is the reference of a class that has no champion yet (the Student alone).
    baseline_arm: str = "ce_only"
    # MLflow experiment of the release run when it is not attached to a pipeline's parent run.
    experiment: str = "matta-release"
    lock_lease_s: float = Field(60.0, gt=0.0)
    lock_timeout_s: float = Field(120.0, ge=0.0)

    @field_validator("size_classes")
    @classmethod
    def _unique(cls, classes: list[SizeClass]) -> list[SizeClass]:
        check_size_classes(classes)
        return classes

    @classmethod
    def parse(cls, data: ReleaseConfig | Mapping[str, Any] | None) -> ReleaseConfig:
        """A `ReleaseConfig` from itself, a mapping (YAML section) or None (the defaults)."""
        if isinstance(data, ReleaseConfig):
            return data
        return cls.model_validate(dict(data or {}))

    def registry_prefix(self) -> str:
        """`model_prefix`; a `ValueError` if unset (a config built without a run `name` to default it to)."""
        if self.model_prefix is None:
            raise ValueError("release.model_prefix is not set: give it, or load the release section through the "
                             "run config (`PipelineConfig`), which defaults it to the run's name")
        return self.model_prefix

    def lock_options(self) -> dict[str, float]:
        return {"lease_s": self.lock_lease_s, "timeout_s": self.lock_timeout_s}
