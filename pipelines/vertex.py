"""``matta submit --backend vertex`` and ``matta schedule --backend vertex``: the same cluster pipeline on Vertex AI
Pipelines, through ``google-cloud-aiplatform``'s `PipelineJob` (the optional extra ``vertex``).

The YAML is the one KFP gets (`compile_cluster_pipeline`); the run's parameters are `cluster_arguments`, its
artifacts go under ``cluster.pipeline_root``. What can be checked here is checked before Google Cloud is contacted:
project and region, labels (Vertex's rules), the cron (Vertex reads 5 fields, minute first), the config and image.
Credentials are Application Default Credentials (``gcloud auth application-default login``, or the workload's
service account); ``--service-account`` is the identity the pipeline's tasks run as.

Vertex AI reads the pipeline spec but not its Kubernetes platform spec: no Secret, ConfigMap, image pull Secret or
pod deadline reaches a task. A tracked Vertex run names a Secret Manager secret in ``cluster.settings_secret``
instead (the tasks read it with the ``--service-account``, which needs roles/secretmanager.secretAccessor on it),
and each task enforces ``resources.<step>.timeout_seconds`` itself (`matta_core.task_timeout`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matta_core.config import PipelineConfig
from matta_core.release.cron import CronError, parse_cron
from pipelines.submit import with_cluster_package

# https://cloud.google.com/resource-manager/docs/labels-overview: keys start with a lower-case letter; keys and
# values use lower-case letters, digits, '_' and '-', at most 63 characters; at most 64 labels per resource.
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
MAX_LABELS = 64
#: Set by Vertex itself on every run; the SDK refuses it from users.
RESERVED_LABEL = "vertex-ai-pipelines-run-billing-id"


class VertexError(ValueError):
    """A Vertex AI submission that cannot go (a missing option, a bad label or cron, the API's refusal)."""


@dataclass(frozen=True)
class VertexTarget:
    """Where a Vertex AI pipeline run goes, and what it carries besides the pipeline."""

    project: str
    region: str
    service_account: str | None = None
    network: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def vertex_target(project: str | None, region: str | None, *, service_account: str | None = None,
                  network: str | None = None, labels: list[str] | None = None) -> VertexTarget:
    """A `VertexTarget` from the command-line options, or `VertexError` naming the missing or bad option."""
    missing = [option for option, value in (("--project", project), ("--region", region)) if not value]
    if missing:
        raise VertexError(f"--backend vertex needs {' and '.join(missing)} (the Google Cloud project and the "
                          "Vertex AI region, e.g. --project my-project --region europe-west4)")
    assert project and region
    return VertexTarget(project, region, service_account, network, parse_labels(labels or []))


def parse_labels(items: list[str]) -> dict[str, str]:
    """``key=value`` items as Vertex AI labels; `VertexError` saying which item breaks which rule."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise VertexError(f"--label expects key=value, got {item!r}")
        if not _LABEL_KEY.match(key):
            raise VertexError(f"--label {item!r}: the key must start with a lower-case letter and hold only lower-case "
                              "letters, digits, '_' and '-', 1-63 characters")
        if not _LABEL_VALUE.match(value):
            raise VertexError(f"--label {item!r}: the value may hold only lower-case letters, digits, '_' and '-', "
                              "at most 63 characters")
        if key == RESERVED_LABEL:
            raise VertexError(f"--label {item!r}: {RESERVED_LABEL} is set by Vertex AI itself")
        if key in labels:
            raise VertexError(f"--label {key!r} is given twice")
        labels[key] = value
    if len(labels) > MAX_LABELS:
        raise VertexError(f"{len(labels)} labels: Vertex AI allows at most {MAX_LABELS}")
    return labels


def vertex_cron(cron: str) -> str:
    """Our 6-field, seconds-first UTC cron as Vertex AI's 5-field one, pinned to UTC: ``TZ=UTC m h dom mon dow``.

    Vertex fires at whole minutes only, so a seconds field other than ``0`` is refused rather than rounded.
    """
    schedule = parse_cron(cron)  # CronError for the wrong number of fields, or a bad value
    second, *rest = schedule.expression.split()
    if schedule.seconds != frozenset({0}):
        raise CronError(f"--cron {cron!r}: Vertex AI schedules fire on whole minutes; the seconds field must be 0, "
                        f"got {second!r} (e.g. '0 {' '.join(rest)}')")
    # '?' (robfig's "no specific day") is '*' to a classic cron; both day fields keep their either-matches meaning.
    return "TZ=UTC " + " ".join("*" if value == "?" else value for value in rest)


@contextmanager
def talking_to(target: VertexTarget) -> Iterator[None]:
    """Turn missing credentials or an API refusal into a `VertexError` that names the project and region."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import DefaultCredentialsError, RefreshError

    where = f"Vertex AI in project {target.project!r}, region {target.region!r}"
    try:
        yield
    except (DefaultCredentialsError, RefreshError) as error:
        raise VertexError(f"no usable Google Cloud credentials for {where} ({error}); run `gcloud auth "
                          "application-default login`, or run where a service account is attached") from None
    except GoogleAPIError as error:
        raise VertexError(f"{where} refused the request: {error}") from None


def check_vertex_config(config: PipelineConfig) -> None:
    """`VertexError` if `config` names Kubernetes objects: Vertex AI runs the tasks on Google's machines, where no
    Secret, ConfigMap or image pull Secret of a cluster of ours exists (the KFP YAML's Kubernetes part is dropped).
    MLflow settings reach a Vertex run through ``cluster.settings_secret`` (Secret Manager) instead."""
    cluster = config.cluster
    named = {"cluster.mlflow_secret": cluster.mlflow_secret, "cluster.settings_config_map": cluster.settings_config_map,
             "cluster.image_pull_secrets": cluster.image_pull_secrets}
    wrong = [name for name, value in named.items() if value]
    if wrong:
        raise VertexError(f"{', '.join(wrong)}: Kubernetes objects, which Vertex AI pipelines cannot read; unset "
                          f"them for --backend vertex (e.g. --set {wrong[0]}=null). For MLflow settings on Vertex "
                          "AI, put them (MLFLOW_TRACKING_URI, ...) as a JSON object in a Secret Manager secret and "
                          "name its version in cluster.settings_secret (projects/PROJECT/secrets/SECRET/versions/"
                          "latest); the run's --service-account needs roles/secretmanager.secretAccessor on it. "
                          "Images on Vertex AI come from a registry the service account can read (Artifact "
                          "Registry), without pull Secrets")


def vertex_template(package: Path, output: Path) -> Path:
    """The pipeline spec alone of a compiled KFP package, as Vertex AI reads it (one YAML document).

    A KFP package may carry a second document, the Kubernetes platform spec (Secrets, timeouts, pull secrets);
    Vertex AI has no such field and its SDK reads a single document. What a Vertex task still needs of it travels
    in the spec proper as environment variables (the settings secret's name, the step's timeout).
    """
    import yaml

    spec = next(iter(yaml.safe_load_all(package.read_text())))
    output.write_text(yaml.safe_dump(spec, sort_keys=False))
    return output


def pipeline_job(template: str | Path, config: PipelineConfig, target: VertexTarget, *, display_name: str,
                 enable_caching: bool | None = None, parameters: Mapping[str, Any] | None = None) -> Any:
    """The `aiplatform.PipelineJob` of the compiled `template` with `config`'s parameters and pipeline root.

    Building it reads the YAML and needs credentials, but sends nothing.
    """
    from google.cloud import aiplatform

    from pipelines.cluster import cluster_arguments

    if not config.cluster.pipeline_root:
        raise VertexError("cluster.pipeline_root is not set: Vertex AI needs a gs:// folder for the run's artifacts "
                          "(set it in the config, or --set cluster.pipeline_root=gs://BUCKET/matta)")
    with tempfile.TemporaryDirectory() as tmp, talking_to(target):
        # The job keeps the spec it read: the temporary single-document file need not outlive this call.
        spec = vertex_template(Path(template), Path(tmp) / "spec.yaml")
        return aiplatform.PipelineJob(
            display_name=display_name, template_path=str(spec), pipeline_root=config.cluster.pipeline_root,
            parameter_values={**cluster_arguments(config), **(parameters or {})},
            # Only "off" is passed on: Vertex turns every task on otherwise, the release included.
            enable_caching=False if enable_caching is False else None,
            labels=dict(target.labels) or None, project=target.project, location=target.region,
        )


@dataclass(frozen=True)
class VertexSubmission:
    """A pipeline run accepted by Vertex AI: its resource name and console link."""

    name: str
    url: str


def console_url(target: VertexTarget, job_id: str) -> str:
    return (f"https://console.cloud.google.com/vertex-ai/locations/{target.region}/pipelines/runs/{job_id}"
            f"?project={target.project}")


def submit_vertex(
    config: PipelineConfig, target: VertexTarget, *, run_name: str | None = None, experiment: str | None = None,
    enable_caching: bool | None = None, image: str | None = None,
) -> VertexSubmission:
    """Compile `config` for the cluster and create one Vertex AI pipeline run of it (without waiting for it).

    `experiment`: a Vertex AI experiment the run is listed under (created when missing).
    """
    check_vertex_config(config)
    display_name = run_name or f"{config.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"

    def submit(package: Path) -> VertexSubmission:
        job = pipeline_job(package, config, target, display_name=display_name, enable_caching=enable_caching)
        with talking_to(target):
            job.submit(service_account=target.service_account, network=target.network, experiment=experiment)
        return VertexSubmission(job.resource_name, console_url(target, job.job_id))

    return with_cluster_package(config, image, submit)


def schedule_vertex(
    target: VertexTarget, *, cron: str, name: str, config: PipelineConfig, package: Path | None = None,
    params: Mapping[str, Any] | None = None, image: str | None = None,
) -> str:
    """Create a Vertex AI pipeline schedule on `cron` (ours: 6 fields, UTC) with at most one run at a time;
    return its resource name. `package`: schedule that compiled YAML instead of compiling `config`."""
    vertex_cron_expression = vertex_cron(cron)  # before anything is compiled or contacted
    check_vertex_config(config)

    def create(path: Path) -> str:
        job = pipeline_job(path, config, target, display_name=name, parameters=params)
        with talking_to(target):
            schedule = job.create_schedule(
                cron=vertex_cron_expression, display_name=name, max_concurrent_run_count=1,
                service_account=target.service_account, network=target.network,
            )
        return str(schedule.resource_name)

    if package is not None:
        if not package.is_file():
            raise FileNotFoundError(f"pipeline package {package} does not exist; compile the pipeline first")
        return create(package)
    return with_cluster_package(config, image, create)
