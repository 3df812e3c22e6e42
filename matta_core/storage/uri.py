"""Pure string handling of storage URIs: scheme detection, joining, and mapping local URIs to paths.

Three forms are supported: plain paths (``data/x``, ``/abs/x``), ``file:///abs/x`` and ``gs://bucket/key``.
``file://`` URIs are taken literally (no percent-decoding), so that ``join`` and ``to_local_path`` round-trip
the strings pipelines build by concatenation.
"""

from __future__ import annotations

import re
from pathlib import Path

from matta_core.storage.errors import InvalidURIError

GCS_SCHEME = "gs"
FILE_SCHEME = "file"
#: Schemes accepted by the layer; a plain path has no scheme.
SUPPORTED_SCHEMES: tuple[str, ...] = (FILE_SCHEME, GCS_SCHEME)

# Only "<scheme>://" counts as a scheme, so Windows-like "C:\x" or "a:b" file names stay plain paths.
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _supported_text() -> str:
    return ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES) + " and plain paths"


def scheme_of(uri: str) -> str:
    """Return the lower-cased scheme of ``uri`` (``""`` for a plain path); reject unsupported schemes."""
    if not isinstance(uri, str) or not uri:
        raise InvalidURIError(f"Storage URI must be a non-empty string, got {uri!r}")
    match = _SCHEME_RE.match(uri)
    if match is None:
        return ""
    scheme = match.group(1).lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise InvalidURIError(f"Unsupported URI scheme {scheme + '://'!r} in {uri!r}; supported: {_supported_text()}")
    return scheme


def is_local(uri: str) -> bool:
    """True for plain paths and ``file://`` URIs, False for ``gs://``; unknown schemes raise InvalidURIError."""
    return scheme_of(uri) != GCS_SCHEME


def to_local_path(uri: str) -> Path:
    """Map a plain path or ``file://`` URI to a ``Path``.

    ``file://`` URIs must be absolute (``file:///abs`` or ``file://localhost/abs``). A ``gs://`` URI raises
    InvalidURIError: remote objects have no local path, use ``download_file`` instead.
    """
    scheme = scheme_of(uri)
    if scheme == "":
        return Path(uri)
    if scheme == GCS_SCHEME:
        raise InvalidURIError(f"{uri!r} is not a local path; use download_file() to get a local copy")
    rest = uri[len("file://") :]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost") :]
    if not rest.startswith("/"):
        raise InvalidURIError(f"file:// URIs must be absolute and on this host (file:///abs/path), got {uri!r}")
    return Path(rest)


def split_gcs(uri: str) -> tuple[str, str]:
    """Split ``gs://bucket/key`` into ``(bucket, key)``; the key may be empty (the bucket root)."""
    if scheme_of(uri) != GCS_SCHEME:
        raise InvalidURIError(f"Not a gs:// URI: {uri!r}")
    bucket, _, key = uri[len("gs://") :].partition("/")
    if not bucket:
        raise InvalidURIError(f"gs:// URI has no bucket name: {uri!r} (expected gs://bucket/key)")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    """Append path segments to a URI with single ``/`` separators.

    ``join("gs://b/a", "x", "y") == "gs://b/a/x/y"``; plain paths and ``file://`` URIs join the same way.
    Leading and trailing slashes of each part are dropped, so an absolute-looking part never silently
    discards the base (unlike ``os.path.join``). Empty parts are skipped.
    """
    scheme_of(uri)  # fail early, at the line that built the bad URI, not at first use
    segments = [p.strip("/") for p in parts]
    tail = "/".join(s for s in segments if s)
    if not tail:
        return uri
    return uri + tail if uri.endswith("/") else f"{uri}/{tail}"
