"""Component: train the TA and Student jointly (MatTA), and the baselines at the same budget (step 3)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def train_models(
    prepared: Input[Dataset],
    teacher: Input[Dataset],
    task: str,
    data_json: str,
    model_json: str,
    train_json: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    experiment: str,
    trained: Output[Model],
    metrics: Output[Metrics],
    init_from_version: str = "",
) -> list:
    """Write the nested model (classifier or decoder, by `task`), the baseline models and train_result.json to
    `trained`.

    Returns the baseline models' sub-folders of `trained` (``["baselines/kd", ...]``): the pipeline evaluates
    each, so the baselines are configured in one place (``train.baselines``). `init_from_version` (from the
    run's first task) is what ``model.init_from`` named when the run started: part of this task's cache key, so a
    moved alias or a rewritten folder trains again, and the version an alias is loaded as.
    """
    from matta_core.config import DataSection, TrainSection
    from matta_core.steps import tracked

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version, experiment=experiment)
    data = tracked.load_section(DataSection, data_json, "data")
    model = tracked.load_model_section(task, model_json)  # the classifier's or the decoder's section
    train_section = tracked.load_section(TrainSection, train_json, "train")
    step_metrics, baseline_dirs = tracked.train(
        prepared.path, teacher.path, trained.path, model, train_section, data, tracking, task, init_from_version
    )
    tracked.publish_metrics(metrics, step_metrics)
    return baseline_dirs
