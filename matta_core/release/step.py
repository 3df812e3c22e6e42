"""The release step: size-class selection -> gate -> registration -> A/B handoff, for every size class of a run.

One function for the pipeline component to wrap (`release_step`). Per class:

1. pick the best width that fits the class budget (`candidate_for_class`);
2. score it and the reference (the class's ``@champion``, or the run's Student-alone baseline when the class has
   none) on the same test rows; floors, budget and the paired-bootstrap improvement decide (`gate_candidate`). A
   run whose nested model was warm-started from ``models:/<name>@<alias>`` of the class's registered model
   (``model.init_from``) is compared with the version that alias named when training started, even if
   ``@champion`` has moved since (the decision notes it);
3. log every passing candidate as a pickle-free pyfunc and load it where only its logged requirements are
   importable, matta is not, and pickle is refused (`check_loadable`): a model that cannot be served does not pass;
4. register a version with lineage tags (idempotent per pipeline run id) and propose it as ``@challenger``;
5. write ``<out_dir>/<class>/ab_handoff.json`` + ``.md`` and log them to MLflow.

Everything is recorded: ``matta.gate.<class>.*`` tags and ``release/gate_decisions.json`` +
``reports/gate_report.md`` on the release run, and the same files under `out_dir`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from matta_core.release import tags as RT
from matta_core.release.config import ReleaseConfig
from matta_core.release.gate import (
    REFERENCE_BASELINE,
    REFERENCE_CHAMPION,
    GateDecision,
    Reference,
    gate_candidate,
    loadability_check,
    no_candidate_decision,
)
from matta_core.release.handoff import build_handoff, write_handoff
from matta_core.release.lineage import Lineage, version_tags
from matta_core.release.load_check import check_loadable
from matta_core.release.lock import NOT_FOUND
from matta_core.release.predict import labels_from_dir, labels_from_registry
from matta_core.release.registry import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    check_pipeline_run_id,
    ensure_registered_model,
    get_aliases,
    propose_challenger,
    register_version,
    version_uri,
    versions_for_run,
)
from matta_core.release.report import gate_report_markdown
from matta_core.release.rows import EvalRows
from matta_core.release.size_classes import (
    SizeClass,
    candidate_for_class,
    explain_no_fit,
    registered_model_name,
)
from matta_core.tracking import log_json, log_report, log_standalone_model, pipeline_run, set_tags, step_run
from matta_core.tracking import tags as T
from matta_core.tracking.uri import check_tracking_uri, resolve_tracking_uri

log = logging.getLogger(__name__)

EVALUATION_FILE = "evaluation.json"
DECISIONS_FILE = "gate_decisions.json"
REPORT_FILE = "gate_report.md"
STEP_NAME = "release"
#: The train step's record of a warm start: ``init_from`` in its train_result.json, ``init_from.*`` params of its run.
TRAIN_STEP_NAME = "train"
INIT_FROM_PARAMS = "init_from."


def load_evaluations(source: str | Path | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Evaluation records: given, or every ``evaluation.json`` under a folder (as `evaluate_step` writes them)."""
    if isinstance(source, str | Path):
        files = sorted(Path(source).rglob(EVALUATION_FILE))
        if not files:
            raise FileNotFoundError(f"no {EVALUATION_FILE} under {source}: pass the evaluate steps' output folder")
        return [json.loads(f.read_text()) for f in files]
    return [dict(r) for r in source]


class _Predictions:
    """Label predictions on the test rows, computed once per model folder or URI."""

    def __init__(self, rows: EvalRows, tracking_uri: str) -> None:
        self.rows, self.tracking_uri = rows, tracking_uri
        self._cache: dict[str, list[str]] = {}

    def of_dir(self, model_dir: str) -> list[str]:
        if model_dir not in self._cache:
            self._cache[model_dir] = labels_from_dir(model_dir, self.rows.texts)
        return self._cache[model_dir]

    def of_uri(self, model_uri: str) -> list[str]:
        if model_uri not in self._cache:
            self._cache[model_uri] = labels_from_registry(model_uri, self.rows.texts, self.tracking_uri)
        return self._cache[model_uri]


