"""Load logged pyfunc models in a fresh process and predict, as a serving process would.

    python load_model.py REQUEST.json RESULT.json

REQUEST: {"texts": [...], "models": [{"tracking_uri": ..., "model_uri": ...}], "pickled": {...} | null}.
RESULT: {"predictions": [<DataFrame as records> per model], "pickled_error": <message> | null}.
Run with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false: the models must load anyway, the pickled one must not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow
import pandas as pd


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    frame = pd.DataFrame({"text": request["texts"]})
    predictions = []
    for entry in request["models"]:
        mlflow.set_tracking_uri(entry["tracking_uri"])
        model = mlflow.pyfunc.load_model(entry["model_uri"])
        predictions.append(model.predict(frame).to_dict(orient="list"))
    pickled_error = None
    if request.get("pickled"):
        mlflow.set_tracking_uri(request["pickled"]["tracking_uri"])
        try:
            mlflow.pyfunc.load_model(request["pickled"]["model_uri"])
        except Exception as exc:  # the refusal is what we want to see
            pickled_error = str(exc)
    Path(sys.argv[2]).write_text(json.dumps({"predictions": predictions, "pickled_error": pickled_error}))


if __name__ == "__main__":
    main()
