"""Resume after a real SIGKILL gives exactly the weights of an uninterrupted run.

The training script (`train_tiny.py`) runs as a separate process: once its first checkpoint appears the test kills
it with SIGKILL (no cleanup handlers run, a checkpoint may be half-written), runs the same command again to
completion, and compares the final weights with those of a run that was never interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from matta_core.training import latest_checkpoint, list_checkpoints

SCRIPT = Path(__file__).with_name("train_tiny.py")
STEPS = 30


def command(checkpoint_dir: Path, out: Path, sleep: float) -> list[str]:
    return [sys.executable, str(SCRIPT), "--checkpoint-dir", str(checkpoint_dir), "--out", str(out),
            "--steps", str(STEPS), "--checkpoint-every", "5", "--sleep", str(sleep)]


def finish(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return stdout


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_then_resume_gives_identical_weights(tmp_path: Path) -> None:
    # The uninterrupted run goes in parallel with the one to be killed: they share nothing but the CPU.
    straight_out = tmp_path / "straight.safetensors"
    straight = subprocess.Popen(command(tmp_path / "straight", straight_out, sleep=0.0), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    killed_dir, resumed_out = tmp_path / "killed", tmp_path / "resumed.safetensors"
    # 0.1 s per step: the checkpoint at step 5 appears ~0.5 s into training; the run would end ~2.5 s later.
    victim = subprocess.Popen(command(killed_dir, resumed_out, sleep=0.1), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while latest_checkpoint(killed_dir) is None:
        assert victim.poll() is None, victim.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint appeared within 60 s"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    steps_done = [step for step, _ in list_checkpoints(killed_dir)]
    assert steps_done and max(steps_done) < STEPS, f"the run finished before the kill: {steps_done}"
    assert not resumed_out.exists()

    resumed_run = subprocess.Popen(command(killed_dir, resumed_out, sleep=0.0), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
    assert "start_step=0" in finish(straight)
    start_step = int(finish(resumed_run).split("start_step=")[1].split()[0])
    assert start_step == max(steps_done) > 0, "the second run did not resume from the newest checkpoint"

    expected, got = load_file(str(straight_out)), load_file(str(resumed_out))
    assert expected.keys() == got.keys()
    for name in expected:
        diff = float((expected[name] - got[name]).abs().max())
        assert torch.equal(expected[name], got[name]), f"{name}: max abs diff {diff}"
