"""The first use of a new sqlite tracking store, one process at a time.

MLflow creates a sqlite store's tables on first use by running its alembic migrations. Two processes doing that at
once on the same new file (two `matta run` sharing one store, a step and its driver) race: the loser dies inside
alembic with a long traceback. So the first use of a store that is not yet initialised happens under an exclusive
``flock`` on ``<db>.init.lock``; whoever comes second waits, then finds the tables there and skips the work.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

#: A table MLflow's tracking schema has once its migrations ran (and the registry's, created alongside).
_READY_TABLES = ("alembic_version", "registered_models")


def is_initialised(path: Path) -> bool:
    """Whether the sqlite file at `path` already holds MLflow's tables (read-only look; never creates the file)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error:
        return False
    return all(table in names for table in _READY_TABLES)


def initialise_once(uri: str, path: Path) -> None:
    """Create the MLflow tables of the sqlite store `uri` (file `path`) unless present, serialised across processes."""
    if is_initialised(path):
        return
    lock_path = path.with_name(path.name + ".init.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks while another process initialises; released if it dies
        if is_initialised(path):
            return
        from mlflow import MlflowClient

        client = MlflowClient(uri)
        client.search_experiments(max_results=1)  # the tracking store: migrations + the Default experiment
        client.search_registered_models(max_results=1)  # the model registry's store on the same file
    finally:
        os.close(fd)
