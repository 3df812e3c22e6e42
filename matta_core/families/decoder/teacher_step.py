"""Step 2 for ``task: causal_lm``: the causal-LM Teacher's top-k logits on every split, its cloze examples, and its
own scores, all through caches that outlive the run.

Outputs in `out_dir`:

- ``<split>.safetensors``: ``input_ids``, ``lengths``, ``topk_values``, ``topk_indices`` exactly as the Teacher
  cache holds them (`CausalLMTeacher` documents the layout). Students train and are evaluated on these ids.
- ``cloze_test.json``: last-word cloze examples from the test passages, tokenised as the Teacher reads text.
- ``teacher.json``: fingerprint, output spec (the vocabulary size the Students take), cache keys, and the Teacher's
  test perplexity and cloze accuracy (its row in the report).

The Teacher's perplexity needs its full logits, which the top-k cache cannot give, so it is computed once per
(Teacher, test data) and kept beside the output cache, with the cloze examples: a rerun over cached outputs loads
neither the model nor the tokenizer.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
from safetensors.torch import load, save

from matta_core import storage
from matta_core.artifacts.layout import CLOZE_TEST, TEACHER_INFO, TEACHER_OUTPUTS
from matta_core.data.section import DataSection
from matta_core.families.decoder.cloze import ClozeExample
from matta_core.families.decoder.inputs import load_lm_inputs
from matta_core.families.decoder.teacher_eval import evaluate_teacher_lm, teacher_cloze_examples
from matta_core.sections import TeacherSection
from matta_core.teachers import CausalLMTeacher, make_teacher
from matta_core.teachers.cache import cached_predict_with_report
from matta_core.teachers.cache.key import teacher_cache_key
from matta_core.teachers.fingerprint import sha256_json

TOKEN_ARRAYS = ("input_ids", "lengths", "topk_values", "topk_indices")
# Bump when what the Teacher's evaluation record holds, or how the cloze examples are built, changes.
_EVAL_VERSION = 1


def lm_teacher_step(
    prepared_dir: str, out_dir: str, teacher: TeacherSection, data: DataSection, cache_dir: str, progress: bool = True
) -> dict[str, Any]:
    """Write the folder described in the module docstring; returns the contents of ``teacher.json``."""
    inputs = load_lm_inputs(prepared_dir, data)
    spec = dict(teacher.spec)
    model = make_teacher(spec)
    if not isinstance(model, CausalLMTeacher):
        raise ValueError(f"teacher kind {spec['kind']!r} gives {model.output_spec.kind} outputs; task causal_lm "
                         "needs a causal-LM Teacher (kind: causal_lm)")

    cache_root = storage.join(cache_dir, "teacher_outputs")
    info: dict[str, Any] = {
        "teacher_spec": spec,
        "fingerprint": model.fingerprint(),
        "output_spec": model.output_spec.to_dict(),
        "vocab_size": model.vocab_size,
        "max_length": model.max_length,
        "data_content_hash": inputs.content_hash,
        "cache_root": cache_root,
        "splits": {},
    }
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for name, split in inputs.splits.items():
        outputs[name], report = cached_predict_with_report(
            model, split.texts, data_hash=split.data_hash, split=name, cache_root=cache_root,
            shard_rows=teacher.shard_rows, progress=progress,
        )
        write_token_outputs(storage.join(out_dir, TEACHER_OUTPUTS.format(split=name)), outputs[name])
        info["splits"][name] = {
            "rows": len(split.texts),
            "tokens": int(outputs[name]["lengths"].sum()),
            "cache_key": teacher_cache_key(model, split.data_hash, name),
            "accuracy": None,  # a classifier Teacher's field; the LM Teacher's scores are under "evaluation"
            "cache": report.to_dict(),
        }
    # The cache key of the training split is the Teacher's identity for everything downstream (lineage tags).
    info["cache_key"] = info["splits"]["train"]["cache_key"]

    test = inputs.splits["test"]
    scored = _cached_evaluation(model, test.texts, test.data_hash, outputs["test"], cache_dir)
    storage.write_text(storage.join(out_dir, CLOZE_TEST), json.dumps(scored["cloze"], sort_keys=True) + "\n")
    info["evaluation"] = scored["evaluation"]
    info["cloze"] = scored["cloze"]["summary"]
    storage.write_text(storage.join(out_dir, TEACHER_INFO), json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def write_token_outputs(uri: str, outputs: dict[str, np.ndarray]) -> None:
    """One split's Teacher outputs as a safetensors file (atomic: a killed step leaves the old file or none)."""
    tensors = {name: torch.from_numpy(np.ascontiguousarray(outputs[name])) for name in TOKEN_ARRAYS}
    storage.write_bytes(uri, save(tensors))


def load_token_outputs(teacher_dir: str, split: str) -> dict[str, np.ndarray]:
    """One split's `TOKEN_ARRAYS`, as written by `lm_teacher_step`."""
    tensors = load(storage.read_bytes(storage.join(teacher_dir, TEACHER_OUTPUTS.format(split=split))))
    return {name: tensors[name].numpy() for name in TOKEN_ARRAYS}


def load_cloze_examples(teacher_dir: str) -> list[ClozeExample]:
    """The test split's cloze examples, as written by `lm_teacher_step`."""
    data = json.loads(storage.read_text(storage.join(teacher_dir, CLOZE_TEST)))
    return [
        ClozeExample(e["passage"], e["context"], e["target"], tuple(e["input_ids"]), e["target_start"])
        for e in data["examples"]
    ]


def _cached_evaluation(
    model: CausalLMTeacher, texts: list[str], data_hash: str, test: dict[str, np.ndarray], cache_dir: str
) -> dict[str, Any]:
    """{"evaluation": the Teacher's `evaluate_lm` record on the test split, "cloze": the cloze examples + summary},
    from the cache when this Teacher has scored this test data before."""
    key = sha256_json({"version": _EVAL_VERSION, "teacher": model.fingerprint(), "data_hash": data_hash})
    uri = storage.join(cache_dir, "teacher_evaluations", f"{key}.json")
    if storage.exists(uri):
        return dict(json.loads(storage.read_text(uri)))
    cloze = teacher_cloze_examples(model, texts)
    evaluation = evaluate_teacher_lm(
        model, input_ids=test["input_ids"], lengths=test["lengths"], cloze_examples=cloze.examples or None
    )
    scored = {
        "evaluation": evaluation,
        "cloze": {
            "summary": cloze.summary(),
            "examples": [
                {"passage": e.passage, "context": e.context, "target": e.target, "input_ids": list(e.input_ids),
                 "target_start": e.target_start}
                for e in cloze.examples
            ],
        },
    }
    storage.write_text(uri, json.dumps(scored, sort_keys=True) + "\n")
    return scored
