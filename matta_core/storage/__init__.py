"""One small storage interface over URIs: plain paths, ``file://`` and ``gs://``.

Contract, the same for every backend:

- writes are atomic (readers never see a partial object; a failed write leaves nothing behind);
- ``create_only`` writes raise ObjectExistsError if the target exists, and never overwrite it;
- a missing object raises FileNotFoundError naming the URI; other backend failures raise StorageError;
- an unsupported scheme (e.g. ``s3://``) raises InvalidURIError listing the supported ones.

Usage::

    from matta_core import storage

    storage.write_text(storage.join(root_uri, "cache", "key.json"), "{}", create_only=True)
"""

from matta_core.storage.api import (
    delete,
    download_file,
    exists,
    list_uris,
    read_bytes,
    read_text,
    sha256,
    upload_file,
    write_bytes,
    write_chunks,
    write_text,
)
from matta_core.storage.errors import InvalidURIError, ObjectExistsError, StorageError
from matta_core.storage.uri import SUPPORTED_SCHEMES, is_local, join, to_local_path

__all__ = [
    "SUPPORTED_SCHEMES",
    "InvalidURIError",
    "ObjectExistsError",
    "StorageError",
    "delete",
    "download_file",
    "exists",
    "is_local",
    "join",
    "list_uris",
    "read_bytes",
    "read_text",
    "sha256",
    "to_local_path",
    "upload_file",
    "write_bytes",
    "write_chunks",
    "write_text",
]
