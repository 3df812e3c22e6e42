"""A pipeline driver in its own process, on the code path `matta run` takes (`pipelines.local_runner`).

    python tracked_driver.py TRACKING_URI EXPERIMENT RETRY_SECONDS

Opens the parent run inside `tracking_outages` (bounded retries for itself and its steps), prints ``parent <run
id>``, runs one step process (`looping_step.py`) and forwards its output to stdout as kfp.local does; a failed step
fails the run. A `TrackingUnavailable` is reported as `matta run` reports it: one ``error:`` line on stderr, exit 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from matta_core.tracking import pipeline_run
from matta_core.tracking.outage import TrackingUnavailable, tracking_outages


def main() -> None:
    uri, experiment, retry_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    try:
        with tracking_outages(uri, retry_seconds), pipeline_run(uri, experiment, "driven") as parent:
            print(f"parent {parent.run_id}", flush=True)
            with subprocess.Popen([sys.executable, str(Path(__file__).parent / "looping_step.py"), parent.run_id],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as step:
                for line in step.stdout or []:
                    print(line, end="", flush=True)
            if step.returncode != 0:
                raise RuntimeError(f"the step failed with exit code {step.returncode}")
    except TrackingUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
