"""Containers, measured: the image's size and build times, and the pipeline in containers vs as host processes.

1. ``build_seconds_cold``: `matta image build` with no layer cache (the Debian base image, when one is needed, is
   built first if missing and timed separately as ``base_build_seconds``);
2. ``build_seconds_code_change``: the rebuild after one source file changed (a copy of the checkout with one line
   added to a module of matta_core), with the layer cache of step 1;
3. the same small config (Banking77 subset, MiniLM Teacher, a 256-wide TA, 4 widths, 2 baselines, no tracking, no
   release) run by kfp.local's SubprocessRunner and by its DockerRunner in the image, rounds in alternating order
   after one untimed warm-up run of each that fills the Teacher cache: the difference is the containers, not the
   Teacher. ``docker_over_subprocess_ratio`` = median(docker) / median(subprocess).

    .venv/bin/python benchmarks/container_run.py [--rounds 2] [--skip-cold] [--mirror-dir DIR] [--out DIR]

Writes ``container_run.json`` into ``--out`` (default benchmarks/results) and prints each figure against its goal.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # `pipelines` and `components` live in the checkout

DEFAULT_OUT = REPO_ROOT / "benchmarks" / "results"
DEFAULT_MIRROR = Path(os.environ.get("MATTA_DATA_MIRROR") or REPO_ROOT.parent / "shared" / "data")
IMAGE = "matta-bench:0.1.0"
GOALS = {"image_bytes": 1.5e9, "build_seconds_code_change": 60.0, "docker_over_subprocess_ratio": 1.3}


def small_config(work: Path, mirror: Path, run: str) -> Any:
    from matta_core.config import PipelineConfig

    return PipelineConfig.parse({
        "name": "matta-container-bench",
        "data": {"mirror_dir": str(mirror), "limit_train_rows": 1200, "limit_test_rows": 400},
        "model": {"hidden_widths": [256], "student_widths": [32], "num_buckets": 2**16, "embed_dim": 64},
        "train": {"epochs": 4, "num_threads": 1, "lr": 1e-2, "baselines": ["kd", "ce_only"]},
        "widths": [[256], [96], [32], [12]],
        "output_dir": str(work / run),
        "cache_dir": str(work / "teacher-cache"),
        "measure_speed": False,
        "release": {"enabled": False},
    })


def build(engine: Any, context: Path, *, no_cache: bool) -> Any:
    from matta_core.imagebuild.build import build as build_image
    from pipelines.code_version import SOURCE_PACKAGES, code_version

    version = code_version([context / p for p in SOURCE_PACKAGES])
    return build_image(IMAGE, code_version=version, context=context, engine=engine, quiet=True, no_cache=no_cache)


def changed_checkout(work: Path) -> Path:
    """A copy of what the build reads, with one line added to one source file."""
    copy = work / "checkout"
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        copy.mkdir(exist_ok=True)
        shutil.copy(REPO_ROOT / name, copy / name)
    for folder in ("matta_core", "components", "pipelines", "docker"):
        shutil.copytree(REPO_ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "matta_core" / "storage" / "uri.py"
    target.write_text(target.read_text() + f"\n# benchmark edit {time.time()}\n")
    return copy


def timed_run(config: Any, runner: str, image: str | None) -> float:
    from pipelines.local_runner import run_pipeline

    started = time.perf_counter()
    run_pipeline(config, track=False, runner=runner, image=image)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-cold", action="store_true", help="Do not rebuild every layer (no cold figure).")
    parser.add_argument("--mirror-dir", type=Path, default=DEFAULT_MIRROR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["MATTA_DATA_MIRROR"] = str(args.mirror_dir.absolute())

    from matta_core.imagebuild.base import LOCAL_BASE, ensure_local_base, registry_reachable
    from matta_core.imagebuild.build import DEFAULT_PYTHON_IMAGE
    from matta_core.imagebuild.engine import find_engine

    engine = find_engine()
    result: dict[str, Any] = {"engine": engine.kind, "machine": {"cpus": os.cpu_count(),
                                                                "python": platform.python_version()},
                              "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    if not registry_reachable(DEFAULT_PYTHON_IMAGE):
        had_base = engine.run("image", "inspect", LOCAL_BASE, check=False).returncode == 0
        started = time.monotonic()
        ensure_local_base(engine)
        result["base_image"] = LOCAL_BASE
        result["base_build_seconds"] = None if had_base else round(time.monotonic() - started, 1)
    if not args.skip_cold:
        cold = build(engine, REPO_ROOT, no_cache=True)
        result["build_seconds_cold"] = round(cold.seconds, 1)
    with tempfile.TemporaryDirectory(prefix="matta-container-bench-") as tmp:
        work = Path(tmp)
        build(engine, REPO_ROOT, no_cache=False)  # the cache of this tree (a no-op after the cold build)
        changed = build(engine, changed_checkout(work), no_cache=False)
        result["build_seconds_code_change"] = round(changed.seconds, 1)
        built = build(engine, REPO_ROOT, no_cache=False)  # back to this tree's code, for the runs
        result["image"] = built.name
        result["image_bytes"] = built.size_bytes

        times: dict[str, list[float]] = {"subprocess": [], "docker": []}
        for runner in times:  # warm-up: fills the Teacher cache, loads the image into the page cache
            timed_run(small_config(work, args.mirror_dir, f"warm-{runner}"), runner, built.name if runner == "docker"
                      else None)
        for round_ in range(args.rounds):
            order = ["subprocess", "docker"] if round_ % 2 == 0 else ["docker", "subprocess"]
            for runner in order:
                seconds = timed_run(small_config(work, args.mirror_dir, f"{runner}-{round_}"), runner,
                                    built.name if runner == "docker" else None)
                times[runner].append(round(seconds, 2))
                print(f"round {round_}: {runner} {seconds:.1f} s", flush=True)
    result["subprocess_runner_seconds"] = statistics.median(times["subprocess"])
    result["docker_runner_seconds"] = statistics.median(times["docker"])
    result["runs"] = times
    result["docker_over_subprocess_ratio"] = round(result["docker_runner_seconds"]
                                                   / result["subprocess_runner_seconds"], 3)
    result["goals"] = {k: {"goal": v, "met": result.get(k) is not None and result[k] <= v} for k, v in GOALS.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "container_run.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, goal in GOALS.items():
        value = result.get(key)
        print(f"{key}: {value} (goal <= {goal:g}: {'met' if result['goals'][key]['met'] else 'NOT met'})")
    print(f"build_seconds_cold: {result.get('build_seconds_cold')}  -> {args.out / 'container_run.json'}")


if __name__ == "__main__":
    main()
