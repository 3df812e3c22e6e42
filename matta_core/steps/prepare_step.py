"""Step 1: validate, deduplicate and split the raw data into a prepared-data folder."""

from __future__ import annotations

from matta_core.config import DataSection
from matta_core.data import DATASETS, DataSchema, Manifest, prepare_dataset


def prepare_step(data: DataSection, out_dir: str) -> Manifest:
    """Write train/validation/test Parquet + manifest.json (with the content hash) into `out_dir`.

    A registered data set brings its own schema; a user file uses the declared text and label columns.
    """
    schema = None
    if data.source not in DATASETS:
        schema = DataSchema(text_column=data.text_column or "text", label_column=data.label_column or "label")
    return prepare_dataset(
        data.source,
        out_dir,
        schema=schema,
        test_source=data.test_source,
        max_bad_fraction=data.max_bad_fraction,
        val_fraction=data.val_fraction,
        mirror_dir=data.mirror_dir,
    )
