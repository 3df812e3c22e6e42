"""The prepared-data folder: the split Parquet files' layout, and `load_prepared` to read a finished one back.

Layout under the folder URI (local path, file:// or gs://):

    train.parquet, validation.parquet, test.parquet   row_id, text, label, label_name, <feature columns>
    quarantine.jsonl                                  the rows set aside (see `quarantine`)
    manifest.json                                     written last: a folder without it is an incomplete run
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matta_core import storage
from matta_core.data.errors import IncompletePreparedDataError
from matta_core.data.manifest import MANIFEST_FILE, Manifest, content_hash
from matta_core.data.schema import DataSchema
from matta_core.data.split import SPLITS

SPLIT_COLUMNS = ("row_id", "text", "label", "label_name")


def split_file(split: str) -> str:
    """File name of a split inside the prepared folder."""
    return f"{split}.parquet"


def split_arrow_schema(schema: DataSchema) -> pa.Schema:
    """Arrow schema of every split file: fixed columns, then the schema's features as float64."""
    fields = [
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("label", pa.int64(), nullable=False),
        pa.field("label_name", pa.string(), nullable=False),
    ]
    fields += [pa.field(name, pa.float64(), nullable=False) for name in schema.feature_columns]
    return pa.schema(fields)


def parquet_bytes(frame: pd.DataFrame, schema: DataSchema) -> bytes:
    """Serialise one split frame (already in row-id order) to Parquet bytes."""
    arrow_schema = split_arrow_schema(schema)
    table = pa.Table.from_pydict({name: frame[name].tolist() for name in arrow_schema.names}, schema=arrow_schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


@dataclass
class PreparedData:
    """A finished prepared data set: one DataFrame per split, and its manifest."""

    uri: str
    manifest: Manifest
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    @property
    def splits(self) -> dict[str, pd.DataFrame]:
        """Split name -> DataFrame."""
        return {"train": self.train, "validation": self.validation, "test": self.test}

    @property
    def content_hash(self) -> str:
        """The data's identity (see `matta_core.data.manifest`)."""
        return self.manifest.content_hash


def load_prepared(uri: str, *, verify: bool = True) -> PreparedData:
    """Read a prepared-data folder written by `prepare_dataset`.

    Raises `IncompletePreparedDataError` when manifest.json is missing (the run failed or is still going) or when,
    with `verify`, a split file's sha256, its row count or the recomputed content hash disagree with the manifest
    (the folder was changed after it was written, or a rerun is overwriting it).
    """
    manifest_uri = storage.join(uri, MANIFEST_FILE)
    if not storage.exists(manifest_uri):
        raise IncompletePreparedDataError(
            f"{uri} has no {MANIFEST_FILE}: it is not a finished prepare_dataset run (a failed or running run "
            "leaves none). Run prepare_dataset to (re)create it."
        )
    try:
        manifest = Manifest.from_json(storage.read_text(manifest_uri))
    except (ValueError, KeyError, TypeError) as exc:
        raise IncompletePreparedDataError(f"{manifest_uri} cannot be read: {exc}") from exc
    frames: dict[str, pd.DataFrame] = {}
    for split in SPLITS:
        entry = manifest.files[split]
        file_uri = storage.join(uri, entry["path"])
        data = storage.read_bytes(file_uri)
        if verify and hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise IncompletePreparedDataError(
                f"{file_uri} does not match {MANIFEST_FILE} (sha256 differs): the folder was changed after "
                "prepare_dataset wrote it. Rerun prepare_dataset."
            )
        frames[split] = pq.read_table(pa.BufferReader(data)).to_pandas()
        if verify and len(frames[split]) != manifest.row_counts[split]:
            raise IncompletePreparedDataError(
                f"{file_uri} has {len(frames[split])} rows; {MANIFEST_FILE} says {manifest.row_counts[split]}."
            )
    if verify:
        actual = content_hash(frames, manifest.label_map, manifest.schema)
        if actual != manifest.content_hash:
            raise IncompletePreparedDataError(
                f"content hash of {uri} is {actual}; {MANIFEST_FILE} says {manifest.content_hash}. Rerun "
                "prepare_dataset."
            )
    return PreparedData(uri, manifest, frames["train"], frames["validation"], frames["test"])
