"""A fix for kfp 2.17.3's local orchestrator: inside a ``dsl.ParallelFor``, it replaces *every* input that is
another task's output parameter with the loop item (``kfp/local/orchestrator/task_spec_utils.py``,
``create_parameter_loop_iteration_task_spec``), so a loop body that reads, say, the first task's
``parent_run_id`` receives ``[96]`` or ``"baselines/kd"`` instead. A KFP cluster resolves those inputs correctly.

`loop_inputs_kept` keeps the task-output inputs the iterator does not iterate over while a local run executes;
`pipelines.local_runner` runs every pipeline under it. Pinned to kfp 2.17.3 (see pyproject.toml); a kfp that
fixes this makes the wrapper a no-op, since the inputs it restores are then already right.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kfp.local.orchestrator import task_spec_utils


def _keeping_other_task_outputs(original: Any) -> Any:
    def create(original_task_spec: Any, loop_item: Any, loop_task_name: str) -> Any:
        iterated = original_task_spec.parameter_iterator.items.input_parameter
        kept = {
            name: spec.task_output_parameter
            for name, spec in original_task_spec.inputs.parameters.items()
            if spec.HasField("task_output_parameter") and name != iterated
        }
        iteration = original(original_task_spec, loop_item, loop_task_name)
        for name, task_output in kept.items():
            iteration.inputs.parameters[name].ClearField("runtime_value")
            iteration.inputs.parameters[name].task_output_parameter.CopyFrom(task_output)
        return iteration

    create.__wrapped__ = original  # type: ignore[attr-defined]
    return create


@contextmanager
def loop_inputs_kept() -> Iterator[None]:
    """While inside, kfp.local's parameter loops keep the task-output inputs they do not iterate over."""
    original = task_spec_utils.create_parameter_loop_iteration_task_spec
    task_spec_utils.create_parameter_loop_iteration_task_spec = _keeping_other_task_outputs(original)
    try:
        yield
    finally:
        task_spec_utils.create_parameter_loop_iteration_task_spec = original
