"""Components: the pipeline's first task (open the MLflow parent run, read the data's version) and its last task
(end the parent run). Never cached: both have side effects, and the data version must be read on every run."""

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
) -> NamedTuple("RunStart", [("parent_run_id", str), ("data_version", str)]):
    """Open (or, on a retry, find) the parent run of this KFP run, unless `parent_run_id` is given; return its id
    ("" when untracked) and the input data's version (the prepare step's cache key rests on it)."""
    import json
    from collections import namedtuple

    from matta_core.config import DataSection
    from matta_core.steps import tracked
    from matta_core.steps.run_step import start_pipeline_run

    tracked.start_task(tracking_uri, parent_run_id, code_version)
    data = tracked.load_section(DataSection, data_json, "data")
    params = {"task": task, "name": name, **{section: json.loads(text) for section, text in (
        ("data", data_json), ("teacher", teacher_json), ("model", model_json), ("train", train_json),
        ("release", release_json))}}
    run_id, version = start_pipeline_run(
        experiment=name, data=data, params=params, code_version=code_version, tracking_uri=tracking_uri,
        parent_run_id=parent_run_id, kfp_run_id=kfp_run_id, kfp_run_name=kfp_run_name)
    return namedtuple("RunStart", ["parent_run_id", "data_version"])(run_id, version)


@dsl.component(base_image=default_image_tag(), install_kfp_package=False)
def end_run(
    code_version: str,
    tracking_uri: str,
    given_parent_run_id: str,
    opened_run_id: str,
) -> str:
    """End the parent run `start_run` opened (FINISHED: this task runs after the report and the release)."""
    from matta_core.steps import tracked
    from matta_core.steps.run_step import end_pipeline_run

    tracked.start_task(tracking_uri, "", code_version)
    done = end_pipeline_run(tracking_uri=tracking_uri, given_parent_run_id=given_parent_run_id,
                            opened_run_id=opened_run_id)
    print(done, flush=True)
    return done
