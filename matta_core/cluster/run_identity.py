"""Which pipeline run a task belongs to, read from the task's environment rather than from its inputs.

A task's inputs are its cache key. If every task took the MLflow parent run id (new on every run) as an input, no
task of a tracked cluster run could ever be served from the cache of an earlier run: unchanged data would be
prepared again, an unchanged model trained again. So the steps that may be cached take no per-run input; they
find their parent run through the run's identity, which the backend puts in every task's environment:

- **KFP on Kubernetes**: each task pod carries the label ``pipeline/runid``; the compiled pipeline maps it into
  ``MATTA_KFP_RUN_ID`` (``kfp.kubernetes.use_field_path_as_env``, see ``pipelines/task_settings.py``).
- **Vertex AI Pipelines**: each task's container gets ``VERTEX_AI_PIPELINES_RUN_LABELS``, a JSON object that holds
  the run's ``vertex-ai-pipelines-run-billing-id``.

The pipeline's first task tags the parent run it opens with this key (``matta.run_key``); the other tasks look the
parent up by it (`matta_core.tracking.kfp_parent.find_parent_by_run_key`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

#: Set on every task of a compiled cluster pipeline from the pod label below.
KFP_RUN_ID_ENV = "MATTA_KFP_RUN_ID"
#: The pod label KFP puts on every task pod of a run (its value is the run's id).
KFP_RUN_ID_POD_LABEL = "pipeline/runid"
#: Set by Vertex AI Pipelines in every task's container.
VERTEX_RUN_LABELS_ENV = "VERTEX_AI_PIPELINES_RUN_LABELS"
VERTEX_BILLING_ID_LABEL = "vertex-ai-pipelines-run-billing-id"


class RunIdentityError(RuntimeError):
    """The environment names a run in a form we cannot read."""


def current_run_key(environ: Mapping[str, str] | None = None) -> str | None:
    """``kfp:<run id>`` or ``vertex:<billing id>`` for the run this process is a task of; None outside a run."""
    env = os.environ if environ is None else environ
    kfp_run_id = env.get(KFP_RUN_ID_ENV, "").strip()
    if kfp_run_id:
        return f"kfp:{kfp_run_id}"
    labels_text = env.get(VERTEX_RUN_LABELS_ENV, "").strip()
    if not labels_text:
        return None
    try:
        labels = json.loads(labels_text)
    except json.JSONDecodeError as error:
        raise RunIdentityError(f"{VERTEX_RUN_LABELS_ENV} is not JSON ({error.msg}); Vertex AI sets it to the run's "
                               "labels as a JSON object") from None
    billing_id = labels.get(VERTEX_BILLING_ID_LABEL) if isinstance(labels, dict) else None
    if not billing_id:
        raise RunIdentityError(f"{VERTEX_RUN_LABELS_ENV} has no {VERTEX_BILLING_ID_LABEL!r}: cannot tell which "
                               "Vertex AI run this task belongs to")
    return f"vertex:{billing_id}"
