"""Content-addressed, resumable, self-verifying cache of Teacher outputs.

Layout of one entry, ``<cache_root>/<key>/`` (key: see `matta_core.teachers.cache.key`)::

    shard-00000.safetensors   rows [0, shard_rows)
    shard-00001.safetensors   rows [shard_rows, 2 * shard_rows)
    ...
    manifest.json             written last: key parts, shard list (row ranges, sha256), total rows, output spec

Guarantees, on local paths and gs:// alike (all I/O goes through `matta_core.storage`):

- a shard is written atomically once complete, so a killed run leaves only whole shards;
- a rerun reads the shards that exist and computes only the missing ones (resume);
- every shard is verified on read (file sha256 from the manifest, plus the shard's own embedded hashes); a bad
  one is logged as a warning naming it and recomputed, never used;
- a complete entry is served without calling the Teacher at all: only ``fingerprint()`` and ``output_spec``
  are needed, which Teachers compute without loading their model.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from matta_core import storage
from matta_core.teachers.base import OutputSpec, Teacher, check_outputs
from matta_core.teachers.cache.key import key_parts
from matta_core.teachers.cache.manifest import MANIFEST_NAME, Manifest, ShardEntry, utc_now
from matta_core.teachers.cache.shard import (
    CorruptShardError,
    ShardLayoutError,
    decode_shard,
    encode_shard,
    shard_name,
)
from matta_core.teachers.fingerprint import sha256_bytes, sha256_json, sha256_texts

logger = logging.getLogger(__name__)

#: A multiple of the usual encoder batch size (128), so sharding adds no ragged batches.
DEFAULT_SHARD_ROWS = 1024

ShardStatus = Literal["hit", "miss", "corrupt"]


@dataclass
class CacheReport:
    """What one `cached_predict` call did. Shard counts: ``hits + misses + recomputed == shards_total``."""

    key: str
    uri: str
    split: str
    total_rows: int
    shards_total: int
    hits: int  # shards read from the cache and verified
    misses: int  # shards that did not exist: computed
    recomputed: int  # shards that existed but failed verification: recomputed
    rows_computed: int
    teacher_calls: int
    seconds: float
    manifest_written: bool

    @property
    def rows_per_s(self) -> float:
        """Rows served per second (cached and computed together)."""
        return self.total_rows / self.seconds if self.seconds > 0 else float("inf")

    @property
    def pure_hit(self) -> bool:
        """True when the Teacher was not needed at all."""
        return self.misses == 0 and self.recomputed == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for metrics and logs)."""
        return {**asdict(self), "rows_per_s": self.rows_per_s, "pure_hit": self.pure_hit}


@dataclass
class _Shard:
    index: int
    row_start: int
    row_stop: int
    expected_sha256: str | None  # from the manifest; None while resuming without one
    status: ShardStatus = "miss"
    entry: ShardEntry | None = None

    @property
    def name(self) -> str:
        return shard_name(self.index)


