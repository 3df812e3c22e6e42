"""``matta submit`` and ``matta schedule`` on a Kubeflow Pipelines cluster: compile for the cluster, then one run
or one recurring run of it.

Everything that can be checked here is checked before the cluster is contacted: the config
(`compile_cluster_pipeline` raises `PreflightError` for local paths, a missing ``gs://`` pipeline root, an image
the nodes cannot pull). Nothing touches MLflow here: the pipeline's first task opens the MLflow parent run itself,
from the cluster's Secret, keyed on the KFP run id.

Reaching the API: ``--host`` (a port-forward, an ingress) with ``--token`` for a gateway that wants a bearer token;
or no host, and kfp reaches the ``ml-pipeline`` service through the Kubernetes API of the kube config's context.
On a multi-user Kubeflow, ``--namespace`` is the user's profile namespace, where experiments and runs live.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from matta_core.config import PipelineConfig
from pipelines.preflight import PreflightError

T = TypeVar("T")


@dataclass(frozen=True)
class KfpTarget:
    """Where and as whom to reach the KFP API (see the module docstring)."""

    host: str | None = None
    namespace: str | None = None
    token: str | None = None
    kube_context: str | None = None

    def describe(self) -> str:
        if self.host:
            return f"the KFP API at {self.host}"
        return f"the KFP API behind kube context {self.kube_context or '(current)'}"

    def run_url(self, run_id: str) -> str:
        """The run's page in the KFP UI ("" without a host: the UI's address is not known then)."""
        return f"{self.host.rstrip('/')}/#/runs/details/{run_id}" if self.host else ""


@dataclass(frozen=True)
class Submission:
    """A pipeline run accepted by a KFP cluster."""

    kfp_run_id: str
    kfp_run_url: str


@contextmanager
def talking_to(target: KfpTarget) -> Iterator[None]:
    """Turn a failure to reach or be served by the KFP API into a `PreflightError` that names it."""
    try:
        yield
    except ValueError:  # ours (PreflightError, a bad package name) and kfp's: already say what is wrong
        raise
    except Exception as error:  # urllib3's MaxRetryError, kfp_server_api's ApiException, ...
        status = getattr(error, "status", None)
        reason = str(getattr(error, "reason", "") or error).strip()[:300]
        hint = ("check --token and --namespace (your profile namespace on a multi-user Kubeflow)"
                if status in (401, 403) else
                "check --host (the KFP UI/API URL, e.g. http://localhost:8080 after `kubectl port-forward -n kubeflow "
                "svc/ml-pipeline-ui 8080:80`) or --kube-context")
        answered = f"answered {status}: " if status else "is not reachable: "
        raise PreflightError(f"{target.describe()} {answered}{reason}; {hint}") from None


def connect(target: KfpTarget) -> Any:
    """A `kfp.Client` for `target`; `PreflightError` naming the host if the API does not answer."""
    import kfp

    # namespace stays kfp's default ('kubeflow', where KFP itself is installed): with no host, kfp proxies through
    # that namespace's ml-pipeline service. The profile namespace is given per call instead.
    with talking_to(target):
        return kfp.Client(host=target.host, existing_token=target.token, kube_context=target.kube_context)


def default_run_name(config: PipelineConfig) -> str:
    return f"{config.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def with_cluster_package(config: PipelineConfig, image: str | None, use: Callable[[Path], T]) -> T:
    """Compile `config` for the cluster into a temporary YAML, call `use(path)` while it exists."""
    from pipelines.cluster import compile_cluster_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        compiled = compile_cluster_pipeline(config, Path(tmp) / "pipeline.yaml", image=image)
        return use(compiled.path)


def set_caching(package: Path, enabled: bool) -> None:
    """Turn caching on or off for every task of a compiled package, nested DAGs included: kfp's client overrides
    only the root DAG's tasks, and the per-width tasks run inside the loops' DAGs."""
    import yaml

    docs = list(yaml.safe_load_all(package.read_text()))
    spec = docs[0]
    for component in [spec["root"], *spec.get("components", {}).values()]:
        for task in component.get("dag", {}).get("tasks", {}).values():
            task.setdefault("cachingOptions", {})["enableCache"] = enabled
    package.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def submit_pipeline(
    config: PipelineConfig, target: KfpTarget, *, experiment: str | None = None, run_name: str | None = None,
    enable_caching: bool | None = None, image: str | None = None,
) -> Submission:
    """Compile `config` for the cluster, then create one run of it with the config's values as parameters.

    `image` overrides ``cluster.image`` (else ``$MATTA_IMAGE``). Raises `PreflightError` / `ConfigError` /
    `ImageTagError` before anything is contacted, and `PreflightError` naming the host if the API fails.
    """
    from pipelines.cluster import cluster_arguments

    arguments = cluster_arguments(config)

    # Only "off" is passed on: "on" would also cache the tasks compiled never to be cached (the release, the first
    # and last tasks; kfp's client and Vertex turn every task on), and the compiled flags already cache the rest.
    caching = False if enable_caching is False else None

    def create(package: Path) -> Submission:
        if caching is not None:
            set_caching(package, caching)
        client = connect(target)
        with talking_to(target):
            result = client.create_run_from_pipeline_package(
                str(package), arguments=arguments, run_name=run_name or default_run_name(config),
                experiment_name=experiment or config.name, namespace=target.namespace,
                pipeline_root=config.cluster.pipeline_root, enable_caching=caching,
            )
        return Submission(result.run_id, target.run_url(result.run_id))

    return with_cluster_package(config, image, create)


def schedule_pipeline(
    target: KfpTarget, *, cron: str, name: str, experiment: str, experiment_id: str | None = None,
    config: PipelineConfig | None = None, package: Path | None = None, params: Mapping[str, Any] | None = None,
    image: str | None = None,
) -> str:
    """Create a KFP recurring run on `cron` (6 fields, UTC; one run at a time, no catch-up); return its id.

    With `package`, that compiled YAML is scheduled as it is; otherwise `config` is compiled for the cluster.
    Parameters: the config's (`cluster_arguments`, when a config is given), then `params` over them; the
    pipeline root is the config's ``cluster.pipeline_root``.
    """
    from matta_core.release.cron import parse_cron
    from matta_core.release.schedule import create_schedule, recurring_run_request, resolve_experiment_id
    from pipelines.cluster import cluster_arguments

    parse_cron(cron)  # a bad cron fails before anything is compiled or contacted
    if package is None and config is None:
        raise ValueError("a KFP schedule needs --config (compiled here for the cluster) or --package")
    arguments = {**(cluster_arguments(config) if config is not None else {}), **(params or {})}
    root = config.cluster.pipeline_root if config is not None else None

    def create(path: Path) -> str:
        client = connect(target)
        with talking_to(target):
            exp_id = experiment_id or resolve_experiment_id(client, experiment, namespace=target.namespace)
            request = recurring_run_request(package_path=path, experiment_id=exp_id, job_name=name, cron=cron,
                                            params=arguments, pipeline_root=root)
            return create_schedule(client, request)

    if package is not None:
        if not package.is_file():
            raise FileNotFoundError(f"pipeline package {package} does not exist; compile the pipeline first")
        return create(package)
    assert config is not None
    return with_cluster_package(config, image, create)
