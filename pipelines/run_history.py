"""The record of the runs made into one output folder (``<output_dir>/runs.json``), and what a rerun reuses.

`matta run` writes a record when a run starts (status ``running``) and updates it when the run ends
(``finished`` / ``failed``); a run killed outright stays ``running``. A new run with the same fingerprint (the
config and the code version) as the newest record that did not finish is another *attempt* of that run: it keeps
the run's key (the identity its steps find the MLflow parent by) and its MLflow parent run, as a KFP retry keeps
its run id. With the step cache on, every step that finished is served from kfp.local's cache (same inputs, same
key), training continues from its newest checkpoint (the checkpoint folder is keyed on the training inputs,
`matta_core.artifacts.checkpoint_key`), and the release, whose idempotency key is the parent run, registers nothing
twice. The run's summary says what was reused.

Only the driver that holds the folder's lock (`pipelines.run_lock`) writes the record, so a plain atomic
rewrite is enough. Pruning (`prune_run_folders`) keeps the newest runs' pipeline roots and every folder that the
step cache still points into, so pruning never turns a cache hit into a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HISTORY_FILE = "runs.json"
RUNNING, FINISHED, FAILED = "running", "finished", "failed"
#: kfp.local's cache folder inside the pipeline root (`kfp.local.cache`: ``<pipeline_root>/.kfp_cache``).
KFP_CACHE_DIR = ".kfp_cache"


def run_fingerprint(config_json: dict[str, Any], code_version: str) -> str:
    """What makes two runs the same run: every config value and the code (sha256, hex)."""
    document = json.dumps({"config": config_json, "code_version": code_version}, sort_keys=True, default=str)
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass
class RunRecord:
    """One run into the folder."""

    run_key: str
    fingerprint: str
    started_at: float
    status: str = RUNNING
    ended_at: float | None = None
    run_folder: str | None = None  # the run's folder under the pipeline root, once known
    parent_run_id: str | None = None  # its MLflow parent run, when tracked
    attempts: int = 1  # 2 and more: a rerun resumed it (same run key, same MLflow parent run)
    reused_steps: list[str] = field(default_factory=list)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        return f"run {self.run_key} started {started}"


class RunHistory:
    """``<output_dir>/runs.json``: the folder's runs, oldest first."""

    def __init__(self, output_dir: str | Path) -> None:
        self.path = Path(output_dir) / HISTORY_FILE
        self.runs: list[RunRecord] = self._load()

    def _load(self) -> list[RunRecord]:
        if not self.path.is_file():
            return []
        try:
            document = json.loads(self.path.read_text())
            return [RunRecord(**record) for record in document["runs"]]
        except (ValueError, KeyError, TypeError) as error:
            # The record only adds resumption and pruning; a damaged one must not stop a run. Keep it for a look.
            self.path.replace(self.path.with_suffix(".damaged.json"))
            print(f"warning: {self.path} was unreadable ({error}); kept as {self.path.with_suffix('.damaged.json')}"
                  " and started afresh", flush=True)
            return []

    def unfinished(self, fingerprint: str) -> RunRecord | None:
        """The newest run, when it did not finish and was the same run (config and code) as `fingerprint`."""
        if not self.runs:
            return None
        last = self.runs[-1]
        return last if last.status != FINISHED and last.fingerprint == fingerprint else None

    def start(self, record: RunRecord) -> None:
        self.runs.append(record)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"runs": [asdict(r) for r in self.runs]}, indent=2) + "\n")
        os.replace(temporary, self.path)


def cache_references(pipeline_root: Path) -> set[str]:
    """The run folders (names under `pipeline_root`) that kfp.local's step cache entries point into."""
    referenced: set[str] = set()
    cache = pipeline_root / KFP_CACHE_DIR
    root = str(pipeline_root.resolve()) + os.sep
    for entry in cache.glob("*.json") if cache.is_dir() else []:
        try:
            text = entry.read_text()
        except OSError:
            continue
        for uri in _uris(json.loads(text) if text.strip() else {}):
            if uri.startswith(root):
                referenced.add(uri[len(root):].split(os.sep, 1)[0])
    return referenced


def _uris(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["uri"]] if isinstance(value.get("uri"), str) else []
        return found + [u for v in value.values() for u in _uris(v)]
    if isinstance(value, list):
        return [u for v in value for u in _uris(v)]
    return []


def prune_run_folders(pipeline_root: Path, keep: int, *, current: str | None = None) -> list[str]:
    """Delete run folders under `pipeline_root` beyond the newest `keep`, except `current` and every folder the
    step cache points into; return the names deleted. MLflow keeps what the runs logged."""
    if keep <= 0 or not pipeline_root.is_dir():
        return []
    folders = sorted((p for p in pipeline_root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    protected = cache_references(pipeline_root) | ({current} if current else set())
    deleted = []
    for folder in folders[keep:]:
        if folder.name in protected:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        deleted.append(folder.name)
    return deleted


def prune_checkpoints(checkpoint_root: Path, older_than: float) -> list[str]:
    """Delete checkpoint folders (one per training-input key) not written since `older_than` (a time stamp)."""
    if not checkpoint_root.is_dir():
        return []
    deleted = []
    for folder in checkpoint_root.iterdir():
        if folder.is_dir() and _newest_mtime(folder) < older_than:
            shutil.rmtree(folder, ignore_errors=True)
            deleted.append(folder.name)
    return deleted


def _newest_mtime(folder: Path) -> float:
    # Files only: a folder's own time changes when anything inside is added or removed, pruning included.
    return max((p.stat().st_mtime for p in folder.rglob("*") if p.is_file()), default=folder.stat().st_mtime)
