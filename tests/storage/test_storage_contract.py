"""The storage contract, run identically against a plain path, a file:// URI and gs:// on the real emulator."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from matta_core import storage
from tests.storage.conftest import TEST_STREAM_CHUNK, local_files


def test_bytes_and_text_round_trip(root: str) -> None:
    uri = storage.join(root, "a", "b", "blob.bin")
    assert not storage.exists(uri)
    storage.write_bytes(uri, b"\x00\x01payload")
    assert storage.exists(uri)
    assert storage.read_bytes(uri) == b"\x00\x01payload"

    text_uri = storage.join(root, "t.txt")
    storage.write_text(text_uri, "héllo ✓\n")
    assert storage.read_text(text_uri) == "héllo ✓\n"


def test_overwrite_replaces_content(root: str) -> None:
    uri = storage.join(root, "x")
    storage.write_bytes(uri, b"first version, longer")
    storage.write_bytes(uri, b"second")
    assert storage.read_bytes(uri) == b"second"


def test_empty_object(root: str) -> None:
    uri = storage.join(root, "empty")
    storage.write_bytes(uri, b"")
    assert storage.exists(uri)
    assert storage.read_bytes(uri) == b""
    assert storage.sha256(uri) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("total", [0, 10, TEST_STREAM_CHUNK, 2 * TEST_STREAM_CHUNK + 12345])
def test_write_chunks_round_trip(root: str, total: int) -> None:
    # Sizes cover: nothing, one short request, an exact chunk multiple (finalised by an empty last request on
    # GCS), and several uneven chunks.
    data = os.urandom(total)
    uri = storage.join(root, "streamed.bin")
    storage.write_chunks(uri, (data[i : i + 7001] for i in range(0, total, 7001)))
    assert storage.read_bytes(uri) == data


def _fails_midway(first: bytes) -> Iterator[bytes]:
    yield first
    raise RuntimeError("producer crashed")


def test_failed_write_leaves_no_object_and_no_litter(root: str) -> None:
    # More than one GCS chunk is sent before the failure, so the resumable session really is part-way.
    uri = storage.join(root, "dir", "target.bin")
    with pytest.raises(RuntimeError, match="producer crashed"):
        storage.write_chunks(uri, _fails_midway(os.urandom(TEST_STREAM_CHUNK + 1000)))
    assert not storage.exists(uri)
    assert storage.list_uris(root) == []
    assert local_files(root) == []


def test_failed_overwrite_keeps_previous_content(root: str) -> None:
    uri = storage.join(root, "target.bin")
    storage.write_bytes(uri, b"old")
    with pytest.raises(RuntimeError):
        storage.write_chunks(uri, _fails_midway(os.urandom(TEST_STREAM_CHUNK + 1000)))
    assert storage.read_bytes(uri) == b"old"
    assert storage.list_uris(root) == [uri]
    assert len(local_files(root)) in (0, 1)  # gs: nothing local; local: only the target itself


def test_create_only_refuses_existing_target(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "once.json")
    storage.write_text(uri, "winner", create_only=True)
    source = tmp_path / "src.txt"
    source.write_text("loser")
    attempts = [
        lambda: storage.write_bytes(uri, b"loser", create_only=True),
        lambda: storage.write_text(uri, "loser", create_only=True),
        lambda: storage.write_chunks(uri, [b"lo", b"ser"], create_only=True),
        lambda: storage.upload_file(source, uri, create_only=True),
    ]
    for attempt in attempts:
        with pytest.raises(storage.ObjectExistsError) as info:
            attempt()
        assert uri in str(info.value)
        assert isinstance(info.value, FileExistsError)
    assert storage.read_text(uri) == "winner"
    assert storage.list_uris(root) == [uri]
    assert local_files(root) in ([], ["once.json"])


def test_upload_and_download_round_trip(root: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    uri = storage.join(root, "models", "weights.bin")
    storage.upload_file(source, uri)
    assert storage.read_bytes(uri) == data

    target = tmp_path / "out" / "nested" / "copy.bin"
    storage.download_file(uri, target)
    assert target.read_bytes() == data
    storage.download_file(uri, str(target))  # overwrites, and accepts str
    assert target.read_bytes() == data
    assert sorted(os.listdir(target.parent)) == ["copy.bin"]


def test_list_uris_is_recursive_sorted_and_directory_scoped(root: str) -> None:
    for rel in ["a/z/3", "b/2", "a/1", "ab", "a/y"]:
        storage.write_bytes(storage.join(root, rel), rel.encode())
    expected_a = [storage.join(root, rel) for rel in ["a/1", "a/y", "a/z/3"]]
    assert storage.list_uris(storage.join(root, "a")) == expected_a  # "ab" shares the prefix but not the dir
    assert storage.list_uris(storage.join(root, "a") + "/") == expected_a
    assert storage.list_uris(root) == [storage.join(root, r) for r in ["a/1", "a/y", "a/z/3", "ab", "b/2"]]
    assert storage.list_uris(storage.join(root, "missing")) == []
    for listed in storage.list_uris(root):
        assert storage.exists(listed)


def test_sha256_matches_hashlib(root: str) -> None:
    data = os.urandom(1_000_003)
    uri = storage.join(root, "hash.bin")
    storage.write_bytes(uri, data)
    assert storage.sha256(uri) == hashlib.sha256(data).hexdigest()


def test_delete_is_idempotent(root: str) -> None:
    uri = storage.join(root, "d", "gone.txt")
    storage.write_text(uri, "x")
    storage.delete(uri)
    assert not storage.exists(uri)
    storage.delete(uri)  # already gone: fine
    storage.delete(storage.join(root, "never", "existed"))


def test_missing_object_errors_name_the_uri(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "no", "such.bin")
    target = tmp_path / "dl" / "such.bin"
    for call in (
        lambda: storage.read_bytes(uri),
        lambda: storage.read_text(uri),
        lambda: storage.sha256(uri),
        lambda: storage.download_file(uri, target),
    ):
        with pytest.raises(FileNotFoundError) as info:
            call()
        assert info.value.filename == uri
        assert uri in str(info.value)
    assert not target.exists()
    assert not target.parent.exists() or os.listdir(target.parent) == []


def test_join_builds_usable_uris(root: str) -> None:
    assert storage.join(root, "x", "y") == f"{root}/x/y"
    assert storage.join(root + "/", "/x/", "y/") == f"{root}/x/y"
    storage.write_text(storage.join(root, "x", "y"), "ok")
    assert storage.read_text(f"{root}/x/y") == "ok"
