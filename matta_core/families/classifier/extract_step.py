"""Step 4: cut one standalone model of the given per-layer widths out of the trained nested model.

Before the model is written, its outputs are checked against the nested model run at the same widths on real
validation rows: an extraction bug must fail here, not in serving. Then its embedding table is stored as the run's
``extraction`` section says (`compact`: trained rows only, int8 by default), what that cost is measured on the
validation split (accuracy before and after, largest logit change), and the served form is calibrated.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matta_core.artifacts.layout import NESTED_DIR, TRAIN_RESULT
from matta_core.data.section import DataSection
from matta_core.families.classifier.calibrate import validation_temperature
from matta_core.families.classifier.compact import compact, seeded_rows, trained_buckets
from matta_core.families.classifier.evaluate import predict_logits, width_name
from matta_core.families.classifier.extract import extract, extracted_config, save_extracted
from matta_core.families.classifier.inputs import load_inputs
from matta_core.families.classifier.model_io import load_nested
from matta_core.features import HashedNgramFeaturizer
from matta_core.sections import ExtractionSection

PARITY_TOLERANCE = 1e-5
PARITY_ROWS = 256


class ParityError(AssertionError):
    """The extracted model does not reproduce the nested model at its widths."""


def extract_step(
    trained_dir: str, widths: list[int], out_dir: str, prepared_dir: str, data: DataSection,
    extraction: ExtractionSection | None = None,
) -> dict[str, Any]:
    """Write the standalone model (model.safetensors + config.json) for `widths` into `out_dir`, its embedding
    stored as `extraction` says (default: the section's defaults)."""
    extraction = extraction or ExtractionSection()
    nested = load_nested(Path(trained_dir) / NESTED_DIR)
    summary = json.loads((Path(trained_dir) / TRAIN_RESULT).read_text())
    widths_t = nested.check_widths(tuple(widths))
    standalone = extract(nested, widths_t)

    inputs = load_inputs(prepared_dir, data)
    rows = inputs.splits["validation"]
    # Featurised once: the first PARITY_ROWS rows check parity, all of them calibrate.
    features = HashedNgramFeaturizer(nested.config.features).transform(rows.texts)
    parity_rows = min(PARITY_ROWS, len(features))
    batch = features.batch(torch.arange(parity_rows))
    with torch.inference_mode():
        diff = (nested(batch, widths_t) - standalone(batch.ids, batch.offsets, batch.counts, batch.dense)).abs()
    max_diff = float(diff.max()) if diff.numel() else 0.0
    if not max_diff <= PARITY_TOLERANCE:
        raise ParityError(
            f"extracted model at widths {list(widths_t)} differs from the nested model by {max_diff:.3g} "
            f"(tolerance {PARITY_TOLERANCE}) on {parity_rows} validation rows"
        )
    name = width_name(nested, widths_t)
    config = extracted_config(nested.config, widths_t, tuple(summary["label_names"]))
    served, compression = standalone, {"embedding_dtype": "float32", "embedding_rows": "all"}
    if not extraction.stores_as_trained:
        keep = _kept_rows(Path(trained_dir), inputs.splits["train"].texts, nested) \
            if extraction.drop_untrained_rows else None
        served, config = compact(standalone, config, dtype=extraction.embedding_dtype, keep_buckets=keep)
        compression = {"embedding_dtype": config.embedding_dtype, "embedding_rows": config.embedding_rows,
                       "rows_kept": nested.config.features.num_buckets if keep is None else len(keep),
                       "rows_of": nested.config.features.num_buckets,
                       **_compression_cost(standalone, served, features, rows.labels)}
    temperature = validation_temperature(served, features, rows.labels)
    meta = replace(config, temperature=temperature).with_metadata(
        name=name,
        arm="matta",
        parity_max_abs_diff=max_diff,
        parity_rows=parity_rows,
        data_content_hash=summary["data_content_hash"],
        teacher_cache_key=summary.get("teacher_cache_key"),
        calibration_rows=len(rows.texts),
        compression=compression,
    )
    save_extracted(served, meta, out_dir)
    return {"name": name, "widths": list(widths_t), "parity_max_abs_diff": max_diff, "temperature": temperature,
            "compression": compression}


def _kept_rows(trained_dir: Path, train_texts: list[str], nested: Any) -> Any:
    """The rows training updated: the training split's buckets, and those a warm start brought (None: all)."""
    every, seeded = seeded_rows(trained_dir)
    if every:
        return None
    trained = trained_buckets(tuple(train_texts), nested.config.features)
    return np.union1d(trained, seeded) if len(seeded) else trained


def _compression_cost(full: torch.nn.Module, served: torch.nn.Module, features: Any, labels: Any) -> dict[str, Any]:
    """Validation accuracy of the float32 extraction and of its served (compact) form, and the largest logit
    change: what compression cost this width, recorded in its config."""
    if not len(features):
        return {"validation_rows": 0}
    before, after = predict_logits(full, features), predict_logits(served, features)  # type: ignore[arg-type]
    truth = torch.as_tensor(labels)
    return {
        "validation_rows": len(features),
        "validation_accuracy_float32": float((before.argmax(1) == truth).float().mean()),
        "validation_accuracy_served": float((after.argmax(1) == truth).float().mean()),
        "max_abs_logit_change": float((before - after).abs().max()),
    }
