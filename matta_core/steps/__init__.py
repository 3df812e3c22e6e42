"""The pipeline's steps as the components call them, blind to which model family runs.

`tracked` holds one function per step (prepare, teacher, train, extract, evaluate, report, release): each parses
nothing family-specific, asks the registry for the family of its ``task`` (`matta_core.families.registry`), runs
that family's step (`matta_core.families.<family>/*_step.py`, plain functions over artifact folders) and records
it in MLflow. `evaluate_all` extracts and evaluates every width in one task. The KFP components, `matta component
<name>` and the tests all come in here: three ways in, one implementation.

Nothing is imported here: every task process imports this package (for `tracked`), and importing the families'
steps would make each pay for the others' dependencies (torch, scikit-learn, matplotlib: seconds per process).
"""
