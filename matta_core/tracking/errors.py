"""The one error type of the tracking seam: the tracking store cannot be used as configured."""

from __future__ import annotations


class TrackingError(RuntimeError):
    """A tracking store that is unreachable, unwritable or inconsistent; the message says which and what to do."""
