"""The prepare step's cache key rests on the data's version, read afresh by the pipeline's first task.

Driven under kfp.local with its cache on, through the real ``start_run`` and ``prepare_data`` components: the
same file twice -> the second prepare is a cache hit; the file rewritten with other rows (same URI, as a nightly
refresh of a ``gs://`` object would be) -> prepare runs again. ``start_run`` is never cached, so it reads the
version every time. Plus the versions themselves: a local file's content hash, a GCS object's generation.
"""

# No `from __future__ import annotations`: KFP reads the test pipeline's annotation objects.
import csv
import uuid
from pathlib import Path

import pytest
from kfp import dsl, local

from components import prepare_data, start_run
from matta_core.config import DataSection
from matta_core.data.version import DataVersionError, data_version
from pipelines.code_version import code_version
from pipelines.task_settings import PipelineSettings, apply_settings
from tests.gcs_emulator import gcs_emulator  # noqa: F401  (registers the session fixture)
from tests.mirror import BANKING77_DIR


def _write_rows(path: Path, start: int, count: int = 120) -> None:
    with (BANKING77_DIR / "train.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1 + start:1 + start + count]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *body])


@dsl.pipeline(name="data-version-cache")
def _prepare_only(data_json: str, code_version: str) -> None:
    start = start_run(task="classification", name="cache-test", data_json=data_json, teacher_json="{}",
                      model_json="{}", train_json="{}", release_json="{}", code_version=code_version,
                      tracking_uri="", parent_run_id="", kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                      kfp_run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
    apply_settings(start, "tracking", PipelineSettings.local(), cache_name="start_run")
    prepare_data(task="classification", data_json=data_json, data_version=start.outputs["data_version"],
                 code_version=code_version, tracking_uri="", parent_run_id="", experiment="")


def _prepare_cache_hits(caplog: pytest.LogCaptureFixture, data: DataSection) -> int:
    """How many times prepare was served from the cache in one pipeline run (0 or 1)."""
    caplog.clear()
    _prepare_only(data_json=data.model_dump_json(), code_version=code_version())
    assert "start-run cache hit" not in caplog.text  # never cached: the version is read on every run
    return caplog.text.count("Task prepare-data cache hit")


def test_prepare_reruns_exactly_when_the_data_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    source = tmp_path / "train.csv"
    _write_rows(source, start=0)
    data = DataSection(source=str(source), text_column="text", label_column="category", val_fraction=0.2)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True, enable_caching=True)
    first = data_version(data)
    assert _prepare_cache_hits(caplog, data) == 0
    assert _prepare_cache_hits(caplog, data) == 1, "unchanged data must hit prepare's cache"
    source.touch()  # a new modification time, the same bytes: the same version
    assert data_version(data) == first
    _write_rows(source, start=500)  # refreshed in place: the same URI, other rows
    assert data_version(data) != first
    assert _prepare_cache_hits(caplog, data) == 0, "refreshed data must re-run prepare"


def test_versions_name_what_they_read(tmp_path: Path) -> None:
    source = tmp_path / "train.csv"
    _write_rows(source, start=0, count=10)
    version = data_version(DataSection(source=str(source), text_column="text", label_column="category"))
    assert f"size={source.stat().st_size}" in version
    registered = data_version(DataSection(source="banking77"))
    assert "registered:banking77:" in registered
    with pytest.raises(DataVersionError, match=r"data\.test_source: no file at"):
        data_version(DataSection(source="banking77", test_source=str(tmp_path / "missing.csv")))


def test_a_gcs_object_version_is_its_generation(gcs_emulator) -> None:  # noqa: F811
    from matta_core import storage

    uri = f"{gcs_emulator.make_bucket(f'version-{uuid.uuid4().hex[:12]}')}/data/train.csv"
    storage.write_text(uri, "text,category\nhello,greeting\n", create_only=False)
    first = data_version(DataSection(source=uri, text_column="text", label_column="category"))
    assert "gcs:generation=" in first
    assert data_version(DataSection(source=uri, text_column="text", label_column="category")) == first
    storage.write_text(uri, "text,category\nhello,greeting\n", create_only=False)  # rewritten: a new generation
    assert data_version(DataSection(source=uri, text_column="text", label_column="category")) != first
