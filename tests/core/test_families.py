"""The model families: one protocol, one registry, one shape on disk, and steps that never ask which family runs."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

import matta_core.families as families_package
from matta_core.config_base import ConfigError, Section
from matta_core.families.base import ModelFamily
from matta_core.families.registry import FAMILIES, TASKS, family_for
from matta_core.steps import tracked
from matta_core.tracking.step_records import Tracking

FAMILIES_DIR = Path(families_package.__file__).parent
#: The jobs every family has a file for (a family may have more files of its own).
SHARED_FILE_NAMES = {
    "__init__.py", "section.py", "family.py", "config.py", "model.py", "model_io.py", "standalone.py", "loss.py",
    "data.py", "trainer.py", "extract.py", "evaluate.py", "inputs.py", "prepare_step.py", "teacher_step.py",
    "train_step.py", "extract_step.py", "evaluate_step.py", "report_step.py",
}


def _protocol_members() -> dict[str, Any]:
    return {name: value for name, value in vars(ModelFamily).items() if not name.startswith("_")} | {
        name: None for name in ModelFamily.__annotations__
    }


@pytest.mark.parametrize("task", TASKS)
def test_every_family_implements_the_protocol(task: str) -> None:
    family = family_for(task)
    assert family.task == task
    assert issubclass(family.section, Section)
    for name, member in _protocol_members().items():
        assert hasattr(family, name), f"{type(family).__name__} lacks {name}"
        if inspect.isfunction(member):
            wanted = list(inspect.signature(member).parameters)[1:]  # without self
            got = list(inspect.signature(getattr(family, name)).parameters)
            assert got == wanted, f"{type(family).__name__}.{name}{got} differs from the protocol's {wanted}"


FAMILY_DIRS = sorted(p.name for p in FAMILIES_DIR.iterdir() if p.is_dir() and p.name != "__pycache__")


@pytest.mark.parametrize("family_dir", FAMILY_DIRS)
def test_every_family_folder_has_the_same_file_names(family_dir: str) -> None:
    assert len(FAMILY_DIRS) == len(FAMILIES), f"one folder per registered family: {FAMILY_DIRS}"
    present = {p.name for p in (FAMILIES_DIR / family_dir).glob("*.py")}
    assert present >= SHARED_FILE_NAMES, f"families/{family_dir} lacks {sorted(SHARED_FILE_NAMES - present)}"


def test_an_unknown_task_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"task 'tabular' is unknown; allowed: \['classification', 'causal_lm'\]"):
        family_for("tabular")
    with pytest.raises(ConfigError, match="tabular"):
        tracked.prepare(None, "out", Tracking(), task="tabular")  # type: ignore[arg-type]


class _TabularSection(Section):
    depth: int = 2


class _RecordingFamily:
    """A third family that only records how the steps called it."""

    task = "tabular"
    section = _TabularSection

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args))
            return ({"ok": 1.0}, ["baselines/kd"]) if name == "train" else {"ok": 1.0}

        return record


def test_the_steps_hand_every_call_to_the_family_of_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    # Registering a family is all a new task needs: the step functions know no family by name.
    family = _RecordingFamily()
    monkeypatch.setitem(FAMILIES, "tabular", family)
    off = Tracking()
    assert tracked.prepare("data", "prepared", off, task="tabular") == {"ok": 1.0}  # type: ignore[arg-type]
    tracked.teacher("prepared", "teacher", "spec", "data", "cache", off, task="tabular")  # type: ignore[arg-type]
    assert tracked.train("prepared", "teacher", "trained", _TabularSection(), "train", "data", off,  # type: ignore[arg-type]
                         task="tabular") == ({"ok": 1.0}, ["baselines/kd"])
    tracked.extract("trained", [4], "model", "prepared", "data", off, task="tabular")  # type: ignore[arg-type]
    tracked.evaluate("model", "prepared", "eval", "data", False, off, task="tabular",  # type: ignore[arg-type]
                     teacher_dir="teacher")
    assert tracked.report_metrics({"task": "tabular", "models": []}) == {"ok": 1.0}
    assert [name for name, _ in family.calls] == ["prepare", "teacher", "train", "extract", "evaluate",
                                                  "report_metrics"]
    assert family.calls[4][1] == ("model", "prepared", "teacher", "eval", "data", False, off)


def test_a_model_section_of_another_family_is_refused() -> None:
    with pytest.raises(ConfigError, match="task 'causal_lm' takes a DecoderSection model section, got ModelSection"):
        tracked.train("p", "t", "o", family_for("classification").section(), None, None, Tracking(),  # type: ignore[arg-type]
                      task="causal_lm")
