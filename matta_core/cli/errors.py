"""How the `matta` command reports errors: a mistake a user can fix is one line, ``error: <message>``, and exit 2;
a bug keeps its traceback. ``matta --debug`` (or ``MATTA_DEBUG=1``) shows the traceback of every error.

The root command's group (`MattaGroup`) wraps every subcommand in `report_errors`, so commands need no
try/except of their own for the errors listed in `EXPECTED_ERRORS`; the handlers some commands keep (other exit
codes, extra context) report through `fail`, which honours ``--debug`` the same way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

# One variable for the CLI and the pipeline's tasks (`matta_core.task_errors`): ``matta --debug`` sets it to 1 in
# its own environment, so the step processes it starts inherit it.
from matta_core.task_errors import DEBUG_ENV

#: Errors that mean "the input or the environment is wrong", not "matta is broken": (module, class name).
#: Looked up in `sys.modules` only, never imported: an exception cannot be an instance of a class whose module was
#: never loaded, and importing the pipeline packages (absent from a bare install) just to report an error could fail.
EXPECTED_ERRORS: tuple[tuple[str, str], ...] = (
    ("matta_core.config_base", "ConfigError"),
    ("matta_core.data.errors", "DataError"),  # DataValidationError, MissingColumnsError, DatasetNotFoundError, ...
    ("matta_core.data.version", "DataVersionError"),
    ("matta_core.tracking.errors", "TrackingError"),
    ("matta_core.image", "ImageTagError"),
    ("matta_core.release.cron", "CronError"),
    ("matta_core.release.lock", "LockTimeoutError"),
    ("matta_core.release.registry", "RegistryNotFoundError"),
    ("matta_core.storage.errors", "InvalidURIError"),
    ("pipelines.preflight", "PreflightError"),
    ("pipelines.container_runner", "ContainerRunError"),
    ("pipelines.vertex", "VertexError"),
    ("pipelines.run_lock", "RunFolderBusy"),
)
# MLflow's "no such model / version / run": a name the user typed (a store that does not answer is a TrackingError).
_MLFLOW_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


def debug_enabled() -> bool:
    """True when tracebacks are wanted: ``MATTA_DEBUG=1``, as ``matta --debug`` (or any true MATTA_DEBUG) sets it."""
    return os.environ.get(DEBUG_ENV) == "1"


def is_expected(error: BaseException) -> bool:
    """True if `error` is a mistake the user can fix from its message alone (see `EXPECTED_ERRORS`)."""
    for module_name, class_name in EXPECTED_ERRORS:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    mlflow_error = getattr(mlflow_exceptions, "MlflowException", None)
    return (isinstance(mlflow_error, type) and isinstance(error, mlflow_error)
            and getattr(error, "error_code", None) == _MLFLOW_NOT_FOUND)


def fail(error: BaseException, code: int = 2) -> NoReturn:
    """Report `error` as ``error: <message>`` and exit with `code`; with ``--debug``, re-raise it (traceback)."""
    if debug_enabled():
        raise error
    message = str(error).strip() or type(error).__name__
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code) from None


@contextmanager
def report_errors() -> Iterator[None]:
    """Expected errors raised inside become `fail` (one line, exit 2); anything else propagates untouched."""
    try:
        yield
    except Exception as error:
        if not is_expected(error):
            raise
        fail(error)


class MattaGroup(TyperGroup):
    """The root command: runs the chosen subcommand (and any nested group's) inside `report_errors`.

    Here rather than around ``app()`` in the entry point so that every way of calling the CLI, the installed
    ``matta`` script and typer's ``CliRunner`` alike, reports errors the same way.
    """

    def invoke(self, ctx: Any) -> Any:
        with report_errors():
            return super().invoke(ctx)
