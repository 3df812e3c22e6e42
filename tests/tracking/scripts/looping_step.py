"""A pipeline step in its own process that logs to its child run until the tracking server goes away.

    python looping_step.py PARENT_RUN_ID

The store comes from MLFLOW_TRACKING_URI and the retry settings from the environment, both inherited from the
driver as kfp.local's steps inherit them. Prints ``step <run id>`` once its run is open.
"""

from __future__ import annotations

import sys
import time

from matta_core.tracking import log_metrics, step_run


def main() -> None:
    # A run nested under the step's own, as the training step nests one per arm.
    with step_run(sys.argv[1], "train") as run, step_run(run.run_id, "train-matta") as arm:
        print(f"step {run.run_id}", flush=True)
        print(f"arm {arm.run_id}", flush=True)
        for step in range(1, 100_000):
            log_metrics({"loss": 1.0 / step}, step=step)
            time.sleep(0.1)


if __name__ == "__main__":
    main()
