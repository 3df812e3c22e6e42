"""Checks made before any pipeline step runs: a typo must cost seconds, not a Teacher pass and a training run.

The config itself (widths that do not fit the model, a negative budget, unknown fields) is validated when it is
loaded (`PipelineConfig.parse`). What a config cannot know on its own is checked here: that the user's data
files exist, that a registered data set's mirror is there, that a causal-LM Teacher's files are (a ``pkg:`` model
path names an installed package), and that the MLflow tracking store answers.
"""

from __future__ import annotations

from pathlib import Path

from matta_core import storage
from matta_core.config import PipelineConfig
from matta_core.data import DATASETS
from matta_core.families.registry import TASKS, family_for


class PreflightError(ValueError):
    """A run that cannot succeed; the message lists every problem found and what to do."""


def preflight(config: PipelineConfig, *, tracking_uri: str | None = None) -> None:
    """Raise `PreflightError` listing every problem; check the tracking store at `tracking_uri` (if given) last.

    The tracking check comes last because it creates the folder of a sqlite store: a run with bad data should
    leave nothing behind.
    """
    problems = _data_problems(config) + _teacher_problems(config)
    if problems:
        raise PreflightError("the run cannot start:\n" + "\n".join(f"  {p}" for p in problems))
    if tracking_uri is not None:
        from matta_core.tracking import TrackingError, check_tracking_uri

        try:
            check_tracking_uri(tracking_uri)
        except TrackingError as error:
            raise PreflightError(f"the run cannot start:\n  tracking_uri: {error}") from None


def _data_problems(config: PipelineConfig) -> list[str]:
    data = config.data
    problems = []
    if data.source in DATASETS:
        if data.mirror_dir is not None and storage.is_local(data.mirror_dir):
            folder = Path(storage.to_local_path(data.mirror_dir)) / data.source
            if not folder.is_dir():
                problems.append(f"data.mirror_dir: {folder} does not exist (the mirror holds <mirror>/{data.source}/)")
    else:
        problems += _file_problem("data.source", data.source, registered=True, task=config.task)
    if data.test_source is not None:
        problems += _file_problem("data.test_source", data.test_source, registered=False, task=config.task)
    return problems


def _teacher_problems(config: PipelineConfig) -> list[str]:
    """A causal-LM Teacher reads local files: say now if they are not there (the other kinds check when built)."""
    spec = config.teacher.spec
    if spec["kind"] != "causal_lm" or "model_path" not in spec:
        return []
    from matta_core.teachers.locate import ModelPathError, resolve_model_path

    try:
        folder = Path(resolve_model_path(str(spec["model_path"])))
    except ModelPathError as error:
        return [f"teacher.spec.model_path: {error}"]
    if not folder.is_dir():
        return [f"teacher.spec.model_path: {folder} is not a folder (a Hugging Face model folder, or one holding "
                "the gguf_file)"]
    gguf = spec.get("gguf_file")
    if gguf is not None and not (folder / str(gguf)).is_file():
        found = sorted(p.name for p in folder.glob("*.gguf"))
        return [f"teacher.spec.gguf_file: no {gguf} in {folder}; GGUF files there: {found or 'none'}"]
    return []


def _file_problem(field: str, uri: str, *, registered: bool, task: str = TASKS[0]) -> list[str]:
    kinds = family_for(task).source_formats
    also = f" or a registered data set ({', '.join(sorted(DATASETS))})" if registered else ""
    try:
        found = storage.exists(uri)
    except Exception as error:  # a malformed URI, or a gs:// bucket we may not read: say so now, not mid-run
        return [f"{field}: cannot check {uri!r}: {error}"]
    if not found:
        return [f"{field}: no file at {uri!r}; give a {kinds} file (path, file:// or gs:// URI){also}"]
    return []
