"""Every MLflow tag the release stage sets (gate, registry, aliases, lock), in one place.

Lineage tags on model versions reuse the tracking names (``matta.data.content_hash``, ``matta.teacher.cache_key``,
``matta.teacher.fingerprint``, ``matta.code.version``, ``matta.model.widths``; see `matta_core.tracking.tags`).

====================================  =====================================================================
Tag                                   Where, and meaning
====================================  =====================================================================
``matta.pipeline.run_id``             model version: the pipeline run that produced it (the idempotency key)
``matta.size_class``                  registered model and version: the size class (``xs``, ``s``, ...)
``matta.size_class.budget``           registered model: the class budget as JSON
``matta.model.name``                  model version: the width's name in the run (``student-64``, ``256``)
``matta.metric.<key>``                model version: offline metric of the evaluation record (accuracy, params,
                                      dense_params, flops_per_example, latency_p95_ms, ...)
``matta.gate.reference``              model version: what the gate compared against (``champion v3`` /
                                      ``baseline ce_only``)
``matta.gate.diff``                   model version: accuracy difference candidate - reference on the test rows
``matta.gate.ci_low`` / ``ci_high``   model version: its paired-bootstrap confidence interval
``matta.gate.<class>.<field>``        release run: the gate decision of one class (``passed``, ``candidate``,
                                      ``reference``, ``diff``, ``ci_low``, ``ci_high``, ``failed_checks``,
                                      ``version``)
``matta.release.run_id``              model version: the MLflow run of the release step that registered it
``matta.release.handoff``             model version: artifact URI of its A/B handoff JSON
``matta.release.last_event``          registered model: JSON of the last alias change (promote / rollback)
``matta.release.promoted``            model version: JSON {at, by, replaced} when it became champion
``matta.release.rolled_back``         model version: JSON {at, by, restored} when a rollback removed it
``matta.lock.owner``                  lock model: who holds the alias lock (host:pid:uuid)
``matta.lock.for``                    lock model: the registered model whose aliases it guards
``matta.lock.acquired_at``            lock model: epoch seconds when taken
``matta.lock.expires_at``             lock model: epoch seconds after which anyone may break it
====================================  =====================================================================
"""

from __future__ import annotations

PIPELINE_RUN_ID = "matta.pipeline.run_id"
SIZE_CLASS = "matta.size_class"
SIZE_CLASS_BUDGET = "matta.size_class.budget"
MODEL_NAME = "matta.model.name"
METRIC_PREFIX = "matta.metric."
GATE_REFERENCE = "matta.gate.reference"
GATE_DIFF = "matta.gate.diff"
GATE_CI_LOW = "matta.gate.ci_low"
GATE_CI_HIGH = "matta.gate.ci_high"
GATE_PREFIX = "matta.gate."
RELEASE_RUN_ID = "matta.release.run_id"
RELEASE_HANDOFF = "matta.release.handoff"
RELEASE_LAST_EVENT = "matta.release.last_event"
RELEASE_PROMOTED = "matta.release.promoted"
RELEASE_ROLLED_BACK = "matta.release.rolled_back"
LOCK_OWNER = "matta.lock.owner"
LOCK_FOR = "matta.lock.for"
LOCK_ACQUIRED_AT = "matta.lock.acquired_at"
LOCK_EXPIRES_AT = "matta.lock.expires_at"

#: Evaluation-record keys copied onto model versions as ``matta.metric.<key>`` (what `matta models list` shows).
VERSION_METRICS = (
    "accuracy", "macro_f1", "params", "dense_params", "flops_per_example", "latency_p50_ms", "latency_p95_ms",
    "throughput_examples_per_s",
)


def gate_tag(size_class: str, field: str) -> str:
    """``matta.gate.<class>.<field>``: one release run gates several classes, so the class is part of the key."""
    return f"{GATE_PREFIX}{size_class}.{field}"


def metric_tag(key: str) -> str:
    return f"{METRIC_PREFIX}{key}"
