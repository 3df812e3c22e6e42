"""A pipeline step in its own process: attach to the parent run by id, log, print the child run's id.

    python child_step.py PARENT_RUN_ID STEP_NAME

The tracking URI comes from MLFLOW_TRACKING_URI, as pipeline_run hands it to the processes it starts.
"""

from __future__ import annotations

import sys

from matta_core.tracking import log_metrics, log_params_flat, set_lineage_tags, step_run


def main() -> None:
    parent_run_id, step_name = sys.argv[1], sys.argv[2]
    with step_run(parent_run_id, step_name) as run:
        log_params_flat({"train": {"steps": 3, "lr": 0.1}, "widths": (16, 8)})
        for step in range(1, 4):
            log_metrics({"loss": 1.0 / step}, step=step)
        set_lineage_tags("data-hash-1", "teacher-key-2", "code-3", widths=(16, 8))
    print(run.run_id)


if __name__ == "__main__":
    main()