def cached_predict(
    teacher: Teacher,
    texts: Sequence[str],
    *,
    data_hash: str,
    split: str,
    cache_root: str,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """``teacher.predict(texts)``, served from / stored into the cache under `cache_root`.

    `data_hash` must identify the data `texts` come from (the prepared data's ``content_hash``) and `split` the
    split; together with the Teacher's fingerprint and output spec they form the cache key. `progress` shows a
    tqdm bar (rows/s, ETA) on stderr. See `cached_predict_with_report` for what was hit and computed.
    """
    outputs, _ = cached_predict_with_report(
        teacher,
        texts,
        data_hash=data_hash,
        split=split,
        cache_root=cache_root,
        shard_rows=shard_rows,
        progress=progress,
    )
    return outputs


def cached_predict_with_report(
    teacher: Teacher,
    texts: Sequence[str],
    *,
    data_hash: str,
    split: str,
    cache_root: str,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], CacheReport]:
    """Like `cached_predict`, and also return a `CacheReport`."""
    started = time.perf_counter()
    texts = _check_texts(texts)
    if not isinstance(shard_rows, int) or shard_rows <= 0:
        raise ValueError(f"shard_rows must be a positive int, got {shard_rows!r}")
    spec = teacher.output_spec
    parts = key_parts(teacher.fingerprint(), data_hash, spec, split)
    key = sha256_json(parts)
    entry_uri = storage.join(cache_root, key)
    texts_hash = sha256_texts(texts)

    manifest = _read_manifest(entry_uri, key)
    if manifest is not None:
        _check_manifest_matches(manifest, entry_uri, len(texts), texts_hash, data_hash, split)
        # A complete entry keeps the layout it was written with, whatever `shard_rows` asks now: the manifest
        # lists every shard's rows, so another shard size reads it correctly (and `shard_rows` is not in the key).
        shards = [_Shard(i, e.row_start, e.row_stop, e.sha256) for i, e in enumerate(manifest.shards)]
        present = {s.name for s in shards}
    else:
        shards = [
            _Shard(i, start, min(start + shard_rows, len(texts)), None)
            for i, start in enumerate(range(0, len(texts), shard_rows))
        ]
        # One listing instead of an existence check per shard (a round trip each on GCS).
        present = {uri.rsplit("/", 1)[-1] for uri in storage.list_uris(entry_uri)}

    outputs = _allocate(spec, len(texts))
    for shard in shards:
        if shard.name in present:
            _read_shard(shard, entry_uri, key, texts, spec, outputs)

    todo = [s for s in shards if s.status != "hit"]
    calls = 0
    with tqdm(
        total=len(texts),
        initial=sum(s.row_stop - s.row_start for s in shards if s.status == "hit"),
        unit="rows",
        desc=f"teacher {teacher.name} [{split}]",
        file=sys.stderr,
        disable=not progress or not todo,
        dynamic_ncols=True,
    ) as bar:
        for shard in todo:
            _compute_shard(teacher, shard, entry_uri, key, texts, spec, outputs)
            calls += 1
            bar.update(shard.row_stop - shard.row_start)

    manifest_written = False
    if todo or manifest is None:
        _write_manifest(entry_uri, key, parts, teacher, texts_hash, shard_rows, spec, shards, manifest)
        manifest_written = True

    report = CacheReport(
        key=key,
        uri=entry_uri,
        split=split,
        total_rows=len(texts),
        shards_total=len(shards),
        hits=sum(s.status == "hit" for s in shards),
        misses=sum(s.status == "miss" for s in shards),
        recomputed=sum(s.status == "corrupt" for s in shards),
        rows_computed=sum(s.row_stop - s.row_start for s in todo),
        teacher_calls=calls,
        seconds=time.perf_counter() - started,
        manifest_written=manifest_written,
    )
    logger.info(
        "teacher cache %s [%s]: %d rows, shards hit=%d missed=%d recomputed=%d, %.0f rows/s",
        entry_uri,
        split,
        report.total_rows,
        report.hits,
        report.misses,
        report.recomputed,
        report.rows_per_s,
    )
    return outputs, report


def load_cached_outputs(entry_uri: str) -> tuple[dict[str, np.ndarray], Manifest]:
    """Read a complete cache entry without the Teacher (e.g. in a training step), verifying every shard.

    Raises FileNotFoundError if the entry has no manifest (incomplete) and CorruptShardError naming a bad shard:
    without the Teacher there is nothing to recompute it from.
    """
    manifest_uri = storage.join(entry_uri, MANIFEST_NAME)
    manifest = Manifest.from_json(storage.read_text(manifest_uri), where=manifest_uri)
    _check_layout(manifest, manifest_uri)
    spec = OutputSpec.from_dict(manifest.output_spec)
    outputs = _allocate(spec, manifest.total_rows)
    for e in manifest.shards:
        uri = storage.join(entry_uri, e.file)
        arrays = decode_shard(
            storage.read_bytes(uri),
            where=uri,
            key=manifest.key,
            row_start=e.row_start,
            row_stop=e.row_stop,
            texts_sha256=None,
            spec=spec,
            file_sha256=e.sha256,
        )
        for name, arr in arrays.items():
            outputs[name][e.row_start : e.row_stop] = arr
    return outputs, manifest


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
    return texts


def _allocate(spec: OutputSpec, n_rows: int) -> dict[str, np.ndarray]:
    # Filled shard by shard: no list-of-shards + concatenate, which would hold the outputs twice.
    return {name: np.empty((n_rows, *shape), dtype=dtype) for name, (shape, dtype) in spec.row_shapes().items()}


def _read_manifest(entry_uri: str, key: str) -> Manifest | None:
    uri = storage.join(entry_uri, MANIFEST_NAME)
    try:
        text = storage.read_text(uri)
    except FileNotFoundError:
        return None
    try:
        manifest = Manifest.from_json(text, where=uri)
        if manifest.key != key:
            raise ValueError(f"{uri}: manifest key {manifest.key} does not match its folder's key {key}")
        _check_layout(manifest, uri)
    except ValueError as exc:
        # The shards may still be fine: fall back to resuming from them and rewrite the manifest.
        logger.warning("teacher cache: ignoring unusable manifest (%s); verifying shards and rewriting it", exc)
        return None
    return manifest


