"""Registering gated candidates: one registered model per size class, one version per pipeline run, aliases.

Aliases (case-sensitive; ``latest`` and ``v<N>`` are reserved by MLflow):

- ``@champion``: what serves. Only `matta promote` (or a rollback) moves it.
- ``@challenger``: the newest candidate that passed the gate, waiting for its A/B test.
- ``@previous``: the champion before the last promotion; `matta rollback` restores it.

Idempotent registration: the version carries the pipeline run id as a tag *set in the same create call*, so no
version ever exists without it. A retry first looks the tag up and reuses the version. Two retries that
interleave can both miss the lookup and both create; after creating, each lists the versions with its run id
and keeps the LOWEST version number (created first; both processes compute the same answer); the loser deletes
its own version. Whatever the interleaving, one version per pipeline run id remains and every caller returns it;
a later lookup also removes the extra version of a racer that died between its create and its check.

The challenger moves forward only: it is set to a version only if that version is newer (higher number) than every
version holding ``@champion``, ``@challenger`` or ``@previous``. Version numbers are assigned by the store in
creation order, so racing registrations end with the newest candidate as challenger whichever finishes last, and a
retry of an old, promoted or rolled-back version never re-proposes it. The read-decide-write runs under the
model's `RegistryLock` and is verified by a re-read.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from matta_core.release import tags as RT
from matta_core.release.lock import ALREADY_EXISTS, NOT_FOUND, RegistryLock, is_lock_name
from matta_core.release.size_classes import SizeClass

ALIAS_CHAMPION = "champion"
ALIAS_CHALLENGER = "challenger"
ALIAS_PREVIOUS = "previous"
RELEASE_ALIASES = (ALIAS_CHAMPION, ALIAS_CHALLENGER, ALIAS_PREVIOUS)
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Run ids go into a search filter inside quotes; KFP and MLflow ids (uuids, hex) fit easily.
_RUN_ID = re.compile(r"^[A-Za-z0-9_.:@+/-]{1,250}$")


# A "not found" message lists what the store does hold when it is this few; more are counted, not listed.
_LIST_AT_MOST = 10


class AliasRaceError(RuntimeError):
    """Aliases read back differ from what was just written: someone changed them outside the lock."""


class RegistryNotFoundError(LookupError):
    """A registered model or version the store does not hold; the message names the store and what it holds."""


def store_name(client: MlflowClient) -> str:
    """The client's tracking store as a message may show it (no password)."""
    from matta_core.tracking.uri import redact

    return redact(str(client.tracking_uri))


def registered_model_names(client: MlflowClient) -> list[str]:
    """Every registered model of the store, sorted, without the registry locks (``<name>.lock``)."""
    names: list[str] = []
    token = None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        names.extend(m.name for m in page if not is_lock_name(m.name))
        token = page.token
        if not token:
            return sorted(names)


def require_registered_model(client: MlflowClient, name: str) -> None:
    """Raise `RegistryNotFoundError` (naming the store and the models it holds) unless `name` is registered."""
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != NOT_FOUND:
            raise
        raise RegistryNotFoundError(f"registered model {name!r} does not exist in the tracking store "
                                    f"{store_name(client)}; {_holdings(client, name)}") from None


def require_model_version(client: MlflowClient, name: str, version: str) -> None:
    """Raise `RegistryNotFoundError` (naming the store and the versions it holds) unless `name` has `version`."""
    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        if exc.error_code not in (NOT_FOUND, "INVALID_PARAMETER_VALUE"):  # the latter: a version that is not a number
            raise
        require_registered_model(client, name)
        raise RegistryNotFoundError(f"registered model {name!r} has no version {version!r} in the tracking store "
                                    f"{store_name(client)}; {_versions_held(client, name)}") from None


def _versions_held(client: MlflowClient, name: str) -> str:
    if "'" in name:  # it could not be quoted in the search filter; the message stays useful without the list
        return "`matta models list` shows its aliased versions"
    found = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    if not found:
        return "it has no versions"
    if len(found) <= _LIST_AT_MOST:
        return f"its versions: {', '.join(map(str, found))}"
    return f"it has {len(found)} versions, the newest {found[-1]}"


def _holdings(client: MlflowClient, missing: str) -> str:
    names = registered_model_names(client)
    if not names:
        return ("it holds no registered models (a pipeline run with the release step registers them): is this the "
                "store you meant?")
    if len(names) <= _LIST_AT_MOST:
        return f"registered models there: {', '.join(names)}"
    close = difflib.get_close_matches(missing, names, n=3)
    return (f"it holds {len(names)} registered models (`matta models list` shows them)"
            + (f"; the closest: {', '.join(close)}" if close else ""))


def check_alias(alias: str) -> str:
    """`alias` if usable; MLflow reserves ``latest`` and ``v<digits>`` (any case); aliases are case-sensitive."""
    if _RESERVED_ALIAS.match(alias):
        raise ValueError(f"alias {alias!r} is reserved by MLflow (latest, v<N>); use e.g. {list(RELEASE_ALIASES)}")
    if not _ALIAS.match(alias):
        raise ValueError(f"alias {alias!r}: use letters, digits, '_' and '-' (aliases are case-sensitive)")
    return alias


