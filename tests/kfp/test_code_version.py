"""The code version is in every task's cache key, and changes when any source file changes."""

# No `from __future__ import annotations`: KFP reads the probe pipeline's annotation objects.
import shutil
from pathlib import Path

import yaml
from kfp import dsl, local

from components import prepare_data
from matta_core.config import DataSection
from pipelines.code_version import code_version, source_roots
from pipelines.compile import compile_pipeline
from pipelines.matta_pipeline import build_pipeline
from tests.mirror import MIRROR_DIR


def _copy_sources(tmp_path: Path) -> list[Path]:
    roots = []
    for root in source_roots():
        target = tmp_path / "src" / root.name
        shutil.copytree(root, target, ignore=shutil.ignore_patterns("__pycache__"))
        roots.append(target)
    return roots


def test_code_version_changes_when_a_source_file_changes(tmp_path: Path) -> None:
    roots = _copy_sources(tmp_path)
    before = code_version(roots)
    assert before == code_version(roots)  # deterministic
    assert before.split("+")[1] == code_version().split("+")[1]  # the copy hashes like the tree it came from
    for root, relative in [(0, "families/classifier/evaluate_step.py"), (1, "train.py"), (2, "matta_pipeline.py")]:
        path = roots[root] / relative
        original = path.read_text()
        path.write_text(original + "\n# a comment is a change too\n")
        assert code_version(roots) != before, f"editing {path} left the code version unchanged"
        path.write_text(original)
    assert code_version(roots) == before
    (roots[0] / "__pycache__").mkdir(exist_ok=True)
    (roots[0] / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert code_version(roots) == before  # byte caches are not source


def test_every_task_gets_the_code_version_as_a_constant_input(tmp_path: Path) -> None:
    for version in ("0.1.0+src.aaaa", "0.1.0+src.bbbb"):
        path = tmp_path / f"{version}.yaml"
        compile_pipeline(path, build_pipeline(version))
        spec = yaml.safe_load(path.read_text())
        tasks = dict(spec["root"]["dag"]["tasks"])
        for component in spec["components"].values():
            tasks.update(component.get("dag", {}).get("tasks", {}))
        executor_tasks = {name: t for name, t in tasks.items() if not name.startswith("exit-handler")}
        # start, prepare, teacher, train, extract+evaluate, report, release, end
        assert len(executor_tasks) == 8
        for name, task in executor_tasks.items():
            value = task["inputs"]["parameters"]["code_version"]["runtimeValue"]["constant"]
            assert value == version, name


def test_local_cache_hits_only_for_the_same_code_version(tmp_path: Path) -> None:
    """A real kfp.local run with caching: same code version -> served from cache; new version -> runs again."""
    data_json = DataSection(mirror_dir=str(MIRROR_DIR), limit_train_rows=200, limit_test_rows=100).model_dump_json()

    def pipeline_for(version: str) -> dsl.graph_component.GraphComponent:
        @dsl.pipeline(name="cache-probe")
        def probe() -> dsl.Dataset:
            task = prepare_data(task="classification", data_json=data_json, data_version="v", code_version=version,
                                tracking_uri="", parent_run_id="", experiment="")
            return task.outputs["prepared"]

        return probe

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               enable_caching=True)
    first = pipeline_for("v1")().output.uri
    again = pipeline_for("v1")().output.uri
    changed = pipeline_for("v2")().output.uri
    assert again == first  # cache hit: the first run's artifact is reused
    assert changed != first  # the code changed: the step ran again
    assert (Path(changed) / "manifest.json").is_file()