def _check_layout(manifest: Manifest, where: str) -> None:
    stop = 0
    for e in manifest.shards:
        if e.row_start != stop or e.row_stop <= e.row_start:
            raise ValueError(
                f"{where}: shard {e.file} covers rows [{e.row_start}, {e.row_stop}), expected start {stop}"
            )
        stop = e.row_stop
    if stop != manifest.total_rows:
        raise ValueError(f"{where}: shards cover {stop} rows, manifest says total_rows={manifest.total_rows}")


def _check_manifest_matches(
    manifest: Manifest, entry_uri: str, n_rows: int, texts_hash: str, data_hash: str, split: str
) -> None:
    # Same key but other texts means the caller's data_hash does not identify its data: refuse rather than
    # hand back another data set's outputs.
    if manifest.total_rows != n_rows or manifest.texts_sha256 != texts_hash:
        raise ValueError(
            f"teacher cache {entry_uri}: data_hash={data_hash!r} split={split!r} is cached for "
            f"{manifest.total_rows} rows with texts sha256 {manifest.texts_sha256[:16]}…, but these {n_rows} texts "
            f"hash to {texts_hash[:16]}…; pass the content hash of the data the texts come from"
        )


def _read_shard(
    shard: _Shard, entry_uri: str, key: str, texts: list[str], spec: OutputSpec, outputs: dict[str, np.ndarray]
) -> None:
    uri = storage.join(entry_uri, shard.name)
    try:
        data = storage.read_bytes(uri)
        arrays = decode_shard(
            data,
            where=uri,
            key=key,
            row_start=shard.row_start,
            row_stop=shard.row_stop,
            texts_sha256=sha256_texts(texts[shard.row_start : shard.row_stop]),
            spec=spec,
            file_sha256=shard.expected_sha256,
        )
    except FileNotFoundError:
        shard.status = "miss"
        return
    except ShardLayoutError as exc:
        # Left by an unfinished run with another shard_rows: nothing is wrong with it, it is just not this
        # layout's shard. Computed again (and overwritten) like a missing one, never read as these rows.
        logger.info("teacher cache: %s; computing this layout's shard", exc)
        shard.status = "miss"
        return
    except CorruptShardError as exc:
        logger.warning("teacher cache: corrupt shard, recomputing it: %s", exc)
        shard.status = "corrupt"
        return
    for name, arr in arrays.items():
        outputs[name][shard.row_start : shard.row_stop] = arr
    digest = shard.expected_sha256 or sha256_bytes(data)
    shard.entry = ShardEntry(shard.name, shard.row_start, shard.row_stop, digest, len(data))
    shard.status = "hit"


def _compute_shard(
    teacher: Teacher,
    shard: _Shard,
    entry_uri: str,
    key: str,
    texts: list[str],
    spec: OutputSpec,
    outputs: dict[str, np.ndarray],
) -> None:
    rows = texts[shard.row_start : shard.row_stop]
    arrays = teacher.predict(rows)
    check_outputs(arrays, spec, len(rows), f"{teacher.name}.predict on rows [{shard.row_start}, {shard.row_stop})")
    data = encode_shard(
        arrays, key=key, row_start=shard.row_start, row_stop=shard.row_stop, texts_sha256=sha256_texts(rows)
    )
    storage.write_bytes(storage.join(entry_uri, shard.name), data)  # atomic: whole shard or none
    for name, arr in arrays.items():
        outputs[name][shard.row_start : shard.row_stop] = arr
    shard.entry = ShardEntry(shard.name, shard.row_start, shard.row_stop, sha256_bytes(data), len(data))


def _write_manifest(
    entry_uri: str,
    key: str,
    parts: dict[str, Any],
    teacher: Teacher,
    texts_hash: str,
    shard_rows: int,
    spec: OutputSpec,
    shards: list[_Shard],
    previous: Manifest | None,
) -> None:
    entries = [s.entry for s in shards]
    assert all(e is not None for e in entries), "every shard is read or computed before the manifest"
    manifest = Manifest(
        key=key,
        key_parts=parts,
        teacher_name=teacher.name,
        total_rows=sum(s.row_stop - s.row_start for s in shards),
        shard_rows=previous.shard_rows if previous is not None else shard_rows,
        texts_sha256=texts_hash,
        output_spec=spec.to_dict(),
        shards=[e for e in entries if e is not None],
    )
    if previous is not None:  # a repair: keep when the entry was first made, record when it was fixed
        manifest.created_at = previous.created_at
        manifest.updated_at = utc_now()
    storage.write_text(storage.join(entry_uri, MANIFEST_NAME), manifest.to_json())
