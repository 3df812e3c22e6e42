"""Hashing helpers for Teacher fingerprints: files, folders, tensors and JSON-able config, all as hex sha256."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

_CHUNK = 1 << 20

# Weight files are large (90 MB for MiniLM, 98 MB for SmolLM2) and do not change under a running process
# unless rewritten: memoise on (path, size, mtime) so repeated fingerprints in one process are free.
_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of the canonical JSON form of `obj` (sorted keys, no whitespace)."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, memoised per (path, size, mtime)."""
    p = Path(path).resolve()
    st = p.stat()
    memo_key = (str(p), st.st_size, st.st_mtime_ns)
    if memo_key not in _FILE_HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        _FILE_HASHES[memo_key] = h.hexdigest()
    return _FILE_HASHES[memo_key]


def clear_file_hash_memo() -> None:
    """Forget memoised file hashes (benchmarks use it to measure what a fresh process pays)."""
    _FILE_HASHES.clear()


def sha256_files(root: str | Path, files: Iterable[Path]) -> str:
    """Hex sha256 over (relative path, content hash) of `files` under `root`, in sorted path order."""
    root = Path(root)
    entries = sorted((f.relative_to(root).as_posix(), sha256_file(f)) for f in files)
    return sha256_json(entries)


def sha256_dir(root: str | Path, *, skip: Iterable[str] = (".gitattributes", "README.md")) -> str:
    """Hex sha256 over every file under `root` (names and contents); `skip` names docs that carry no weights."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"cannot fingerprint {root}: not a directory")
    skipped = set(skip)
    files = [f for f in root.rglob("*") if f.is_file() and f.name not in skipped and "__pycache__" not in f.parts]
    return sha256_files(root, files)


def sha256_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """Hex sha256 of named arrays: names, dtypes, shapes and C-order bytes (independent of file layout)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, arr.dtype.str, list(arr.shape)]).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def sha256_texts(texts: Iterable[str]) -> str:
    """Hex sha256 of a sequence of texts (length-prefixed, so ["ab"] and ["a", "b"] differ)."""
    h = hashlib.sha256()
    for text in texts:
        b = text.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()
