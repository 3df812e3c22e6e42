"""manifest.json of a prepared data set, its content hash and its label-imbalance report.

The content hash is the data's identity for everything downstream (teacher caches, training runs, model
registration). It is computed over the canonical content (rows sorted by row id, values as JSON) plus the label map
and the schema, never over Parquet bytes, which differ between library versions for the same data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from matta_core.data.schema import DataSchema
from matta_core.data.split import SPLITS

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "matta.prepared/v1"
_CONTENT_FORMAT = "matta.prepared.content/v1"  # bump when the canonical form below changes


@dataclass
class Manifest:
    """What a prepared-data folder holds and where it came from.

    Attributes:
        dataset: registry name, or the user file's stem (or the name given).
        source: where the rows came from: `kind` ("registry" or "file") and `files` (role, URL or URI, sha256).
        schema: the schema the source was read with.
        label_map: label name -> int index, sorted by name.
        split: how rows were split (salt, fractions, whether test came from the source).
        row_counts: rows per split.
        input_rows: data records read per source role ("train", "test").
        quarantine: the quarantine file (relative to the folder), total rows, counts per reason (all reasons,
            zeros included) overall and per source role, the bad fraction and its threshold.
        label_counts: rows per label name for each split.
        imbalance: the label-imbalance report of the train split (see `imbalance_report`).
        files: per split: file name (relative to the folder), sha256 of its bytes, rows.
        content_hash: sha256 over the canonical content of all splits + label map + schema.
        created_by: "matta <version>".
        created_at: UTC time, ISO 8601.
        warnings: what did not stop the preparation but makes a run's numbers mean less, each a dict with a
            `code` ("unseen_test_labels", "rare_labels", "too_many_labels", "control_chars_cleaned"), a one-line
            `message` for people, and the numbers behind it (`matta_core.data.label_checks`).
    """

    dataset: str
    source: dict[str, Any]
    schema: DataSchema
    label_map: dict[str, int]
    split: dict[str, Any]
    row_counts: dict[str, int]
    input_rows: dict[str, int]
    quarantine: dict[str, Any]
    label_counts: dict[str, dict[str, int]]
    imbalance: dict[str, Any]
    files: dict[str, dict[str, Any]]
    content_hash: str
    created_by: str
    created_at: str
    format: str = field(default=MANIFEST_FORMAT)
    # Defaulted so that manifests written before warnings existed still load.
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        """Label names in index order."""
        return sorted(self.label_map, key=self.label_map.__getitem__)

    def to_json(self) -> str:
        """The manifest as pretty, stable JSON."""
        data = asdict(self)
        data["schema"] = self.schema.to_dict()
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse manifest.json; a clear error for another format version."""
        data = json.loads(text)
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"manifest format {data.get('format')!r} is not supported; expected {MANIFEST_FORMAT!r}.")
        data["schema"] = DataSchema.from_dict(data["schema"])
        return cls(**data)


def label_map_for(labels: Sequence[str]) -> dict[str, int]:
    """Label name -> index, by sorted name: stable whatever order the labels were declared or met in."""
    return {name: index for index, name in enumerate(sorted(set(labels)))}


def content_hash(splits: Mapping[str, pd.DataFrame], label_map: Mapping[str, int], schema: DataSchema) -> str:
    """sha256 over the canonical content of the prepared splits (see the module docstring).

    Each split contributes one JSON line per row, rows sorted by row id: [row_id, text, label, label_name,
    features...]. JSON floats are the shortest round-trip repr, identical on every platform.
    """
    digest = hashlib.sha256()
    header = {"format": _CONTENT_FORMAT, "label_map": dict(sorted(label_map.items())), "schema": schema.to_dict()}
    digest.update(_canonical(header).encode("utf-8"))
    for name in SPLITS:
        frame = splits[name].sort_values("row_id", kind="stable")
        digest.update(f"\n#split {name}\n".encode())
        columns = ["row_id", "text", "label", "label_name", *schema.feature_columns]
        values = [frame[c].tolist() for c in columns]
        for row in zip(*values, strict=True):
            canonical = [str(row[0]), str(row[1]), int(row[2]), str(row[3]), *(float(v) for v in row[4:])]
            digest.update(_canonical(canonical).encode("utf-8"))
            digest.update(b"\n")
    return digest.hexdigest()


def imbalance_report(
    counts: Mapping[str, int], label_map: Mapping[str, int], min_rows_per_label: int, *, split: str = "train"
) -> dict[str, Any]:
    """Label imbalance of one split: counts per label (zeros included), extremes and labels below the minimum.

    `min_max_ratio` is the smallest count over the largest (1.0 = balanced, 0.0 = a label has no rows).
    """
    full = {name: int(counts.get(name, 0)) for name in sorted(label_map)}
    if not full:
        return {"split": split, "min_rows_per_label": min_rows_per_label, "counts": {}, "rare_labels": []}
    smallest = min(full, key=lambda n: (full[n], n))
    largest = max(full, key=lambda n: (full[n], n))
    return {
        "split": split,
        "min_rows_per_label": min_rows_per_label,
        "min_count": full[smallest],
        "min_label": smallest,
        "max_count": full[largest],
        "max_label": largest,
        "min_max_ratio": full[smallest] / full[largest] if full[largest] else 0.0,
        "rare_labels": [n for n, c in full.items() if c < min_rows_per_label],
        "counts": full,
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
