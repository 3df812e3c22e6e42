"""The public storage functions: pick a backend by URI scheme and delegate to it."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from matta_core.storage.base import Backend
from matta_core.storage.local import LocalBackend
from matta_core.storage.uri import GCS_SCHEME, scheme_of

_LOCAL = LocalBackend()


@functools.cache
def _gcs_backend() -> Backend:
    # Imported on first gs:// use: local-only runs (tests, data prep on disk) skip loading google-cloud.
    from matta_core.storage.gcs import GCSBackend

    return GCSBackend()


def backend_for(uri: str) -> Backend:
    """The backend serving ``uri``; InvalidURIError (listing the supported schemes) for any other scheme."""
    return _gcs_backend() if scheme_of(uri) == GCS_SCHEME else _LOCAL


def exists(uri: str) -> bool:
    """True if an object exists at ``uri`` (locally: a regular file; directories are not objects)."""
    return backend_for(uri).exists(uri)


def read_bytes(uri: str) -> bytes:
    """Return the whole content of ``uri``; FileNotFoundError naming ``uri`` if it is missing."""
    return backend_for(uri).read_bytes(uri)


def write_bytes(uri: str, data: bytes, *, create_only: bool = False) -> None:
    """Atomically write ``data`` to ``uri``: readers see the old content or all of the new, never a part.

    Parent directories are created as needed. With ``create_only`` an existing target raises
    ObjectExistsError and is left untouched.
    """
    backend_for(uri).write_bytes(uri, bytes(data), create_only=create_only)


def write_chunks(uri: str, chunks: Iterable[bytes], *, create_only: bool = False) -> None:
    """Atomically write the concatenation of ``chunks`` without holding it all in memory.

    If the iterable raises part-way, nothing appears at ``uri`` and the exception propagates unchanged.
    """
    backend_for(uri).write_chunks(uri, chunks, create_only=create_only)


def read_text(uri: str) -> str:
    """Return the content of ``uri`` decoded as UTF-8."""
    return read_bytes(uri).decode("utf-8")


def write_text(uri: str, text: str, *, create_only: bool = False) -> None:
    """Atomically write ``text`` encoded as UTF-8 (see ``write_bytes``)."""
    write_bytes(uri, text.encode("utf-8"), create_only=create_only)


def upload_file(local_path: str | Path, uri: str, *, create_only: bool = False) -> None:
    """Atomically copy the local file ``local_path`` to ``uri`` (which may itself be local)."""
    backend_for(uri).upload_file(Path(local_path), uri, create_only=create_only)


def download_file(uri: str, local_path: str | Path) -> None:
    """Copy ``uri`` to the local file ``local_path``, streamed; the file appears only once complete."""
    backend_for(uri).download_file(uri, Path(local_path))


def list_uris(prefix_uri: str) -> list[str]:
    """Every object under the directory-like ``prefix_uri``, recursive, sorted, as full URIs.

    ``gs://b/a`` lists ``gs://b/a/...`` but not ``gs://b/ab``; a missing local directory lists as empty.
    """
    return backend_for(prefix_uri).list_uris(prefix_uri)


def delete(uri: str) -> None:
    """Delete the object at ``uri``; a missing object is not an error."""
    backend_for(uri).delete(uri)


def sha256(uri: str) -> str:
    """Hex SHA-256 digest of the content of ``uri``, computed while streaming it."""
    return backend_for(uri).sha256(uri)
