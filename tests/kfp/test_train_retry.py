"""A train task killed mid-run and retried by KFP resumes from its checkpoint and ends with the exact weights.

A real kfp.local run (subprocess runner) of the real `train_models` component, with `train.checkpoint_dir` outside
the task's output and `.set_retry(num_retries=1)`. A watcher thread SIGKILLs the task's process (a preempted pod)
as soon as its first checkpoint appears; KFP retries the task, which must resume from the newest checkpoint (its
log says so, and train_result.json records the start step) and end with weights bit-identical to a run that was
never interrupted.
"""

# No `from __future__ import annotations`: kfp.local reads the annotation objects of the pipeline it runs.
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from kfp import dsl, local
from safetensors.torch import load_file

from components import train_models
from matta_core.artifacts.layout import NESTED_DIR, NESTED_WEIGHTS, TRAIN_RESULT
from matta_core.config import DataSection, ModelSection, TeacherSection, TrainSection
from matta_core.families.classifier.prepare_step import prepare_step
from matta_core.families.classifier.teacher_step import teacher_step
from matta_core.families.classifier.train_step import train_step
from matta_core.training import list_checkpoints
from tests.mirror import MIRROR_DIR
from tests.teachers.helpers import tiny_classifier

DATA = DataSection(mirror_dir=str(MIRROR_DIR), limit_train_rows=400, limit_test_rows=100)
MODEL = ModelSection(hidden_widths=[64], student_widths=[16], embed_dim=32, num_buckets=2**14, min_width=8)
STEPS, EVERY = 160, 10
# One thread: the same summation order in the step's process as in the test's, so the weights agree bit for bit.
TRAIN = dict(steps=STEPS, batch_size=32, lr=1e-2, num_threads=1, checkpoint_every=EVERY, baselines=[])
TASK_MARKERS = ("kfp.dsl.executor_main", "train_models")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A prepared Banking77 slice and its Teacher outputs (a tiny hashed-n-gram Teacher), made by the step code."""
    root = tmp_path_factory.mktemp("train-retry-inputs")
    prepared, teacher, model = root / "prepared", root / "teacher", root / "teacher-model"
    prepare_step(DATA, str(prepared))
    tiny_classifier(num_classes=77).save(str(model))
    teacher_step(str(prepared), str(teacher), TeacherSection(spec={"kind": "safetensors", "path": str(model)}), DATA,
                 cache_dir=str(root / "cache"), progress=False)
    return str(prepared), str(teacher)


def _retry_pipeline(prepared: str, teacher: str, train_json: str) -> dsl.graph_component.GraphComponent:
    @dsl.pipeline(name="train-retry")
    def pipeline() -> dsl.Model:
        prepared_data = dsl.importer(artifact_uri=prepared, artifact_class=dsl.Dataset)
        teacher_outputs = dsl.importer(artifact_uri=teacher, artifact_class=dsl.Dataset)
        arguments = {
            "prepared": prepared_data.output, "teacher": teacher_outputs.output, "task": "classification",
            "data_json": DATA.model_dump_json(), "model_json": MODEL.model_dump_json(), "train_json": train_json,
            "code_version": "", "tracking_uri": "", "parent_run_id": "",
        }
        task = train_models(**arguments, **_other_string_inputs(set(arguments)))
        task.set_retry(num_retries=1, backoff_duration="0s")
        return task.outputs["trained"]

    return pipeline


def _other_string_inputs(given: set[str]) -> dict[str, str]:
    """"" for required string inputs the component gained after this test was written (run ids, versions), so
    that a new bookkeeping parameter does not break a test about retries; anything else must be given above."""
    return {name: "" for name, spec in train_models.component_spec.inputs.items()
            if name not in given and spec.type == "String" and not spec.optional}


class _KillAtFirstCheckpoint(threading.Thread):
    """Waits for the first published checkpoint under `root`, then SIGKILLs the train task's process, once."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.killed: int | None = None
        self.steps_at_kill: list[int] = []
        self.error: str | None = None
        self._finished = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while not self._finished.is_set() and time.monotonic() < deadline:
            steps = [step for arm in self.root.glob("*/matta") for step, _ in list_checkpoints(arm)]
            if steps:
                pids = _task_processes()
                if len(pids) != 1:
                    self.error = f"expected one train task process, found {pids}"
                    return
                os.kill(pids[0], signal.SIGKILL)
                self.killed, self.steps_at_kill = pids[0], steps
                return
            time.sleep(0.005)
        self.error = self.error or "no checkpoint appeared"

    def stop(self) -> None:
        self._finished.set()


def _task_processes() -> list[int]:
    """Python processes below this test's process that run the train component (their command line says so)."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # exited while we looked
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the "(comm)" field
        # The interpreter itself, not the `sh -c` that starts it (whose script names the same module).
        if Path(argv[0]).name.startswith("python"):
            commands[int(entry.name)] = " ".join(argv)

    def below_me(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == os.getpid():
                return True
        return False

    return sorted(pid for pid, command in commands.items()
                  if all(marker in command for marker in TASK_MARKERS) and below_me(pid))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the task's process through /proc")
def test_a_killed_train_task_is_retried_and_resumes_to_identical_weights(
    inputs: tuple[str, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    prepared, teacher = inputs
    straight_dir = tmp_path / "straight"
    train_step(prepared, teacher, str(straight_dir), MODEL, TrainSection(**TRAIN), DATA, progress=False)

    checkpoints = tmp_path / "checkpoints"
    train_json = TrainSection(**TRAIN, checkpoint_dir=str(checkpoints)).model_dump_json()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    killer = _KillAtFirstCheckpoint(checkpoints)
    killer.start()
    try:
        trained = Path(_retry_pipeline(prepared, teacher, train_json)().output.path)
    finally:
        killer.stop()
        killer.join(timeout=10)
    captured = capfd.readouterr()
    log = captured.out + captured.err

    assert killer.error is None, killer.error
    assert killer.killed is not None and max(killer.steps_at_kill) < STEPS, killer.steps_at_kill
    # Two attempts of the step (each says where its checkpoints are), the first one failed by the kill.
    assert log.count("checkpoints: ") == 2 and "FAILURE" in log, log[-3000:]
    [key_dir] = [p for p in checkpoints.iterdir() if p.is_dir()]  # one key: the retry used the same one
    result = json.loads((trained / TRAIN_RESULT).read_text())
    start = result["arms"]["matta"]["start_step"]
    assert 0 < start < STEPS and start % EVERY == 0 and start >= max(killer.steps_at_kill), (start, killer)
    assert f"resuming arm matta from checkpoint {key_dir / 'matta' / f'step-{start:08d}'}" in log
    assert result["checkpoints"] == str(key_dir)

    expected = _weights(straight_dir / NESTED_DIR / NESTED_WEIGHTS)
    got = _weights(trained / NESTED_DIR / NESTED_WEIGHTS)
    assert expected.keys() == got.keys()
    for name in expected:
        diff = (expected[name] - got[name]).abs().max()
        assert torch.equal(expected[name], got[name]), f"{name}: max abs diff {diff}"
