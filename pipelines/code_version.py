"""The code version: the `matta` package version plus a hash of the source that the pipeline's steps run.

Computed when the pipeline is defined (compile time) and handed to every task as the constant input
``code_version``. Task inputs are part of every KFP cache key (kfp.local's and the cluster's), so a change to
any source file gives every step a new key and a cached result of older code is never served. The same value is
each step's ``matta.code.version`` MLflow tag.

Why an input and not ``set_caching_options(cache_key=...)``: in kfp 2.17.3 a custom ``cache_key`` *replaces* the
key computed from the task's inputs (``kfp/local/cache.py``: with a custom key only the component name and that
key are hashed), so one static key per task would serve one cached result for every data set and config.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

#: The packages whose source the steps execute: the library, the component wrappers, the pipeline definition.
SOURCE_PACKAGES = ("matta_core", "components", "pipelines")
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Hash characters kept in the version string: 64 bits, plenty to tell two source trees apart.
HASH_CHARS = 16


def source_roots() -> list[Path]:
    """The folders of `SOURCE_PACKAGES` as imported here (matta_core may be installed outside the checkout)."""
    import matta_core

    core = Path(matta_core.__file__).resolve().parent
    return [core, *(REPO_ROOT / name for name in SOURCE_PACKAGES if name != "matta_core")]


def source_hash(roots: Iterable[Path]) -> str:
    """sha256 over every source file under `roots`: its path relative to its root's parent, then its bytes.

    Byte caches (``__pycache__``, ``*.pyc``) and hidden files are skipped; they change without the code changing.
    """
    digest = hashlib.sha256()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"source folder {root} does not exist; cannot compute the code version")
        for path in sorted(p for p in root.rglob("*") if p.is_file() and _is_source(p.relative_to(root))):
            digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_version(roots: Iterable[Path] | None = None) -> str:
    """``<matta version>+src.<hash>``, e.g. ``0.1.0+src.3f2a9c01d4e5b6a7``."""
    try:
        version = metadata.version("matta")
    except metadata.PackageNotFoundError:
        version = "0+unknown"  # a source checkout that was never installed: the hash still names the code
    digest = source_hash(source_roots() if roots is None else roots)
    return f"{version}+src.{digest[:HASH_CHARS]}"


def _is_source(relative: Path) -> bool:
    parts = relative.parts
    return not any(part == "__pycache__" or part.startswith(".") for part in parts) and relative.suffix != ".pyc"
