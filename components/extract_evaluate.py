"""Component: cut one width out of the nested model and evaluate it, in one task (steps 4 and 5).

One task, not two: on a cluster each task pays a pod start (10-60 s) and every task pays the imports (~3.4 s
here), while the extracted model is small and the evaluation reads it at once. ``extract_width`` and
``evaluate_model`` stay separate components for ``matta component`` and for evaluating the baselines.
"""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def extract_and_evaluate(
    trained: Input[Model],
    prepared: Input[Dataset],
    teacher: Input[Dataset],
    widths: list,
    task: str,
    data_json: str,
    measure_speed: bool,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    model: Output[Model],
    evaluation: Output[Dataset],
    metrics: Output[Metrics],
) -> None:
    """Write the standalone model for `widths` to `model` (parity-checked) and its evaluation.json to
    `evaluation`; `widths` as for ``extract_width``."""
    from matta_core.config import DataSection
    from matta_core.steps import tracked

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version)
    data = tracked.load_section(DataSection, data_json, "data")
    extracted = tracked.extract(trained.path, widths, model.path, prepared.path, data, tracking, task)
    evaluated = tracked.evaluate(model.path, prepared.path, evaluation.path, data, measure_speed, tracking, task,
                                 teacher_dir=teacher.path)
    tracked.publish_metrics(metrics, {**extracted, **evaluated})
