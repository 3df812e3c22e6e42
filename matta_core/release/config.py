"""The release stage's configuration (``release:`` in a run config): size classes, gate, handoff, registry names.

Validated like the rest of the run config (pydantic, unknown keys refused). The defaults fit Banking77 at the
default model shape: every width shares the same hashed embedding table (2^18 x 128 = 33.5M parameters), so
size classes bound the *dense* parameters (the MLP and head, where widths differ) rather than the total.
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
    # Dense params of one hidden layer of width w at embed 128, 77 classes: 206 w + 77 (w=64: 13.3k; w=256: 52.8k).
    return [SizeClass(name="xs", max_dense_params=15_000), SizeClass(name="s", max_dense_params=60_000),
            SizeClass(name="m", max_dense_params=250_000)]


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
