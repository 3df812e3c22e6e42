"""Names of decoder sub-models, the same in folder names, MLflow run and model names, and the report."""

from __future__ import annotations

from collections.abc import Sequence

from matta_core.families.decoder.config import DecoderConfig


def decoder_widths_label(widths: Sequence[Sequence[int]]) -> str:
    """``f512h4`` when every block keeps FFN width 512 and 4 heads; ``f512h4_f128h2_...`` (block by block) otherwise."""
    blocks = [f"f{int(ffn)}h{int(heads)}" for ffn, heads in widths]
    return blocks[0] if len(set(blocks)) == 1 else "_".join(blocks)


def decoder_width_name(config: DecoderConfig, widths: Sequence[Sequence[int]]) -> str:
    """``ta-<label>``, ``student-<label>``, or the label alone for any other sub-model (as the classifier names
    its widths, `matta_core.families.classifier.evaluate.width_name`)."""
    pairs = tuple((int(f), int(h)) for f, h in widths)
    label = decoder_widths_label(pairs)
    if pairs == tuple(tuple(w) for w in config.ta_widths):
        return f"ta-{label}"
    if pairs == tuple(tuple(w) for w in config.student_widths):
        return f"student-{label}"
    return label
