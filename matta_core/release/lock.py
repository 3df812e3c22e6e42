"""A mutual-exclusion lock per registered model, built on the one atomic operation MLflow's registry offers.

Why not tags: MLflow has no transactions and no compare-and-set. A "lock" tag on the registered model is a
read-then-write: two processes can both read "free", both write their name, and both proceed. But creating a
registered model is create-only: the store's unique constraint on the name makes exactly one of two concurrent
``create_registered_model("<name>.lock")`` calls succeed; the other gets ``RESOURCE_ALREADY_EXISTS``. So the lock
IS a registered model named ``<name>.lock``, holding its owner and lease in tags; releasing deletes it.

Crashed holders: a lock lives at most its lease (``matta.lock.expires_at``). A contender that finds an expired
lock re-reads it and deletes it only if it is still the same lock (same owner and acquisition time), then competes
to create it again. The remaining window (two contenders breaking the same expired lock within the few
milliseconds between one's re-read and its delete) only opens after a holder crashed or overran its lease, which
a lease of 60 s over operations of well under a second makes rare; `RegistryLock.check` before each write and
the verify-after-write of the alias operations turn such a case into an error rather than a silent mix.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from types import TracebackType

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from matta_core.release import tags as RT

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"
ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"


class LockTimeoutError(TimeoutError):
    """The lock stayed held by another process for longer than the caller would wait."""


class LockLostError(RuntimeError):
    """This process's lease ran out and another process took the lock: its writes may have interleaved."""


def lock_name(model_name: str) -> str:
    """The registered model that serves as the lock of `model_name`'s aliases."""
    return f"{model_name}{LOCK_SUFFIX}"


def is_lock_name(name: str) -> bool:
    return name.endswith(LOCK_SUFFIX)


def default_owner() -> str:
    """host:pid:random, unique per lock attempt, readable in the MLflow UI."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RegistryLock:
    """``with RegistryLock(client, "matta-banking77-s"):`` serialises alias changes of that registered model."""

    def __init__(
        self,
        client: MlflowClient,
        model_name: str,
        *,
        owner: str | None = None,
        lease_s: float = 60.0,
        timeout_s: float = 60.0,
        poll_s: float = 0.1,
    ) -> None:
        if lease_s <= 0 or timeout_s < 0 or poll_s <= 0:
            raise ValueError(f"lease_s and poll_s must be > 0 and timeout_s >= 0; got {lease_s}, {poll_s}, "
                             f"{timeout_s}")
        self.client = client
        self.model_name = model_name
        self.name = lock_name(model_name)
        self.owner = owner or default_owner()
        self.lease_s = lease_s
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.acquired_at: float | None = None
        self.broken_locks = 0  # expired locks of others this instance removed (for logs and tests)

    def __enter__(self) -> RegistryLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release(raise_if_lost=exc is None)

    def acquire(self) -> None:
        """Take the lock or raise `LockTimeoutError` naming the holder after `timeout_s`."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            now = time.time()
            try:
                self.client.create_registered_model(self.name, tags={
                    RT.LOCK_OWNER: self.owner, RT.LOCK_FOR: self.model_name,
                    RT.LOCK_ACQUIRED_AT: f"{now:.6f}", RT.LOCK_EXPIRES_AT: f"{now + self.lease_s:.6f}",
                }, description=f"Lock of the aliases of {self.model_name} (matta release). Safe to delete once "
                               f"{RT.LOCK_EXPIRES_AT} has passed.")
                self.acquired_at = now
                return
            except MlflowException as exc:
                if exc.error_code != ALREADY_EXISTS:
                    raise
            holder = self._read()
            if holder is not None and float(holder.get(RT.LOCK_EXPIRES_AT, 0)) < time.time():
                self._break(holder)
                continue
            if time.monotonic() >= deadline:
                who = "unknown" if holder is None else holder.get(RT.LOCK_OWNER, "unknown")
                until = "?" if holder is None else holder.get(RT.LOCK_EXPIRES_AT, "?")
                raise LockTimeoutError(
                    f"registered model {self.model_name!r} is locked by {who} (lease until epoch {until}); waited "
                    f"{self.timeout_s:g} s. If that process is gone, the lock frees itself at expiry, or delete the "
                    f"registered model {self.name!r}."
                )
            time.sleep(self.poll_s * (0.5 + random.random()))  # jitter: contenders do not retry in lockstep

    def check(self, margin_s: float = 1.0) -> None:
        """Raise `LockLostError` unless this instance holds the lock with at least `margin_s` of lease left.

        Called before each registry write: a holder that overran its lease stops before writing, not after.
        """
        holder = self._read()
        if holder is None or holder.get(RT.LOCK_OWNER) != self.owner:
            raise LockLostError(f"lock {self.name!r} is no longer held by {self.owner} (now: "
                                f"{None if holder is None else holder.get(RT.LOCK_OWNER)}); lease {self.lease_s:g} s "
                                "ran out or the lock was deleted")
        if float(holder[RT.LOCK_EXPIRES_AT]) - time.time() < margin_s:
            raise LockLostError(f"lock {self.name!r}: less than {margin_s:g} s of lease left; not writing")

    def release(self, *, raise_if_lost: bool = True) -> None:
        """Delete the lock if it is still ours; otherwise raise `LockLostError` (unless `raise_if_lost` is False)."""
        if self.acquired_at is None:
            return
        self.acquired_at = None
        holder = self._read()
        if holder is not None and holder.get(RT.LOCK_OWNER) == self.owner:
            self._delete()
            return
        message = f"lock {self.name!r} was lost before release (lease {self.lease_s:g} s); verify the aliases"
        if raise_if_lost:
            raise LockLostError(message)
        log.warning(message)

    def _read(self) -> dict[str, str] | None:
        try:
            return dict(self.client.get_registered_model(self.name).tags)
        except MlflowException as exc:
            if exc.error_code == NOT_FOUND:
                return None
            raise

    def _delete(self) -> None:
        try:
            self.client.delete_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code != NOT_FOUND:
                raise

    def _break(self, stale: dict[str, str]) -> None:
        """Delete an expired lock, but only if it is still that same lock (not one a faster breaker re-took)."""
        again = self._read()
        same = again is not None and all(again.get(k) == stale.get(k) for k in (RT.LOCK_OWNER, RT.LOCK_ACQUIRED_AT))
        if same:
            log.warning("breaking expired lock %s of %s (expired at %s)", self.name, stale.get(RT.LOCK_OWNER),
                        stale.get(RT.LOCK_EXPIRES_AT))
            self._delete()
            self.broken_locks += 1
