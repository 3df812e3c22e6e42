"""The train step's checkpoint key: the same inputs give the same key, any other training input another one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from matta_core.artifacts.checkpoint_key import (
    KEY_RECORD,
    checkpoint_key,
    checkpoint_key_inputs,
    checkpoint_root,
    run_checkpoint_dir,
)
from matta_core.config import DataSection, ModelSection, TrainSection
from matta_core.image_identity import IMAGE_INFO_ENV

MODEL = ModelSection(hidden_widths=[16], student_widths=[4], num_buckets=2**10, embed_dim=8)
TRAIN = TrainSection(steps=10, checkpoint_every=5, checkpoint_dir="gs://bucket/checkpoints")
DATA = DataSection(limit_train_rows=200)


def write_inputs(root: Path, content_hash: str = "c" * 64, fingerprint: str = "f" * 64,
                 cache_report: dict[str, Any] | None = None) -> tuple[str, str]:
    """A prepared folder's manifest.json and a Teacher folder's teacher.json: all the key reads of them."""
    prepared, teacher = root / "prepared", root / "teacher"
    prepared.mkdir(parents=True, exist_ok=True)
    teacher.mkdir(parents=True, exist_ok=True)
    (prepared / "manifest.json").write_text(json.dumps({"content_hash": content_hash, "created_at": "now"}))
    splits = {name: {"cache_key": f"{fingerprint[:8]}-{name}", "rows": 10, "cache": cache_report or {"hits": 0}}
              for name in ("train", "validation", "test")}
    (teacher / "teacher.json").write_text(json.dumps({"fingerprint": fingerprint, "splits": splits,
                                                      "cache_root": str(root / "cache")}))
    return str(prepared), str(teacher)


def key(prepared: str, teacher: str, **changes: Any) -> str:
    sections = {"model": MODEL, "train_section": TRAIN, "data": DATA, "code_version": "0.1.0+src.aaaa", **changes}
    return checkpoint_key(checkpoint_key_inputs(prepared, teacher, **sections))


def test_same_inputs_same_key(tmp_path: Path) -> None:
    prepared, teacher = write_inputs(tmp_path / "a")
    again = write_inputs(tmp_path / "b", cache_report={"hits": 30, "seconds": 0.1})  # copies, served from cache
    assert key(prepared, teacher) == key(*again)
    assert len(key(prepared, teacher)) == 64
    # Where the checkpoints live is no training input.
    assert key(prepared, teacher) == key(prepared, teacher,
                                         train_section=TRAIN.model_copy(update={"checkpoint_dir": "/elsewhere"}))


@pytest.mark.parametrize(
    "change",
    [
        {"code_version": "0.1.0+src.bbbb"},
        {"model": MODEL.model_copy(update={"embed_dim": 16})},
        {"train_section": TRAIN.model_copy(update={"lr": 0.02})},
        {"train_section": TRAIN.model_copy(update={"seed": 1})},
        {"data": DATA.model_copy(update={"limit_train_rows": 100})},
    ],
    ids=["code", "model", "lr", "seed", "data"],
)
def test_a_changed_config_or_code_changes_the_key(tmp_path: Path, change: dict[str, Any]) -> None:
    prepared, teacher = write_inputs(tmp_path)
    assert key(prepared, teacher, **change) != key(prepared, teacher)


def test_changed_data_or_teacher_outputs_change_the_key(tmp_path: Path) -> None:
    base = key(*write_inputs(tmp_path / "a"))
    assert key(*write_inputs(tmp_path / "b", content_hash="d" * 64)) != base
    assert key(*write_inputs(tmp_path / "c", fingerprint="e" * 64)) != base


def test_the_code_version_defaults_to_the_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prepared, teacher = write_inputs(tmp_path)
    monkeypatch.setenv(IMAGE_INFO_ENV, str(tmp_path / "no-image.json"))  # not in an image: no code version
    assert checkpoint_key_inputs(prepared, teacher, MODEL, TRAIN, DATA)["code_version"] is None
    record = tmp_path / "image.json"
    record.write_text(json.dumps({"code_version": "0.1.0+src.cccc"}))
    monkeypatch.setenv(IMAGE_INFO_ENV, str(record))
    assert checkpoint_key_inputs(prepared, teacher, MODEL, TRAIN, DATA)["code_version"] == "0.1.0+src.cccc"
    assert key(prepared, teacher, code_version=None) == key(prepared, teacher, code_version="0.1.0+src.cccc")


def test_checkpoint_root_is_under_the_key_and_records_its_inputs(tmp_path: Path) -> None:
    prepared, teacher = write_inputs(tmp_path)
    local = TRAIN.model_copy(update={"checkpoint_dir": str(tmp_path / "ckpt")})
    root = checkpoint_root(tmp_path / "out" / "checkpoints", prepared, teacher, MODEL, local, DATA, "v1")
    inputs = checkpoint_key_inputs(prepared, teacher, MODEL, local, DATA, "v1")
    assert root == str(tmp_path / "ckpt" / checkpoint_key(inputs))
    assert json.loads((Path(root) / KEY_RECORD).read_text()) == inputs
    assert run_checkpoint_dir(str(tmp_path / "ckpt"), inputs) == root  # a second attempt: same place, no error
    # Without train.checkpoint_dir, checkpoints stay inside the step's output, as before.
    unset = TRAIN.model_copy(update={"checkpoint_dir": None})
    assert checkpoint_root(tmp_path / "out" / "checkpoints", prepared, teacher, MODEL, unset, DATA) == str(
        tmp_path / "out" / "checkpoints")
