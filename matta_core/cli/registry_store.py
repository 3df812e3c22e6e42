"""The MLflow store of the registry commands (`matta promote`, `rollback`, `models list`): named, never guessed.

Unlike a pipeline run, which creates ``<output_dir>/mlflow.db`` when it has no store, these commands only read or
change what a run registered. So they take ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` and nothing else, and
refuse a sqlite file that does not exist: opening it would create an empty store (MLflow creates the file and its
tables), and the command would then report "no models" about the wrong place instead of saying so.
"""

from __future__ import annotations

from typing import Any

from matta_core.tracking.errors import TrackingError
from matta_core.tracking.uri import ENV_TRACKING_URI, check_tracking_uri, configured_tracking_uri, sqlite_path


def _where_runs_record() -> str:
    """Where a local `matta run` of the default config records, as a --tracking-uri to copy."""
    from matta_core.config import PipelineConfig
    from matta_core.tracking.uri import DEFAULT_DB_FILE

    output_dir = PipelineConfig.model_fields["output_dir"].default
    return f"sqlite:///{output_dir}/{DEFAULT_DB_FILE}"


def registry_uri(tracking_uri: str | None) -> str:
    """The store a registry command uses: `tracking_uri`, else ``MLFLOW_TRACKING_URI``; `TrackingError` if neither
    is set, if a sqlite store's file does not exist, or if the store does not answer."""
    from matta_core.tracking.uri import resolve_tracking_uri

    chosen = configured_tracking_uri(tracking_uri)
    if not chosen:
        raise TrackingError(
            f"no MLflow tracking store given: pass --tracking-uri or set {ENV_TRACKING_URI} (a local `matta run` "
            f"records into <output_dir>/mlflow.db, e.g. --tracking-uri {_where_runs_record()})")
    given_by = "--tracking-uri" if (tracking_uri or "").strip() else ENV_TRACKING_URI
    try:
        uri = resolve_tracking_uri(chosen)
    except ValueError as error:  # an in-memory sqlite store: empty by definition
        raise TrackingError(f"{given_by}: {error}") from None
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist, and this command does not create one"
        raise TrackingError(
            f"no MLflow store at {path} ({given_by} {chosen}): it {problem}; give the mlflow.db a run recorded "
            "into (a local `matta run` writes <output_dir>/mlflow.db)")
    check_tracking_uri(uri)
    return uri


def registry_client(tracking_uri: str | None) -> Any:
    """An `MlflowClient` on `registry_uri(tracking_uri)`."""
    from mlflow import MlflowClient

    return MlflowClient(registry_uri(tracking_uri))
