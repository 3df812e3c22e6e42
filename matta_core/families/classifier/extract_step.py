"""Step 4: cut one standalone model of the given per-layer widths out of the trained nested model.

Before the model is written, its outputs are checked against the nested model run at the same widths on real
validation rows: an extraction bug must fail here, not in serving.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from matta_core.artifacts.layout import NESTED_DIR, TRAIN_RESULT
from matta_core.data.section import DataSection
from matta_core.families.classifier.calibrate import validation_temperature
from matta_core.families.classifier.evaluate import width_name
from matta_core.families.classifier.extract import extract, extracted_config, save_extracted
from matta_core.families.classifier.inputs import load_inputs
from matta_core.families.classifier.model_io import load_nested
from matta_core.features import HashedNgramFeaturizer

PARITY_TOLERANCE = 1e-5
PARITY_ROWS = 256


class ParityError(AssertionError):
    """The extracted model does not reproduce the nested model at its widths."""


def extract_step(
    trained_dir: str, widths: list[int], out_dir: str, prepared_dir: str, data: DataSection
) -> dict[str, Any]:
    """Write the standalone model (model.safetensors + config.json) for `widths` into `out_dir`."""
    nested = load_nested(Path(trained_dir) / NESTED_DIR)
    summary = json.loads((Path(trained_dir) / TRAIN_RESULT).read_text())
    widths_t = nested.check_widths(tuple(widths))
    standalone = extract(nested, widths_t)

    rows = load_inputs(prepared_dir, data).splits["validation"]
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
    temperature = validation_temperature(standalone, features, rows.labels)
    config = replace(extracted_config(nested.config, widths_t, tuple(summary["label_names"])), temperature=temperature)
    meta = config.with_metadata(
        name=name,
        arm="matta",
        parity_max_abs_diff=max_diff,
        parity_rows=parity_rows,
        data_content_hash=summary["data_content_hash"],
        teacher_cache_key=summary.get("teacher_cache_key"),
        calibration_rows=len(rows.texts),
    )
    save_extracted(standalone, meta, out_dir)
    return {"name": name, "widths": list(widths_t), "parity_max_abs_diff": max_diff, "temperature": temperature}
