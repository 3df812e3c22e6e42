"""A task refuses to run in an image built from other code than the pipeline's (``matta_core.image_identity``)."""

# No `from __future__ import annotations`: kfp.local reads annotation objects of the components it runs.
import ast
import inspect
import json
import textwrap
from pathlib import Path

import pytest
from kfp import local

from components import PIPELINE_COMPONENTS, prepare_data
from matta_core.config import DataSection
from matta_core.image_identity import IMAGE_INFO_ENV
from tests.mirror import MIRROR_DIR

PIPELINE_VERSION = "0.1.0+src.aaaaaaaaaaaaaaaa"
IMAGE_VERSION = "0.1.0+src.bbbbbbbbbbbbbbbb"


@pytest.mark.parametrize("name", sorted(PIPELINE_COMPONENTS))
def test_every_component_checks_its_image_before_any_work(name: str) -> None:
    """The body KFP ships to the step's process starts with `tracked.start_task(...)`, right after its imports."""
    source = textwrap.dedent(inspect.getsource(PIPELINE_COMPONENTS[name].python_func))
    [function] = ast.parse(source).body
    assert isinstance(function, ast.FunctionDef)
    body = [s for s in function.body if not isinstance(s, ast.Import | ast.ImportFrom)]
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    first = body[0]
    assert isinstance(first, ast.Assign | ast.Expr) and isinstance(first.value, ast.Call), ast.unparse(first)
    called = ast.unparse(first.value.func)
    if name in ("start_run", "end_run"):  # light tasks (no torch): the same checks, without torch's threads
        assert called == "prepare_task_process", ast.unparse(first)
        assert [ast.unparse(a) for a in first.value.args] == ["code_version"], ast.unparse(first)
        return
    assert called == "tracked.start_task", ast.unparse(first)
    args = [ast.unparse(a) for a in first.value.args]
    assert args == ["tracking_uri", "parent_run_id", "code_version"], ast.unparse(first)


def test_start_task_prepares_the_process_first() -> None:
    """`start_task` runs `prepare_task_process` (the image check among it) before anything else it does."""
    from matta_core.steps import tracked

    [function] = ast.parse(textwrap.dedent(inspect.getsource(tracked.start_task))).body
    assert isinstance(function, ast.FunctionDef)
    calls = [ast.unparse(s.value.func) for s in function.body if isinstance(s, ast.Expr)
             and isinstance(s.value, ast.Call)]
    assert calls[0] == "prepare_task_process", calls
    from matta_core.task_process import prepare_task_process

    [check] = ast.parse(textwrap.dedent(inspect.getsource(prepare_task_process))).body
    assert isinstance(check, ast.FunctionDef)
    calls = [ast.unparse(s.value.func) for s in check.body if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)]
    # Only the excepthook comes first (it does nothing until an error, and makes a full disk readable).
    assert calls[:2] == ["install_task_excepthook", "check_task_code_version"], calls


def _run_prepare(tmp_path: Path, code_version: str) -> Path:
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    data_json = DataSection(mirror_dir=str(MIRROR_DIR), limit_train_rows=200, limit_test_rows=100).model_dump_json()
    task = prepare_data(task="classification", data_json=data_json, data_version="v", code_version=code_version,
                        tracking_uri="", parent_run_id="", experiment="")
    return Path(task.outputs["prepared"].path)


def test_a_task_in_a_stale_image_fails_naming_both_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "image.json"
    record.write_text(json.dumps({"code_version": IMAGE_VERSION, "version": "0.1.0", "revision": "3f2a9c0",
                                  "created": "2026-12-05T20:00:00Z"}))
    monkeypatch.setenv(IMAGE_INFO_ENV, str(record))  # the caller's environment reaches the step's process
    with pytest.raises(RuntimeError, match="FAILURE"):
        _run_prepare(tmp_path, PIPELINE_VERSION)
    log = capfd.readouterr().out
    assert "ImageIdentityError: stale image" in log
    assert f"built from code version {IMAGE_VERSION} (revision 3f2a9c0" in log
    assert f"the pipeline was compiled from code version {PIPELINE_VERSION}" in log
    assert "Rebuild the image with `matta image build`" in log
    # Refused before any work: the step wrote no output.
    assert not list((tmp_path / "root").rglob("manifest.json"))


def test_a_task_in_a_matching_image_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "image.json"
    record.write_text(json.dumps({"code_version": PIPELINE_VERSION}))
    monkeypatch.setenv(IMAGE_INFO_ENV, str(record))
    assert (_run_prepare(tmp_path, PIPELINE_VERSION) / "manifest.json").is_file()
