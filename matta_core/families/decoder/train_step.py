"""Step 3 for ``task: causal_lm``: train the nested decoder (MatTA), and the baselines at the same budget.

Outputs (the classifier's layout, `matta_core.families.classifier.train_step`): `nested/` (the trained nested decoder:
every width lives in it), `baselines/<arm>/` (standalone Student-size decoders trained with `kd` or `ce_only`),
`checkpoints/<arm>/` (resume points; with `train.checkpoint_dir` set, `<checkpoint_dir>/<key>/<arm>/` instead, as in
`matta_core.artifacts.checkpoint_key`) and `train_result.json`. The decoder's vocabulary is the Teacher's, and its
context length the Teacher's max_length unless the model section sets n_positions.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matta_core import storage
from matta_core.artifacts.checkpoint_key import checkpoint_root
from matta_core.artifacts.layout import (
    CHECKPOINTS_DIR,
    TEACHER_INFO,
    TRAIN_RESULT,
)
from matta_core.artifacts.train_folder import train_every_arm
from matta_core.data.section import DataSection
from matta_core.families.decoder.data import LMTrainingData
from matta_core.families.decoder.extract import extract_decoder
from matta_core.families.decoder.inputs import load_lm_inputs
from matta_core.families.decoder.model_io import save_nested_decoder
from matta_core.families.decoder.names import decoder_width_name
from matta_core.families.decoder.section import DecoderSection
from matta_core.families.decoder.teacher_step import load_token_outputs
from matta_core.families.decoder.trainer import train_lm
from matta_core.sections import TrainSection
from matta_core.training import Callback


def lm_train_step(
    prepared_dir: str,
    teacher_dir: str,
    out_dir: str,
    model: DecoderSection,
    train_section: TrainSection,
    data: DataSection,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    arm_callbacks: Callable[[str], Sequence[Callback]] | None = None,
    code_version: str | None = None,
) -> dict[str, Any]:
    """Train every arm and write the folder described in the module docstring; returns the train results.

    `callbacks` observe every arm; `arm_callbacks(arm)` is called as each arm starts and its callbacks observe
    that arm only. The row limits of `data` were applied by the Teacher step, whose outputs are the training data.
    `code_version` (the task's) is part of the checkpoint key when `train.checkpoint_dir` is set.
    """
    out = Path(storage.to_local_path(out_dir))  # checkpoints need a real filesystem (a KFP artifact path is one)
    info = json.loads(storage.read_text(storage.join(teacher_dir, TEACHER_INFO)))
    inputs = load_lm_inputs(prepared_dir, data)
    if info["data_content_hash"] != inputs.content_hash:
        raise ValueError(f"the Teacher outputs in {teacher_dir} are for data {info['data_content_hash'][:12]}..., "
                         f"not for the prepared data in {prepared_dir} ({inputs.content_hash[:12]}...)")
    vocab_size = int(info["vocab_size"])
    config = model.decoder_config(vocab_size=vocab_size, n_positions=int(info["max_length"]))
    train_data = LMTrainingData.from_teacher_outputs(load_token_outputs(teacher_dir, "train"), vocab_size=vocab_size)
    validation = LMTrainingData.from_teacher_outputs(
        load_token_outputs(teacher_dir, "validation"), vocab_size=vocab_size, with_teacher=False
    )
    lineage = {
        "data_content_hash": inputs.content_hash,
        # Lineage for everything cut from this model: which Teacher outputs it was distilled from.
        "teacher_cache_key": info["cache_key"],
        # What turns text into these models' ids (the Teacher's tokenizer, as its spec names it).
        "tokenizer": _tokenizer_spec(info),
    }

    checkpoints = checkpoint_root(out / CHECKPOINTS_DIR, prepared_dir, teacher_dir, model, train_section, data,
                                  code_version)

    def train_arm(arm: str, hooks: list[Callback], checkpoint_dir: str) -> tuple[Any, Any]:
        return train_lm(config, train_data, train_section.train_config(arm, progress=progress),
                        checkpoint_dir=checkpoint_dir, callbacks=hooks, validation=validation)

    def save_baseline(arm: str, trained: Any, folder: Path) -> None:
        # A baseline trains a decoder of the Student's widths only: its standalone form is the whole of it.
        standalone = extract_decoder(trained, trained.config.student_widths)
        name = f"{arm}-{decoder_width_name(config, config.student_widths).removeprefix('student-')}"
        widths = [list(w) for w in config.student_widths]
        metadata = {**standalone.config.metadata, "name": name, "arm": arm, "widths": widths, **lineage}
        standalone.config = dataclasses.replace(standalone.config, metadata=metadata)
        standalone.save(folder)

    results, baseline_dirs = train_every_arm(["matta", *train_section.baselines], out, checkpoints, train_arm,
                                             save_nested_decoder, save_baseline, callbacks, arm_callbacks)
    summary = {
        "task": "causal_lm",
        "arms": results,
        "model_config": config.to_dict(),
        "train_rows": len(train_data),
        "train_tokens": train_data.num_tokens,
        **lineage,
        # Baseline model folders relative to `out_dir`, so a pipeline can evaluate them without knowing the layout.
        "baseline_dirs": baseline_dirs,
        # Where the arms' resume points are (`<checkpoints>/<arm>`): a URI outside `out_dir` when configured.
        "checkpoints": checkpoints,
    }
    (out / TRAIN_RESULT).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return summary


def _tokenizer_spec(info: dict[str, Any]) -> dict[str, Any]:
    spec = info.get("teacher_spec", {})
    return {key: spec[key] for key in ("model_path", "gguf_file", "add_special_tokens") if key in spec} | {
        "max_length": info["max_length"]
    }
