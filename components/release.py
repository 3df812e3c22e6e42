"""Component: gate each size class's best width, register what passes as @challenger, write the A/B handoffs
(step 7)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def release_models(
    evaluations: Input[Dataset],
    width_models: Input[Model],
    trained: Input[Model],
    teacher: Input[Dataset],
    prepared: Input[Dataset],
    task: str,
    data_json: str,
    release_json: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    release: Output[Dataset],
    gate_report: Output[Markdown],
    metrics: Output[Metrics],
) -> None:
    """Write the gate decisions, the gate report and ``<class>/ab_handoff.json`` + ``.md`` to `release`, and the
    gate report alone to `gate_report`. Registers in MLflow's Model Registry; skipped (with a report saying why)
    when tracking is off, ``release.enabled`` is false, or the task is ``causal_lm`` (the gate is the
    classifier's)."""
    from matta_core.config import DataSection, ReleaseSection
    from matta_core.steps import tracked
    from matta_core.steps.evaluate_all import numbered_subdirs

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version)
    data = tracked.load_section(DataSection, data_json, "data")
    section = tracked.load_section(ReleaseSection, release_json, "release")
    step_metrics = tracked.release(numbered_subdirs(evaluations.path), numbered_subdirs(width_models.path),
                                   trained.path, teacher.path,
                                   prepared.path, data, section, release.path, tracking, task)
    tracked.write_release_view(release.path, gate_report.path)
    tracked.publish_metrics(metrics, step_metrics)