def check_pipeline_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id or ""):
        raise ValueError(f"pipeline run id {run_id!r}: use 1-250 letters, digits and _.:@+/- (it is an MLflow "
                         "search key)")
    return run_id


def version_uri(name: str, version: str | int) -> str:
    """The pinned URI of a version, ``models:/name/3`` (never an alias: a handoff must not drift)."""
    return f"models:/{name}/{version}"


def get_aliases(client: MlflowClient, name: str) -> dict[str, str]:
    """All aliases of `name` in one read, versions as strings (the server sends strings, sqlite ints)."""
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


def verify_aliases(client: MlflowClient, name: str, expected: Mapping[str, str | None]) -> dict[str, str]:
    """Re-read and compare with `expected` (None = alias absent); raise `AliasRaceError` on any difference."""
    now = get_aliases(client, name)
    wrong = {alias: (want, now.get(alias)) for alias, want in expected.items() if now.get(alias) != want}
    if wrong:
        raise AliasRaceError(f"aliases of {name!r} are not as written (alias: (written, found)): {wrong}; another "
                             "process changed them outside the registry lock")
    return now


def ensure_registered_model(client: MlflowClient, name: str, size_class: SizeClass | None = None) -> None:
    """Create `name` if missing (a concurrent creator is fine), tagged with its size class and budget."""
    tags = {}
    if size_class is not None:
        tags = {RT.SIZE_CLASS: size_class.name, RT.SIZE_CLASS_BUDGET: json.dumps(size_class.budget(), sort_keys=True)}
    description = (f"matta size class {size_class.name!r}, budget {size_class.budget()}. Aliases: @champion "
                   "serves, @challenger awaits its A/B test, @previous is the rollback target."
                   if size_class is not None else None)
    try:
        client.create_registered_model(name, tags=tags, description=description)
    except MlflowException as exc:
        if exc.error_code != ALREADY_EXISTS:
            raise


def versions_for_run(client: MlflowClient, name: str, pipeline_run_id: str) -> list[ModelVersion]:
    """Versions of `name` tagged with `pipeline_run_id`, lowest version first."""
    check_pipeline_run_id(pipeline_run_id)
    found = client.search_model_versions(f"name = '{name}' and tags.`{RT.PIPELINE_RUN_ID}` = '{pipeline_run_id}'")
    return sorted(found, key=lambda v: int(v.version))


@dataclass(frozen=True)
class Registration:
    """The version that holds a pipeline run's candidate, and whether this call created it."""

    name: str
    version: str
    created: bool
    source: str

    @property
    def model_uri(self) -> str:
        return version_uri(self.name, self.version)


def register_version(
    client: MlflowClient,
    name: str,
    source_uri: str,
    pipeline_run_id: str,
    tags: Mapping[str, Any],
    *,
    run_id: str | None = None,
) -> Registration:
    """The version of `name` for `pipeline_run_id`: the existing one, or a new one from `source_uri` (see module)."""
    existing = versions_for_run(client, name, pipeline_run_id)
    if existing:
        _drop_duplicates(client, name, existing)
        return Registration(name, str(existing[0].version), False, str(existing[0].source))
    all_tags = {**{k: str(v) for k, v in tags.items()}, RT.PIPELINE_RUN_ID: pipeline_run_id}
    model_id = source_uri.removeprefix("models:/") if source_uri.startswith("models:/m-") else None
    mine = client.create_model_version(name, source_uri, run_id=run_id, tags=all_tags, model_id=model_id)
    winner = versions_for_run(client, name, pipeline_run_id)[0]
    if str(winner.version) != str(mine.version):
        # A concurrent retry created the same run's version first: keep theirs, remove ours.
        client.delete_model_version(name, str(mine.version))
        return Registration(name, str(winner.version), False, str(winner.source))
    return Registration(name, str(mine.version), True, source_uri)


def _drop_duplicates(client: MlflowClient, name: str, versions: list[ModelVersion]) -> None:
    """Delete all but the lowest of one run's versions: leftovers of a racer that died between create and check.

    Safe against a racer still running: it keeps the lowest too. Versions holding an alias are left alone.
    """
    for extra in versions[1:]:
        if not extra.aliases:
            client.delete_model_version(name, str(extra.version))


def propose_challenger(client: MlflowClient, name: str, version: str, **lock_options: Any) -> bool:
    """Set ``@challenger`` to `version` if it is newer than every aliased version (see module); True if set."""
    with RegistryLock(client, name, **lock_options) as lock:
        aliases = get_aliases(client, name)
        aliased = [int(v) for alias, v in aliases.items() if alias in RELEASE_ALIASES]
        if aliased and int(version) <= max(aliased):
            return False
        lock.check()
        client.set_registered_model_alias(name, ALIAS_CHALLENGER, str(version))
        verify_aliases(client, name, {ALIAS_CHALLENGER: str(version)})
        return True
