"""matta_core.image_identity: the image's build record, and the check that a task runs the pipeline's code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matta_core.image_identity import (
    IMAGE_INFO_ENV,
    IMAGE_INFO_PATH,
    ImageIdentityError,
    check_task_code_version,
    image_info_path,
    read_image_info,
)
from matta_core.steps import tracked

PIPELINE = "0.1.0+src.aaaaaaaaaaaaaaaa"
IMAGE = "0.1.0+src.bbbbbbbbbbbbbbbb"
RECORD = {"code_version": IMAGE, "version": "0.1.0", "revision": "3f2a9c01d4e5-dirty",
          "created": "2026-12-05T20:00:00Z"}


def _record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: object | str) -> Path:
    path = tmp_path / "image.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    monkeypatch.setenv(IMAGE_INFO_ENV, str(path))
    return path


def test_the_record_path_is_overridable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(IMAGE_INFO_ENV, raising=False)
    assert image_info_path() == IMAGE_INFO_PATH == Path("/etc/matta/image.json")
    monkeypatch.setenv(IMAGE_INFO_ENV, "  ")
    assert image_info_path() == IMAGE_INFO_PATH  # empty means unset
    monkeypatch.setenv(IMAGE_INFO_ENV, str(tmp_path / "x.json"))
    assert image_info_path() == tmp_path / "x.json"


def test_no_record_means_not_in_an_image(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(IMAGE_INFO_ENV, str(tmp_path / "missing.json"))
    assert read_image_info() is None
    check_task_code_version(PIPELINE)  # nothing to compare with: the subprocess runner, `matta component`
    assert tracked.start_task("", "", PIPELINE) == tracked.Tracking("", "", PIPELINE)


def test_the_record_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _record(tmp_path, monkeypatch, RECORD)
    assert read_image_info() == RECORD
    assert read_image_info(path) == RECORD
    assert read_image_info(tmp_path / "other.json") is None


def test_a_matching_image_passes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _record(tmp_path, monkeypatch, {"code_version": PIPELINE})  # only code_version is required
    check_task_code_version(PIPELINE)
    check_task_code_version(f" {PIPELINE}\n")
    assert tracked.start_task("http://mlflow", "run-1", PIPELINE) == tracked.Tracking("http://mlflow", "run-1",
                                                                                     PIPELINE)


def test_a_stale_image_names_both_versions_and_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = _record(tmp_path, monkeypatch, RECORD)
    with pytest.raises(ImageIdentityError) as caught:
        check_task_code_version(PIPELINE)
    message = str(caught.value)
    assert (f"built from code version {IMAGE} (revision 3f2a9c01d4e5-dirty, created 2026-12-05T20:00:00Z, "
            f"recorded in {path})") in message
    assert f"the pipeline was compiled from code version {PIPELINE}" in message
    assert "Rebuild the image with `matta image build` from the same source tree" in message
    assert "or compile and run the pipeline from the tree the image was built from" in message
    assert "\n" not in message
    with pytest.raises(ImageIdentityError, match="stale image"):
        tracked.start_task("", "", PIPELINE)  # the components' entry point checks


def test_a_task_without_a_code_version_in_an_image_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    _record(tmp_path, monkeypatch, RECORD)
    with pytest.raises(ImageIdentityError) as caught:
        check_task_code_version("")
    assert "this task got no code_version input" in str(caught.value)
    assert f"built from code version {IMAGE} (" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("", "is not valid JSON"),
        (["0.1.0"], "holds a JSON list, not an object with a 'code_version' string"),
        ({"version": "0.1.0"}, "has no 'code_version' string (found None)"),
        ({"code_version": ""}, "has no 'code_version' string (found '')"),
        ({"code_version": 1}, "has no 'code_version' string (found 1)"),
        ({"code_version": IMAGE, "created": 20261205}, "non-string fields ('created': 20261205)"),
    ],
    ids=["broken", "empty", "list", "missing", "blank", "number", "bad-field"],
)
def test_an_invalid_record_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: object,
                                            message: str) -> None:
    path = _record(tmp_path, monkeypatch, content)
    for call in (read_image_info, lambda: check_task_code_version(PIPELINE)):
        with pytest.raises(ImageIdentityError) as caught:
            call()
        assert f"the image's build record {path}" in str(caught.value)
        assert message in str(caught.value)
        assert f"rebuild the image with `matta image build` (or point {IMAGE_INFO_ENV} at a valid record)" in str(
            caught.value)


def test_an_unreadable_record_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "image.json"
    path.mkdir()  # exists, but cannot be read as a file
    monkeypatch.setenv(IMAGE_INFO_ENV, str(path))
    with pytest.raises(ImageIdentityError, match=r"cannot be read \(IsADirectoryError"):
        check_task_code_version(PIPELINE)
    path.rmdir()
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(ImageIdentityError, match=r"cannot be read \(UnicodeDecodeError"):
        read_image_info()


def test_an_image_built_without_a_code_version_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _record(tmp_path, monkeypatch, {"code_version": "unset", "version": "unset", "revision": "unset",
                                    "created": "unset"})
    with pytest.raises(ImageIdentityError) as caught:
        check_task_code_version(PIPELINE)
    assert "says its code version is 'unset': it was built without the CODE_VERSION build argument" in str(
        caught.value)
    assert f"(code version {PIPELINE})" in str(caught.value)
    assert "Build the image with `matta image build`" in str(caught.value)
