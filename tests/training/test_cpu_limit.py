"""torch's thread count follows the CPU limit the kernel enforces (affinity mask, cgroup v1/v2 quota)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from matta_core import cpu_limit as module
from matta_core.cpu_limit import apply_cpu_limit, apply_cpu_limit_to_torch, cpu_limit

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def many_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64-core node and an affinity mask of all of it, so only the cgroup files decide."""
    monkeypatch.setattr(module.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(module.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)


@pytest.fixture
def restore_threads() -> Iterator[int]:
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@pytest.mark.usefixtures("many_cpus")
@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000"}, None),  # v2, no quota
        ({"cpu.max": "200000 100000"}, 2),
        ({"cpu.max": "150000 100000"}, 2),  # 1.5 CPUs: rounded up
        ({"cpu.max": "5000 100000"}, 1),  # 0.05 CPUs: at least 1
        ({"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),  # v1, no quota
        ({"cpu/cpu.cfs_quota_us": "300000", "cpu/cpu.cfs_period_us": "100000"}, 3),
        ({"cpu,cpuacct/cpu.cfs_quota_us": "250000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 3),
        ({"cpu.max": "not a quota"}, None),  # unreadable: nothing to act on
        ({}, None),  # no cgroup files at all (not in a container)
    ],
)
def test_cpu_limit_reads_the_cgroup_quota(tmp_path: Path, files: dict[str, str], expected: int | None) -> None:
    assert cpu_limit(write(tmp_path, files)) == expected


def test_an_affinity_mask_smaller_than_the_quota_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(module.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert cpu_limit(write(tmp_path, {"cpu.max": "800000 100000"})) == 3
    assert cpu_limit(write(tmp_path, {"cpu.max": "max 100000"})) == 3
    assert cpu_limit(write(tmp_path, {"cpu.max": "200000 100000"})) == 2  # the quota is smaller


def test_torch_threads_are_lowered_to_the_limit(monkeypatch: pytest.MonkeyPatch, restore_threads: int) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: 1)  # a pod limited to 1 CPU
    torch.set_num_threads(4)
    assert apply_cpu_limit_to_torch() == 1
    assert torch.get_num_threads() == 1


def test_torch_threads_are_never_raised_above_the_default(
    monkeypatch: pytest.MonkeyPatch, restore_threads: int
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: 64)
    torch.set_num_threads(2)
    assert apply_cpu_limit_to_torch() == 2
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: None)  # unlimited
    assert apply_cpu_limit_to_torch() == 2


def test_omp_num_threads_is_respected(monkeypatch: pytest.MonkeyPatch, restore_threads: int) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: 1)
    torch.set_num_threads(3)
    assert apply_cpu_limit_to_torch() == 3
    assert torch.get_num_threads() == 3


def test_an_explicit_count_wins(monkeypatch: pytest.MonkeyPatch, restore_threads: int) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: 1)
    assert apply_cpu_limit_to_torch(2) == 2
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="must be >= 1"):
        apply_cpu_limit_to_torch(0)


def test_a_task_sets_the_limit_before_torch_is_imported_and_torch_keeps_it() -> None:
    """`apply_cpu_limit` in a task that has not imported torch: no torch import, and the torch imported later
    (by the step's work) runs the limited number of threads."""
    code = textwrap.dedent("""
        import os, sys
        from matta_core import cpu_limit
        cpu_limit.cpu_limit = lambda root=None: 1  # a pod limited to 1 CPU
        assert cpu_limit.apply_cpu_limit() == 1
        assert "torch" not in sys.modules and os.environ["OMP_NUM_THREADS"] == "1"
        import torch
        assert torch.get_num_threads() == 1, torch.get_num_threads()
    """)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_task_leaves_a_chosen_thread_count_and_an_unlimited_process_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch")  # as in a task that has not imported torch (put back after the test)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: 1)
    assert apply_cpu_limit() is None
    assert os.environ["OMP_NUM_THREADS"] == "3"
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: None)
    assert apply_cpu_limit() is None
    assert "OMP_NUM_THREADS" not in os.environ


def test_a_task_with_torch_imported_sets_torch_directly(
    monkeypatch: pytest.MonkeyPatch, restore_threads: int
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(module, "cpu_limit", lambda root=None: 1)
    torch.set_num_threads(2)
    assert apply_cpu_limit() == 1
    assert torch.get_num_threads() == 1
    assert "OMP_NUM_THREADS" not in os.environ


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs Linux affinity masks")
def test_the_real_limit_is_at_most_the_cpus_this_process_may_run_on() -> None:
    limit = cpu_limit()
    assert limit is None or 1 <= limit <= len(os.sched_getaffinity(0))
