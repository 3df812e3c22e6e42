"""The pipeline as a cluster receives it: compiled with the config's compute settings, checked for laptop paths.

`compile_cluster_pipeline` is what ``matta compile --config``, ``matta submit`` and ``matta schedule`` (both
backends, KFP and Vertex AI) call: it refuses a config a cluster cannot run (`check_cluster_config`: local paths,
no ``gs://`` pipeline root, an image the nodes cannot pull), then compiles the pipeline with every task's
resources, retries, timeout, caching, image and Secret / ConfigMap references, and validates the YAML strictly.
`cluster_arguments` gives the run's parameters: the config's sections, and no tracking URI or parent run (the
pipeline's tracking task reads the MLflow Secret and opens the parent run itself, keyed on the KFP run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp.pipeline_spec import pipeline_spec_pb2

from matta_core.config import PipelineConfig


@dataclass(frozen=True)
class CompiledCluster:
    """A compiled, validated cluster pipeline: the YAML's path, its parsed spec, and the images its tasks use."""

    path: Path
    spec: pipeline_spec_pb2.PipelineSpec
    image: str
    gpu_image: str | None


def cluster_config(config: PipelineConfig) -> PipelineConfig:
    """`config` as a cluster run uses it: training checkpoints every ``cluster.checkpoint_every`` steps (unless
    the config sets its own) into ``train.checkpoint_dir``, default ``<pipeline_root>/checkpoints``."""
    train = config.train
    updates: dict[str, Any] = {}
    if train.checkpoint_every == 0:
        updates["checkpoint_every"] = config.cluster.checkpoint_every
    if train.checkpoint_dir is None and config.cluster.pipeline_root:
        updates["checkpoint_dir"] = config.cluster.pipeline_root.rstrip("/") + "/checkpoints"
    if not updates:
        return config
    return config.model_copy(update={"train": train.model_copy(update=updates)})


def compile_cluster_pipeline(
    config: PipelineConfig, output: str | Path, *, image: str | None = None, gpu_image: str | None = None
) -> CompiledCluster:
    """Check `config` for a cluster (`check_cluster_config`, raising `PreflightError` listing every problem),
    compile the pipeline with its settings to `output`, validate it, and return what was compiled.

    `image` / `gpu_image` override ``cluster.image`` / ``cluster.gpu_image`` (``--image``); the CPU image falls
    back to ``$MATTA_IMAGE``. Both must be registry names a cluster can pull (`pipelines.compile.cluster_image`).
    """
    from matta_core.image import ImageTagError, check_cluster_image_ref
    from pipelines.cluster_preflight import check_cluster_config
    from pipelines.code_version import code_version
    from pipelines.compile import cluster_image, compile_pipeline
    from pipelines.matta_pipeline import build_pipeline
    from pipelines.task_settings import PipelineSettings

    # Given on the command line: refused under their own names, before the config's other checks.
    if image is not None:
        image = cluster_image(image)
    if gpu_image is not None:
        try:
            gpu_image = check_cluster_image_ref(gpu_image)
        except ImageTagError as error:
            raise ImageTagError(f"--gpu-image: {error}") from None
    overrides = {key: value for key, value in (("image", image), ("gpu_image", gpu_image)) if value is not None}
    if overrides:  # before the check, which asks for a GPU image where a task requests an accelerator
        config = config.model_copy(update={"cluster": config.cluster.model_copy(update=overrides)})
    config = cluster_config(config)
    check_cluster_config(config)
    chosen = cluster_image(config.cluster.image)
    chosen_gpu = config.cluster.gpu_image
    if chosen_gpu is not None:
        chosen_gpu = cluster_image(chosen_gpu)
    settings = PipelineSettings.for_cluster(config, image=chosen, gpu_image=chosen_gpu)
    spec = compile_pipeline(output, build_pipeline(code_version(), settings, defaults=config), image=None)
    return CompiledCluster(Path(output), spec, chosen, chosen_gpu)


def cluster_arguments(config: PipelineConfig) -> dict[str, Any]:
    """The pipeline parameters of a cluster run of `config` (no tracking URI, no parent run: see the module)."""
    from pipelines.matta_pipeline import pipeline_arguments

    return pipeline_arguments(cluster_config(config))
