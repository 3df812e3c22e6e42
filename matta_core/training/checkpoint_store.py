"""Where training checkpoints live: a local directory, or a prefix in object storage (``gs://``).

The trainers talk to a `CheckpointStore` (`open_checkpoint_store(location)`) and never to the filesystem, so a
checkpoint directory may be a path or a URI with the same contract: a checkpoint is visible only once complete,
the newest complete one is what a run resumes from, and nothing is ever overwritten.

Local directories keep `checkpoint.py`'s layout and its staging + ``os.replace`` publication, unchanged.

Object storage has no atomic directory rename, so a remote checkpoint is written locally first (by the same
`save_checkpoint`), its files are uploaded, and a completion marker is written LAST::

    <uri>/step-00000100/model.safetensors ... state.json
    <uri>/step-00000100/complete.json        {"format": ..., "step": 100, "files": {name: {"sha256", "bytes"}}}

Listing counts only steps whose marker exists, so an upload killed half-way is invisible (and removed by the next
run's `prepare`). Loading downloads the files to a temp directory, checks them against the marker's digests, and
reads them with the pickle-free `load_checkpoint`. Pruning deletes the marker first, for the same reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from matta_core import storage
from matta_core.training.checkpoint import (
    CHECKPOINT_FILES,
    Checkpoint,
    CheckpointError,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    remove_staging_dirs,
    save_checkpoint,
)
from matta_core.training.optim import SplitOptimizer

COMPLETE_MARKER = "complete.json"
MARKER_FORMAT = "matta.training_checkpoint.complete"

_REMOTE_ENTRY = re.compile(r"^(step-\d{8,})/(.+)$")


class CheckpointStore(Protocol):
    """Checkpoints of one run (one arm): list, load, save and prune them, wherever they are kept."""

    @property
    def location(self) -> str:
        """The directory or URI, as it appears in messages."""
        ...

    def prepare(self) -> None:
        """Create the location and remove what a writer killed mid-checkpoint left; call with no writer running."""
        ...

    def latest(self) -> Path | str | None:
        """The newest complete checkpoint (a path, or a URI for remote stores), or None."""
        ...

    def load(self, ref: Path | str) -> Checkpoint:
        """Read the checkpoint `ref` (as returned by `latest`); tensors on CPU."""
        ...

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | SplitOptimizer,
        rng: dict[str, torch.Tensor],
        state: dict[str, Any],
    ) -> Path | str:
        """Publish the checkpoint of `step` (visible only once complete) and return where it is."""
        ...

    def prune(self, keep: int) -> None:
        """Delete all but the newest `keep` complete checkpoints."""
        ...


def open_checkpoint_store(location: str | Path) -> CheckpointStore:
    """The store for a plain path, a ``file://`` URI or a ``gs://`` URI (other schemes raise InvalidURIError)."""
    if isinstance(location, Path):
        return LocalCheckpointStore(location)
    if storage.is_local(location):
        return LocalCheckpointStore(storage.to_local_path(location))
    return RemoteCheckpointStore(location)


class LocalCheckpointStore:
    """A local directory of `step-XXXXXXXX/` folders: `checkpoint.py`'s functions, behind the store interface."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def location(self) -> str:
        return str(self.directory)

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_staging_dirs(self.directory)

    def latest(self) -> Path | None:
        return latest_checkpoint(self.directory)

    def load(self, ref: Path | str) -> Checkpoint:
        return load_checkpoint(ref)

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | SplitOptimizer,
        rng: dict[str, torch.Tensor],
        state: dict[str, Any],
    ) -> Path:
        return save_checkpoint(self.directory, step, model, optimizer, rng, state)

    def prune(self, keep: int) -> None:
        prune_checkpoints(self.directory, keep)


class RemoteCheckpointStore:
    """Checkpoints under an object-storage prefix, each made visible by its completion marker (module docstring)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")

    @property
    def location(self) -> str:
        return self.uri

    def prepare(self) -> None:
        # Objects of a step without a marker are an upload that was killed (or a prune that was): never readable,
        # and in the way of a rewrite of that step.
        complete, entries = self._scan()
        for name, uris in entries.items():
            if name not in complete:
                for uri in uris:
                    storage.delete(uri)

    def latest(self) -> str | None:
        complete, _ = self._scan()
        return storage.join(self.uri, max(complete, key=_step_of)) if complete else None

    def load(self, ref: Path | str) -> Checkpoint:
        ref = str(ref).rstrip("/")
        marker = json.loads(storage.read_text(storage.join(ref, COMPLETE_MARKER)))
        if marker.get("format") != MARKER_FORMAT:
            raise CheckpointError(f"{storage.join(ref, COMPLETE_MARKER)}: format {marker.get('format')!r}, expected "
                                  f"{MARKER_FORMAT!r}")
        staging = Path(tempfile.mkdtemp(prefix="matta-checkpoint-"))
        try:
            for name, expected in marker["files"].items():
                local = staging / name
                storage.download_file(storage.join(ref, name), local)
                digest = _sha256_file(local)
                if digest != expected["sha256"]:
                    raise CheckpointError(
                        f"{storage.join(ref, name)} has sha256 {digest[:12]}..., its completion marker says "
                        f"{expected['sha256'][:12]}...: the checkpoint was changed after it was published"
                    )
            checkpoint = load_checkpoint(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        checkpoint.path = ref  # name the durable copy in messages, not the temp directory it was read from
        return checkpoint

    def save(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | SplitOptimizer,
        rng: dict[str, torch.Tensor],
        state: dict[str, Any],
    ) -> str:
        target = storage.join(self.uri, checkpoint_name(step))
        marker_uri = storage.join(target, COMPLETE_MARKER)
        if storage.exists(marker_uri):
            raise CheckpointError(f"{target} already exists: checkpoints are never overwritten")
        staging = Path(tempfile.mkdtemp(prefix="matta-checkpoint-"))
        try:
            local = save_checkpoint(staging, step, model, optimizer, rng, state)
            files = {}
            for name in CHECKPOINT_FILES:
                # Not create-only: a file left by an upload killed before its marker is rewritten, not an error.
                storage.upload_file(local / name, storage.join(target, name))
                files[name] = {"sha256": _sha256_file(local / name), "bytes": (local / name).stat().st_size}
            marker = {"format": MARKER_FORMAT, "step": step, "files": files}
            storage.write_text(marker_uri, json.dumps(marker, indent=1, sort_keys=True), create_only=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def prune(self, keep: int) -> None:
        complete, entries = self._scan()
        for name in sorted(complete, key=_step_of)[:-keep] if keep > 0 else []:
            # Marker first: a prune killed half-way leaves an incomplete (invisible) checkpoint, never a broken one.
            storage.delete(storage.join(self.uri, name, COMPLETE_MARKER))
            for uri in entries[name]:
                storage.delete(uri)

    def _scan(self) -> tuple[set[str], dict[str, list[str]]]:
        """(names of complete checkpoints, every step folder's object URIs); foreign objects are ignored."""
        complete: set[str] = set()
        entries: dict[str, list[str]] = {}
        prefix = self.uri + "/"
        for uri in storage.list_uris(self.uri):
            match = _REMOTE_ENTRY.match(uri.removeprefix(prefix))
            if match is None:
                continue
            name, file = match.groups()
            entries.setdefault(name, []).append(uri)
            if file == COMPLETE_MARKER:
                complete.add(name)
        return complete, entries


def _step_of(name: str) -> int:
    return int(name.removeprefix("step-"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
