"""A run warm-started from ``models:/<class model>@champion`` is gated against that very version, on the real MLflow
server with real tiny models, even after ``@champion`` moved on; every other class keeps its current champion.

v1 (run 1) becomes champion of both classes -> training starts from xs@champion = v1 -> run 2's v2 is promoted in
both classes -> the warm-started run is released: xs is compared with v1 (noted: champion moved to v2), s with v2.
The warm start reaches the release step two ways, both checked: given (the ``init_from`` of the train result), and
found on the pipeline's ``train`` run (its ``init_from.*`` params, as the classifier family logs them).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from matta_core.release import tags as RT
from matta_core.release.gate import GateDecision
from matta_core.release.promote import promote
from matta_core.release.step import DECISIONS_FILE, REPORT_FILE, _reference, _started_from, release_step
from matta_core.tracking import pipeline_run, step_run
from matta_core.tracking.step_records import log_step
from tests.mlflow_server import MLflowServer
from tests.release.conftest import TinyModels
from tests.release.tiny import SIZE_CLASSES

LINEAGE = {"data_content_hash": "d" * 64, "teacher_cache_key": "c" * 64, "code_version": "0.1.0+test"}


@dataclass
class Scenario:
    uri: str
    prefix: str
    out: Path
    init_from: dict[str, str] = field(default_factory=dict)
    decisions: dict[str, dict[str, GateDecision]] = field(default_factory=dict)

    def name(self, size_class: str) -> str:
        return f"{self.prefix}-{size_class}"


@pytest.fixture(scope="module")
def scenario(mlflow_server: MLflowServer, tiny_models: TinyModels,
             tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    uri, prefix = mlflow_server.uri, f"warm{uuid.uuid4().hex[:6]}"
    s = Scenario(uri, prefix, tmp_path_factory.mktemp("warm-start-release"))
    client = MlflowClient(uri)
    config = {"model_prefix": prefix, "size_classes": [c.model_dump(exclude_none=True) for c in SIZE_CLASSES],
              "gate": {"floors": {"accuracy": 0.3}, "check_loadability": False}}

    def release(stage: str, run: str, pipeline_run_id: str, **options: Any) -> None:
        tiny = tiny_models.runs[run]
        decisions = release_step([*tiny.records, tiny_models.baseline_record], tiny.model_dirs,
                                 tiny_models.baseline_dir, config, uri, pipeline_run_id, LINEAGE,
                                 test_rows=tiny_models.rows, out_dir=s.out / stage, **options)
        s.decisions[stage] = {d.size_class: d for d in decisions}

    release("first", "medium", "warm-run-1")
    for size_class in ("xs", "s"):
        promote(client, s.name(size_class))
    # Training starts from the xs champion: what the train step records (train_result.json "init_from").
    s.init_from = {"uri": f"models:/{s.name('xs')}@champion", "registered_model": s.name("xs"), "alias": "champion",
                   "version": "1", "pinned_uri": f"models:/{s.name('xs')}/1"}
    # While it trains, another run's version is promoted in both classes.
    release("moved", "good", "warm-run-2")
    for size_class in ("xs", "s"):
        promote(client, s.name(size_class))

    release("given", "good", "warm-run-3", init_from=s.init_from)
    # The pipeline's path: the release step finds the warm start on the train run of its parent run.
    with pipeline_run(uri, f"warm-start-{prefix}", "pipeline") as parent:
        with step_run(parent.run_id, "train", tracking_uri=uri) as train:
            log_step(train.run_id, {"init_from": s.init_from}, {})
        release("found", "good", parent.run_id, parent_run_id=parent.run_id)
    mlflow.set_tracking_uri(None)
    return s


@pytest.mark.parametrize("stage", ["given", "found"])
def test_the_class_training_started_from_is_compared_with_that_version(scenario: Scenario, stage: str) -> None:
    xs = scenario.decisions[stage]["xs"]
    assert xs.reference.label() == "champion v1" and xs.reference.model_uri == f"models:/{scenario.name('xs')}/1"
    assert f"compared with v1, the version training started from (models:/{scenario.name('xs')}@champion)" in xs.notes
    assert "@champion has moved since training started from v1: it is now v2" in xs.notes
    # v1 is the weaker medium run: the good run beats it, and the evidence names v1.
    assert xs.passed and xs.comparison.ci_low > 0
    tags = MlflowClient(scenario.uri).get_model_version(scenario.name("xs"), xs.registered_version).tags
    assert tags[RT.GATE_REFERENCE] == "champion v1"
    # Recorded where a reader looks: the decisions document and the gate report.
    document = json.loads((scenario.out / stage / DECISIONS_FILE).read_text())
    notes = next(d["notes"] for d in document["decisions"] if d["size_class"] == "xs")
    assert "@champion has moved since training started from v1: it is now v2" in notes
    assert "Note: @champion has moved since training started from v1: it is now v2" in (
        scenario.out / stage / REPORT_FILE).read_text()


@pytest.mark.parametrize("stage", ["given", "found"])
def test_other_classes_keep_their_current_champion(scenario: Scenario, stage: str) -> None:
    s = scenario.decisions[stage]["s"]
    assert s.reference.label() == "champion v2" and not any("training started" in n for n in s.notes)
    assert not s.passed  # the same good models as v2: no significant improvement


def test_without_a_warm_start_the_champion_is_the_reference(scenario: Scenario) -> None:
    for decision in scenario.decisions["moved"].values():
        assert decision.reference.label() == "champion v1" and not any("training" in n for n in decision.notes)


def test_only_an_alias_of_the_class_model_pins_the_reference(scenario: Scenario) -> None:
    xs = scenario.name("xs")
    assert _started_from(scenario.init_from, xs) == ("1", f"models:/{xs}@champion")
    assert _started_from(scenario.init_from, scenario.name("s")) is None
    assert _started_from({**scenario.init_from, "alias": None}, xs) is None  # models:/<name>/<version>: no pin
    assert _started_from({"uri": "/models/student"}, xs) is None  # a folder
    assert _started_from(None, xs) is None


def test_a_start_version_that_is_gone_falls_back_to_the_champion_and_says_so(scenario: Scenario) -> None:
    xs = scenario.name("xs")
    gone = {**scenario.init_from, "version": "99"}
    reference, notes = _reference(MlflowClient(scenario.uri), xs, "warm-run-9", None, "ce_only", gone)
    assert reference.label() == "champion v2"
    assert notes == [f"training started from models:/{xs}@champion (v99), which {xs} no longer holds: compared "
                     "with its current @champion instead"]
