"""What every pipeline task does first, before any work: importable without torch, so the light tasks (the first
and the exit task) stay light."""

from __future__ import annotations


def prepare_task_process(code_version: str) -> None:
    """Refuse a stale image, arm the task's own timeout (``resources.<step>.timeout_seconds``: Vertex AI ignores
    the pod's), and read the task's settings from the Secret Manager secret the pipeline names
    (``cluster.settings_secret``), which must be in the environment before MLflow is first used. A full disk
    ends the task with matta's message instead of a traceback (`matta_core.task_errors.install_task_excepthook`).

    Also: at exit, skip the interpreter's final garbage collection over every object torch and friends created
    (``gc.freeze``): ~0.4 s per task process, for nothing, since the process is ending (objects are still
    finalised as usual).
    """
    import atexit
    import gc
    import os

    from matta_core.cluster.secret_settings import load_settings_secret
    from matta_core.image_identity import check_task_code_version
    from matta_core.task_errors import install_task_excepthook
    from matta_core.task_timeout import TASK_STEP_ENV, arm_task_timeout

    install_task_excepthook(os.environ.get(TASK_STEP_ENV) or "task")
    check_task_code_version(code_version)
    arm_task_timeout()
    load_settings_secret()
    atexit.register(gc.freeze)
