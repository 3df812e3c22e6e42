"""The manifest: the last file of a cache entry, listing every shard with its row range and sha256.

Its presence means "complete": it is written only after every shard is. A reader with a manifest needs no
listing and verifies each shard against the sha256 recorded here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from matta_core.teachers.cache.key import CACHE_FORMAT, CACHE_VERSION

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ShardEntry:
    """One shard in the manifest: rows ``[row_start, row_stop)`` of the split."""

    file: str
    row_start: int
    row_stop: int
    sha256: str
    bytes: int


@dataclass
class Manifest:
    """Everything needed to read (and audit) one cache entry."""

    key: str
    key_parts: dict[str, Any]
    teacher_name: str
    total_rows: int
    shard_rows: int
    texts_sha256: str
    output_spec: dict[str, Any]
    shards: list[ShardEntry]
    created_at: str = field(default_factory=lambda: utc_now())
    updated_at: str | None = None
    format: str = CACHE_FORMAT
    version: int = CACHE_VERSION

    def to_json(self) -> str:
        """Pretty, stable JSON (sorted keys) so identical entries have identical manifests modulo timestamps."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Manifest:
        """Parse a manifest; ValueError naming `where` and the field if it is malformed or of another format."""
        try:
            data = json.loads(text)
            if data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
                raise ValueError(
                    f"format {data.get('format')!r} v{data.get('version')}, expected {CACHE_FORMAT!r} v{CACHE_VERSION}"
                )
            data["shards"] = [ShardEntry(**s) for s in data["shards"]]
            return cls(**data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{where}: not a valid teacher-cache manifest ({exc})") from exc


def utc_now() -> str:
    """ISO-8601 UTC timestamp, second precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
