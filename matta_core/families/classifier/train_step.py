"""Step 3: train the TA and Student jointly (MatTA), and the baselines at the same budget.

Outputs: `nested/` (the trained nested model: every width lives in it), `baselines/<arm>/` (standalone Student-size
models trained with `kd` or `ce_only`), `checkpoints/<arm>/` (resume points: a rerun of a killed step continues
from the last one) and `train_result.json`. With `train.checkpoint_dir` set, the resume points go to
`<checkpoint_dir>/<key>/<arm>/` instead, outside the output, so a retried or preempted task resumes from them; the
key identifies the training inputs (`matta_core.artifacts.checkpoint_key`).

With `model.init_from`, the nested model of the ``matta`` arm starts from a saved standalone model
(`matta_core.families.classifier.warm_start`): resolved once, before anything trains (an alias is pinned to the
version it names then), checked against the config and the data's labels, and recorded as ``init_from`` in
`train_result.json`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
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
from matta_core.families.classifier.calibrate import validation_temperature
from matta_core.families.classifier.compact import save_seeded_rows
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.extract import extract, extracted_config, save_extracted
from matta_core.families.classifier.inputs import load_inputs
from matta_core.families.classifier.model_io import save_nested
from matta_core.families.classifier.section import ModelSection
from matta_core.families.classifier.teacher_step import load_teacher_logits
from matta_core.families.classifier.trainer import train
from matta_core.families.classifier.warm_start import WarmStart, load_warm_start
from matta_core.features import HashedNgramFeaturizer, inverse_document_frequency
from matta_core.sections import TrainSection
from matta_core.training import Callback


def train_step(
    prepared_dir: str,
    teacher_dir: str | None,
    out_dir: str,
    model: ModelSection,
    train_section: TrainSection,
    data: DataSection,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    arm_callbacks: Callable[[str], Sequence[Callback]] | None = None,
    code_version: str | None = None,
    tracking_uri: str | None = None,
    init_from_version: str = "",
) -> dict[str, Any]:
    """Train every arm and write the folder described in the module docstring; returns the train results.

    `callbacks` observe every arm; `arm_callbacks(arm)` is called as each arm starts and its callbacks observe
    that arm only (one MLflow run per arm, so the arms' loss curves do not overwrite each other). `code_version`
    (the task's) is part of the checkpoint key when `train.checkpoint_dir` is set; default: the image's record.
    `tracking_uri`: the store whose registry a ``models:/`` `model.init_from` is read from (default
    ``MLFLOW_TRACKING_URI``). `init_from_version`: for ``models:/<name>@<alias>``, the version the alias named
    when the pipeline run started (its first task read it, `warm_start.pin_init_from`); "" reads the alias now.
    """
    out = Path(storage.to_local_path(out_dir))  # checkpoints need a real filesystem (a KFP artifact path is one)
    inputs = load_inputs(prepared_dir, data)
    config = model.classifier_config(num_classes=len(inputs.label_names))
    warm_start, key_model = None, model
    if model.init_from is not None:
        warm_start = _warm_start(model.init_from, config, inputs.label_names, tracking_uri, init_from_version)
        # What the nested model started from, as a version (an alias moves): saved with the model and compared on
        # resume, and part of the checkpoint key, so no run continues one that started from other weights.
        config = replace(config, init_from=warm_start.source.pinned_uri)
        key_model = model.model_copy(update={"init_from": warm_start.source.pinned_uri})
    rows = inputs.splits["train"]
    features = HashedNgramFeaturizer(config.features).transform(rows.texts)
    teacher_logits = None if teacher_dir is None else load_teacher_logits(teacher_dir, "train")
    training_data = TrainingData(features, rows.labels, teacher_logits, num_classes=config.num_classes)
    idf = inverse_document_frequency(features, config.features.num_buckets)

    # Known only here: the row limit (data.limit_train_rows) is applied after preparation.
    warnings = [w for w in [train_section.train_config().batch_size_warning(len(rows.texts))] if w is not None]
    for warning in warnings:
        print(f"warning: {warning['message']}", file=sys.stderr, flush=True)
    teacher_key = _teacher_cache_key(teacher_dir)
    checkpoints = checkpoint_root(out / CHECKPOINTS_DIR, prepared_dir, teacher_dir, key_model, train_section, data,
                                  code_version)

    def train_arm(arm: str, hooks: list[Callback], checkpoint_dir: str) -> tuple[Any, Any]:
        return train(config, training_data, train_section.train_config(arm, progress=progress), idf=idf,
                     checkpoint_dir=checkpoint_dir, callbacks=hooks,
                     warm_start=warm_start if arm == "matta" else None)

    validation_features = HashedNgramFeaturizer(config.features).transform(inputs.splits["validation"].texts)

    def save_baseline(arm: str, trained: Any, folder: Path) -> None:
        standalone = extract(trained, config.student_widths)
        meta = extracted_config(config.sub_config(config.student_widths), config.student_widths, inputs.label_names)
        name = f"{arm}-{'x'.join(str(w) for w in config.student_widths)}"
        lineage = {"data_content_hash": inputs.content_hash, "teacher_cache_key": teacher_key}
        validation = inputs.splits["validation"]
        temperature = validation_temperature(standalone, validation_features, validation.labels)
        meta = replace(meta, temperature=temperature).with_metadata(calibration_rows=len(validation.texts))
        save_extracted(standalone, meta.with_metadata(arm=arm, name=name, **lineage), folder)

    results, baseline_dirs = train_every_arm(["matta", *train_section.baselines], out, checkpoints, train_arm,
                                             save_nested, save_baseline, callbacks, arm_callbacks)
    summary = {
        "arms": results,
        "model_config": config.to_dict(),
        "label_names": list(inputs.label_names),
        "train_rows": len(rows.texts),
        "data_content_hash": inputs.content_hash,
        # Lineage for everything cut from this model: which Teacher outputs it was distilled from.
        "teacher_cache_key": teacher_key,
        # And which saved model the nested model started from (None: random weights); the release step compares a
        # size class whose registered model it was with that very version (`matta_core.release.step`).
        "init_from": None if warm_start is None else warm_start.source.to_dict(),
        # Baseline model folders relative to `out_dir`, so a pipeline can evaluate them without knowing the layout.
        "baseline_dirs": baseline_dirs,
        # Where the arms' resume points are (`<checkpoints>/<arm>`): a URI outside `out_dir` when configured.
        "checkpoints": checkpoints,
        # What did not stop training but makes its numbers mean less (the report shows them).
        "warnings": warnings,
    }
    if warm_start is not None:  # rows trained by the saved model, not by this run: extraction must keep them
        save_seeded_rows(out, warm_start.seeded_buckets())
    (out / TRAIN_RESULT).write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return summary


def _warm_start(init_from: str, config: ClassifierConfig, label_names: Sequence[str],
                tracking_uri: str | None, init_from_version: str = "") -> WarmStart:
    """Resolve and check `model.init_from` before anything trains; say in the task's log what it resolved to."""
    # A folder's digest pinned only the cache key; an alias's version pins what is loaded.
    alias_version = "" if init_from_version.startswith("sha256:") else init_from_version
    warm_start = load_warm_start(init_from, tracking_uri, alias_version=alias_version)
    warm_start.check(config, label_names)
    source = warm_start.source
    pinned = "" if source.pinned_uri == init_from else f" = {source.pinned_uri}"
    print(f"warm start: model.init_from {init_from}{pinned} (hidden widths {list(warm_start.config.hidden_widths)}, "
          f"{warm_start.config.embed_dim} embedding dims)", flush=True)
    return warm_start


def _teacher_cache_key(teacher_dir: str | None) -> str | None:
    if teacher_dir is None or not storage.exists(storage.join(teacher_dir, TEACHER_INFO)):
        return None
    return json.loads(storage.read_text(storage.join(teacher_dir, TEACHER_INFO))).get("cache_key")
