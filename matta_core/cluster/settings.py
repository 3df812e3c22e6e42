"""Where and how the pipeline runs on a cluster (the ``cluster:`` section): pipeline root, images, and the names of
the Kubernetes Secret and ConfigMap the tasks read their settings from.

None of it matters to a local run (`matta run`): kfp.local, sqlite and local files need no cluster settings. A
cluster target (`matta compile --config`, `matta submit`, `matta schedule`) checks it with
`pipelines.cluster_preflight`: a ``gs://`` pipeline root is required there, and no field may name a local path.

Credentials never travel as pipeline parameters (every user of the KFP UI can read those): the MLflow server's URI
and credentials come from the Secret `mlflow_secret` as MLflow's own environment variables, GCS settings from the
ConfigMap `settings_config_map`; GCS itself uses Application Default Credentials (Workload Identity on GKE).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Keys read from the MLflow Secret, each into the environment variable of the same name. The URI is required
#: when a Secret is named; the credentials are optional (a server without auth has none).
MLFLOW_SECRET_REQUIRED_KEYS: tuple[str, ...] = ("MLFLOW_TRACKING_URI",)
MLFLOW_SECRET_OPTIONAL_KEYS: tuple[str, ...] = (
    "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
)
#: Keys read (each optional) from the settings ConfigMap into the environment variable of the same name.
SETTINGS_CONFIG_MAP_KEYS: tuple[str, ...] = (
    "GOOGLE_CLOUD_PROJECT", "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MATTA_DATA_MIRROR",
)
#: RFC 1123 DNS subdomain: what Kubernetes allows as a Secret or ConfigMap name, and as a label key's prefix.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def check_kubernetes_name(name: str) -> str:
    """`name` if Kubernetes accepts it as a Secret / ConfigMap / ServiceAccount name, else ValueError."""
    if not DNS_SUBDOMAIN.match(name) or ".." in name:
        raise ValueError(f"{name!r} is not a valid Kubernetes object name (lower-case letters, digits, '-' and "
                         "'.', starting and ending with a letter or digit, at most 253 characters)")
    return name


class ClusterSection(BaseModel):
    """Settings of a cluster run; all optional for local runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Where KFP / Vertex AI writes every task's artifacts (gs://bucket/path). Required for a cluster target.
    pipeline_root: str | None = None
    # The project image for CPU tasks (else --image / $MATTA_IMAGE), and for tasks that request an accelerator
    # (built from docker/Dockerfile.gpu); both fully qualified registry names.
    image: str | None = None
    gpu_image: str | None = None
    # Secret with MLFLOW_TRACKING_URI (+ optional MLFLOW_TRACKING_USERNAME / _PASSWORD / _TOKEN). None: the
    # cluster run is not tracked, and its release step registers nothing (it says so).
    mlflow_secret: str | None = None
    # ConfigMap with optional settings (GOOGLE_CLOUD_PROJECT, MLFLOW_TRACKING_INSECURE_TLS, ...), see
    # SETTINGS_CONFIG_MAP_KEYS.
    settings_config_map: str | None = None
    # Secrets the nodes use to pull the image from a private registry.
    image_pull_secrets: list[str] = Field(default_factory=list)
    # Training checkpoints every N steps on a cluster when train.checkpoint_every is 0 (a preempted node then loses
    # at most N steps).
    checkpoint_every: int = Field(200, gt=0)

    @field_validator("mlflow_secret", "settings_config_map")
    @classmethod
    def _kubernetes_name(cls, name: str | None) -> str | None:
        return None if name is None else check_kubernetes_name(name)

    @field_validator("image_pull_secrets")
    @classmethod
    def _pull_secret_names(cls, names: list[str]) -> list[str]:
        return [check_kubernetes_name(name) for name in names]
