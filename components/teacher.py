"""Component: run the Teacher once over every split, through the content-addressed cache (step 2)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def cache_teacher_outputs(
    prepared: Input[Dataset],
    task: str,
    data_json: str,
    teacher_json: str,
    cache_dir: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    experiment: str,
    teacher: Output[Dataset],
    metrics: Output[Metrics],
) -> None:
    """Write the Teacher's logits per split + teacher.json (fingerprint, cache key, accuracy) to `teacher`; for
    ``task: causal_lm`` its token ids and top-k logits per split, the test cloze examples and its perplexity.

    `cache_dir` (a path or gs:// URI) outlives the pipeline run: a rerun over the same data and Teacher reads
    the outputs from it instead of running the Teacher again.
    """
    from matta_core.config import DataSection, TeacherSection
    from matta_core.steps import tracked

    tracking = tracked.start_task(tracking_uri, parent_run_id, code_version, experiment=experiment)
    data = tracked.load_section(DataSection, data_json, "data")
    teacher_section = tracked.load_section(TeacherSection, teacher_json, "teacher")
    step_metrics = tracked.teacher(prepared.path, teacher.path, teacher_section, data, cache_dir, tracking,
                                   task)
    tracked.publish_metrics(metrics, step_metrics)
