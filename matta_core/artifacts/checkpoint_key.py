"""Where the train step keeps its checkpoints when `train.checkpoint_dir` is set: `<checkpoint_dir>/<key>/<arm>/`.

A KFP task uploads its output artifact only after it succeeds, so checkpoints kept inside it die with a preempted
pod. With `train.checkpoint_dir` (a path or ``gs://`` URI) they outlive the task, and `<key>` decides who may
resume them: a sha256 over everything that determines the trained weights, i.e.

- the code version (the task's `code_version` input, or the image's record of the code it holds), when known;
- the model, train and data config sections (train without `checkpoint_dir` itself: where checkpoints live does
  not change what is trained);
- the prepared data's identity (`content_hash` from its manifest.json);
- the Teacher outputs' identity (the Teacher fingerprint and each split's cache key from teacher.json).

A retry of the same task (same inputs) gets the same key and resumes from the newest checkpoint; a run with any
other input gets another key and starts afresh, never continuing someone else's training. The trainer still
refuses a checkpoint whose model or train config differs (a second guard, e.g. against a key collision by hand).
What the key was computed from is written beside the arms as `key.json`, to explain a key when debugging.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from matta_core import storage
from matta_core.artifacts.layout import TEACHER_INFO
from matta_core.data import MANIFEST_FILE
from matta_core.data.section import DataSection
from matta_core.image_identity import read_image_info
from matta_core.sections import TrainSection
from matta_core.teachers.fingerprint import sha256_json

KEY_FORMAT = "matta.train_checkpoint_key/v1"
KEY_RECORD = "key.json"


def checkpoint_root(
    default: str | Path,
    prepared_dir: str,
    teacher_dir: str | None,
    model: BaseModel,
    train_section: TrainSection,
    data: DataSection,
    code_version: str | None = None,
) -> str:
    """`<train.checkpoint_dir>/<key>` when `train.checkpoint_dir` is set, else `default` (inside the step's output).

    The arms' checkpoints go to `<root>/<arm>`. Says on stdout (the task's log) where they are.
    """
    if train_section.checkpoint_dir is None:
        return str(default)
    inputs = checkpoint_key_inputs(prepared_dir, teacher_dir, model, train_section, data, code_version)
    root = run_checkpoint_dir(train_section.checkpoint_dir, inputs)
    print(f"checkpoints: {root}/<arm> (key of the training inputs: {checkpoint_key(inputs)[:12]}...)", flush=True)
    return root


def checkpoint_key_inputs(
    prepared_dir: str,
    teacher_dir: str | None,
    model: BaseModel,
    train_section: TrainSection,
    data: DataSection,
    code_version: str | None = None,
) -> dict[str, Any]:
    """The JSON document the key hashes (see the module docstring); `code_version` defaults to the image's."""
    return {
        "format": KEY_FORMAT,
        "code_version": code_version or _image_code_version(),
        # The class name too: a classifier and a decoder section could otherwise serialise alike.
        "model": {"kind": type(model).__name__, **model.model_dump(mode="json")},
        "train": train_section.model_dump(mode="json", exclude={"checkpoint_dir"}),
        "data": data.model_dump(mode="json"),
        "prepared": _prepared_identity(prepared_dir),
        "teacher": None if teacher_dir is None else _teacher_identity(teacher_dir),
    }


def checkpoint_key(inputs: dict[str, Any]) -> str:
    """Hex sha256 of `checkpoint_key_inputs(...)`."""
    return sha256_json(inputs)


def run_checkpoint_dir(checkpoint_dir: str, inputs: dict[str, Any]) -> str:
    """`<checkpoint_dir>/<key>`, with its `key.json` written (once) so the key can be explained later."""
    run_dir = storage.join(checkpoint_dir, checkpoint_key(inputs))
    record = storage.join(run_dir, KEY_RECORD)
    if not storage.exists(record):
        # Not create-only: whoever else writes it writes the same bytes (the key is the hash of this document).
        storage.write_text(record, json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    return run_dir


def _prepared_identity(prepared_dir: str) -> str:
    manifest = json.loads(storage.read_text(storage.join(prepared_dir, MANIFEST_FILE)))
    return str(manifest["content_hash"])


def _teacher_identity(teacher_dir: str) -> dict[str, Any]:
    # Not the whole teacher.json: its per-split cache reports (hits, misses, seconds) and cache location say how the
    # outputs were obtained, not what they are, and differ between two runs that produced identical outputs.
    info = json.loads(storage.read_text(storage.join(teacher_dir, TEACHER_INFO)))
    return {
        "fingerprint": info.get("fingerprint"),
        "cache_keys": {name: split.get("cache_key") for name, split in sorted(info.get("splits", {}).items())},
    }


def _image_code_version() -> str | None:
    info = read_image_info()
    return None if info is None else str(info["code_version"])
