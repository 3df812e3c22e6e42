"""Component: compare every width with the Teacher and the baselines: table, Pareto front, chart (step 6)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def write_report(
    evaluations: Input[Dataset],
    teacher: Input[Dataset],
    task: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    experiment: str,
    report: Output[Dataset],
    report_html: Output[HTML],
    report_md: Output[Markdown],
    metrics: Output[Metrics],
    # KFP's spelling of an optional artifact input: `matta component report` may leave them out.
    prepared: Input[Dataset] = None,  # type: ignore[assignment]
    trained: Input[Model] = None,  # type: ignore[assignment]
) -> None:
    """Write the report folder (md, html, json, png) to `report`, and the HTML and Markdown views (chart inlined)
    to `report_html` / `report_md`, which the KFP UI renders. With `prepared` and `trained` (the prepare and train
    steps' outputs) the report's header shows the quarantined rows per reason and every data and training warning."""
    from matta_core.steps import tracked
    from matta_core.steps.evaluate_all import numbered_subdirs

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version, experiment=experiment)
    evaluation_dirs = numbered_subdirs(evaluations.path)  # the widths', then the baselines'
    result = tracked.report(evaluation_dirs, teacher.path, report.path, tracking, task,
                            prepared_dir=None if prepared is None else prepared.path,
                            trained_dir=None if trained is None else trained.path)
    tracked.write_report_views(report.path, report_html.path, report_md.path)
    tracked.publish_metrics(metrics, tracked.report_metrics(result))
