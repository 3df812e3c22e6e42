"""The ``data:`` config section: which data a run reads and how it is split. Importable without torch (the
pipeline's first task reads the data's version from it); `matta_core.config` re-exports it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from matta_core.config_base import Section


class DataSection(Section):
    # A registered data set name ("banking77") or a CSV/JSONL/Parquet file URI (path, file://, gs://).
    source: str = "banking77"
    test_source: str | None = None
    # Offline mirror of the registered data sets (tests, CI, air-gapped clusters); None downloads and verifies.
    mirror_dir: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    # Fail the run when more than this share of the input rows is quarantined (each is listed, with its reason,
    # in the prepared folder's quarantine.jsonl; the prepare step prints the counts per reason).
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0)
    # Text or labels holding control characters other than tab, newline and CR (NUL, ESC, DEL, U+0080-U+009F:
    # signs of binary data or a wrong encoding). "quarantine" (the safe default) sets such rows aside as
    # `control_chars`; "clean" keeps them with whitespace-like controls turned into spaces and the others removed,
    # and warns with the number of rows cleaned.
    control_chars: Literal["quarantine", "clean"] = "quarantine"
    # Test rows (of test_source, or a registered data set's test file) whose label no training row has: a model
    # cannot predict them. "error" stops the run naming the labels, their row counts and the file; "drop"
    # quarantines them as `unseen_test_label`; "keep" evaluates them anyway (always wrong) and warns.
    unseen_test_labels: Literal["error", "drop", "keep"] = "error"
    # Warn about labels with fewer training rows than this, and about more labels than the data supports (fewer
    # than this many training rows per label on average). 5: below it a label is rarely learned at all.
    min_rows_per_label: int = Field(5, ge=1)
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    # Keep only the first N training rows (after the deterministic split): quick runs and tests. None = all.
    limit_train_rows: int | None = Field(None, gt=0)
    limit_test_rows: int | None = Field(None, gt=0)

