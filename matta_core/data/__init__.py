"""Data sets and data preparation.

Data flows one way: a registered public data set (`fetch_dataset`) or a user file (`load_table`) ->
`prepare_dataset` (validate, quarantine, split, write) -> a prepared folder of train/validation/test Parquet files
and manifest.json -> `load_prepared`. The manifest's `content_hash` is the data's identity downstream.
"""

from matta_core.data.errors import (
    DataError,
    DatasetIntegrityError,
    DatasetNotFoundError,
    DataValidationError,
    IncompletePreparedDataError,
    MissingColumnsError,
)
from matta_core.data.manifest import MANIFEST_FILE, Manifest, content_hash
from matta_core.data.prep import prepare_dataset
from matta_core.data.prepared import PreparedData, load_prepared
from matta_core.data.quarantine import QUARANTINE_FILE, QuarantinedRow, Reason
from matta_core.data.registry import DATASETS, DatasetFile, DatasetSpec, fetch_dataset, get_dataset
from matta_core.data.schema import DataSchema
from matta_core.data.split import DEFAULT_SALT, SPLITS, normalise_text, row_id
from matta_core.data.tables import SourceTable, load_table, read_table

__all__ = [
    "DATASETS",
    "DEFAULT_SALT",
    "MANIFEST_FILE",
    "QUARANTINE_FILE",
    "SPLITS",
    "DataError",
    "DataSchema",
    "DataValidationError",
    "DatasetFile",
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "IncompletePreparedDataError",
    "Manifest",
    "MissingColumnsError",
    "PreparedData",
    "QuarantinedRow",
    "Reason",
    "SourceTable",
    "content_hash",
    "fetch_dataset",
    "get_dataset",
    "load_prepared",
    "load_table",
    "normalise_text",
    "prepare_dataset",
    "read_table",
    "row_id",
]
