"""Exceptions raised by the storage layer.

Callers catch these instead of backend-specific ones (``google.api_core`` errors, ``OSError`` variants), so that
code written against a local path behaves the same against ``gs://``.
"""

from __future__ import annotations

import errno


class StorageError(RuntimeError):
    """A storage operation failed; the message names the URI and what went wrong."""


class InvalidURIError(StorageError, ValueError):
    """A URI is malformed, uses an unsupported scheme, or does not fit the operation asked of it."""


class ObjectExistsError(FileExistsError):
    """A ``create_only`` write found its target already present; nothing was written."""

    def __init__(self, uri: str) -> None:
        super().__init__(errno.EEXIST, "Object already exists (create_only write refused)", uri)


def not_found(uri: str) -> FileNotFoundError:
    """Build the ``FileNotFoundError`` every backend raises for a missing object, naming its URI."""
    return FileNotFoundError(errno.ENOENT, "No such object", uri)
