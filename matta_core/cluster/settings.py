"""Where and how the pipeline runs on a cluster (the ``cluster:`` section): pipeline root, images, and the names of
the Kubernetes Secret and ConfigMap, or the Google Secret Manager secret, the tasks read their settings from.

None of it matters to a local run (`matta run`): kfp.local, sqlite and local files need no cluster settings. A
cluster target (`matta compile --config`, `matta submit`, `matta schedule`) checks it with
`pipelines.cluster_preflight`: a ``gs://`` pipeline root is required there, and no field may name a local path.

Credentials never travel as pipeline parameters (every user of the KFP UI can read those): the MLflow server's URI
and credentials come from the Secret `mlflow_secret` as MLflow's own environment variables, GCS settings from the
ConfigMap `settings_config_map`; GCS itself uses Application Default Credentials (Workload Identity on GKE).
Vertex AI Pipelines cannot read Kubernetes objects: there (and on KFP too, if preferred) `settings_secret` names a
Secret Manager secret version whose JSON payload holds the same settings; only its name travels in the pipeline
spec, and each task reads it with its own service account (`matta_core.cluster.secret_settings`).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
#: Every key a settings payload may hold: the MLflow Secret's and the settings ConfigMap's keys together.
SETTINGS_SECRET_KEYS: tuple[str, ...] = (
    *MLFLOW_SECRET_REQUIRED_KEYS, *MLFLOW_SECRET_OPTIONAL_KEYS, *SETTINGS_CONFIG_MAP_KEYS,
)
# A Secret Manager secret version, by Google's documented id rules: a project id (6-30 characters: lower-case
# letters, digits and '-', starting with a letter, not ending with '-') or a project number; a secret id (1-255
# letters, digits, '-' and '_'); a version number (from 1) or the alias ``latest``. A pinned number makes a rerun
# read the same settings; ``latest`` follows rotations.
SECRET_VERSION_NAME = re.compile(
    r"^projects/(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})"
    r"/secrets/[A-Za-z0-9_-]{1,255}"
    r"/versions/(?:[1-9][0-9]{0,18}|latest)$"
)
SECRET_VERSION_SHAPE = ("projects/<project id or number>/secrets/<secret id>/versions/<version number or latest>, "
                        "e.g. projects/my-project/secrets/matta-settings/versions/latest")


def check_kubernetes_name(name: str) -> str:
    """`name` if Kubernetes accepts it as a Secret / ConfigMap / ServiceAccount name, else ValueError."""
    if not DNS_SUBDOMAIN.match(name) or ".." in name:
        raise ValueError(f"{name!r} is not a valid Kubernetes object name (lower-case letters, digits, '-' and "
                         "'.', starting and ending with a letter or digit, at most 253 characters)")
    return name


def check_secret_version_name(name: str) -> str:
    """`name` if it is a Secret Manager secret version's resource name, else ValueError saying the expected shape."""
    if not SECRET_VERSION_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a Secret Manager secret version name; expected "
                         f"{SECRET_VERSION_SHAPE} (project id: 6-30 lower-case letters, digits or '-'; secret id: "
                         "1-255 letters, digits, '-' or '_')")
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
    # A Google Secret Manager secret version (SECRET_VERSION_SHAPE) whose payload is a JSON object of the settings
    # above (SETTINGS_SECRET_KEYS; MLFLOW_TRACKING_URI required): the one way to track a Vertex AI run, and usable
    # on KFP on GKE with Workload Identity. The task's service account needs roles/secretmanager.secretAccessor.
    settings_secret: str | None = None
    # Secrets the nodes use to pull the image from a private registry.
    image_pull_secrets: list[str] = Field(default_factory=list)
    # Training checkpoints every N steps on a cluster when train.checkpoint_every is 0 (a preempted node then loses
    # at most N steps).
    checkpoint_every: int = Field(200, gt=0)

    @field_validator("mlflow_secret", "settings_config_map")
    @classmethod
    def _kubernetes_name(cls, name: str | None) -> str | None:
        return None if name is None else check_kubernetes_name(name)

    @field_validator("settings_secret")
    @classmethod
    def _secret_version_name(cls, name: str | None) -> str | None:
        return None if name is None else check_secret_version_name(name)

    @model_validator(mode="after")
    def _one_mlflow_source(self) -> ClusterSection:
        if self.settings_secret is not None and self.mlflow_secret is not None:
            # Two sources of the tracking URI and credentials would leave which one a task used to precedence rules.
            raise ValueError("cluster.settings_secret and cluster.mlflow_secret are both set: choose one source of "
                             "MLflow settings (settings_secret on Vertex AI; either on KFP)")
        return self

    @field_validator("image_pull_secrets")
    @classmethod
    def _pull_secret_names(cls, names: list[str]) -> list[str]:
        return [check_kubernetes_name(name) for name in names]
