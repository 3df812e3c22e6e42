"""`load_inputs`: a prepared folder is verified in full once per process, and again whenever it changed.

The evaluation task loads the same folder once per model; recomputing its content hash each time cost ~0.1 s a
load. These tests check that the shortcut never serves stale or tampered data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from matta_core.config import DataSection
from matta_core.data import IncompletePreparedDataError, prepare_dataset
from matta_core.families.classifier import inputs as inputs_module
from matta_core.families.classifier.inputs import load_inputs
from tests.data.helpers import banking_rows, write_csv


@pytest.fixture
def prepared(tmp_path: Path) -> str:
    """A prepared folder of 400 real Banking77 rows."""
    out = tmp_path / "prepared"
    prepare_dataset(str(write_csv(tmp_path / "in.csv", banking_rows()[::25][:400])), str(out))
    return str(out)


@pytest.fixture
def full_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders `load_inputs` verified in full (read, sha256 and content hash), in order."""
    calls: list[str] = []
    real = inputs_module.load_prepared

    def counted(uri: str) -> object:
        calls.append(uri)
        return real(uri)

    monkeypatch.setattr(inputs_module, "load_prepared", counted)
    monkeypatch.setattr(inputs_module, "_VERIFIED", {})
    return calls


def test_an_unchanged_folder_is_verified_once_and_gives_the_same_rows(prepared: str, full_loads: list[str]) -> None:
    first = load_inputs(prepared, DataSection())
    first.splits["test"].labels[:] = -1  # a caller scribbling on its copy must not reach the next one
    first.splits["test"].texts.clear()
    second = load_inputs(prepared, DataSection(limit_test_rows=50))
    assert full_loads == [prepared]
    frame = pd.read_parquet(Path(prepared) / "test.parquet")
    assert second.splits["test"].texts == frame["text"].tolist()[:50]
    assert second.splits["test"].labels.tolist() == frame["label"].tolist()[:50]
    assert second.content_hash == first.content_hash


def test_a_changed_split_file_is_caught_after_the_first_load(prepared: str, full_loads: list[str]) -> None:
    load_inputs(prepared, DataSection())
    path = Path(prepared) / "validation.parquet"
    frame = pd.read_parquet(path)
    frame.loc[0, "label"] = (frame.loc[0, "label"] + 1) % 77
    frame.to_parquet(path, index=False)
    with pytest.raises(IncompletePreparedDataError, match=r"validation.parquet does not match manifest.json"):
        load_inputs(prepared, DataSection())
    assert full_loads == [prepared, prepared]


def test_a_folder_prepared_again_with_other_rows_is_loaded_again(
    prepared: str, tmp_path: Path, full_loads: list[str]
) -> None:
    before = load_inputs(prepared, DataSection())
    prepare_dataset(str(write_csv(tmp_path / "other.csv", banking_rows()[1::25][:400])), prepared)
    after = load_inputs(prepared, DataSection())
    assert after.content_hash != before.content_hash
    assert full_loads == [prepared, prepared]
    assert after.splits["train"].texts == pd.read_parquet(Path(prepared) / "train.parquet")["text"].tolist()
