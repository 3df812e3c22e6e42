"""The release stage end to end on the real MLflow server, with real tiny models:

run 1 (first release, compared with the ce_only baseline) registers challengers -> promote -> run 2 (worse) is
rejected and registers nothing -> run 3 (better) becomes challenger -> a retry of run 3 creates no duplicate ->
promote moves champion to @previous -> rollback restores it. The scenario runs once (module fixture); each test
checks one claim on what it recorded.
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
from typer.testing import CliRunner

from matta_core.cli import app
from matta_core.release import tags as RT
from matta_core.release.gate import GateDecision
from matta_core.release.handoff import validate_handoff
from matta_core.release.promote import promote
from matta_core.release.registry import get_aliases
from matta_core.release.step import REPORT_FILE, release_step
from matta_core.tracking import tags as T
from tests.release.conftest import TinyModels
from tests.release.tiny import SIZE_CLASSES

LINEAGE = {"data_content_hash": "d" * 64, "teacher_cache_key": "c" * 64, "code_version": "0.1.0+test"}
CLASSES = [c.name for c in SIZE_CLASSES]


@dataclass
class Scenario:
    uri: str
    prefix: str
    out: Path
    decisions: dict[str, list[GateDecision]] = field(default_factory=dict)
    aliases: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # stage -> class -> aliases
    versions: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # stage -> class -> versions
    cli: dict[str, Any] = field(default_factory=dict)

    def name(self, size_class: str) -> str:
        return f"{self.prefix}-{size_class}"

    def by_class(self, stage: str) -> dict[str, GateDecision]:
        return {d.size_class: d for d in self.decisions[stage]}


def _snapshot(scenario: Scenario, client: MlflowClient, stage: str) -> None:
    scenario.aliases[stage] = {c: get_aliases(client, scenario.name(c)) for c in CLASSES}
    scenario.versions[stage] = {
        c: sorted(str(v.version) for v in client.search_model_versions(f"name = '{scenario.name(c)}'"))
        for c in CLASSES
    }


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def scenario(server_uri: str, tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    uri, prefix = server_uri, f"flow{uuid.uuid4().hex[:6]}"
    s = Scenario(uri, prefix, tmp_path_factory.mktemp("release-flow"))
    client = MlflowClient(uri)
    config = {"model_prefix": prefix, "size_classes": [c.model_dump(exclude_none=True) for c in SIZE_CLASSES],
              "gate": {"floors": {"accuracy": 0.3}}}
    baseline = tiny_models.baseline_record

    def release(stage: str, run: str, pipeline_run_id: str, from_folder: bool = False) -> None:
        tiny = tiny_models.runs[run]
        evaluations: Any = [*tiny.records, baseline]
        if from_folder:  # as the evaluate steps leave them: one evaluation.json per model folder
            evaluations = s.out / f"{stage}-evaluations"
            for record in [*tiny.records, baseline]:
                (evaluations / record["name"]).mkdir(parents=True)
                (evaluations / record["name"] / "evaluation.json").write_text(json.dumps(record))
        s.decisions[stage] = release_step(evaluations, tiny.model_dirs, tiny_models.baseline_dir, config, uri,
                                          pipeline_run_id, LINEAGE, test_rows=tiny_models.rows,
                                          out_dir=s.out / stage)
        _snapshot(s, client, stage)

    release("first", "medium", "kfp-run-1")
    s.cli["promote_s"] = _cli("promote", s.name("s"), "--to", "champion", "--tracking-uri", uri)
    promote(client, s.name("xs"))
    _snapshot(s, client, "promoted")
    release("worse", "worse", "kfp-run-2")
    release("better", "good", "kfp-run-3", from_folder=True)
    release("retry", "good", "kfp-run-3")
    s.cli["promote_again"] = _cli("promote", s.name("s"), "--to", "champion", "--tracking-uri", uri)
    _snapshot(s, client, "promoted_again")
    s.cli["rollback"] = _cli("rollback", s.name("s"), "--tracking-uri", uri, "--by", "oncall")
    _snapshot(s, client, "rolled_back")
    s.cli["list"] = _cli("models", "list", "--prefix", prefix, "--tracking-uri", uri)
    mlflow.set_tracking_uri(None)
    return s


def test_first_run_registers_challengers_against_the_baseline(scenario: Scenario) -> None:
    decisions = scenario.by_class("first")
    assert set(decisions) == set(CLASSES)
    assert decisions["xs"].candidate["name"] == "student-8" and decisions["s"].candidate["name"] == "ta-16"
    for size_class, decision in decisions.items():
        assert decision.passed, decision.to_dict()
        assert decision.reference.kind == "baseline" and decision.reference.name == "ce_only"
        assert [c.name for c in decision.checks] == ["floor:accuracy", "budget", "improvement", "loadability"]
        assert decision.comparison.ci_low > 0 and decision.comparison.resamples == 2000
        assert decision.registered_version == "1" and decision.version_created and decision.challenger_set
        assert scenario.aliases["first"][size_class] == {"challenger": "1"}
        assert scenario.versions["first"][size_class] == ["1"]
    assert "pickle refused" in decisions["s"].checks[-1].detail


def test_registered_version_carries_lineage_metrics_and_gate_evidence(scenario: Scenario) -> None:
    client = MlflowClient(scenario.uri)
    version = client.get_model_version(scenario.name("s"), "1")
    tags = version.tags
    assert tags[RT.PIPELINE_RUN_ID] == "kfp-run-1"
    assert tags[T.DATA_CONTENT_HASH] == LINEAGE["data_content_hash"]
    assert tags[T.TEACHER_CACHE_KEY] == LINEAGE["teacher_cache_key"]
    assert tags[T.CODE_VERSION] == LINEAGE["code_version"]
    assert tags[T.MODEL_WIDTHS] == "16" and tags[RT.MODEL_NAME] == "ta-16" and tags[RT.SIZE_CLASS] == "s"
    decision = scenario.by_class("first")["s"]
    assert float(tags[RT.metric_tag("accuracy")]) == pytest.approx(decision.candidate["accuracy"])
    assert int(tags[RT.metric_tag("dense_params")]) == 212
    assert tags[RT.GATE_REFERENCE] == "baseline ce_only"
    assert float(tags[RT.GATE_CI_LOW]) == pytest.approx(decision.comparison.ci_low, abs=1e-6)
    assert tags[RT.RELEASE_HANDOFF].startswith(f"runs:/{version.run_id}/handoff/s/")
    # The release run holds the per-class gate tags and the decisions document.
    run = client.get_run(version.run_id)
    assert run.data.tags[RT.gate_tag("s", "passed")] == "true"
    assert run.data.tags[RT.gate_tag("xs", "version")] == "1"
    logged = json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=version.run_id, artifact_path="release/gate_decisions.json", tracking_uri=scenario.uri)).read_text())
    assert [d["size_class"] for d in logged["decisions"]] == CLASSES


def test_worse_run_is_rejected_and_registers_nothing(scenario: Scenario) -> None:
    assert scenario.aliases["promoted"] == {c: {"champion": "1"} for c in CLASSES}
    for size_class, decision in scenario.by_class("worse").items():
        assert not decision.passed
        assert decision.reference.kind == "champion" and decision.reference.model_uri.endswith(f"-{size_class}/1")
        assert "improvement" in [c.name for c in decision.failed_checks]
        assert decision.comparison.ci_low <= 0 < decision.comparison.reference_accuracy - 0.1
        assert decision.registered_version is None and decision.handoff_path is None
        assert "loadability" not in [c.name for c in decision.checks]  # never logged: nothing to load
    assert scenario.versions["worse"] == scenario.versions["promoted"]
    assert scenario.aliases["worse"] == scenario.aliases["promoted"]
    report = (scenario.out / "worse" / "gate_report.md").read_text()
    assert report.count("REJECT") >= 2 and not (scenario.out / "worse" / "s").exists()


def test_better_run_becomes_challenger_with_a_valid_handoff(scenario: Scenario) -> None:
    for size_class, decision in scenario.by_class("better").items():
        assert decision.passed, decision.to_dict()
        assert decision.reference.label() == "champion v1"
        assert decision.registered_version == "2" and decision.version_created
        assert scenario.aliases["better"][size_class] == {"champion": "1", "challenger": "2"}
        handoff = json.loads(Path(decision.handoff_path).read_text())
        validate_handoff(handoff)
        name = scenario.name(size_class)
        assert handoff["champion"]["model_uri"] == f"models:/{name}/1"
        assert handoff["challenger"]["model_uri"] == f"models:/{name}/2"
        accuracy = handoff["offline"]["deltas"][0]
        assert accuracy["metric"] == "accuracy" and accuracy["interval"]["low"] == decision.comparison.ci_low
        assert handoff["experiment"]["sample_size"]["per_arm"] > 0
        assert (Path(decision.handoff_path).parent / "ab_handoff.md").read_text().startswith("# A/B handoff")


def test_retried_release_creates_no_duplicate_version(scenario: Scenario, fault_record) -> None:  # type: ignore[no-untyped-def]
    for decision in scenario.by_class("retry").values():
        assert decision.passed and decision.registered_version == "2" and not decision.version_created
        assert not decision.challenger_set  # already the challenger
        assert any("retry" in note for note in decision.notes)
    assert scenario.versions["retry"] == scenario.versions["better"] == {c: ["1", "2"] for c in CLASSES}
    assert scenario.aliases["retry"] == scenario.aliases["better"]
    # The gate report of the retry says so, per class.
    said = [line for line in (scenario.out / "retry" / REPORT_FILE).read_text().splitlines()
            if line.startswith("Note: retry: ")]
    assert said == ["Note: retry: version 2 already holds this pipeline run"] * len(CLASSES)
    fault_record("Release step run again for the same pipeline run", fault="the release of a pipeline run repeated "
                 "after its versions were registered (a killed step's retry)", sees=said[0],
                 kept="one version per size class and pipeline run; aliases unchanged")


def test_promote_then_rollback_move_aliases(scenario: Scenario) -> None:
    assert "promote to champion" in scenario.cli["promote_again"]
    assert scenario.aliases["promoted_again"]["s"] == {"champion": "2", "previous": "1"}
    assert scenario.aliases["rolled_back"]["s"] == {"champion": "1"}
    assert scenario.aliases["rolled_back"]["xs"] == {"champion": "1", "challenger": "2"}  # untouched
    client = MlflowClient(scenario.uri)
    rolled = json.loads(client.get_model_version(scenario.name("s"), "2").tags[RT.RELEASE_ROLLED_BACK])
    assert rolled["by"] == "oncall" and rolled["restored"] == "1"
    event = json.loads(client.get_registered_model(scenario.name("s")).tags[RT.RELEASE_LAST_EVENT])
    assert event["action"] == "rollback" and event["before"] == {"champion": "2", "previous": "1"}


def test_models_list_shows_each_class(scenario: Scenario) -> None:
    table = scenario.cli["list"]
    lines = {line.split()[0]: line for line in table.splitlines()[2:]}
    assert set(lines) == {scenario.name(c) for c in CLASSES}
    assert "v1 acc" in lines[scenario.name("s")] and "v2 acc" in lines[scenario.name("xs")]


def test_cli_refuses_rollback_without_previous_and_reserved_aliases(scenario: Scenario) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["rollback", scenario.name("s"), "--tracking-uri", scenario.uri])
    assert result.exit_code == 2 and "no @previous" in result.output
    result = runner.invoke(app, ["promote", scenario.name("s"), "--to", "latest", "--tracking-uri", scenario.uri])
    assert result.exit_code == 2 and "reserved" in result.output
    result = runner.invoke(app, ["promote", scenario.name("s"), "--to", "Champion", "--tracking-uri", scenario.uri])
    assert result.exit_code == 2 and "case-sensitive" in result.output


def test_release_attaches_to_the_pipeline_run_and_reports_classes_nothing_fits(
    server_uri: str, prefix: str, tiny_models: TinyModels, tmp_path: Path
) -> None:
    from matta_core.tracking import pipeline_run

    config = {"model_prefix": prefix, "size_classes": [{"name": "s", "max_dense_params": 250},
                                                       {"name": "nano", "max_dense_params": 10}],
              "gate": {"check_loadability": False}}
    with pipeline_run(server_uri, f"{prefix}-exp", "kfp-run-5") as parent:
        pass
    tiny = tiny_models.runs["medium"]
    decisions = release_step([*tiny.records, tiny_models.baseline_record], tiny.model_dirs, tiny_models.baseline_dir,
                             config, server_uri, "kfp-run-5", None, test_rows=tiny_models.rows, out_dir=tmp_path,
                             parent_run_id=parent.run_id)
    s, nano = decisions
    assert s.passed and s.checks[-1].detail == "skipped (gate.check_loadability is off)"
    assert not nano.passed and nano.candidate is None and nano.registered_version is None
    assert "no width fits size class 'nano'" in nano.checks[0].detail
    client = MlflowClient(server_uri)
    release_run = client.get_run(client.get_model_version(f"{prefix}-s", s.registered_version).run_id)
    assert release_run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert release_run.data.tags[RT.gate_tag("nano", "passed")] == "false"
    assert not client.search_registered_models(f"name = '{prefix}-nano'")
