"""Banking77 prepared end to end from the checked-in mirror: the figures the rest of the project relies on."""

from __future__ import annotations

import time
from pathlib import Path

from matta_core.data import load_prepared, prepare_dataset
from tests.data.helpers import MIRROR, banking_categories, read_quarantine

# The data's identity. It changes only if the source files, the validation rules, the split or the canonical
# form change, and every downstream cache keys on it: update it deliberately, never to make a test pass.
BANKING77_CONTENT_HASH = "e00fe3a09ee934142df80cdab45d24c1cff1aff9c74735f7df61059139d53336"


def test_banking77_full_prep_from_mirror(tmp_path: Path) -> None:
    out = tmp_path / "banking77"
    start = time.perf_counter()
    manifest = prepare_dataset("banking77", str(out), mirror_dir=MIRROR)
    seconds = time.perf_counter() - start

    assert manifest.input_rows == {"train": 10003, "test": 3080}
    # 4 duplicate texts within train and 1 within test; 7 train texts also in test.
    assert {r: n for r, n in manifest.quarantine["counts"].items() if n} == {"duplicate": 5, "leaks_into_test": 7}
    assert manifest.quarantine["counts_by_source"] == {
        "test": {"duplicate": 1},
        "train": {"duplicate": 4, "leaks_into_test": 7},
    }
    assert manifest.row_counts == {"train": 8983, "validation": 1009, "test": 3079}
    assert manifest.row_counts["train"] + manifest.row_counts["validation"] + 11 == 10003
    assert list(manifest.label_map) == sorted(banking_categories())
    assert manifest.source["files"]["train"]["url"].startswith("https://raw.githubusercontent.com/PolyAI-LDN/")
    assert manifest.source["license"] == "CC-BY-4.0"
    assert manifest.imbalance["rare_labels"] == []
    assert (manifest.imbalance["min_count"], manifest.imbalance["max_count"]) == (31, 169)
    assert manifest.content_hash == BANKING77_CONTENT_HASH
    assert len(read_quarantine(out)) == 12
    assert seconds < 20

    prepared = load_prepared(str(out))
    assert prepared.test["label"].between(0, 76).all()
    assert not prepared.train["text"].str.contains("\n").any()