def _reference(client: MlflowClient, name: str, pipeline_run_id: str, baseline_dir: str | None,
               baseline_arm: str, init_from: Mapping[str, Any] | None = None) -> tuple[Reference, list[str]]:
    """The class's champion (pinned version), or the baseline when there is none (or it is this run's own); and
    notes for the decision.

    When training started from an alias of this class's registered model (`init_from`, the train step's record),
    the reference is the version that alias named then: the gate measures what this run added to the model it
    started from, whatever the alias names now.
    """
    champion = get_aliases(client, name).get(ALIAS_CHAMPION)
    notes: list[str] = []
    started = _started_from(init_from, name)
    if started is not None:
        version, uri = started
        try:
            start_run = client.get_model_version(name, version).tags.get(RT.PIPELINE_RUN_ID)
        except MlflowException as exc:
            if exc.error_code not in (NOT_FOUND, "INVALID_PARAMETER_VALUE"):
                raise
            notes.append(f"training started from {uri} (v{version}), which {name} no longer holds: compared with "
                         "its current @champion instead")
        else:
            if start_run != pipeline_run_id:
                notes.append(f"compared with v{version}, the version training started from ({uri})")
                if champion != version:
                    notes.append(f"@champion has moved since training started from v{version}: it is now "
                                 + (f"v{champion}" if champion is not None else "unset"))
                return Reference(REFERENCE_CHAMPION, name, version_uri(name, version), version), notes
    if champion is not None:
        champion_run = client.get_model_version(name, champion).tags.get(RT.PIPELINE_RUN_ID)
        if champion_run != pipeline_run_id:
            return Reference(REFERENCE_CHAMPION, name, version_uri(name, champion), champion), notes
        # A retry after this run's own version was promoted: comparing it with itself would reject it.
    if baseline_dir is None:
        raise ValueError(f"{name!r} has no @champion and no baseline model folder was given: pass the "
                         f"{baseline_arm!r} model of this run as baseline_model_dir")
    return Reference(REFERENCE_BASELINE, baseline_arm, model_dir=str(baseline_dir)), notes


def _started_from(init_from: Mapping[str, Any] | None, name: str) -> tuple[str, str] | None:
    """(version, URI) when training started from an alias of registered model `name`, else None."""
    if not init_from or init_from.get("registered_model") != name:
        return None
    if not init_from.get("alias") or not init_from.get("version"):
        return None  # a version named by number, or a folder: the class keeps its @champion as reference
    return str(init_from["version"]), str(init_from.get("uri") or f"models:/{name}@{init_from['alias']}")


def train_init_from(client: MlflowClient, parent_run_id: str) -> dict[str, str] | None:
    """The warm start the train step of pipeline run `parent_run_id` recorded (its run's ``init_from.*`` params,
    the same fields as ``init_from`` in its train_result.json), or None when it started from random weights.

    The newest finished ``train`` child of the parent is the one whose model the pipeline went on with (a retried
    task leaves a failed one beside it).
    """
    if "'" in parent_run_id:
        return None  # not an MLflow run id; it could not be quoted in the filter
    experiment = client.get_run(parent_run_id).info.experiment_id
    runs = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}' and "
                                                          f"tags.`{T.STEP}` = '{TRAIN_STEP_NAME}'",
                              order_by=["attribute.start_time DESC"])
    finished = [run for run in runs if run.info.status == "FINISHED"] or list(runs)
    if not finished:
        return None
    found = {key[len(INIT_FROM_PARAMS):]: value for key, value in finished[0].data.params.items()
             if key.startswith(INIT_FROM_PARAMS)}
    return found or None


def _reference_metrics(client: MlflowClient, reference: Reference, records: Sequence[Mapping[str, Any]],
                       baseline_arm: str) -> dict[str, Any]:
    if reference.kind == REFERENCE_CHAMPION and reference.version is not None:
        tags = client.get_model_version(reference.name, reference.version).tags
        out: dict[str, Any] = {}
        for key in RT.VERSION_METRICS:
            try:
                out[key] = float(tags[RT.metric_tag(key)])
            except (KeyError, ValueError):
                continue
        return out
    return next((dict(r) for r in records if r.get("arm") == baseline_arm), {})


@contextmanager
def _release_run(uri: str, config: ReleaseConfig, pipeline_run_id: str, parent_run_id: str | None,
                 lineage: Lineage) -> Iterator[str]:
    """The MLflow run that records the release (tagged with the lineage of what it releases): a child of the
    pipeline's run, or its own small run tree."""
    tags = lineage.tags()
    if parent_run_id:
        with step_run(parent_run_id, STEP_NAME, tracking_uri=uri, tags=tags) as run:
            yield run.run_id
        return
    with pipeline_run(uri, config.experiment, f"release-{pipeline_run_id}") as parent, \
            step_run(parent.run_id, STEP_NAME, tracking_uri=uri, tags=tags) as run:
        yield run.run_id


