"""Load a registered model by alias from a tracking server and predict, in whatever environment runs this file.

    python serve_from_registry.py REQUEST.json RESULT.json

REQUEST: {"tracking_uri", "model_uri" (models:/name@alias), "texts"}.
RESULT: {"predictions": <DataFrame as lists by column>, "matta_core_found": bool, "mlflow_distributions": [...]}.
Imports only what a serving host has: the standard library, mlflow and pandas.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

import mlflow
import pandas as pd


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    mlflow.set_tracking_uri(request["tracking_uri"])
    model = mlflow.pyfunc.load_model(request["model_uri"])
    frame = model.predict(pd.DataFrame({"text": request["texts"]}))
    Path(sys.argv[2]).write_text(json.dumps({
        "predictions": frame.to_dict(orient="list"),
        "matta_core_found": importlib.util.find_spec("matta_core") is not None,
        "mlflow_distributions": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()
                                       if d.metadata["Name"].startswith("mlflow")),
    }))


if __name__ == "__main__":
    main()
