"""What a saved model costs in bytes: on disk, as tensors, and resident in the process that serves it.

Three measures, because each hides what the others show:

- `folder_bytes`: the saved folder's files, what a serving pod downloads and keeps in its image or cache.
- `weight_bytes`: the loaded model's tensors (parameters and buffers): the memory floor, deterministic.
- `resident_bytes`: the resident memory (RSS) loading the model and running one prediction adds to a fresh
  process that has already imported the serving code: weights plus whatever the load and the first call allocate
  (allocator slack, lazily created buffers), which is what a pod's memory request has to cover. Measured in a
  child process, so the caller's own memory (other models, the dataset) does not blur it.

Also the byte units the size-class budgets are written in (`parse_bytes`, `format_bytes`). Nothing here imports
torch: the report and release tasks use the units, and the child process imports what the serving module needs.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

#: Decimal units are powers of 1000, binary ones of 1024 (case-insensitive: "mb" is "MB").
BYTE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
              "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
BYTE_FORMS = ("an int (bytes), or a number with a unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB "
              "(powers of 1024), e.g. 2000000, '2MB', '1.5 MiB', '500kB', '2 GB'")
_SIZE = re.compile(r"^\s*(?P<number>[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*$")


def parse_bytes(value: Any, name: str = "size") -> int:
    """Bytes from an int, an integral float, or a string such as ``"2MB"``, ``"1.5 MiB"``, ``"500kB"`` (see
    `BYTE_UNITS`; a bare number is bytes). A `ValueError` naming `name` and the allowed forms otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not a size; give {BYTE_FORMS}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"{name}: {value!r} is not a whole number of bytes; give {BYTE_FORMS}")
    match = _SIZE.match(value) if isinstance(value, str) else None
    unit = match and BYTE_UNITS.get(match["unit"].lower() or "b")
    if not match or unit is None:
        raise ValueError(f"{name}: {value!r} is not a size; give {BYTE_FORMS}")
    try:
        size = Decimal(match["number"]) * unit
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers Decimal reads
        raise ValueError(f"{name}: {value!r} is not a size; give {BYTE_FORMS}") from exc
    if size != size.to_integral_value():
        raise ValueError(f"{name}: {value!r} is {size} bytes, not a whole number; give {BYTE_FORMS}")
    return int(size)


def format_bytes(size: float | None) -> str:
    """``"1.8 MB"``, ``"135.3 MB"``, ``"512 B"``: decimal units, 4 significant digits; ``"-"`` for None."""
    if size is None:
        return "-"
    value, unit = float(size), "B"
    for name in ("kB", "MB", "GB", "TB"):
        if abs(value) < 1000:
            break
        value, unit = value / 1000, name
    return f"{value:.4g} {unit}"


def folder_bytes(folder: str | Path) -> int:
    """Total size of the regular files under `folder` (recursively; links are not followed)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: cannot measure a saved model's size on disk")
    return sum(path.lstat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the tensors a loaded model holds: parameters and buffers, a tied tensor once."""
    seen: set[int] = set()
    total = 0
    for tensor in (*model.parameters(), *model.buffers()):
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.nbytes
    return total


# Runs in the measuring process: imports the serving module by file path (nothing from matta) and runs the probe's
# warm-up once, then, for each model folder read from stdin, forks a fresh copy of itself that reads RSS, runs
# `run(module, folder)` (load + one prediction, its result kept alive), reads every tensor, reads RSS again and
# reports. Forking a warm process makes a measurement cost a load, not an interpreter start and a torch import
# (~3-17 s on a busy 2-core machine, per model); each copy starts from the same memory, so readings do not drift.
_CHILD = textwrap.dedent('''
    import gc, importlib.util, json, os, sys, traceback

    def rss():
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
        try:
            import psutil
            return psutil.Process().memory_info().rss
        except ImportError:
            # No /proc, no psutil: the peak RSS, which only grows; the difference still bounds what was added.
            import resource
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak if sys.platform == "darwin" else peak * 1024

    def measure(folder):
        # A fork shares the parent's code pages but maps them only as it runs them, so RSS would count the runtime's
        # code (~25 MB of libtorch) as the model's: run the warm-up again here first.
        if "warmup" in namespace:
            namespace["warmup"](module)
        gc.collect()
        before = rss()
        kept = namespace["run"](module, folder)
        if hasattr(kept, "state_dict"):
            # Weights loaded from a memory-mapped file are paged in as they are read: one prediction reads a few
            # embedding rows, traffic eventually reads them all. Read every tensor once, to count the steady state.
            for tensor in kept.state_dict().values():
                tensor.sum()
        gc.collect()
        return {"before": before, "after": rss()}

    args = json.loads(sys.argv[1])
    spec = importlib.util.spec_from_file_location(args["module_name"], args["module_file"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    namespace = {}
    exec(args["probe"], namespace)
    if "warmup" in namespace:
        namespace["warmup"](module)
    gc.collect()
    for line in sys.stdin:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                reply, code = measure(json.loads(line)), 0
            except BaseException:
                reply, code = {"error": traceback.format_exc()}, 1
            with os.fdopen(write_end, "w") as pipe:
                pipe.write(json.dumps(reply))
            os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            reply = pipe.read()
        _, status = os.waitpid(pid, 0)
        if not reply:
            reply = json.dumps({"error": f"the measuring copy died (wait status {status})"})
        print(reply, flush=True)
''')

