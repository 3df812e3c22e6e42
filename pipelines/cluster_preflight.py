"""Checks a config must pass before it goes to a cluster (KFP on GKE, Vertex AI Pipelines).

A config that runs on a laptop can still be useless on a cluster: its pods cannot see this machine's files, a
pod's disk is lost with the pod, and every pipeline parameter is readable by every user of the KFP UI. Such a
config is refused here, before anything is compiled or submitted, with one error listing every offending field and
what to use instead. `pipelines.cluster.compile_cluster_pipeline` runs `check_cluster_config` on the config as a
cluster run uses it (`pipelines.cluster.cluster_config`: ``train.checkpoint_dir`` defaulted from the pipeline root).
"""

from __future__ import annotations

import re

from matta_core import storage
from matta_core.cluster import STEPS
from matta_core.config import PipelineConfig
from matta_core.data import DATASETS
from matta_core.image import ImageTagError, check_cluster_image_ref
from matta_core.teachers.locate import PKG_PREFIX
from pipelines.preflight import PreflightError

# gs://<bucket>[/<path>]: a GCS bucket name is lower-case letters, digits, '-', '_' and '.', 3 to 222 characters.
_GCS_URI = re.compile(r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$")
_NOT_SEEN = "is a path on this machine; a cluster's pods cannot see it"
# Teacher spec fields that name files the teacher task reads (see `matta_core.teachers.factory.SPEC_FIELDS`).
_TEACHER_PATH_FIELDS = ("head_dir", "embedding_cache_root", "path", "model_path")


def cluster_problems(config: PipelineConfig) -> list[str]:
    """Every reason `config` cannot run on a cluster, one line each, starting with the dotted field name."""
    return [
        *_pipeline_root_problems(config),
        *_storage_problems(config),
        *_tracking_problems(config),
        *_accelerator_problems(config),
        *_image_problems(config),
    ]


def check_cluster_config(config: PipelineConfig) -> None:
    """Raise `PreflightError` listing every problem `cluster_problems` finds; return quietly if there is none."""
    problems = cluster_problems(config)
    if problems:
        raise PreflightError("the config cannot run on a cluster:\n" + "\n".join(f"  {p}" for p in problems))


def cluster_warnings(config: PipelineConfig) -> list[str]:
    """What a cluster run of `config` will do that its author may not expect, but that is allowed."""
    cluster = config.cluster
    tracked = cluster.mlflow_secret is not None or cluster.settings_secret is not None
    if config.release.enabled and not tracked:
        # An untracked cluster run is legitimate (a smoke test); a release that silently registers nothing is not.
        return ["cluster.mlflow_secret and cluster.settings_secret are not set: the run will be untracked and its "
                "release step will register nothing; to track it, set cluster.mlflow_secret to a Kubernetes Secret "
                "holding MLFLOW_TRACKING_URI (KFP), or cluster.settings_secret to a Secret Manager secret version "
                "holding it in a JSON object (KFP or Vertex AI)"]
    return []


def _pipeline_root_problems(config: PipelineConfig) -> list[str]:
    root = config.cluster.pipeline_root
    if root is None:
        return ["cluster.pipeline_root: required for a cluster run (where every task writes its artifacts): give "
                "a gs:// URI, gs://BUCKET/PATH (e.g. gs://BUCKET/matta/pipeline-root)"]
    if _GCS_URI.match(root):
        return []
    return [f"cluster.pipeline_root: {root!r} is not allowed: a cluster run needs a gs:// URI, gs://BUCKET/PATH "
            "(local paths, file:// and other schemes are not readable by every task's pod)"]


def _storage_problems(config: PipelineConfig) -> list[str]:
    data, spec = config.data, config.teacher.spec
    # A registered data set is downloaded and checksum-verified by the prepare task itself.
    fields: dict[str, tuple[object, str]] = {
        "data.source": (None if data.source in DATASETS else data.source, "gs://BUCKET/data/train.csv"),
        "data.test_source": (data.test_source, "gs://BUCKET/data/test.csv"),
        "data.mirror_dir": (data.mirror_dir, "gs://BUCKET/mirror, or leave it unset: the task downloads and "
                                              "checksum-verifies a registered data set itself"),
        "cache_dir": (config.cache_dir, "gs://BUCKET/matta/cache; a pod's disk is lost with the pod, so a local "
                                        "cache is gone when its task ends"),
    }
    for name in _TEACHER_PATH_FIELDS:
        value = spec.get(name)
        # A pkg: model path names a package installed in the image, which every pod has.
        if not (name == "model_path" and str(value).startswith(PKG_PREFIX)):
            fields[f"teacher.spec.{name}"] = (value, f"gs://BUCKET/teachers/{name}")
    problems = [problem for field, (value, example) in fields.items()
                if value is not None and (problem := _uri_problem(field, str(value), example))]
    return problems + _checkpoint_problems(config)


def _checkpoint_problems(config: PipelineConfig) -> list[str]:
    checkpoint_dir, root = config.train.checkpoint_dir, config.cluster.pipeline_root
    if checkpoint_dir is None:
        if root is not None:  # `cluster_config` defaults it to <pipeline_root>/checkpoints
            return []
        return ["train.checkpoint_dir: not set, and no cluster.pipeline_root to default it to "
                "(<pipeline_root>/checkpoints): a retried train task would start over; give a gs:// URI"]
    if root is not None and checkpoint_dir == root.rstrip("/") + "/checkpoints" and not _GCS_URI.match(root):
        return []  # the default derived from a bad pipeline root: fixing the root (reported already) fixes it
    problem = _uri_problem("train.checkpoint_dir", checkpoint_dir, "gs://BUCKET/matta/checkpoints")
    return [problem] if problem else []


def _uri_problem(field: str, value: str, example: str) -> str | None:
    """`field`'s problem if `value` is not a gs:// URI every pod can read; None if it is one."""
    try:
        local = storage.is_local(value)
    except storage.InvalidURIError as error:
        return f"{field}: {error}; a cluster needs a gs:// URI (e.g. {example})"
    if local:
        return f"{field}: {value!r} {_NOT_SEEN}: give a gs:// URI (e.g. {example})"
    if not _GCS_URI.match(value):
        return f"{field}: {value!r} names no valid bucket: give gs://BUCKET/PATH (e.g. {example})"
    return None


def _tracking_problems(config: PipelineConfig) -> list[str]:
    if config.tracking_uri is None:
        return []
    return ["tracking_uri: must not be set for a cluster run: it (and any credentials in it) would be a pipeline "
            "parameter every KFP UI user can read; put MLFLOW_TRACKING_URI (and MLFLOW_TRACKING_USERNAME/PASSWORD "
            "or MLFLOW_TRACKING_TOKEN) in a Kubernetes Secret and name it in cluster.mlflow_secret (e.g. kubectl "
            "create secret generic matta-mlflow --from-literal=MLFLOW_TRACKING_URI=https://mlflow.example.com), "
            "or, on Vertex AI, in a Secret Manager secret named in cluster.settings_secret"]


#: The steps that use an accelerator when given one (``train.device``); an accelerator on any other step is paid
#: for and idle.
GPU_STEPS = frozenset({"train"})


def _accelerator_problems(config: PipelineConfig) -> list[str]:
    problems = []
    if config.train.device == "cuda" and config.resources.train.accelerator_count == 0:
        problems.append("train.device is cuda but resources.train requests no accelerator: set "
                        "resources.train.accelerator_type (nvidia.com/gpu on KFP, e.g. NVIDIA_L4 on Vertex AI) "
                        "and accelerator_count")
    gpu_steps = [step for step in STEPS if config.resources.of(step).accelerator_count > 0]
    idle = [step for step in gpu_steps if step not in GPU_STEPS]
    if idle:
        problems.append(f"resources.{idle[0]}.accelerator_count: {', '.join(idle)} would hold an accelerator it never "
                        "uses: only the train step runs on a GPU in this version (the Teacher is encoded on the "
                        "CPU, evaluation measures CPU serving); set their accelerator_count to 0")
    if gpu_steps and config.cluster.gpu_image is None:
        problems.append(f"cluster.gpu_image: not set, but {', '.join(gpu_steps)} request accelerators: GPU tasks "
                        "need the CUDA image built from docker/Dockerfile.gpu (the CPU image has CPU-only torch)")
    return problems


def _image_problems(config: PipelineConfig) -> list[str]:
    problems = []
    for field in ("image", "gpu_image"):
        ref = getattr(config.cluster, field)
        if ref is None:
            continue
        try:
            check_cluster_image_ref(ref)
        except ImageTagError as error:
            problems.append(f"cluster.{field}: {error}")
    return problems
