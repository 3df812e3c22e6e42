"""Log a saved model folder as an MLflow LoggedModel made of its files only: no flavor, no code, no pickle.

For models the pyfunc of `log_standalone_model` cannot serve (it maps text to class labels): a causal-LM decoder
needs the Teacher's tokenizer to read text, so its folder (``model.safetensors`` + ``config.json``) is stored as
is, listed in the experiment's Models tab with its widths and lineage, and loaded back with the family's own
``load`` (e.g. `matta_core.families.decoder.standalone.StandaloneDecoder.load`) after
``mlflow.artifacts.download_artifacts("models:/<model_id>")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow


def log_model_folder(
    model_dir: str | Path,
    name: str,
    *,
    model_type: str,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """Log every file of `model_dir` as LoggedModel `name` of the active run; return its ``models:/m-...`` URI.

    The model goes READY once all files are uploaded, FAILED (and the error raised) otherwise.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir() or not any(model_dir.iterdir()):
        raise FileNotFoundError(f"{model_dir} is not a folder holding a saved model; nothing to log")
    model = mlflow.initialize_logged_model(
        name=name,
        model_type=model_type,
        tags={key: str(value) for key, value in (tags or {}).items()},
        params={key: str(value) for key, value in (params or {}).items()},
    )
    try:
        mlflow.MlflowClient().log_model_artifacts(model.model_id, str(model_dir))
    except BaseException:
        mlflow.finalize_logged_model(model.model_id, "FAILED")
        raise
    mlflow.finalize_logged_model(model.model_id, "READY")
    return f"models:/{model.model_id}"
