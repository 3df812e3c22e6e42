"""Every MLflow tag matta sets, in one place. All live under the ``matta.`` prefix.

=================================  ==========================================================================
Tag                                Meaning
=================================  ==========================================================================
``matta.run_kind``                 ``pipeline`` (the one parent run of a pipeline run) or ``step`` (a child)
``matta.pipeline``                 pipeline name (set by the caller of ``pipeline_run``)
``matta.step``                     pipeline step name of a child run (also its MLflow run name)
``matta.data.content_hash``        the prepared data's ``Manifest.content_hash``: the data's identity
``matta.teacher.cache_key``        the teacher cache key the Student was distilled from
``matta.teacher.fingerprint``      the Teacher's fingerprint (model identity, independent of data)
``matta.code.version``             the code that ran: package version and/or VCS revision
``matta.model.widths``             per-layer widths of a model, comma separated (``64`` or ``256,64``; a decoder's
                                   blocks as ``ffn:heads``: ``512:4,128:2``)
``matta.train.start_step``         step a training session started from (> 0 when it resumed a checkpoint)
``matta.train.checkpoint``         the last checkpoint published by the training step
``matta.kfp.run_id``               the KFP (or Vertex AI) run a parent run belongs to: one parent per run
``matta.kfp.run_name``             that run's name, as the cluster shows it
``matta.run_key``                  the run's identity as its tasks read it from their environment
                                   (``kfp:<id>`` / ``vertex:<billing id>``, `matta_core.cluster.run_identity`)
``matta.data.version``             the input data's version (object generations / content hashes) a run read
``matta.driver.host``              host name of the process that opened a pipeline's parent run (its driver)
``matta.driver.pid``               that process's pid
``matta.driver.start``             that process's start, ``<boot id>/<start ticks>`` (Linux), which tells a pid
                                   reused after the driver died from the driver (`matta_core.tracking.driver`)
``matta.ended_by``                 what ended a run its driver left RUNNING: ``cleanup`` (``matta runs cleanup``)
                                   or ``run-start`` (a later ``matta run``)
``matta.ended_reason``             why that run was ended (its driver is gone, its age, its parent ended)
=================================  ==========================================================================

MLflow's own tags (``mlflow.parentRunId``, ``mlflow.runName``) are set by MLflow and are not repeated here.
"""

from __future__ import annotations

from collections.abc import Sequence

PREFIX = "matta."

RUN_KIND = "matta.run_kind"
PIPELINE = "matta.pipeline"
STEP = "matta.step"
DATA_CONTENT_HASH = "matta.data.content_hash"
TEACHER_CACHE_KEY = "matta.teacher.cache_key"
TEACHER_FINGERPRINT = "matta.teacher.fingerprint"
CODE_VERSION = "matta.code.version"
MODEL_WIDTHS = "matta.model.widths"
TRAIN_START_STEP = "matta.train.start_step"
TRAIN_CHECKPOINT = "matta.train.checkpoint"
KFP_RUN_ID = "matta.kfp.run_id"
KFP_RUN_NAME = "matta.kfp.run_name"
RUN_KEY = "matta.run_key"
DATA_VERSION = "matta.data.version"
DRIVER_HOST = "matta.driver.host"
DRIVER_PID = "matta.driver.pid"
DRIVER_START = "matta.driver.start"
ENDED_BY = "matta.ended_by"
ENDED_REASON = "matta.ended_reason"

RUN_KIND_PIPELINE = "pipeline"
RUN_KIND_STEP = "step"

#: Every documented tag name; ``check_tag_name`` accepts only these (plus MLflow's own, which matta never sets).
KNOWN_TAGS = frozenset({
    RUN_KIND, PIPELINE, STEP, DATA_CONTENT_HASH, TEACHER_CACHE_KEY, TEACHER_FINGERPRINT, CODE_VERSION,
    MODEL_WIDTHS, TRAIN_START_STEP, TRAIN_CHECKPOINT, KFP_RUN_ID, KFP_RUN_NAME, RUN_KEY, DATA_VERSION,
    DRIVER_HOST, DRIVER_PID, DRIVER_START, ENDED_BY, ENDED_REASON,
})


def check_tag_name(name: str) -> str:
    """Return `name` if it is a documented matta tag; otherwise say where tags are documented."""
    if name not in KNOWN_TAGS:
        raise ValueError(
            f"tag {name!r} is not a documented matta tag; allowed: {sorted(KNOWN_TAGS)} "
            "(add new ones to matta_core/tracking/tags.py first, so every tag has one documented meaning)"
        )
    return name


def widths_value(widths: tuple[int, ...] | list[int]) -> str:
    """The tag value for per-layer widths: ``(256, 64)`` -> ``"256,64"`` (one spelling everywhere)."""
    return ",".join(str(int(w)) for w in widths)


def decoder_widths_value(widths: Sequence[Sequence[int]]) -> str:
    """The tag value for a decoder's per-block (ffn, heads) widths: ``[[512, 4], [128, 2]]`` -> ``"512:4,128:2"``."""
    return ",".join(f"{int(ffn)}:{int(heads)}" for ffn, heads in widths)
