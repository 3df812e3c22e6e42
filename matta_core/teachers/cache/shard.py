"""One shard: a contiguous row range of Teacher outputs in one safetensors file that can verify itself.

Besides the arrays, a shard's safetensors metadata records the cache key, its row range, a hash of its input
texts and a hash of its arrays. The manifest adds the sha256 of the file bytes, but a run killed before the
manifest existed leaves shards without one: the embedded hashes let a resumed run tell a whole, matching shard
from a corrupted, stale or foreign one without trusting anything outside the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from matta_core.teachers.base import OutputSpec, check_outputs
from matta_core.teachers.fingerprint import sha256_arrays, sha256_bytes

SHARD_PATTERN = "shard-{index:05d}.safetensors"


class CorruptShardError(ValueError):
    """A shard's bytes do not match its recorded hashes, or it belongs to another key/row range."""


class ShardLayoutError(CorruptShardError):
    """A sound shard of this key that holds another row range: written with another ``shard_rows``."""


def shard_name(index: int) -> str:
    """File name of shard `index` (``shard-00000.safetensors``)."""
    return SHARD_PATTERN.format(index=index)


def encode_shard(
    arrays: Mapping[str, np.ndarray], *, key: str, row_start: int, row_stop: int, texts_sha256: str
) -> bytes:
    """Serialise one shard's arrays with the metadata `decode_shard` verifies."""
    metadata = {
        "key": key,
        "row_start": str(row_start),
        "row_stop": str(row_stop),
        "texts_sha256": texts_sha256,
        "arrays_sha256": sha256_arrays(arrays),
    }
    return st_save({name: np.ascontiguousarray(a) for name, a in arrays.items()}, metadata=metadata)


def _metadata(data: bytes) -> dict[str, str]:
    # safetensors layout: u64 little-endian header length, then a JSON header holding "__metadata__".
    if len(data) < 8:
        raise ValueError("truncated safetensors header")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 0 or 8 + header_len > len(data):
        raise ValueError("truncated safetensors header")
    return json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}


def decode_shard(
    data: bytes,
    *,
    where: str,
    key: str,
    row_start: int,
    row_stop: int,
    texts_sha256: str | None,
    spec: OutputSpec,
    file_sha256: str | None = None,
) -> dict[str, np.ndarray]:
    """Parse and verify a shard; raise CorruptShardError naming `where` on any mismatch.

    `file_sha256` (from the manifest) is checked first when given; `texts_sha256` None skips the input check
    (a reader without the texts); the embedded array hash and the row shapes are always checked.
    """
    if file_sha256 is not None and (actual := sha256_bytes(data)) != file_sha256:
        raise CorruptShardError(f"{where}: sha256 {actual[:16]}… does not match the manifest's {file_sha256[:16]}…")
    try:
        meta = _metadata(data)
        arrays = st_load(data)
    except Exception as exc:  # any parse failure of a damaged file means the same thing: corrupt
        raise CorruptShardError(f"{where}: not a readable safetensors file ({exc})") from exc
    if meta.get("key") != key:
        raise CorruptShardError(f"{where}: metadata key={meta.get('key')!r}, expected {key!r}")
    if (meta.get("row_start"), meta.get("row_stop")) != (str(row_start), str(row_stop)):
        raise ShardLayoutError(f"{where}: holds rows [{meta.get('row_start')}, {meta.get('row_stop')}), expected "
                               f"[{row_start}, {row_stop}) (written with another shard_rows)")
    if texts_sha256 is not None and meta.get("texts_sha256") != texts_sha256:
        raise CorruptShardError(f"{where}: metadata texts_sha256={meta.get('texts_sha256')!r}, expected "
                                f"{texts_sha256!r}")
    if meta.get("arrays_sha256") != sha256_arrays(arrays):
        raise CorruptShardError(f"{where}: array contents do not match their recorded sha256")
    try:
        check_outputs(arrays, spec, row_stop - row_start, where)
    except ValueError as exc:
        raise CorruptShardError(str(exc)) from exc
    return arrays
