"""Component: quality and serving cost of one standalone model on the test split (step 5)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def evaluate_model(
    model: Input[Model],
    prepared: Input[Dataset],
    teacher: Input[Dataset],
    task: str,
    data_json: str,
    measure_speed: bool,
    model_subdir: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    experiment: str,
    evaluation: Output[Dataset],
    metrics: Output[Metrics],
) -> None:
    """Write evaluation.json for the model in `model` (or its `model_subdir`, e.g. a baseline) to `evaluation`.

    A classifier is scored on the test rows of `prepared`; a causal LM on the test token ids `teacher` holds (the
    ids the Teacher read, so every model and the Teacher score the same tokens).
    """
    import os

    from matta_core.config import DataSection
    from matta_core.steps import tracked

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version, experiment=experiment)
    data = tracked.load_section(DataSection, data_json, "data")
    model_dir = os.path.join(model.path, model_subdir) if model_subdir else model.path
    step_metrics = tracked.evaluate(model_dir, prepared.path, evaluation.path, data, measure_speed, tracking, task,
                                    teacher_dir=teacher.path)
    tracked.publish_metrics(metrics, step_metrics)
