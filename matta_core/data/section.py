"""The ``data:`` config section: which data a run reads and how it is split. Importable without torch (the
pipeline's first task reads the data's version from it); `matta_core.config` re-exports it."""

from __future__ import annotations

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
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0)
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    # Keep only the first N training rows (after the deterministic split): quick runs and tests. None = all.
    limit_train_rows: int | None = Field(None, gt=0)
    limit_test_rows: int | None = Field(None, gt=0)

