"""The MatTA Kubeflow pipeline: its DAG (`matta_pipeline`), how to run it locally, compile it and check it.

- `matta_pipeline.py`: the DAG over the components in ``components/``, and `pipeline_arguments` (config -> params).
- `code_version.py`: the compile-time code version that every task's cache key includes.
- `preflight.py`: the checks ``matta run`` / ``matta submit`` make before any step runs.
- `local_runner.py`: ``matta run``: the whole pipeline through ``kfp.local`` under one MLflow parent run.
- `compile.py`: ``matta compile``: write the YAML and validate it strictly against the pipeline-spec schema.
"""
