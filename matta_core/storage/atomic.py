"""Atomic creation of local files: write a hidden temp file beside the target, fsync, then publish it.

Publishing is ``os.replace`` (overwrite) or ``os.link`` (create-only: the kernel refuses an existing target, so
two concurrent create-only writers cannot both win). Readers therefore see either the old file, or the complete
new one, never a prefix. Temp files carry ``TEMP_MARKER`` so listings can skip litter left by a killed process.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from matta_core.storage.errors import ObjectExistsError, StorageError

TEMP_MARKER = ".matta-tmp-"
# Keeps "<name><marker><32 hex>" under the usual 255-byte file-name limit for long target names.
_MAX_NAME_PREFIX = 150


def is_temp_name(name: str) -> bool:
    """True for the name of an in-flight (or abandoned) temp file made by ``atomic_local_file``."""
    return name.startswith(".") and TEMP_MARKER in name


@contextlib.contextmanager
def atomic_local_file(path: Path, *, create_only: bool, uri: str) -> Iterator[BinaryIO]:
    """Yield a binary file whose content appears at ``path`` only if the ``with`` block completes.

    Parent directories are created. On any exception the temp file is removed and ``path`` is untouched.
    ``uri`` is the name used in errors (the caller's spelling of ``path``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name[:_MAX_NAME_PREFIX]}{TEMP_MARKER}{uuid.uuid4().hex}")
    # os.open with 0o666 (not mkstemp's 0o600) so the published file gets the usual umask-derived mode.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path, create_only=create_only, uri=uri)
    finally:
        # After os.replace the temp name is gone; after os.link or a failure it is litter to remove.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _publish(tmp: Path, path: Path, *, create_only: bool, uri: str) -> None:
    if create_only:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ObjectExistsError(uri) from None
        except OSError as exc:
            raise StorageError(
                f"Cannot create {uri} create-only: this filesystem refused a hard link ({exc}); "
                "create_only needs a filesystem with hard links"
            ) from exc
    else:
        os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the new directory entry durable across a power loss; best effort, as not every platform allows it.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def usual_mode(path: Path) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would (0o666 / 0o777 less the umask).

    For files made by writers that create them private (safetensors' ``save_file`` and ``mkstemp``: 0o600;
    ``mkdtemp``: 0o700): a published model or checkpoint must be readable by whoever may read its folder (a
    serving process, the user who ran the pipeline's containers) like every other artifact.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)

