"""Compute settings per pipeline step (the ``resources:`` section): what each task asks a Kubernetes node for.

A step's settings become its task's CPU and memory requests and limits, accelerator type and count, node selector,
tolerations, retry policy and timeout in the compiled pipeline (`pipelines.task_settings`). The defaults suit the
bundled Banking77 run on a general-purpose node pool; a bigger run raises them in its config. kfp.local ignores
requests, limits, selectors and timeouts (it runs on this machine), but honours retries.

Quantities are Kubernetes quantities (``"500m"``, ``"2"``, ``"4Gi"``, ``"512M"``), checked here: a limit below
its request, or a value Kubernetes would not parse, is a config error naming the field.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from matta_core.cluster.settings import DNS_SUBDOMAIN

#: The pipeline's steps that run as tasks, in DAG order (``evaluate`` covers the per-width extract+evaluate task
#: and the baselines' evaluations; ``tracking`` is the first task, which opens the MLflow parent run).
STEPS: tuple[str, ...] = ("tracking", "prepare", "teacher", "train", "evaluate", "report", "release")

_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    None: Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
# A label key or value, as Kubernetes allows them (prefix/name for keys; values may be empty).
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def parse_quantity(text: str) -> Decimal:
    """The value of a Kubernetes quantity (``"500m"`` -> 0.5, ``"1Gi"`` -> 1073741824); ValueError if malformed."""
    match = _QUANTITY.match(str(text).strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. '500m', '2', '512Mi', '4Gi')")
    return Decimal(match["number"]) * _SUFFIX[match["suffix"]]


def check_label_key(key: str) -> str:
    """`key` if Kubernetes accepts it as a label key (``[prefix/]name``), else ValueError."""
    prefix, _, name = key.rpartition("/")
    if not name or len(name) > 63 or not _LABEL_NAME.match(name) or (
        prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix))
    ):
        raise ValueError(f"{key!r} is not a valid Kubernetes label key ([dns-prefix/]name, name of at most 63 "
                         "letters, digits, '-', '_' or '.')")
    return key


class Toleration(BaseModel):
    """One Kubernetes toleration (e.g. for a GPU node pool's ``nvidia.com/gpu=present:NoSchedule`` taint)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoExecute", "NoSchedule", "PreferNoSchedule"] | None = None
    toleration_seconds: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator: Exists (it then matches every taint)")
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("operator Exists takes no value")
        return self


class StepResources(BaseModel):
    """What one step's task asks for. Requests are what the scheduler reserves; limits what the pod may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    # E.g. "nvidia.com/gpu" on KFP, "NVIDIA_TESLA_T4" / "NVIDIA_L4" on Vertex AI; with a count > 0.
    accelerator_type: str | None = None
    accelerator_count: int = Field(0, ge=0)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    # Retries of a failed task (a preempted node, a transient API error). Only steps that are safe to rerun get
    # them by default: every step here is (atomic outputs, resumable caches and checkpoints, idempotent release).
    retries: int = Field(0, ge=0, le=10)
    retry_backoff_seconds: int = Field(30, ge=0)
    retry_backoff_factor: float = Field(2.0, ge=1.0)
    retry_backoff_max_seconds: int = Field(600, ge=0)
    # The pod's active deadline; None = no limit.
    timeout_seconds: int | None = Field(None, gt=0)

    @field_validator("cpu_request", "cpu_limit", "memory_request", "memory_limit")
    @classmethod
    def _is_quantity(cls, value: str | None) -> str | None:
        if value is not None:
            parse_quantity(value)
        return value

    @field_validator("node_selector")
    @classmethod
    def _selector_labels(cls, selector: dict[str, str]) -> dict[str, str]:
        for key, value in selector.items():
            check_label_key(key)
            if len(value) > 63 or not _LABEL_NAME.match(value):
                raise ValueError(f"node_selector[{key!r}] = {value!r} is not a valid Kubernetes label value")
        return selector

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> StepResources:
        for kind in ("cpu", "memory"):
            request, limit = getattr(self, f"{kind}_request"), getattr(self, f"{kind}_limit")
            if request is not None and limit is not None and parse_quantity(limit) < parse_quantity(request):
                raise ValueError(f"{kind}_limit {limit!r} is below {kind}_request {request!r} (Kubernetes refuses "
                                 "such a pod): raise the limit or lower the request")
        if self.accelerator_count and not self.accelerator_type:
            raise ValueError(f"accelerator_count {self.accelerator_count} needs an accelerator_type (e.g. "
                             "'nvidia.com/gpu' on KFP, 'NVIDIA_L4' on Vertex AI)")
        if self.accelerator_type and not self.accelerator_count:
            raise ValueError(f"accelerator_type {self.accelerator_type!r} needs accelerator_count >= 1")
        return self

    def cpu_threads(self) -> int | None:
        """Whole CPUs the limit (else the request) allows: the step's torch thread count; None if neither is set."""
        quantity = self.cpu_limit or self.cpu_request
        if quantity is None:
            return None
        return max(1, int(parse_quantity(quantity)))


def _step(cpu: str, memory: str, *, cpu_limit: str | None = None, memory_limit: str | None = None, retries: int,
          timeout_seconds: int) -> StepResources:
    return StepResources(cpu_request=cpu, cpu_limit=cpu_limit or cpu, memory_request=memory,
                         memory_limit=memory_limit or memory, retries=retries, timeout_seconds=timeout_seconds)


class ResourcesSection(BaseModel):
    """Per-step compute settings; each step's defaults fit the default run (Banking77, MiniLM, 15 epochs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking: StepResources = Field(default_factory=lambda: _step("250m", "512Mi", cpu_limit="1",
                                                                  memory_limit="1Gi", retries=3, timeout_seconds=600))
    prepare: StepResources = Field(default_factory=lambda: _step("1", "2Gi", memory_limit="4Gi", retries=2,
                                                                 timeout_seconds=3600))
    # The Teacher pass resumes from its cached shards: a retry loses at most one shard.
    teacher: StepResources = Field(default_factory=lambda: _step("4", "8Gi", retries=2, timeout_seconds=4 * 3600))
    # Training resumes from its newest checkpoint (train.checkpoint_dir): a retry after preemption loses at most
    # train.checkpoint_every steps.
    train: StepResources = Field(default_factory=lambda: _step("4", "8Gi", memory_limit="16Gi", retries=3,
                                                               timeout_seconds=12 * 3600))
    evaluate: StepResources = Field(default_factory=lambda: _step("2", "4Gi", retries=2, timeout_seconds=3600))
    report: StepResources = Field(default_factory=lambda: _step("1", "2Gi", retries=2, timeout_seconds=1800))
    # Registration is keyed on the KFP run: a retried release registers nothing twice.
    release: StepResources = Field(default_factory=lambda: _step("1", "4Gi", retries=2, timeout_seconds=3600))

    def of(self, step: str) -> StepResources:
        """The settings of `step` (one of `STEPS`)."""
        if step not in STEPS:
            raise KeyError(f"unknown step {step!r}; steps: {', '.join(STEPS)}")
        return getattr(self, step)  # type: ignore[no-any-return]
