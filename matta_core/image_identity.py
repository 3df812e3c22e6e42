"""Which code the running container image holds, and the check that a pipeline task runs the code it was compiled for.

The project image records the code it was built from in ``/etc/matta/image.json`` (``$MATTA_IMAGE_INFO`` points
elsewhere, for tests), a JSON object::

    {"code_version": "0.1.0+src.3f2a9c01d4e5b6a7", "version": "0.1.0", "revision": "<git sha>[-dirty]",
     "created": "2026-12-05T20:00:00Z"}

``code_version`` is the value ``pipelines/code_version.py`` computes from the source tree (package version + source
hash); the pipeline hands the same value, computed where it was compiled, to every task as its ``code_version``
input. When the two differ the task would run other code than the pipeline was compiled from, and its result
would be cached under a key that claims otherwise: every component calls `check_task_code_version` first
(through ``matta_core.steps.tracked.start_task``) and fails with both versions named. Outside an image (the
local subprocess runner, ``matta component``) there is no file and nothing is checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: Where the image build writes the record (see the module docstring for its fields).
IMAGE_INFO_PATH = Path("/etc/matta/image.json")
#: Overrides `IMAGE_INFO_PATH` (tests point it at a file of their own).
IMAGE_INFO_ENV = "MATTA_IMAGE_INFO"
#: The fields of the record; only ``code_version`` is required, the others make the error messages useful.
IMAGE_INFO_FIELDS = ("code_version", "version", "revision", "created")
#: What docker/Dockerfile records when a build argument was not given.
UNSET = "unset"

_REMEDY = (
    "Rebuild the image with `matta image build` from the same source tree the pipeline is compiled from (and "
    "compile or submit with --image set to that build), or compile and run the pipeline from the tree the image "
    "was built from"
)


class ImageIdentityError(RuntimeError):
    """The image's record is unreadable, or it holds other code than the pipeline task expects."""


def image_info_path() -> Path:
    """``$MATTA_IMAGE_INFO`` if set (and not empty), else ``/etc/matta/image.json``."""
    override = os.environ.get(IMAGE_INFO_ENV, "").strip()
    return Path(override) if override else IMAGE_INFO_PATH


def read_image_info(path: str | Path | None = None) -> dict[str, Any] | None:
    """The image's record (default: `image_info_path`), or None when there is no such file (not in an image).

    Raises `ImageIdentityError` when the file exists but cannot be read, is not a JSON object, or has no
    non-empty string ``code_version``; other fields, when present, must be strings.
    """
    path = image_info_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ImageIdentityError(
            f"the image's build record {path} cannot be read ({type(error).__name__}: {error}): the image is broken; "
            f"rebuild it with `matta image build`{_override_hint()}"
        ) from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as error:
        raise ImageIdentityError(
            f"the image's build record {path} is not valid JSON ({error}): it must be a JSON object with a "
            f"'code_version' string; rebuild the image with `matta image build`{_override_hint()}"
        ) from None
    if not isinstance(info, dict):
        raise ImageIdentityError(
            f"the image's build record {path} holds a JSON {type(info).__name__}, not an object with a "
            f"'code_version' string; rebuild the image with `matta image build`{_override_hint()}"
        )
    code_version = info.get("code_version")
    if not isinstance(code_version, str) or not code_version.strip():
        raise ImageIdentityError(
            f"the image's build record {path} has no 'code_version' string (found {code_version!r}), so which code "
            f"the image holds is unknown; rebuild the image with `matta image build`{_override_hint()}"
        )
    wrong = [f"{k!r}: {info[k]!r}" for k in IMAGE_INFO_FIELDS[1:] if info.get(k) is not None
             and not isinstance(info[k], str)]
    if wrong:
        raise ImageIdentityError(
            f"the image's build record {path} has non-string fields ({', '.join(wrong)}); 'version', 'revision' "
            f"and 'created' must be strings; rebuild the image with `matta image build`{_override_hint()}"
        )
    return info


def check_task_code_version(pipeline_code_version: str) -> None:
    """Fail unless this task runs in an image built from `pipeline_code_version` (or in no image at all).

    `pipeline_code_version` is the task's ``code_version`` input, fixed when the pipeline was compiled. Raises
    `ImageIdentityError` naming both versions and what to do when they differ, when the task got no code version
    to compare, or when the image's record is unreadable (see `read_image_info`).
    """
    info = read_image_info()
    if info is None:
        return
    image_version = info["code_version"].strip()
    details = ", ".join([*(f"{k} {info[k]}" for k in ("revision", "created") if info.get(k)),
                         f"recorded in {image_info_path()}"])
    expected = (pipeline_code_version or "").strip()
    if image_version == UNSET:
        raise ImageIdentityError(
            f"the image's build record {image_info_path()} says its code version is {UNSET!r}: it was built without "
            "the CODE_VERSION build argument (a plain `docker build`?), so which code it holds is unknown and the "
            f"pipeline's tasks (code version {expected or 'not given'}) cannot trust it. Build the image with "
            "`matta image build`, which records the code version of the tree it builds"
        )
    if not expected:
        raise ImageIdentityError(
            f"this task got no code_version input, so it cannot tell whether its image, built from code version "
            f"{image_version} ({details}), holds the pipeline's code: compile the pipeline with `matta compile` or "
            "`matta submit`, which give every task its code version"
        )
    if expected != image_version:
        raise ImageIdentityError(
            f"stale image: this task's image was built from code version {image_version} ({details}), but the "
            f"pipeline was compiled from code version {expected}; the task would run other code than the "
            f"pipeline's, and KFP would cache its results under the pipeline's version. {_REMEDY}."
        )


def _override_hint() -> str:
    return f" (or point {IMAGE_INFO_ENV} at a valid record)" if os.environ.get(IMAGE_INFO_ENV, "").strip() else ""
