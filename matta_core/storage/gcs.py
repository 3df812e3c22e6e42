"""Google Cloud Storage backend for ``gs://bucket/key`` URIs.

Atomicity: every upload goes straight to the final object name in one request (multipart, up to 8 MiB) or one
resumable session (larger or streamed data). GCS makes an object visible only when its upload is finalised, so
readers never see a partial object, and an upload that fails mid-way leaves nothing (the unfinished session
simply expires).

Create-only: the upload carries ``if_generation_match=0`` and GCS answers 412 if the object exists; that
precondition is the real guarantee against concurrent writers. The layer also checks ``exists`` first, which
saves a wasted upload and keeps create_only correct against the GCS emulator, which ignores preconditions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Literal

import requests
from google.api_core.exceptions import GoogleAPICallError, NotFound, PreconditionFailed
from google.auth.exceptions import GoogleAuthError
from google.cloud.storage import Blob
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from matta_core.storage.atomic import atomic_local_file
from matta_core.storage.errors import InvalidURIError, ObjectExistsError, StorageError, not_found
from matta_core.storage.gcs_client import get_client
from matta_core.storage.uri import split_gcs

#: Chunk size of streamed (unknown-size) uploads: the bytes held in memory and sent per request.
#: GCS requires a multiple of 256 KiB.
STREAM_CHUNK_SIZE = 8 * 1024 * 1024

_TRANSPORT_ERRORS = (GoogleAPICallError, GoogleAuthError, requests.RequestException, InvalidResponse, DataCorruption)


@contextlib.contextmanager
def _gcs_errors(uri: str, action: str, *, missing: Literal["object", "bucket"] = "object") -> Iterator[None]:
    """Translate google-cloud errors into the layer's exceptions, naming ``uri``.

    ``missing`` says what a 404 means: a missing object when reading, a missing bucket when writing.
    """
    try:
        yield
    except NotFound as exc:
        if missing == "object":
            raise not_found(uri) from exc
        raise StorageError(f"Cannot {action} {uri}: the bucket does not exist ({exc.message})") from exc
    except PreconditionFailed as exc:
        raise ObjectExistsError(uri) from exc
    except _TRANSPORT_ERRORS as exc:
        raise StorageError(f"Cannot {action} {uri}: {exc}") from exc


class _IterableReader:
    """A read-only stream over an iterable of byte chunks, for resumable uploads of unknown size.

    ``read(n)`` returns exactly ``n`` bytes until the iterable ends: the resumable uploader treats a short read
    as end of data, so a ``RawIOBase``-style partial read would silently truncate the object.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._position = 0
        self._exhausted = False

    def read(self, size: int = -1) -> bytes:
        while not self._exhausted and (size < 0 or len(self._buffer) < size):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
            else:
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._position += len(out)
        return out

    def tell(self) -> int:
        return self._position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class _HashingSink:
    """A write-only stream that hashes what is written, so ``sha256`` never holds the object in memory."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return len(data)


class GCSBackend:
    """Objects in Google Cloud Storage (or the emulator named by ``STORAGE_EMULATOR_HOST``)."""

    def _blob(self, uri: str) -> Blob:
        bucket, key = split_gcs(uri)
        if not key or key.endswith("/"):
            raise InvalidURIError(f"{uri!r} names a bucket or prefix, not an object (expected gs://bucket/key)")
        return get_client().bucket(bucket).blob(key)

    def exists(self, uri: str) -> bool:
        """True if the object exists (False as well when the bucket is missing)."""
        blob = self._blob(uri)
        with _gcs_errors(uri, "check existence of"):
            return bool(blob.exists())

    def read_bytes(self, uri: str) -> bytes:
        """The whole object; FileNotFoundError naming ``uri`` if it (or its bucket) is missing."""
        blob = self._blob(uri)
        with _gcs_errors(uri, "read"):
            return bytes(blob.download_as_bytes())

    def write_bytes(self, uri: str, data: bytes, *, create_only: bool) -> None:
        """Upload ``data`` in one request (resumable above 8 MiB)."""
        self._upload(uri, io.BytesIO(data), len(data), create_only=create_only)

    def write_chunks(self, uri: str, chunks: Iterable[bytes], *, create_only: bool) -> None:
        """Stream ``chunks`` through one resumable session; if the iterable raises, no object is created."""
        self._upload(uri, _IterableReader(chunks), None, create_only=create_only, chunk_size=STREAM_CHUNK_SIZE)

    def upload_file(self, local_path: Path, uri: str, *, create_only: bool) -> None:
        """Upload the local file, streamed from disk."""
        with open(local_path, "rb") as f:
            self._upload(uri, f, os.fstat(f.fileno()).st_size, create_only=create_only)

    def _upload(
        self,
        uri: str,
        stream: IO[bytes] | _IterableReader,
        size: int | None,
        *,
        create_only: bool,
        chunk_size: int | None = None,
    ) -> None:
        """The single place every write goes through, so the create-only rules live in one spot."""
        blob = self._blob(uri)
        if chunk_size is not None:
            blob.chunk_size = chunk_size
        if create_only and self.exists(uri):
            raise ObjectExistsError(uri)
        with _gcs_errors(uri, "write", missing="bucket"):
            blob.upload_from_file(stream, size=size, if_generation_match=0 if create_only else None)

    def download_file(self, uri: str, local_path: Path) -> None:
        """Stream the object into a temp file beside ``local_path``, published only when complete."""
        blob = self._blob(uri)
        with (
            _gcs_errors(uri, "download"),
            atomic_local_file(local_path, create_only=False, uri=str(local_path)) as f,
        ):
            blob.download_to_file(f)

    def list_uris(self, prefix_uri: str) -> list[str]:
        """Objects under ``prefix_uri`` treated as a directory (``gs://b/a`` lists ``a/...``, not ``ab``).

        A missing bucket is a StorageError, not an empty listing: it is a configuration mistake.
        """
        bucket, key = split_gcs(prefix_uri)
        prefix = key.strip("/") + "/" if key.strip("/") else ""
        with _gcs_errors(prefix_uri, "list", missing="bucket"):
            names = [b.name for b in get_client().list_blobs(bucket, prefix=prefix)]
        # Names ending in "/" are folder placeholders made by the console, not objects with content.
        return sorted(f"gs://{bucket}/{name}" for name in names if not name.endswith("/"))

    def delete(self, uri: str) -> None:
        """Delete the object; missing is fine."""
        blob = self._blob(uri)
        with contextlib.suppress(FileNotFoundError), _gcs_errors(uri, "delete"):
            blob.delete()

    def sha256(self, uri: str) -> str:
        """Hex SHA-256 of the object, hashed as the download streams."""
        blob = self._blob(uri)
        sink = _HashingSink()
        with _gcs_errors(uri, "hash"):
            blob.download_to_file(sink)
        return sink.digest.hexdigest()
