"""Component: cut every width out of the nested model and evaluate it, and evaluate the baselines, in one task
(steps 4 and 5; why one task: `matta_core.steps.evaluate_all`). ``extract_width`` and ``evaluate_model`` stay
separate components for ``matta component``."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def extract_and_evaluate(
    trained: Input[Model],
    prepared: Input[Dataset],
    teacher: Input[Dataset],
    widths: list,
    baseline_dirs: list,
    task: str,
    data_json: str,
    extraction_json: str,
    measure_speed: bool,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    experiment: str,
    models: Output[Model],
    evaluations: Output[Dataset],
    metrics: Output[Metrics],
) -> None:
    """Write each width's standalone model (parity-checked) to a numbered sub-folder of `models`, and every
    model's evaluation.json (the widths', then the baselines' in `baseline_dirs` of `trained`) to one of
    `evaluations`. `widths`: one entry per model, as for ``extract_width``."""
    from matta_core.config import DataSection, ExtractionSection
    from matta_core.steps import tracked
    from matta_core.steps.evaluate_all import extract_and_evaluate_all

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version, experiment=experiment)
    data = tracked.load_section(DataSection, data_json, "data")
    extraction = tracked.load_section(ExtractionSection, extraction_json, "extraction")
    step_metrics = extract_and_evaluate_all(
        trained.path, widths, baseline_dirs, prepared.path, teacher.path, data, measure_speed, models.path,
        evaluations.path, tracking, task, extraction)
    tracked.publish_metrics(metrics, step_metrics)
