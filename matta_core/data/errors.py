"""Errors raised by the data layer.

All of them derive from `DataError`, so a caller (a pipeline step, the CLI) can catch the whole family and show the
message, which always says what was wrong, where, and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class DataError(Exception):
    """Base class of every error raised by `matta_core.data`."""


class DatasetNotFoundError(DataError, KeyError):
    """A dataset name that the registry does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DatasetIntegrityError(DataError):
    """A dataset file is missing, could not be downloaded, or its sha256 does not match the registry."""


class DataValidationError(DataError):
    """Input data failed validation: a whole-file problem, or too many bad rows.

    `counts` holds the quarantined rows per reason, `quarantine_uri` the file that lists them (None for whole-file
    problems, where no row was looked at).
    """

    def __init__(
        self,
        message: str,
        *,
        counts: Mapping[str, int] | None = None,
        bad_fraction: float | None = None,
        max_bad_fraction: float | None = None,
        quarantine_uri: str | None = None,
    ) -> None:
        super().__init__(message)
        self.counts = dict(counts or {})
        self.bad_fraction = bad_fraction
        self.max_bad_fraction = max_bad_fraction
        self.quarantine_uri = quarantine_uri


class MissingColumnsError(DataValidationError):
    """A source file lacks a column the schema requires."""

    def __init__(self, file: str, missing: Sequence[str], found: Sequence[str], hint: str = "") -> None:
        found_text = ", ".join(repr(c) for c in found) if found else "(none)"
        message = (
            f"{file}: missing column(s) {', '.join(repr(c) for c in missing)} required by the schema; "
            f"columns found: {found_text}."
        )
        if hint:
            message += f" {hint}"
        super().__init__(message)
        self.file = file
        self.missing = list(missing)
        self.found = list(found)


class EmptyFileError(DataValidationError):
    """A source file with no header and no records at all (0 bytes, or blank lines only)."""

    def __init__(self, file: str, fmt: str, required: Sequence[str]) -> None:
        columns = ", ".join(repr(c) for c in required)
        expected = {
            "csv": f"a header row naming the columns ({columns}), then one row per example",
            "jsonl": f"one JSON object per line with the keys {columns}",
            "parquet": f"a table with the columns {columns}",
        }.get(fmt, f"the columns {columns}")
        super().__init__(f"{file}: the file is empty (no header, no data rows); expected {expected}.")
        self.file = file


class UnseenTestLabelsError(DataValidationError):
    """Test rows whose labels never occur in the training split: no model could predict them.

    `labels` maps each such label to its number of test rows.
    """

    def __init__(self, message: str, *, file: str, labels: Mapping[str, int]) -> None:
        super().__init__(message)
        self.file = file
        self.labels = dict(labels)


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file that does not exist (a `FileNotFoundError` too, for callers that catch that)."""


class UnsupportedFormatError(DataError, ValueError):
    """A data file whose table format is unknown or cannot be told from its name (a `ValueError` too)."""


class IncompletePreparedDataError(DataError):
    """A prepared-data folder without a (valid) manifest.json: the run that wrote it failed or is still running."""
