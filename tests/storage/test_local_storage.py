"""Local-backend specifics and the pure URI helpers (no emulator needed)."""

from __future__ import annotations

import os
import stat
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from matta_core import storage
from matta_core.storage import atomic
from matta_core.storage.atomic import TEMP_MARKER


@pytest.mark.parametrize(
    ("base", "parts", "expected"),
    [
        ("gs://b/a", ("x", "y"), "gs://b/a/x/y"),
        ("gs://b", ("x",), "gs://b/x"),
        ("gs://b/", ("x",), "gs://b/x"),
        ("gs://b/a/", ("/x/", "y/"), "gs://b/a/x/y"),
        ("gs://b/a", ("x/y", "z"), "gs://b/a/x/y/z"),
        ("gs://b/a", (), "gs://b/a"),
        ("gs://b/a", ("", "x", "/"), "gs://b/a/x"),
        ("data/raw", ("x",), "data/raw/x"),
        ("/abs/dir", ("/not/reset",), "/abs/dir/not/reset"),  # unlike os.path.join
        ("/", ("x",), "/x"),
        ("file:///abs", ("x", "y"), "file:///abs/x/y"),
        ("file:///", ("x",), "file:///x"),
    ],
)
def test_join(base: str, parts: tuple[str, ...], expected: str) -> None:
    assert storage.join(base, *parts) == expected


@pytest.mark.parametrize(
    "call",
    [
        lambda: storage.exists("s3://bucket/key"),
        lambda: storage.read_bytes("s3://bucket/key"),
        lambda: storage.write_bytes("s3://bucket/key", b""),
        lambda: storage.list_uris("s3://bucket/"),
        lambda: storage.join("s3://bucket", "x"),
        lambda: storage.is_local("s3://bucket/key"),
    ],
)
def test_unknown_scheme_is_rejected_with_the_supported_list(call: Callable[[], object]) -> None:
    with pytest.raises(storage.InvalidURIError) as info:
        call()
    message = str(info.value)
    assert "s3://" in message
    assert "gs://" in message and "file://" in message and "plain paths" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, storage.StorageError)


def test_is_local_and_to_local_path(tmp_path: Path) -> None:
    assert storage.is_local("relative/dir") and storage.is_local("/abs") and storage.is_local("file:///abs")
    assert not storage.is_local("gs://b/k")
    assert storage.to_local_path("rel/x") == Path("rel/x")
    assert storage.to_local_path(f"file://{tmp_path}/x") == tmp_path / "x"
    assert storage.to_local_path("file://localhost/abs/x") == Path("/abs/x")
    # "C:" is a drive-like prefix, not a scheme: only "<scheme>://" counts.
    assert storage.to_local_path("C:x") == Path("C:x")


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("gs://b/k", "download_file"),
        ("file://relative/x", "absolute"),
        ("file://otherhost/x", "absolute"),
        ("", "non-empty"),
    ],
)
def test_to_local_path_rejects_non_local(uri: str, fragment: str) -> None:
    with pytest.raises(storage.InvalidURIError, match=fragment):
        storage.to_local_path(uri)


def _crashing_fsync(fd: int) -> None:
    raise OSError(5, "simulated disk failure during fsync")


def test_crash_before_publish_leaves_no_target_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The "crash" hits after the content is written but before it is published, the last moment it can.
    target = tmp_path / "out" / "model.bin"
    storage.write_bytes(str(target), b"previous")
    monkeypatch.setattr(atomic.os, "fsync", _crashing_fsync)
    with pytest.raises(OSError, match="simulated disk failure"):
        storage.write_bytes(str(target), b"new content")
    with pytest.raises(OSError, match="simulated disk failure"):
        storage.write_bytes(str(tmp_path / "out" / "fresh.bin"), b"new", create_only=True)
    assert target.read_bytes() == b"previous"
    assert os.listdir(target.parent) == ["model.bin"]


def test_create_only_loses_a_race_that_starts_after_its_existence_check(tmp_path: Path) -> None:
    # Another writer publishes the target while ours is still streaming: the hard link, not the early
    # existence check, must refuse, keep the other writer's content and clean up our temp file.
    target = tmp_path / "key.json"

    def chunks_with_rival() -> Iterator[bytes]:
        yield b"ours, "
        storage.write_text(str(target), "theirs")
        yield b"too late"

    with pytest.raises(storage.ObjectExistsError):
        storage.write_chunks(str(target), chunks_with_rival(), create_only=True)
    assert target.read_text() == "theirs"
    assert os.listdir(tmp_path) == ["key.json"]


def test_concurrent_create_only_writers_have_exactly_one_winner(tmp_path: Path) -> None:
    target = str(tmp_path / "cache" / "entry.bin")
    barrier = threading.Barrier(8)
    outcomes: dict[int, str] = {}

    def writer(i: int) -> None:
        barrier.wait()
        try:
            storage.write_bytes(target, f"writer {i}".encode(), create_only=True)
            outcomes[i] = "won"
        except storage.ObjectExistsError:
            outcomes[i] = "refused"

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1 and len(outcomes) == 8
    assert storage.read_bytes(target) == f"writer {winners[0]}".encode()
    assert os.listdir(tmp_path / "cache") == ["entry.bin"]


def test_written_files_get_the_usual_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        storage.write_bytes(str(tmp_path / "f"), b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_listing_skips_abandoned_temp_files_and_keeps_the_uri_form(tmp_path: Path) -> None:
    storage.write_bytes(str(tmp_path / "d" / "real.bin"), b"x")
    (tmp_path / "d" / f".real.bin{TEMP_MARKER}0123abcd").write_bytes(b"partial")  # a killed writer's litter
    (tmp_path / "d" / ".hidden").write_bytes(b"kept: not ours")
    d = tmp_path / "d"
    assert storage.list_uris(str(d)) == [str(d / ".hidden"), str(d / "real.bin")]
    assert storage.list_uris(f"file://{tmp_path}") == [f"file://{d}/.hidden", f"file://{d}/real.bin"]


def test_directories_are_not_objects(tmp_path: Path) -> None:
    storage.write_bytes(str(tmp_path / "d" / "f"), b"x")
    assert not storage.exists(str(tmp_path / "d"))
    assert storage.list_uris(str(tmp_path / "d" / "f")) == []  # a file is not a directory prefix


def test_sha256_streams_large_files(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(32):
            f.write(os.urandom(1024 * 1024))
    tracemalloc.start()
    try:
        storage.sha256(str(big))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # the 32 MiB file was never held whole


def test_upload_of_missing_local_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    with pytest.raises(FileNotFoundError) as info:
        storage.upload_file(missing, str(tmp_path / "dst"))
    assert str(missing) in str(info.value)
    assert not (tmp_path / "dst").exists()


def test_failed_download_keeps_the_existing_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage.write_bytes(str(tmp_path / "src"), b"new")
    dst = tmp_path / "dst"
    dst.write_bytes(b"old")
    monkeypatch.setattr(atomic.os, "fsync", _crashing_fsync)
    with pytest.raises(OSError, match="simulated disk failure"):
        storage.download_file(str(tmp_path / "src"), dst)
    assert dst.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["dst", "src"]
