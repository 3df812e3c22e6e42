"""The pipeline's steps as plain functions over artifact folders.

Each step reads the folders its predecessors wrote and writes one folder of its own (layout in `layout.py`).
The KFP components are thin wrappers over these functions, `matta component <name>` runs one from the command
line, and `matta_core.workflow.run_local` calls them in order: three ways in, one implementation. These are the
classifier's (`prepare_step.prepare_step`, `teacher_step.teacher_step`, `train_step.train_step`,
`extract_step.extract_step`, `evaluate_step.evaluate_step`, `report_step.report_step`); the ``task: causal_lm``
steps live in `matta_core.steps.lm`, and `tracked` dispatches on the task.

Nothing is imported here: every task process imports this package (for `tracked`), and importing all the steps
would make each pay for the others' dependencies (torch, scikit-learn, matplotlib: seconds per process). Import a
step from its module. The step functions are not re-exported lazily either: each shares its module's name, and
importing the module rebinds that package attribute (see `matta_core.lazy_exports`).
"""
