"""Moving aliases by hand: promote a version to champion, roll back, and list what serves in each size class.

Every change runs under the model's `RegistryLock`, writes, then re-reads and compares (`verify_aliases`): two
people promoting at once end in the state of one of the two serial orders, never a mix, and the loser of an
impossible race gets an error instead of a silent lost update. Each change is recorded on the registered model
(``matta.release.last_event``) and on the versions involved.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mlflow import MlflowClient

from matta_core.release import tags as RT
from matta_core.release.lock import RegistryLock, is_lock_name
from matta_core.release.registry import (
    ALIAS_CHALLENGER,
    ALIAS_CHAMPION,
    ALIAS_PREVIOUS,
    RELEASE_ALIASES,
    check_alias,
    get_aliases,
    require_model_version,
    require_registered_model,
    verify_aliases,
)

PROMOTION_TARGETS = (ALIAS_CHAMPION, ALIAS_CHALLENGER)
#: Version metrics shown by `matta models list`.
LIST_METRICS = ("accuracy", "params", "latency_p95_ms")


@dataclass(frozen=True)
class AliasChange:
    """One alias operation: the aliases before and after, who did it and when."""

    model: str
    action: str
    version: str | None
    before: dict[str, str]
    after: dict[str, str]
    by: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        show = lambda a: ", ".join(f"@{k}=v{v}" for k, v in sorted(a.items())) or "none"  # noqa: E731
        return f"{self.model}: {self.action}; before {show(self.before)}; after {show(self.after)}"


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


def _record(client: MlflowClient, change: AliasChange) -> None:
    client.set_registered_model_tag(change.model, RT.RELEASE_LAST_EVENT, json.dumps(change.to_dict(), sort_keys=True))


def promote(
    client: MlflowClient,
    name: str,
    *,
    to: str = ALIAS_CHAMPION,
    version: str | int | None = None,
    by: str | None = None,
    **lock_options: Any,
) -> AliasChange:
    """Move `version` (default: the current ``@challenger``) to ``@champion`` or ``@challenger``.

    To champion: the old champion becomes ``@previous``, and ``@challenger`` is removed if it pointed at the
    promoted version. Promoting the current champion again changes nothing (action ``noop``).
    """
    check_alias(to)
    if to not in PROMOTION_TARGETS:
        raise ValueError(f"--to {to!r}: promote moves a version to one of {list(PROMOTION_TARGETS)} (aliases are "
                         "case-sensitive; @previous is set by promotions and used by rollback)")
    who, now = _who(by), time.time()
    require_registered_model(client, name)  # before the lock: a mistyped name must not even create a lock model
    with RegistryLock(client, name, **lock_options) as lock:
        before = get_aliases(client, name)
        target = str(version) if version is not None else before.get(ALIAS_CHALLENGER)
        if target is None:
            raise ValueError(f"{name!r} has no @challenger to promote; give --version N (aliases now: {before})")
        require_model_version(client, name, target)
        if before.get(to) == target:
            return AliasChange(name, "noop", target, before, before, who, now)
        expected: dict[str, str | None] = {to: target}
        lock.check()
        if to == ALIAS_CHAMPION:
            old = before.get(ALIAS_CHAMPION)
            if old is not None:
                client.set_registered_model_alias(name, ALIAS_PREVIOUS, old)
                expected[ALIAS_PREVIOUS] = old
            client.set_registered_model_alias(name, ALIAS_CHAMPION, target)
            if before.get(ALIAS_CHALLENGER) == target:
                client.delete_registered_model_alias(name, ALIAS_CHALLENGER)
                expected[ALIAS_CHALLENGER] = None
            client.set_model_version_tag(name, target, RT.RELEASE_PROMOTED,
                                         json.dumps({"at": now, "by": who, "replaced": old}))
        else:
            client.set_registered_model_alias(name, ALIAS_CHALLENGER, target)
        after = verify_aliases(client, name, expected)
        change = AliasChange(name, f"promote to {to}", target, before, after, who, now)
        _record(client, change)
        return change


def rollback(client: MlflowClient, name: str, *, by: str | None = None, **lock_options: Any) -> AliasChange:
    """``@previous`` becomes ``@champion``; ``@previous`` is removed (a second rollback must not flip back to the
    version just rolled back); the removed champion is tagged ``matta.release.rolled_back``."""
    who, now = _who(by), time.time()
    require_registered_model(client, name)  # before the lock, as in `promote`
    with RegistryLock(client, name, **lock_options) as lock:
        before = get_aliases(client, name)
        restored = before.get(ALIAS_PREVIOUS)
        if restored is None:
            raise ValueError(f"{name!r} has no @previous version to roll back to (aliases now: {before}); promote "
                             "a version explicitly with --version N")
        removed = before.get(ALIAS_CHAMPION)
        lock.check()
        client.set_registered_model_alias(name, ALIAS_CHAMPION, restored)
        client.delete_registered_model_alias(name, ALIAS_PREVIOUS)
        if removed is not None:
            client.set_model_version_tag(name, removed, RT.RELEASE_ROLLED_BACK,
                                         json.dumps({"at": now, "by": who, "restored": restored}))
        after = verify_aliases(client, name, {ALIAS_CHAMPION: restored, ALIAS_PREVIOUS: None})
        change = AliasChange(name, "rollback", restored, before, after, who, now)
        _record(client, change)
        return change


@dataclass
class ModelSummary:
    """One size class's registered model: its aliased versions and their key metrics."""

    name: str
    size_class: str
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)  # alias -> {version, metrics..., run}


def list_models(client: MlflowClient, prefix: str | None = None) -> list[ModelSummary]:
    """Every registered model tagged with a size class (optionally names starting with `prefix`), by name."""
    summaries = []
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        for model in page:
            size_class = model.tags.get(RT.SIZE_CLASS)
            if size_class is None or is_lock_name(model.name) or (prefix and not model.name.startswith(prefix)):
                continue
            summary = ModelSummary(model.name, size_class)
            for alias, version in sorted(model.aliases.items()):
                if alias not in RELEASE_ALIASES:
                    continue
                tags = client.get_model_version(model.name, str(version)).tags
                summary.versions[alias] = {
                    "version": str(version),
                    "pipeline_run_id": tags.get(RT.PIPELINE_RUN_ID),
                    **{m: _number(tags.get(RT.metric_tag(m))) for m in LIST_METRICS},
                }
            summaries.append(summary)
        token = page.token
        if not token:
            return sorted(summaries, key=lambda s: s.name)


def _number(value: str | None) -> float | None:
    try:
        return None if value in (None, "", "None") else float(value)  # type: ignore[arg-type]
    except ValueError:
        return None


def format_models_table(summaries: list[ModelSummary]) -> str:
    """A plain-text table: one row per size class, champion / challenger / previous with accuracy and cost."""
    def cell(entry: dict[str, Any] | None) -> str:
        if not entry:
            return "-"
        acc = "?" if entry["accuracy"] is None else f"{entry['accuracy']:.2%}"
        params = "?" if entry["params"] is None else f"{int(entry['params']):,}"
        p95 = "" if entry["latency_p95_ms"] is None else f" p95 {entry['latency_p95_ms']:.3f}ms"
        return f"v{entry['version']} acc {acc} params {params}{p95}"

    header = ["model", "class", "@champion", "@challenger", "@previous"]
    rows = [[s.name, s.size_class, *(cell(s.versions.get(a)) for a in RELEASE_ALIASES)] for s in summaries]
    if not rows:
        return "no registered models with a matta size class"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
