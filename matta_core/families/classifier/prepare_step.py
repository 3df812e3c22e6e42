"""Step 1: validate, deduplicate and split the raw data into a prepared-data folder."""

from __future__ import annotations

import sys

from matta_core.data import DATASETS, DataSchema, Manifest, prepare_dataset
from matta_core.data.section import DataSection
from matta_core.data.summary import summary_lines, warning_lines


def prepare_step(data: DataSection, out_dir: str) -> Manifest:
    """Write train/validation/test Parquet + manifest.json (with the content hash) into `out_dir`.

    A registered data set brings its own schema; a user file uses the declared text and label columns. Prints
    what was prepared and quarantined (stdout) and every warning (stderr): a run that sets rows aside or trains on
    data too thin to learn from says so where it is watched, not only in the prepared folder.
    """
    schema = None
    if data.source not in DATASETS:
        schema = DataSchema(text_column=data.text_column or "text", label_column=data.label_column or "label")
    manifest = prepare_dataset(
        data.source,
        out_dir,
        schema=schema,
        test_source=data.test_source,
        max_bad_fraction=data.max_bad_fraction,
        val_fraction=data.val_fraction,
        min_rows_per_label=data.min_rows_per_label,
        control_chars=data.control_chars,
        unseen_test_labels=data.unseen_test_labels,
        mirror_dir=data.mirror_dir,
    )
    for line in summary_lines(manifest, out_dir):
        print(line, flush=True)
    for line in warning_lines(manifest.warnings):
        print(line, file=sys.stderr, flush=True)
    return manifest
