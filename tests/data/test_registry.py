"""The dataset registry: mirror, cache and download paths, each with sha256 verification.

The download path runs against a real `http.server` on 127.0.0.1 serving a copy of the mirror, reached through the
`base_url` override (there is no network here, and tests must not depend on GitHub).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from matta_core import storage
from matta_core.data import DATASETS, DatasetIntegrityError, DatasetNotFoundError, fetch_dataset, get_dataset
from matta_core.data.registry import sha256_file
from tests.data.helpers import MIRROR


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder): a local HTTP server over a copy of the mirror, stopped after the test."""
    root = tmp_path / "www"
    shutil.copytree(MIRROR, root)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_registry_pins_every_file_to_a_commit_and_sha256() -> None:
    for spec in DATASETS.values():
        assert spec.license and spec.citation and spec.source
        for f in spec.files:
            assert f.url.startswith("https://raw.githubusercontent.com/")
            assert len(f.sha256) == 64
            assert ("57ec275d8078af65b7731c2a98be812d844a6d6b" in f.url) or (
                "828f8093932c8fe6ca7936c3d2e52903b1c523de" in f.url
            )
    banking = get_dataset("banking77")
    assert (banking.text_column, banking.label_column, banking.test_file) == ("text", "category", "test.csv")
    assert banking.file("train.csv").url.endswith("/banking_data/train.csv")
    assert get_dataset("wiki_sents").file("all_wiki_sents.txt").url.endswith("/data/all_wiki_sents.txt")


def test_registered_sha256_match_the_checked_in_mirror() -> None:
    for spec in DATASETS.values():
        for f in spec.files:
            path = MIRROR / spec.name / f.name
            assert sha256_file(path) == f.sha256, path
            assert path.stat().st_size == f.size


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(DatasetNotFoundError, match=r"Unknown dataset 'bank77'.*banking77, wiki_sents"):
        fetch_dataset("bank77", mirror_dir=MIRROR)


def test_mirror_path_returns_verified_folder_without_copying(tmp_path: Path) -> None:
    folder = fetch_dataset("banking77", mirror_dir=MIRROR, cache_dir=tmp_path / "cache")
    assert folder == MIRROR / "banking77"
    assert not (tmp_path / "cache").exists()
    assert fetch_dataset("wiki_sents", mirror_dir=str(MIRROR)) == MIRROR / "wiki_sents"


def test_mirror_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATTA_DATA_MIRROR", str(MIRROR))
    assert fetch_dataset("banking77") == MIRROR / "banking77"


def test_corrupted_mirror_copy_is_a_clear_error(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR / "banking77", mirror / "banking77")
    test_csv = mirror / "banking77" / "test.csv"
    data = bytearray(test_csv.read_bytes())
    data[100] ^= 0x01  # one flipped bit, as a bad disk or a hand edit would leave
    test_csv.write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError) as err:
        fetch_dataset("banking77", mirror_dir=mirror)
    message = str(err.value)
    assert f"mirror file {test_csv}" in message
    assert "expected d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d" in message
    assert "Replace it with the pinned version" in message


def test_mirror_missing_file_names_the_expected_layout(tmp_path: Path) -> None:
    (tmp_path / "banking77").mkdir()
    shutil.copy(MIRROR / "banking77" / "train.csv", tmp_path / "banking77" / "train.csv")
    with pytest.raises(DatasetIntegrityError, match=r"has no 'test.csv' for dataset 'banking77'.*categories.json"):
        fetch_dataset("banking77", mirror_dir=tmp_path)


def test_download_verifies_and_caches(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, _ = served
    cache = tmp_path / "cache"
    folder = fetch_dataset("banking77", cache_dir=cache, base_url=base_url)
    assert folder == cache / "banking77"
    assert sorted(p.name for p in folder.iterdir()) == ["categories.json", "test.csv", "train.csv"]
    for f in get_dataset("banking77").files:
        assert sha256_file(folder / f.name) == f.sha256


def test_cache_hit_needs_no_network(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, _ = served
    fetch_dataset("wiki_sents", cache_dir=tmp_path, base_url=base_url)
    # A port nothing listens on: any network use would fail.
    dead = "http://127.0.0.1:9"
    assert fetch_dataset("wiki_sents", cache_dir=tmp_path, base_url=dead) == tmp_path / "wiki_sents"


def test_cache_dir_and_base_url_from_environment(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, _ = served
    monkeypatch.setenv("MATTA_CACHE_DIR", str(tmp_path / "matta"))
    monkeypatch.setenv("MATTA_DATASET_BASE_URL", base_url + "/")
    assert fetch_dataset("wiki_sents") == tmp_path / "matta" / "datasets" / "wiki_sents"


def test_corrupted_download_is_rejected_and_nothing_is_kept(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = served
    (root / "wiki_sents" / "all_wiki_sents.txt").write_text("not the pinned file\n", encoding="utf-8")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetIntegrityError) as err:
        fetch_dataset("wiki_sents", cache_dir=cache, base_url=base_url)
    assert "sha256 mismatch for 'all_wiki_sents.txt' fetched for 'wiki_sents'" in str(err.value)
    assert "The copy was discarded" in str(err.value)
    assert list((cache / "wiki_sents").iterdir()) == []  # no file, no .part left behind


def test_damaged_cache_file_is_fetched_again(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, _ = served
    folder = fetch_dataset("wiki_sents", cache_dir=tmp_path, base_url=base_url)
    (folder / "all_wiki_sents.txt").write_text("damaged", encoding="utf-8")
    fetch_dataset("wiki_sents", cache_dir=tmp_path, base_url=base_url)
    assert sha256_file(folder / "all_wiki_sents.txt") == get_dataset("wiki_sents").files[0].sha256


def test_http_error_names_the_url(served: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = served
    (root / "banking77" / "categories.json").unlink()
    with pytest.raises(DatasetIntegrityError, match=r"/banking77/categories.json failed: HTTP 404"):
        fetch_dataset("banking77", cache_dir=tmp_path, base_url=base_url)


def test_unreachable_server_suggests_a_mirror(tmp_path: Path) -> None:
    with pytest.raises(DatasetIntegrityError, match=r"failed: .*point mirror_dir= \(or MATTA_DATA_MIRROR\)"):
        fetch_dataset("wiki_sents", cache_dir=tmp_path, base_url="http://127.0.0.1:9", timeout=2)


def test_remote_mirror_is_copied_into_the_cache(bucket: str, tmp_path: Path) -> None:
    for f in get_dataset("banking77").files:
        storage.upload_file(MIRROR / "banking77" / f.name, storage.join(bucket, "mirror", "banking77", f.name))
    folder = fetch_dataset("banking77", mirror_dir=storage.join(bucket, "mirror"), cache_dir=tmp_path)
    assert folder == tmp_path / "banking77"
    assert sha256_file(folder / "train.csv") == get_dataset("banking77").file("train.csv").sha256
