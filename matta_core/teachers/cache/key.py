"""The cache key: what makes two sets of Teacher outputs the same.

Outputs are the same iff the Teacher (weights + config + head), the data, the output layout and the split are.
The key is a sha256 over exactly those parts (plus the cache format version, so a layout change never reads
old shards as new ones); `shard_rows` is not part of it: it changes how outputs are stored, not what they are.
An entry is read with the layout its manifest records, and a shard left by an unfinished run with another
`shard_rows` fails its row-range check and is computed again: a second shard size never misreads, and never forks
the cache into two copies of the same outputs.
"""

from __future__ import annotations

from typing import Any

from matta_core.teachers.base import OutputSpec, Teacher
from matta_core.teachers.fingerprint import sha256_json

CACHE_FORMAT = "matta.teacher_cache"
CACHE_VERSION = 1


def key_parts(teacher_fingerprint: str, data_hash: str, output_spec: OutputSpec, split: str) -> dict[str, Any]:
    """The JSON-able parts the key is computed from (recorded in the manifest for humans and audits)."""
    for name, value in (("teacher fingerprint", teacher_fingerprint), ("data hash", data_hash), ("split", split)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"cache key: {name} must be a non-empty string, got {value!r}")
    return {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "teacher_fingerprint": teacher_fingerprint,
        "data_hash": data_hash,
        "output_spec": output_spec.to_dict(),
        "split": split,
    }


def cache_key(teacher_fingerprint: str, data_hash: str, output_spec: OutputSpec, split: str) -> str:
    """Hex sha256 naming the cache entry ``<cache_root>/<key>/``."""
    return sha256_json(key_parts(teacher_fingerprint, data_hash, output_spec, split))


def teacher_cache_key(teacher: Teacher, data_hash: str, split: str) -> str:
    """`cache_key` for a Teacher object (needs only its fingerprint and output spec, not its model)."""
    return cache_key(teacher.fingerprint(), data_hash, teacher.output_spec, split)
