"""Step 2: run the Teacher once over every split, through the content-addressed cache.

A Teacher with a trainable head (the default MiniLM) is fitted on the training split first; its encoder
embeddings are cached too, so a rerun over the same data refits the (deterministic) head from cached embeddings,
gets the same fingerprint, and reads every split's logits from the cache without loading the encoder.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from safetensors.torch import load, save

from matta_core import storage
from matta_core.artifacts.layout import TEACHER_INFO, TEACHER_MODEL_DIR, TEACHER_OUTPUTS
from matta_core.data.section import DataSection
from matta_core.families.classifier.inputs import load_inputs
from matta_core.sections import TeacherSection
from matta_core.teachers import make_teacher
from matta_core.teachers.cache import cached_predict_with_report
from matta_core.teachers.cache.key import teacher_cache_key
from matta_core.teachers.minilm import MiniLMTeacher


def teacher_step(
    prepared_dir: str, out_dir: str, teacher: TeacherSection, data: DataSection, cache_dir: str, progress: bool = True
) -> dict[str, Any]:
    """Write `<split>.safetensors` (Teacher logits) + `teacher.json` (fingerprint, cache keys, accuracy)."""
    inputs = load_inputs(prepared_dir, data)
    spec = dict(teacher.spec)
    if spec["kind"] == "minilm" and "head_dir" not in spec:
        spec.setdefault("embedding_cache_root", storage.join(cache_dir, "embeddings"))
        spec.setdefault("num_classes", len(inputs.label_names))
    model = make_teacher(spec)
    if model.output_spec.kind != "class_logits":
        raise ValueError(
            f"teacher kind {spec['kind']!r} gives {model.output_spec.kind} outputs; the classifier pipeline needs a "
            "Teacher with class_logits (minilm, safetensors or mlflow)"
        )
    if isinstance(model, MiniLMTeacher) and model.head is None:
        train = inputs.splits["train"]
        model.fit(train.texts, train.labels, data_hash=train.data_hash, split="train")
        model.save(storage.join(out_dir, TEACHER_MODEL_DIR))
    num_classes = model.output_spec.num_classes
    if num_classes != len(inputs.label_names):
        raise ValueError(
            f"the Teacher predicts {num_classes} classes but the data has {len(inputs.label_names)} labels"
        )

    cache_root = storage.join(cache_dir, "teacher_outputs")
    info: dict[str, Any] = {
        "teacher_spec": {k: v for k, v in spec.items() if k != "embedding_cache_root"},
        "fingerprint": model.fingerprint(),
        "output_spec": model.output_spec.to_dict(),
        "data_content_hash": inputs.content_hash,
        "cache_root": cache_root,
        "splits": {},
    }
    for name, split in inputs.splits.items():
        outputs, report = cached_predict_with_report(
            model, split.texts, data_hash=split.data_hash, split=name, cache_root=cache_root,
            shard_rows=teacher.shard_rows, progress=progress,
        )
        logits = outputs["logits"]
        _write_logits(storage.join(out_dir, TEACHER_OUTPUTS.format(split=name)), logits)
        info["splits"][name] = {
            "rows": len(split.texts),
            "cache_key": teacher_cache_key(model, split.data_hash, name),
            "accuracy": float((logits.argmax(axis=1) == split.labels).mean()) if len(split.texts) else None,
            "cache": report.to_dict(),
        }
    # The cache key of the training split is the Teacher's identity for everything downstream (lineage tags).
    info["cache_key"] = info["splits"]["train"]["cache_key"]
    storage.write_text(storage.join(out_dir, TEACHER_INFO), json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def _write_logits(uri: str, logits: np.ndarray) -> None:
    tensors = {"logits": torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))}
    storage.write_bytes(uri, save(tensors))  # atomic: a killed step leaves the old file or none


def load_teacher_logits(teacher_dir: str, split: str) -> np.ndarray:
    """The Teacher's logits for one split, as written by `teacher_step`."""
    return load(storage.read_bytes(storage.join(teacher_dir, TEACHER_OUTPUTS.format(split=split))))["logits"].numpy()