#: Measuring processes kept warm for this process's lifetime, one per (serving module, probe, threads).
_meters: dict[tuple[str, str, int], subprocess.Popen[str]] = {}


def _meter(module_file: Path, probe: str, threads: int) -> subprocess.Popen[str]:
    key = (str(module_file), probe, threads)
    meter = _meters.get(key)
    if meter is None or meter.poll() is not None:
        args = {"module_file": str(module_file), "module_name": f"_matta_resident_{module_file.stem}", "probe": probe}
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        # Its own process group: stopping it stops a measuring fork that hangs too (`_stop`).
        meter = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                 start_new_session=True)
        _meters[key] = meter
    return meter


def _stop(key: tuple[str, str, int]) -> str:
    """Stop a measuring process; the end of what it wrote to stderr."""
    meter = _meters.pop(key, None)
    if meter is None:
        return ""
    # The measuring process and any fork of it: a fork holds its pipes open, and would keep reading them.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(meter.pid, signal.SIGKILL)
    try:
        _, err = meter.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        err = ""
    return "\n".join((err or "").strip().splitlines()[-15:])


@atexit.register
def _stop_all() -> None:
    for key in list(_meters):
        _stop(key)


def resident_bytes(
    module_file: str | Path, folder: str | Path, probe: str, *, timeout_s: float = 180.0, threads: int = 1
) -> int:
    """Resident memory (bytes) that loading the model in `folder` and one prediction add to a process that has
    imported the serving module and nothing else.

    A measuring process imports the serving module `module_file` by path and executes `probe`, Python source that
    defines:

    - ``run(module, folder)``: load the model with ``module``'s own loader, predict once, and return the model, so
      it stays alive while RSS is read. A returned torch module then has every tensor read once: safetensors maps
      the weights file and pages it in only as it is read, and a pod under traffic eventually reads all of it.
    - optionally ``warmup(module)``, run once before any reading: one-off runtime allocations any served model
      would trigger (torch's first kernel calls), which are not this model's.

    The measuring process stays warm for later calls with the same module and probe, and measures each model in a
    fresh fork of itself. `threads` caps its intra-op threads (OMP/MKL), so thread-pool memory does not vary with
    the machine. Raises `RuntimeError` naming `folder` if the measurement fails or runs past `timeout_s`.
    """
    module_file = Path(module_file)
    key = (str(module_file), probe, threads)
    meter = _meter(module_file, probe, threads)
    assert meter.stdin is not None and meter.stdout is not None
    try:
        meter.stdin.write(json.dumps(str(folder)) + "\n")
        meter.stdin.flush()
        ready, _, _ = select.select([meter.stdout], [], [], timeout_s)
        line = meter.stdout.readline() if ready else None
    except (BrokenPipeError, OSError):
        line = ""
    if line is None:
        _stop(key)
        raise RuntimeError(f"measuring the resident memory of the model in {folder}: the child process ran past "
                           f"{timeout_s:g} s")
    if not line:
        tail = _stop(key)
        raise RuntimeError(f"measuring the resident memory of the model in {folder} (serving module {module_file}) "
                           f"failed: the child process exited with {meter.returncode}:\n{tail}")
    readings = json.loads(line)
    if "error" in readings:
        tail = "\n".join(readings["error"].strip().splitlines()[-15:])
        raise RuntimeError(f"measuring the resident memory of the model in {folder} (serving module {module_file}) "
                           f"failed: the child process exited with 1:\n{tail}")
    return max(0, int(readings["after"]) - int(readings["before"]))
