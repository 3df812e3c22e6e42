"""The backend protocol: what one storage system (local disk, GCS) must provide.

Backends receive full URIs (not bare paths or keys) so every error they raise can name what the caller passed.
The public functions in ``api`` pick a backend by URI scheme and add nothing but dispatch and text encoding.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol


class Backend(Protocol):
    """Operations every storage backend implements, with the semantics documented in ``matta_core.storage``."""

    def exists(self, uri: str) -> bool:
        """True if an object (a regular file, locally) exists at ``uri``."""
        ...

    def read_bytes(self, uri: str) -> bytes:
        """The whole content of ``uri``; FileNotFoundError naming ``uri`` if it is missing."""
        ...

    def write_bytes(self, uri: str, data: bytes, *, create_only: bool) -> None:
        """Atomically write ``data`` to ``uri``."""
        ...

    def write_chunks(self, uri: str, chunks: Iterable[bytes], *, create_only: bool) -> None:
        """Atomically write the concatenation of ``chunks``; if the iterable raises, nothing is written."""
        ...

    def upload_file(self, local_path: Path, uri: str, *, create_only: bool) -> None:
        """Atomically copy the local file ``local_path`` to ``uri``."""
        ...

    def download_file(self, uri: str, local_path: Path) -> None:
        """Copy ``uri`` to ``local_path``, which appears only once complete."""
        ...

    def list_uris(self, prefix_uri: str) -> list[str]:
        """Every object under the directory-like ``prefix_uri``, recursive, sorted."""
        ...

    def delete(self, uri: str) -> None:
        """Remove ``uri``; a missing object is not an error."""
        ...

    def sha256(self, uri: str) -> str:
        """Hex SHA-256 of the content of ``uri``, computed while streaming."""
        ...