def release_step(
    evaluations: str | Path | Sequence[Mapping[str, Any]],
    run_models: Mapping[str, str],
    baseline_model_dir: str | None,
    config: ReleaseConfig | Mapping[str, Any] | None,
    tracking_uri: str | None,
    pipeline_run_id: str,
    lineage: Lineage | Mapping[str, Any] | None = None,
    *,
    test_rows: EvalRows,
    out_dir: str | Path,
    parent_run_id: str | None = None,
    init_from: Mapping[str, Any] | None = None,
) -> list[GateDecision]:
    """Gate, register and hand off the best width of every size class; return one decision per class.

    `evaluations`: records (``evaluate_model(...).to_dict()`` + ``arm``) or the folder holding the
    ``evaluation.json`` files; `run_models`: record name -> model folder (falls back to the record's
    ``model_dir``); `baseline_model_dir`: the run's ``ce_only`` model, the reference of classes without a champion;
    `test_rows`: the labelled rows (a family's `eval_rows` reads them from a prepared folder); `pipeline_run_id`: the
    idempotency key of registration (a retry of the same run registers nothing new); `parent_run_id`: the MLflow
    run of the pipeline, if any. `init_from`: the train step's warm-start record (``init_from`` of its
    train_result.json); default: the ``init_from.*`` params of the pipeline's ``train`` run under `parent_run_id`
    (`train_init_from`). Files go to `out_dir`.
    """
    check_pipeline_run_id(pipeline_run_id)
    cfg = ReleaseConfig.parse(config)
    origin = Lineage.parse(lineage)
    records = load_evaluations(evaluations)
    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(uri)
    predictions = _Predictions(test_rows, uri)

    with _release_run(uri, cfg, pipeline_run_id, parent_run_id, origin) as run_id:
        if init_from is None and parent_run_id:
            init_from = train_init_from(client, parent_run_id)
        decisions = [
            _gate_class(client, cfg, size_class, records, run_models, baseline_model_dir, test_rows, predictions,
                        pipeline_run_id, init_from)
            for size_class in cfg.size_classes
        ]
        _check_loadability(client, cfg, decisions, test_rows, predictions, uri)
        for decision, size_class in zip(decisions, cfg.size_classes, strict=True):
            if decision.passed:
                _register_and_hand_off(client, cfg, decision, size_class, records, origin, run_id, uri, out)
            set_tags(decision.mlflow_tags(), run_id=run_id)
        document = {"pipeline_run_id": pipeline_run_id, "lineage": origin.to_dict(),
                    "decisions": [d.to_dict() for d in decisions]}
        (out / DECISIONS_FILE).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        (out / REPORT_FILE).write_text(gate_report_markdown(decisions, pipeline_run_id))
        log_json(document, DECISIONS_FILE, artifact_dir=STEP_NAME, run_id=run_id)
        log_report(out / REPORT_FILE, run_id=run_id)
    return decisions


def _gate_class(client: MlflowClient, cfg: ReleaseConfig, size_class: SizeClass, records: Sequence[dict[str, Any]],
                run_models: Mapping[str, str], baseline_dir: str | None, rows: EvalRows, predictions: _Predictions,
                pipeline_run_id: str, init_from: Mapping[str, Any] | None = None) -> GateDecision:
    name = registered_model_name(cfg.registry_prefix(), size_class)
    record = candidate_for_class(records, size_class, cfg.primary_metric)
    if record is None:
        candidates = [r for r in records if r.get("arm", "matta") == "matta"]
        return no_candidate_decision(size_class, name, pipeline_run_id, rows, explain_no_fit(candidates, size_class))
    model_dir = run_models.get(str(record["name"])) or record.get("model_dir")
    if not model_dir:
        raise ValueError(f"no model folder for width {record['name']!r}: add it to run_models (known: "
                         f"{sorted(run_models)}) or keep model_dir in its evaluation record")
    ensure_registered_model(client, name, size_class)
    reference, reference_notes = _reference(client, name, pipeline_run_id, baseline_dir, cfg.baseline_arm,
                                            init_from)
    reference_labels = (predictions.of_uri(reference.model_uri) if reference.model_uri
                        else predictions.of_dir(str(reference.model_dir)))
    decision = gate_candidate(
        size_class=size_class, registered_model=name, pipeline_run_id=pipeline_run_id, record=record,
        model_dir=str(model_dir), rows=rows, candidate_labels=predictions.of_dir(str(model_dir)),
        reference=reference, reference_labels=reference_labels, config=cfg.gate,
    )
    decision.notes.extend(reference_notes)
    if reference.kind == REFERENCE_BASELINE:
        decision.notes.append(f"{name} has no champion from another run; compared with this run's "
                              f"{cfg.baseline_arm} baseline")
    return decision


