"""Step 4 for ``task: causal_lm``: cut one standalone decoder of the given per-block widths out of the nested TA.

Before the model is written, its logits are checked against the nested model run at the same widths: an
extraction bug must fail here, not in serving. The check feeds seeded random ids over the full context (every
position and, across rows, much of the vocabulary), which exercises every sliced tensor as real text would.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from matta_core.artifacts.layout import NESTED_DIR, TRAIN_RESULT
from matta_core.families.decoder.extract import extract_decoder
from matta_core.families.decoder.model_io import load_nested_decoder
from matta_core.families.decoder.names import decoder_width_name
from matta_core.families.decoder.wrappers import NestedAtWidths

# Float32 logits over the vocabulary after a few blocks: the fused q;k;v reorder changes summation order slightly.
PARITY_TOLERANCE = 1e-4
PARITY_ROWS = 8


class DecoderParityError(AssertionError):
    """The extracted decoder does not reproduce the nested decoder at its widths."""


def lm_extract_step(trained_dir: str, widths: Sequence[Sequence[int]], out_dir: str) -> dict[str, Any]:
    """Write the standalone decoder (model.safetensors + config.json) for per-block `widths` into `out_dir`."""
    nested = load_nested_decoder(Path(trained_dir) / NESTED_DIR)
    summary = json.loads((Path(trained_dir) / TRAIN_RESULT).read_text())
    checked = nested.check_widths(widths)
    standalone = extract_decoder(nested, checked)

    config = nested.config
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, config.vocab_size, (PARITY_ROWS, config.n_positions), generator=generator)
    with torch.inference_mode():
        diff = (NestedAtWidths(nested, checked)(ids) - standalone(ids)).abs()
    max_diff = float(diff.max())
    if not max_diff <= PARITY_TOLERANCE:
        raise DecoderParityError(
            f"extracted decoder at widths {[list(w) for w in checked]} differs from the nested decoder by "
            f"{max_diff:.3g} (tolerance {PARITY_TOLERANCE}) on {PARITY_ROWS} rows of {config.n_positions} ids"
        )
    name = decoder_width_name(config, checked)
    metadata = {
        **standalone.config.metadata,
        "name": name,
        "arm": "matta",
        "widths": [list(w) for w in checked],
        "parity_max_abs_diff": max_diff,
        "parity_rows": PARITY_ROWS,
        "data_content_hash": summary["data_content_hash"],
        "teacher_cache_key": summary.get("teacher_cache_key"),
        # The Teacher's tokenizer turns text into this model's ids: without it the weights cannot read text.
        "tokenizer": summary.get("tokenizer"),
    }
    standalone.config = dataclasses.replace(standalone.config, metadata=metadata)
    standalone.save(out_dir)
    return {"name": name, "widths": [list(w) for w in checked], "parity_max_abs_diff": max_diff}
