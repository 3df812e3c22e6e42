"""GCS-backend specifics, against the real emulator.

The emulator ignores generation preconditions, so the create-only guarantee on real GCS is checked here at the
request level: the upload must carry ``if_generation_match=0``, and a 412 must become ObjectExistsError. Patching
``Blob.upload_from_file`` to raise PreconditionFailed is the one fake, standing in for the answer the emulator
cannot give.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.api_core.exceptions import PreconditionFailed
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Blob

from matta_core import storage
from matta_core.storage import gcs_client
from tests.gcs_emulator import GCSEmulator


@pytest.fixture
def bucket(gcs_emulator: GCSEmulator) -> str:
    return gcs_emulator.make_bucket(f"gcs-{uuid.uuid4().hex[:16]}")


@pytest.fixture
def upload_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the keyword arguments of every real ``Blob.upload_from_file`` call (which still runs)."""
    calls: list[dict[str, Any]] = []
    real = Blob.upload_from_file

    def spy(self: Blob, file_obj: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real(self, file_obj, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_file", spy)
    return calls


def _writers(tmp_path: Path) -> dict[str, Callable[[str, bool], None]]:
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    return {
        "write_bytes": lambda uri, once: storage.write_bytes(uri, b"payload", create_only=once),
        "write_text": lambda uri, once: storage.write_text(uri, "payload", create_only=once),
        "write_chunks": lambda uri, once: storage.write_chunks(uri, [b"pay", b"load"], create_only=once),
        "upload_file": lambda uri, once: storage.upload_file(source, uri, create_only=once),
    }


@pytest.mark.parametrize("writer", ["write_bytes", "write_text", "write_chunks", "upload_file"])
def test_create_only_uploads_carry_the_generation_precondition(
    bucket: str, tmp_path: Path, upload_calls: list[dict[str, Any]], writer: str
) -> None:
    write = _writers(tmp_path)[writer]
    write(f"{bucket}/once", True)
    write(f"{bucket}/plain", False)
    assert [c["if_generation_match"] for c in upload_calls] == [0, None]
    assert storage.read_bytes(f"{bucket}/once") == b"payload"


def test_precondition_failure_becomes_object_exists_error(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The race the existence check cannot see: another writer creates the object between check and upload,
    # and real GCS answers 412.
    def rival_won(self: Blob, *args: Any, **kwargs: Any) -> None:
        assert kwargs["if_generation_match"] == 0
        raise PreconditionFailed("At least one of the pre-conditions you specified did not hold.")

    monkeypatch.setattr(Blob, "upload_from_file", rival_won)
    uri = f"{bucket}/raced.json"
    with pytest.raises(storage.ObjectExistsError) as info:
        storage.write_text(uri, "{}", create_only=True)
    assert info.value.filename == uri
    assert isinstance(info.value.__cause__, PreconditionFailed)


def test_existing_object_is_refused_before_any_upload(bucket: str, upload_calls: list[dict[str, Any]]) -> None:
    # The emulator would overwrite despite the precondition; the layer's own check keeps create_only correct.
    uri = f"{bucket}/k"
    storage.write_bytes(uri, b"first")
    upload_calls.clear()
    with pytest.raises(storage.ObjectExistsError):
        storage.write_bytes(uri, b"second", create_only=True)
    assert upload_calls == []
    assert storage.read_bytes(uri) == b"first"


def test_large_file_takes_the_resumable_path(bucket: str, tmp_path: Path) -> None:
    # Above 8 MiB the client switches from one multipart request to a resumable session.
    data = os.urandom(9 * 1024 * 1024 + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    uri = f"{bucket}/big.bin"
    storage.upload_file(source, uri, create_only=True)
    target = tmp_path / "back.bin"
    storage.download_file(uri, target)
    assert target.read_bytes() == data
    assert storage.sha256(uri) == storage.sha256(str(source))


def test_listing_skips_folder_placeholders(bucket: str) -> None:
    storage.write_bytes(f"{bucket}/d/x", b"1")
    bucket_name = bucket.removeprefix("gs://")
    gcs_client.get_client().bucket(bucket_name).blob("d/sub/").upload_from_string(b"")  # console-made "folder"
    assert storage.list_uris(f"{bucket}/d") == [f"{bucket}/d/x"]


def test_missing_bucket_is_a_storage_error_naming_the_uri(gcs_emulator: GCSEmulator) -> None:
    uri = f"gs://no-such-bucket-{uuid.uuid4().hex[:8]}/k"
    with pytest.raises(storage.StorageError, match="bucket does not exist") as info:
        storage.write_bytes(uri, b"x")
    assert uri in str(info.value)
    with pytest.raises(storage.StorageError, match="bucket does not exist"):
        storage.list_uris(uri.rsplit("/", 1)[0])
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(uri)
    assert not storage.exists(uri)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [("gs://", "no bucket"), ("gs:///key", "no bucket"), ("gs://b", "not an object"), ("gs://b/dir/", "not an object")],
)
def test_malformed_object_uris_are_rejected(gcs_emulator: GCSEmulator, uri: str, fragment: str) -> None:
    with pytest.raises(storage.InvalidURIError, match=fragment):
        storage.read_bytes(uri)


def test_client_is_created_once_per_process_for_all_threads(gcs_emulator: GCSEmulator) -> None:
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(gcs_client.get_client())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8 and all(c is seen[0] for c in seen)
    assert gcs_client.get_client() is seen[0]


def test_emulator_client_is_anonymous_with_a_default_project(
    gcs_emulator: GCSEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = gcs_client.get_client()
    assert isinstance(client._credentials, AnonymousCredentials)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert gcs_client._make_client(gcs_emulator.host).project == "test"
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "matta-dev")
    assert gcs_client._make_client(gcs_emulator.host).project == "matta-dev"


def test_a_new_emulator_host_gets_its_own_client(gcs_emulator: GCSEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    first = gcs_client.get_client()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    assert gcs_client.get_client() is not first
