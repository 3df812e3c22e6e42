"""Step 1 for ``task: causal_lm``: validate, deduplicate and split a text corpus into a prepared folder."""

from __future__ import annotations

from typing import Any

from matta_core.data.section import DataSection
from matta_core.families.decoder.prepared import write_prepared_text
from matta_core.families.decoder.text_data import load_text_corpus


def lm_prepare_step(data: DataSection, out_dir: str) -> dict[str, Any]:
    """Write train/validation/test JSONL + manifest.json (with the content hash) into `out_dir`; returns the manifest.

    `data.text_column` names the passage key of a ``.jsonl`` corpus (default ``text``); `data.val_fraction` is the
    validation share (the test share is `load_text_corpus`'s default, 10 %).
    """
    corpus = load_text_corpus(
        data.source,
        text_field=data.text_column or "text",
        val_fraction=data.val_fraction,
        max_bad_fraction=data.max_bad_fraction,
        mirror_dir=data.mirror_dir,
    )
    return write_prepared_text(corpus, out_dir)
