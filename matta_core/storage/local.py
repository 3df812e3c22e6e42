"""Local-disk backend for plain paths and ``file://`` URIs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from matta_core.storage.atomic import atomic_local_file, is_temp_name
from matta_core.storage.errors import ObjectExistsError, not_found
from matta_core.storage.uri import join, to_local_path

_COPY_CHUNK = 1024 * 1024


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            yield chunk


def _raise(exc: OSError) -> None:
    raise exc


class LocalBackend:
    """Files on the local filesystem; writes are atomic (see ``atomic``)."""

    def exists(self, uri: str) -> bool:
        """True if ``uri`` is a regular file; directories are not objects."""
        return to_local_path(uri).is_file()

    def read_bytes(self, uri: str) -> bytes:
        """The whole file; FileNotFoundError naming ``uri`` if missing."""
        try:
            return to_local_path(uri).read_bytes()
        except FileNotFoundError:
            raise not_found(uri) from None

    def write_bytes(self, uri: str, data: bytes, *, create_only: bool) -> None:
        """Atomically write ``data`` to ``uri``."""
        self.write_chunks(uri, (data,), create_only=create_only)

    def write_chunks(self, uri: str, chunks: Iterable[bytes], *, create_only: bool) -> None:
        """Atomically write the concatenation of ``chunks``; a raising iterable leaves no file and no temp."""
        path = to_local_path(uri)
        # Cheap early refusal before writing a possibly large temp file; os.link in _publish is the guarantee.
        if create_only and path.exists():
            raise ObjectExistsError(uri)
        with atomic_local_file(path, create_only=create_only, uri=uri) as f:
            for chunk in chunks:
                f.write(chunk)

    def upload_file(self, local_path: Path, uri: str, *, create_only: bool) -> None:
        """Atomically copy ``local_path`` to ``uri``."""
        self.write_chunks(uri, _file_chunks(local_path), create_only=create_only)

    def download_file(self, uri: str, local_path: Path) -> None:
        """Atomically copy ``uri`` to ``local_path``."""
        try:
            src = open(to_local_path(uri), "rb")  # noqa: SIM115  (opened here to map the missing case)
        except FileNotFoundError:
            raise not_found(uri) from None
        with src, atomic_local_file(local_path, create_only=False, uri=str(local_path)) as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)

    def list_uris(self, prefix_uri: str) -> list[str]:
        """Files under the directory ``prefix_uri``, recursive, sorted, spelled like ``prefix_uri``.

        A missing directory lists as empty, like an unused GCS prefix. Temp files of in-flight or abandoned
        atomic writes are skipped: they are never complete objects.
        """
        root = to_local_path(prefix_uri)
        if not root.is_dir():
            return []
        found = []
        # onerror=_raise: os.walk silently skips unreadable directories by default, which would hide objects.
        for dirpath, _dirnames, filenames in os.walk(root, onerror=_raise):
            for name in filenames:
                if not is_temp_name(name):
                    rel = os.path.relpath(os.path.join(dirpath, name), root)
                    found.append(join(prefix_uri, *rel.split(os.sep)))
        return sorted(found)

    def delete(self, uri: str) -> None:
        """Remove the file; missing is fine."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(to_local_path(uri))

    def sha256(self, uri: str) -> str:
        """Hex SHA-256, read in chunks so large files are never held in memory."""
        try:
            with open(to_local_path(uri), "rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            raise not_found(uri) from None
