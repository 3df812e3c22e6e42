"""What a run's first task reads `model.init_from` to name (`pin_init_from`): the train task's cache key, and the
version an alias is loaded as, so a moved ``@champion`` or a rewritten folder never reuses a cached training."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from matta_core.config import ModelSection
from matta_core.families.classifier.family import FAMILY
from matta_core.families.classifier.warm_start import load_warm_start, pin_init_from
from matta_core.families.decoder.family import FAMILY as DECODER
from matta_core.release.registry import register_version
from matta_core.serving.matta_text_classifier import WEIGHTS_FILE
from matta_core.tracking import log_standalone_model, pipeline_run, step_run
from tests.mlflow_server import clean_mlflow_state  # noqa: F401  (autouse: no tracking URI leaks in or out)
from tests.training.test_warm_start import NAME, registry  # noqa: F401  (the module fixture: NAME v1 @champion)


def _second_version(registry: dict[str, Any]) -> tuple[MlflowClient, str]:  # noqa: F811
    """NAME v2 (a copy of the Student with one weight changed), @champion moved to it."""
    uri = registry["uri"]
    client = MlflowClient(uri, registry_uri=uri)  # not the default registry (a file in the working directory)
    changed = registry["root"] / "student-changed"
    if not changed.exists():
        shutil.copytree(registry["student"], changed)
        from safetensors.torch import load_file, save_file

        state = load_file(changed / WEIGHTS_FILE)
        state["head.bias"] = state["head.bias"] + 1.0
        save_file(state, changed / WEIGHTS_FILE)
    with pipeline_run(uri, "warm-start", "production-2") as parent, \
            step_run(parent.run_id, "release", tracking_uri=uri) as release:
        model_uri = log_standalone_model(changed, "xs-student-8", input_example_texts=["card arrival"])
    # MLflow's registry looks the logged model up through the global tracking URI: this store, as in the fixture.
    mlflow.set_tracking_uri(uri)
    try:
        version = register_version(client, NAME, model_uri, "production-run-2", {}, run_id=release.run_id).version
    finally:
        mlflow.set_tracking_uri(None)
    client.set_registered_model_alias(NAME, "champion", version)
    return client, str(version)


def test_an_alias_pins_to_the_version_it_names_now_and_loads_as_the_pinned_one(
    registry: dict[str, Any]  # noqa: F811
) -> None:
    uri, alias = registry["uri"], f"models:/{NAME}@champion"
    first = pin_init_from(alias, uri)
    assert first == str(registry["version"])
    assert pin_init_from(f"models:/{NAME}/{first}", uri) == ""  # a version by number: the URI pins it already

    client, second = _second_version(registry)
    try:
        assert pin_init_from(alias, uri) == second != first  # the alias moved: a new cache key, so training reruns
        # The train step loads what the alias named when the run started, and records the alias with it.
        started = load_warm_start(alias, uri, alias_version=first)
        now = load_warm_start(alias, uri)
        assert (started.source.alias, started.source.version) == ("champion", first)
        assert (now.source.alias, now.source.version) == ("champion", second)
        assert torch.equal(now.weights["head.bias"], started.weights["head.bias"] + 1.0)
        # Through the family, as the first task calls it.
        section = ModelSection(hidden_widths=[64], student_widths=[8], init_from=alias)
        assert FAMILY.pin_init_from(section, uri) == second
        assert FAMILY.pin_init_from(section.model_copy(update={"init_from": None}), uri) == ""
    finally:
        client.set_registered_model_alias(NAME, "champion", first)


def test_a_folder_pins_to_the_digest_of_its_files(registry: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "saved"
    shutil.copytree(registry["student"], folder)
    digest = pin_init_from(str(folder))
    assert digest.startswith("sha256:") and pin_init_from(f"file://{folder}") == digest
    (folder / WEIGHTS_FILE).write_bytes((folder / WEIGHTS_FILE).read_bytes() + b" ")
    assert pin_init_from(str(folder)) not in ("", digest)  # rewritten weights: a new key
    assert pin_init_from(str(tmp_path / "missing")) == ""  # the train step says what is missing


def test_without_a_tracking_store_the_pin_is_empty_and_the_train_step_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert pin_init_from(f"models:/{NAME}@champion", None) == ""
    assert DECODER.pin_init_from(object(), "") == ""  # the decoder has no warm start
