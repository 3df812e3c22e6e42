"""Per-task settings a cluster needs, applied to the pipeline's tasks as they are built (`apply_settings`).

`PipelineSettings.local()` (the default) applies nothing: a local run keeps kfp.local's behaviour exactly
(no retries, every step's cache as configured). `PipelineSettings.for_cluster(config, ...)` carries the config's
``resources:`` (CPU / memory requests and limits, accelerators, node selector, tolerations, retries with backoff,
timeout) and ``cluster:`` sections (images, the MLflow Secret, the settings ConfigMap, the Secret Manager settings
secret, image pull secrets).

Three settings travel as plain environment variables in the pipeline spec proper, because Vertex AI reads that
part and drops the Kubernetes platform spec: the Secret Manager secret's *name* (`SETTINGS_SECRET_ENV`; never a
value: each task fetches the payload itself, `matta_core.cluster.secret_settings`), the step's timeout
(`TASK_TIMEOUT_ENV`, which a watchdog in the task enforces, `matta_core.task_timeout`; on KFP the pod's deadline
from `kubernetes.set_timeout` is set as well) and the tracking retry budget (`RETRY_SECONDS_ENV`: how long a task
retries an MLflow server that stopped answering, `matta_core.tracking.retries`).

Caching is not a setting: which tasks may be cached is part of the pipeline (`NEVER_CACHED`), the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kfp import kubernetes

from matta_core.cluster import (
    MLFLOW_SECRET_OPTIONAL_KEYS,
    MLFLOW_SECRET_REQUIRED_KEYS,
    SETTINGS_CONFIG_MAP_KEYS,
    ResourcesSection,
    StepResources,
)
from matta_core.cluster.run_identity import KFP_RUN_ID_ENV, KFP_RUN_ID_POD_LABEL
from matta_core.cluster.secret_settings import SETTINGS_SECRET_ENV
from matta_core.config import PipelineConfig
from matta_core.task_timeout import TASK_STEP_ENV, TASK_TIMEOUT_ENV
from matta_core.tracking.retries import RETRY_SECONDS_ENV

#: Tasks with side effects, or whose output must be read afresh on every run: never served from a cache.
#: ``start_run`` opens the MLflow parent run and reads the data's version; ``release`` writes to the registry;
#: ``end_run`` ends the parent run; ``report`` logs the run's summary (accuracy per model, the chart) to the run's
#: parent run, which a run whose report came from the cache would lack (it costs a second or two).
NEVER_CACHED: frozenset[str] = frozenset({"start_run", "report", "release", "end_run"})


@dataclass(frozen=True)
class PipelineSettings:
    """What `apply_settings` sets on each task; see the module docstring."""

    resources: ResourcesSection | None = None
    image: str | None = None
    gpu_image: str | None = None
    mlflow_secret: str | None = None
    settings_config_map: str | None = None
    settings_secret: str | None = None
    image_pull_secrets: tuple[str, ...] = field(default_factory=tuple)
    # `tracking_retry_seconds`, as the task's MATTA_TRACKING_RETRY_SECONDS (a local run's steps inherit it).
    tracking_retry_seconds: int | None = None

    @classmethod
    def local(cls) -> PipelineSettings:
        return cls()

    @classmethod
    def for_cluster(cls, config: PipelineConfig, *, image: str, gpu_image: str | None = None) -> PipelineSettings:
        cluster = config.cluster
        return cls(resources=config.resources, image=image, gpu_image=gpu_image,
                   mlflow_secret=cluster.mlflow_secret, settings_config_map=cluster.settings_config_map,
                   settings_secret=cluster.settings_secret, image_pull_secrets=tuple(cluster.image_pull_secrets),
                   tracking_retry_seconds=config.tracking_retry_seconds)

    def image_of(self, resources: StepResources) -> str | None:
        """The image of a task: the GPU image where it requests an accelerator, else the CPU image."""
        if resources.accelerator_count and self.gpu_image:
            return self.gpu_image
        return self.image


def apply_settings(task: Any, step: str, settings: PipelineSettings, *, cache_name: str | None = None) -> Any:
    """Apply `settings` for pipeline step `step` (a `matta_core.cluster.STEPS` name) to the KFP `task`.

    `cache_name` (default: `step`) is looked up in `NEVER_CACHED`.
    """
    if (cache_name or step) in NEVER_CACHED:
        task.set_caching_options(False)
    if settings.mlflow_secret:
        kubernetes.use_secret_as_env(task, settings.mlflow_secret, {k: k for k in MLFLOW_SECRET_REQUIRED_KEYS})
        kubernetes.use_secret_as_env(task, settings.mlflow_secret, {k: k for k in MLFLOW_SECRET_OPTIONAL_KEYS},
                                     optional=True)
    if settings.settings_config_map:
        kubernetes.use_config_map_as_env(task, settings.settings_config_map,
                                         {k: k for k in SETTINGS_CONFIG_MAP_KEYS}, optional=True)
    if settings.settings_secret:
        task.set_env_variable(SETTINGS_SECRET_ENV, settings.settings_secret)
    if settings.tracking_retry_seconds is not None:
        # Not MLflow's own variables: the task turns this into them after its Secret / ConfigMap / Secret Manager
        # settings are in place, so a value set there wins (`matta_core.tracking.retries`).
        task.set_env_variable(RETRY_SECONDS_ENV, str(settings.tracking_retry_seconds))
    if settings.image_pull_secrets:
        kubernetes.set_image_pull_secrets(task, list(settings.image_pull_secrets))
    if settings.resources is None:
        return task
    # Which run the task belongs to, from the pod's label rather than an input (an input would be part of the
    # cache key): how the cacheable steps find the run's MLflow parent (`matta_core.cluster.run_identity`).
    kubernetes.use_field_path_as_env(task, KFP_RUN_ID_ENV, f"metadata.labels['{KFP_RUN_ID_POD_LABEL}']")
    resources = settings.resources.of(step)
    image = settings.image_of(resources)
    if image:
        task.set_container_image(image)
    _set_compute(task, step, resources)
    return task


def _set_compute(task: Any, step: str, resources: StepResources) -> None:
    if resources.cpu_request:
        task.set_cpu_request(resources.cpu_request)
    if resources.cpu_limit:
        task.set_cpu_limit(resources.cpu_limit)
    if resources.memory_request:
        task.set_memory_request(resources.memory_request)
    if resources.memory_limit:
        task.set_memory_limit(resources.memory_limit)
    if resources.accelerator_count:
        task.set_accelerator_type(resources.accelerator_type)
        task.set_accelerator_limit(resources.accelerator_count)
    for key, value in resources.node_selector.items():
        kubernetes.add_node_selector(task, label_key=key, label_value=value)
    for toleration in resources.tolerations:
        kubernetes.add_toleration(task, key=toleration.key, operator=toleration.operator, value=toleration.value,
                                  effect=toleration.effect, toleration_seconds=toleration.toleration_seconds)
    if resources.retries:
        task.set_retry(num_retries=resources.retries, backoff_duration=f"{resources.retry_backoff_seconds}s",
                       backoff_factor=resources.retry_backoff_factor,
                       backoff_max_duration=f"{resources.retry_backoff_max_seconds}s")
    if resources.timeout_seconds:
        kubernetes.set_timeout(task, resources.timeout_seconds)
        # Vertex AI drops the pod deadline above; the task's own watchdog reads these (and names the step).
        task.set_env_variable(TASK_TIMEOUT_ENV, str(resources.timeout_seconds))
        task.set_env_variable(TASK_STEP_ENV, step)
