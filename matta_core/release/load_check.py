"""Loadability check: logged models load and predict in a CLEAN process with pickle refused.

A model that only loads in the process that logged it (warm imports, a pickled object, a path on this machine)
would fail in serving. So the gate starts a fresh interpreter (``python -I``: no user site, no PYTHON* variables,
no working-directory imports) with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``, loads every model by URI from
the tracking store and predicts a few texts; the caller compares the labels with the candidate's own.

Also the script the subprocess runs: ``python -I -m matta_core.release.load_check REQUEST.json RESULT.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ENV_NO_PICKLE = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}


@dataclass(frozen=True)
class LoadResult:
    """What the clean process saw for one model URI."""

    model_uri: str
    ok: bool
    labels: list[str]
    error: str | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_loadable(
    model_uris: Sequence[str], tracking_uri: str, texts: Sequence[str], *, timeout_s: float = 300.0
) -> dict[str, LoadResult]:
    """Load and predict every URI in one clean subprocess (one interpreter start for all); result per URI."""
    if not model_uris:
        return {}
    with tempfile.TemporaryDirectory(prefix="matta-load-check-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({"tracking_uri": tracking_uri, "model_uris": list(model_uris),
                                       "texts": [str(t) for t in texts]}))
        env = {**os.environ, **ENV_NO_PICKLE, "MLFLOW_TRACKING_URI": tracking_uri}
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-m", "matta_core.release.load_check", str(request), str(result)],
                cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return {uri: LoadResult(uri, False, [], f"load check timed out after {timeout_s:g} s", timeout_s)
                    for uri in model_uris}
        if done.returncode != 0 or not result.is_file():
            why = f"load-check process exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            return {uri: LoadResult(uri, False, [], why, 0.0) for uri in model_uris}
        answers = json.loads(result.read_text())
    return {a["model_uri"]: LoadResult(**a) for a in answers}


def _load_and_predict(model_uri: str, texts: list[str]) -> LoadResult:
    import mlflow.pyfunc
    import pandas as pd

    started = time.perf_counter()
    try:
        model = mlflow.pyfunc.load_model(model_uri)
        frame = model.predict(pd.DataFrame({"text": texts}))
        labels = [str(v) for v in frame["label"]]
    except Exception as exc:  # reported to the gate, which fails the check with this message
        return LoadResult(model_uri, False, [], f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    return LoadResult(model_uri, True, labels, None, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        raise SystemExit("usage: python -I -m matta_core.release.load_check REQUEST.json RESULT.json")
    request = json.loads(Path(args[0]).read_text())
    import mlflow

    mlflow.set_tracking_uri(request["tracking_uri"])
    results = [_load_and_predict(uri, request["texts"]).to_dict() for uri in request["model_uris"]]
    Path(args[1]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
