"""Components: the pipeline's first task (open the MLflow parent run, read the data's version) and its exit task
(end the parent run as the run ended). Never cached: both have side effects, and the data version must be read on
every run. Neither sets torch's threads: they run no torch."""

from typing import NamedTuple

from kfp import dsl

from matta_core.image import default_image_tag


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def start_run(
    task: str,
    name: str,
    data_json: str,
    teacher_json: str,
    model_json: str,
    train_json: str,
    release_json: str,
    code_version: str,
    tracking_uri: str,
    parent_run_id: str,
    kfp_run_id: str,
    kfp_run_name: str,
) -> NamedTuple("RunStart", [("parent_run_id", str), ("data_version", str), ("init_from_version", str)]):
    """Open (or, on a retry, find) the parent run of this KFP run, unless `parent_run_id` is given; return its id
    ("" when untracked), the input data's version (the prepare step's cache key rests on it) and what the model
    section's warm start names now (the train step's: an alias's version, which it then loads, or a folder's
    digest; "" for none)."""
    import json
    from collections import namedtuple

    from matta_core.config_base import load_section
    from matta_core.data.section import DataSection
    from matta_core.families.registry import family_for
    from matta_core.steps.tracked import load_model_section
    from matta_core.task_process import prepare_task_process
    from matta_core.tracking.run_tasks import start_pipeline_run

    prepare_task_process(code_version)
    data = load_section(DataSection, data_json, "data")
    params = {"task": task, "name": name, **{section: json.loads(text) for section, text in (
        ("data", data_json), ("teacher", teacher_json), ("model", model_json), ("train", train_json),
        ("release", release_json))}}
    run_id, version = start_pipeline_run(
        experiment=name, data=data, params=params, code_version=code_version, tracking_uri=tracking_uri,
        parent_run_id=parent_run_id, kfp_run_id=kfp_run_id, kfp_run_name=kfp_run_name)
    init_from_version = family_for(task).pin_init_from(load_model_section(task, model_json), tracking_uri)
    return namedtuple("RunStart", ["parent_run_id", "data_version", "init_from_version"])(
        run_id, version, init_from_version)


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def end_run(
    status: dsl.PipelineTaskFinalStatus,
    name: str,
    code_version: str,
    tracking_uri: str,
    given_parent_run_id: str,
    kfp_run_id: str,
) -> str:
    """End the parent run `start_run` opened for this KFP run: FINISHED when every task succeeded, else FAILED.

    The pipeline's exit task (``dsl.ExitHandler``): it runs however the other tasks ended, and can take no
    output of theirs, so it finds the parent run by the KFP run id, as a retried `start_run` does."""
    from matta_core.task_process import prepare_task_process
    from matta_core.tracking.run_tasks import end_pipeline_run

    prepare_task_process(code_version)
    done = end_pipeline_run(tracking_uri=tracking_uri, given_parent_run_id=given_parent_run_id, experiment=name,
                            kfp_run_id=kfp_run_id, state=status.state)
    print(done, flush=True)
    return done
