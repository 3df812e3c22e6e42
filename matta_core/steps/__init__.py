"""The pipeline's steps as plain functions over artifact folders.

Each step reads the folders its predecessors wrote and writes one folder of its own (layout in `layout.py`).
The KFP components are thin wrappers over these functions, `matta component <name>` runs one from the command
line, and `matta_core.workflow.run_local` calls them in order: three ways in, one implementation. These are the
classifier's; the ``task: causal_lm`` steps live in `matta_core.steps.lm`, and `tracked` dispatches on the task.
"""

from matta_core.steps.evaluate_step import evaluate_step
from matta_core.steps.extract_step import extract_step
from matta_core.steps.prepare_step import prepare_step
from matta_core.steps.report_step import report_step
from matta_core.steps.teacher_step import teacher_step
from matta_core.steps.train_step import train_step

__all__ = ["evaluate_step", "extract_step", "prepare_step", "report_step", "teacher_step", "train_step"]