def _check_loadability(client: MlflowClient, cfg: ReleaseConfig, decisions: Sequence[GateDecision], rows: EvalRows,
                       predictions: _Predictions, uri: str) -> None:
    """Log each passing candidate (or reuse this run's registered version) and load all in one clean process."""
    passing = [d for d in decisions if d.passed]
    for decision in passing:
        existing = versions_for_run(client, decision.registered_model, decision.pipeline_run_id)
        if existing:  # a retry: the version exists, check what is registered rather than log a duplicate
            decision.logged_model_uri = version_uri(decision.registered_model, existing[0].version)
            decision.notes.append(f"retry: version {existing[0].version} already holds this pipeline run")
            continue
        decision.logged_model_uri = log_standalone_model(
            str(decision.candidate_model_dir), f"{decision.size_class}-{decision.candidate['name']}",  # type: ignore[index]
            input_example_texts=list(rows.texts[:2]),
            metadata={"size_class": decision.size_class, "pipeline_run_id": decision.pipeline_run_id},
        )
    if not cfg.gate.check_loadability:
        for decision in passing:
            decision.checks.append(loadability_check(True, "skipped (gate.check_loadability is off)"))
        return
    texts = list(rows.texts[:cfg.gate.loadability_rows])
    results = check_loadable([str(d.logged_model_uri) for d in passing], uri, texts,
                             environment=cfg.gate.loadability_environment)
    for decision in passing:
        result = results[str(decision.logged_model_uri)]
        expected = predictions.of_dir(str(decision.candidate_model_dir))[:len(texts)]
        if not result.ok:
            decision.checks.append(loadability_check(False, f"{decision.logged_model_uri} does not load from its "
                                                            f"logged requirements alone: {result.error}"))
        elif result.labels != expected:
            wrong = sum(a != b for a, b in zip(result.labels, expected, strict=True))
            decision.checks.append(loadability_check(False, f"{decision.logged_model_uri} loads but predicts "
                                                            f"{wrong}/{len(texts)} labels differently"))
        else:
            decision.checks.append(loadability_check(True, f"{decision.logged_model_uri} loads without matta, "
                                                           f"pickle refused, in a {result.environment} (its logged "
                                                           f"requirements) in {result.seconds:.1f} s and predicts "
                                                           f"the same {len(texts)} labels"))


def _register_and_hand_off(client: MlflowClient, cfg: ReleaseConfig, decision: GateDecision, size_class: SizeClass,
                           records: Sequence[Mapping[str, Any]], origin: Lineage, run_id: str, uri: str,
                           out: Path) -> None:
    assert decision.candidate is not None and decision.comparison is not None and decision.reference is not None
    comparison = decision.comparison
    gate_tags = {RT.GATE_REFERENCE: decision.reference.label(), RT.GATE_DIFF: f"{comparison.diff:.6f}",
                 RT.GATE_CI_LOW: f"{comparison.ci_low:.6f}", RT.GATE_CI_HIGH: f"{comparison.ci_high:.6f}"}
    tags = version_tags(origin, size_class=size_class.name, record=decision.candidate, release_run_id=run_id,
                        gate=gate_tags)
    registration = register_version(client, decision.registered_model, str(decision.logged_model_uri),
                                    decision.pipeline_run_id, tags, run_id=run_id)
    decision.registered_version, decision.version_created = registration.version, registration.created
    decision.challenger_set = propose_challenger(client, decision.registered_model, registration.version,
                                                 **cfg.lock_options())
    if not decision.challenger_set:
        decision.notes.append(f"@challenger not moved to v{registration.version}: a newer or equal version already "
                              "holds a release alias")
    # What the handoff says about the registry is read back from it, after the alias moved (or did not): a run
    # that lost the race to a newer version hands off its own version and says that it is not @challenger.
    aliases = get_aliases(client, decision.registered_model)
    document = build_handoff(
        decision, cfg.handoff, challenger_version=registration.version,
        reference_metrics=_reference_metrics(client, decision.reference, records, cfg.baseline_arm),
        size_class_budget=size_class.budget(), tracking_uri=uri, registry_aliases=aliases,
        challenger_alias=aliases.get(ALIAS_CHALLENGER) == str(registration.version),
    )
    json_path, md_path = write_handoff(document, out / size_class.name)
    decision.handoff_path = str(json_path)
    artifact_dir = f"handoff/{size_class.name}"
    log_json(document, json_path.name, artifact_dir=artifact_dir, run_id=run_id)
    log_report(md_path, artifact_dir=artifact_dir, run_id=run_id)
    client.set_model_version_tag(decision.registered_model, registration.version, RT.RELEASE_HANDOFF,
                                 f"runs:/{run_id}/{artifact_dir}/{json_path.name}")

