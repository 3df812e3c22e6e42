"""Release: size classes, the gate, MLflow Model Registry promotion, the A/B handoff, and scheduled runs.

One small module per job:

- `size_classes`: ``SizeClass`` budgets, ``candidate_for_class``, ``registered_model_name`` (``<prefix>-<class>``).
- `bootstrap`: ``paired_bootstrap`` CI of an accuracy difference on the same rows.
- `gate`: ``GateConfig``, ``GateDecision``, ``gate_candidate``; `load_check`: ``check_loadable`` (the model's
  logged requirements only, matta unimportable, pickle refused); `report`: the gate's Markdown report.
- `registry`: idempotent ``register_version``, forward-only ``propose_challenger``, alias names; `lock`:
  ``RegistryLock`` (create-only lock model); `promote`: ``promote``, ``rollback``, ``list_models``.
- `sample_size` + `handoff`: ``two_proportion_sample_size``, ``build_handoff``, ``validate_handoff``.
- `cron`, `schedule`, `local_scheduler`: 6-field cron, KFP recurring runs, the local no-overlap scheduler.
- `step`: ``release_step``, the whole stage for one pipeline run (what the KFP component wraps).

Names are imported lazily, so ``import matta_core.release.registry`` in a small worker does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SizeClass": "size_classes", "NoCandidateError": "size_classes", "candidate_for_class": "size_classes",
    "registered_model_name": "size_classes",
    "PairedBootstrap": "bootstrap", "paired_bootstrap": "bootstrap",
    "EvalRows": "rows",
    "CheckResult": "gate", "GateConfig": "gate", "GateDecision": "gate", "Reference": "gate",
    "gate_candidate": "gate",
    "check_loadable": "load_check",
    "ALIAS_CHAMPION": "registry", "ALIAS_CHALLENGER": "registry", "ALIAS_PREVIOUS": "registry",
    "Registration": "registry", "register_version": "registry", "propose_challenger": "registry",
    "get_aliases": "registry", "check_alias": "registry", "version_uri": "registry",
    "RegistryLock": "lock", "LockTimeoutError": "lock", "LockLostError": "lock",
    "AliasChange": "promote", "promote": "promote", "rollback": "promote", "list_models": "promote",
    "format_models_table": "promote",
    "SampleSize": "sample_size", "two_proportion_sample_size": "sample_size",
    "HandoffConfig": "handoff", "build_handoff": "handoff", "validate_handoff": "handoff",
    "write_handoff": "handoff",
    "CronError": "cron", "parse_cron": "cron",
    "recurring_run_request": "schedule", "recurring_run_body": "schedule",
    "run_schedule": "local_scheduler",
    "Lineage": "lineage",
    "ReleaseConfig": "config",
    "release_step": "step",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'matta_core.release' has no attribute {name!r}")
    return getattr(importlib.import_module(f"matta_core.release.{module}"), name)


def __dir__() -> list[str]:
    return __all__
