"""Data sets and data preparation.

Data flows one way: a registered public data set (`fetch_dataset`) or a user file (`load_table`) ->
`prepare_dataset` (validate, quarantine, split, write) -> a prepared folder of train/validation/test Parquet files
and manifest.json -> `load_prepared`. The manifest's `content_hash` is the data's identity downstream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matta_core.lazy_exports import lazy_exports

# Exported names -> the module that defines them, imported on first use (`matta_core.lazy_exports`).
_EXPORTS = {
    "DataError": "matta_core.data.errors",
    "DatasetIntegrityError": "matta_core.data.errors",
    "DatasetNotFoundError": "matta_core.data.errors",
    "DataValidationError": "matta_core.data.errors",
    "DataFileNotFoundError": "matta_core.data.errors",
    "EmptyFileError": "matta_core.data.errors",
    "IncompletePreparedDataError": "matta_core.data.errors",
    "MissingColumnsError": "matta_core.data.errors",
    "UnseenTestLabelsError": "matta_core.data.errors",
    "UnsupportedFormatError": "matta_core.data.errors",
    "MANIFEST_FILE": "matta_core.data.manifest",
    "Manifest": "matta_core.data.manifest",
    "content_hash": "matta_core.data.manifest",
    "prepare_dataset": "matta_core.data.prep",
    "PreparedData": "matta_core.data.prepared",
    "load_prepared": "matta_core.data.prepared",
    "QUARANTINE_FILE": "matta_core.data.quarantine",
    "QuarantinedRow": "matta_core.data.quarantine",
    "Reason": "matta_core.data.quarantine",
    "DATASETS": "matta_core.data.registry",
    "DatasetFile": "matta_core.data.registry",
    "DatasetSpec": "matta_core.data.registry",
    "fetch_dataset": "matta_core.data.registry",
    "get_dataset": "matta_core.data.registry",
    "DataSchema": "matta_core.data.schema",
    "DEFAULT_SALT": "matta_core.data.split",
    "SPLITS": "matta_core.data.split",
    "normalise_text": "matta_core.data.split",
    "row_id": "matta_core.data.split",
    "SourceTable": "matta_core.data.tables",
    "load_table": "matta_core.data.tables",
    "read_table": "matta_core.data.tables",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)


if TYPE_CHECKING:
    from matta_core.data.errors import (
        DataError,
        DataFileNotFoundError,
        DatasetIntegrityError,
        DatasetNotFoundError,
        DataValidationError,
        EmptyFileError,
        IncompletePreparedDataError,
        MissingColumnsError,
        UnseenTestLabelsError,
        UnsupportedFormatError,
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
    "DataFileNotFoundError",
    "DataSchema",
    "DataValidationError",
    "DatasetFile",
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "EmptyFileError",
    "IncompletePreparedDataError",
    "Manifest",
    "MissingColumnsError",
    "PreparedData",
    "QuarantinedRow",
    "Reason",
    "SourceTable",
    "UnseenTestLabelsError",
    "UnsupportedFormatError",
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
