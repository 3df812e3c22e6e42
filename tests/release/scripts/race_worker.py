"""One process of the registry race tests: wait at a file barrier with the others, then act at once.

    python race_worker.py REQUEST_JSON

REQUEST: {"tracking_uri", "action": "register" | "promote", "model", "barrier_dir", "parties", "me", "out",
          "source" + "pipeline_run_id" (register) | "version" (promote)}
Writes {"ok": true, ...result} or {"ok": false, "error": ...} as JSON to "out".
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def wait_for_all(barrier: Path, parties: int, me: int, timeout_s: float = 120.0) -> None:
    """Every worker imports first (seconds), then all start within milliseconds of each other."""
    barrier.mkdir(parents=True, exist_ok=True)
    (barrier / f"ready-{me}").touch()
    deadline = time.monotonic() + timeout_s
    while len(list(barrier.glob("ready-*"))) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier {barrier}: not all {parties} workers arrived")
        time.sleep(0.005)


def main() -> None:
    request = json.loads(sys.argv[1])
    from mlflow import MlflowClient

    from matta_core.release.promote import promote
    from matta_core.release.registry import propose_challenger, register_version

    client = MlflowClient(request["tracking_uri"])
    wait_for_all(Path(request["barrier_dir"]), request["parties"], request["me"])
    try:
        if request["action"] == "register":
            registration = register_version(client, request["model"], request["source"], request["pipeline_run_id"],
                                            {"matta.size_class": "s"})
            challenger = propose_challenger(client, request["model"], registration.version, timeout_s=60)
            result = {"version": registration.version, "created": registration.created, "challenger": challenger}
        else:
            change = promote(client, request["model"], version=request["version"], by=f"worker-{request['me']}",
                             timeout_s=60)
            result = {"before": change.before, "after": change.after, "version": change.version}
        answer = {"ok": True, **result}
    except Exception as exc:  # reported to the test, which shows it
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    Path(request["out"]).write_text(json.dumps(answer))


if __name__ == "__main__":
    main()
