"""Component: validate, deduplicate and split the raw data (step 1)."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def prepare_data(
    task: str,
    data_json: str,
    data_version: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    experiment: str,
    prepared: Output[Dataset],
    metrics: Output[Metrics],
) -> None:
    """Write train/validation/test Parquet (a text corpus for ``task: causal_lm``: JSONL) + manifest.json (the
    data's content hash) to `prepared`.

    `data_version` (the first task reads it: object generations, content hashes) is not read here: it is an input
    so that the step's cache key changes when the data does, and only then.

    Bad data (`matta_core.data.errors.DataError`: an empty file, a missing column, too many bad rows, test labels
    no training row has) fails the task with matta's message alone; ``MATTA_DEBUG=1`` adds the traceback."""
    from matta_core.config import DataSection
    from matta_core.data.errors import DataError
    from matta_core.steps import tracked
    from matta_core.task_errors import exit_on_expected_errors

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version, experiment=experiment)
    data = tracked.load_section(DataSection, data_json, "data")
    with exit_on_expected_errors("prepare", DataError):
        result = tracked.prepare(data, prepared.path, tracking, task)
    tracked.publish_metrics(metrics, result)
