"""Content-addressed cache of Teacher outputs (sharded safetensors + manifest, local or gs://).

Usage::

    from matta_core.teachers.cache import cached_predict

    logits = cached_predict(teacher, texts, data_hash=manifest["content_hash"], split="train",
                            cache_root="gs://bucket/teacher-cache")["logits"]
"""

from matta_core.teachers.cache.key import cache_key, key_parts, teacher_cache_key
from matta_core.teachers.cache.manifest import MANIFEST_NAME, Manifest, ShardEntry
from matta_core.teachers.cache.shard import CorruptShardError, shard_name
from matta_core.teachers.cache.store import (
    DEFAULT_SHARD_ROWS,
    CacheReport,
    cached_predict,
    cached_predict_with_report,
    load_cached_outputs,
)

__all__ = [
    "DEFAULT_SHARD_ROWS",
    "MANIFEST_NAME",
    "CacheReport",
    "CorruptShardError",
    "Manifest",
    "ShardEntry",
    "cache_key",
    "cached_predict",
    "cached_predict_with_report",
    "key_parts",
    "load_cached_outputs",
    "shard_name",
    "teacher_cache_key",
]
