"""Checkpoints in object storage (a real GCS emulator): visible only when complete, resumed bit-exactly.

The local directory store is `checkpoint.py` behind the store interface; its exact resume (in-process and after a
real SIGKILL) is tested in test_trainer.py and test_resume.py. These tests give the trainer a ``gs://`` checkpoint
directory instead.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import torch

from matta_core import storage
from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.trainer import train
from matta_core.training import Callback, CheckpointError
from matta_core.training.checkpoint_store import COMPLETE_MARKER, RemoteCheckpointStore, open_checkpoint_store
from tests.gcs_emulator import GCSEmulator, gcs_emulator  # noqa: F401  (registers the session fixture)
from tests.training.train_tiny import tiny_data, tiny_model_config, tiny_train_config


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return tiny_data()


@pytest.fixture
def bucket(gcs_emulator: GCSEmulator) -> str:  # noqa: F811  (the fixture imported above)
    return gcs_emulator.make_bucket(f"ckpt-{uuid.uuid4().hex[:16]}")


class _Interrupt(Callback):
    """Stops a run after `step` steps, as a crash would (the checkpoints already published stay behind)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if step == self.step:
            raise KeyboardInterrupt


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    left, right = a.state_dict(), b.state_dict()
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), f"{name}: max abs diff {(left[name] - right[name]).abs().max()}"


def step_names(uri: str) -> list[str]:
    return sorted({u.removeprefix(uri + "/").split("/")[0] for u in storage.list_uris(uri)})


def test_gs_resume_after_interruption_matches_uninterrupted_run(
    data: TrainingData, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_train_config(steps=20, checkpoint_every=5)
    straight, straight_result = train(tiny_model_config(), data, config)
    uri = storage.join(bucket, "runs", "key", "matta")
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_config(), data, config, checkpoint_dir=uri, callbacks=[_Interrupt(12)])
    assert step_names(uri) == ["step-00000005", "step-00000010"]  # keep_checkpoints=2
    assert open_checkpoint_store(uri).latest() == f"{uri}/step-00000010"

    resumed, result = train(tiny_model_config(), data, config, checkpoint_dir=uri)
    assert result.start_step == 10
    assert f"resuming arm matta from checkpoint {uri}/step-00000010 (step 10 of 20)" in capsys.readouterr().out
    assert_same_weights(resumed, straight)
    assert result.history == straight_result.history and result.mean_loss == straight_result.mean_loss
    assert result.checkpoint == f"{uri}/step-00000020"
    assert step_names(uri) == ["step-00000015", "step-00000020"]


def test_gs_checkpoint_without_marker_is_ignored_and_removed(data: TrainingData, bucket: str) -> None:
    config = tiny_train_config(steps=20, checkpoint_every=5, keep_checkpoints=3)
    straight, _ = train(tiny_model_config(), data, config)
    uri = storage.join(bucket, "matta")
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_config(), data, config, checkpoint_dir=uri, callbacks=[_Interrupt(12)])
    # Step 10's upload "killed" before its marker: its files are all there, but it is not complete.
    storage.delete(storage.join(uri, "step-00000010", COMPLETE_MARKER))
    # And step 15's killed after one file; plus an object that is no checkpoint at all (left alone).
    storage.write_bytes(storage.join(uri, "step-00000015", "model.safetensors"), b"partial")
    storage.write_text(storage.join(uri, "notes.txt"), "not a checkpoint")
    store = RemoteCheckpointStore(uri)
    assert store.latest() == f"{uri}/step-00000005"

    resumed, result = train(tiny_model_config(), data, config, checkpoint_dir=uri)
    assert result.start_step == 5
    assert_same_weights(resumed, straight)
    assert storage.read_text(storage.join(uri, "notes.txt")) == "not a checkpoint"
    assert step_names(uri) == ["notes.txt", "step-00000010", "step-00000015", "step-00000020"]
    # The rewritten step 15 is the real one, not the partial upload.
    assert store.load(f"{uri}/step-00000015").step == 15


def test_a_gs_checkpoint_changed_after_publication_is_refused(data: TrainingData, bucket: str) -> None:
    uri = storage.join(bucket, "matta")
    train(tiny_model_config(), data, tiny_train_config(steps=5), checkpoint_dir=uri)
    store = RemoteCheckpointStore(uri)
    ref = store.latest()
    assert ref is not None
    marker = json.loads(storage.read_text(storage.join(ref, COMPLETE_MARKER)))
    assert sorted(marker["files"]) == sorted(["model.safetensors", "optimizer.safetensors", "optimizer.json",
                                              "rng.safetensors", "state.json"])
    storage.write_text(storage.join(ref, "optimizer.json"), "{}")
    with pytest.raises(CheckpointError, match=r"optimizer\.json has sha256 .* completion marker says"):
        store.load(ref)


def test_gs_checkpoints_are_never_overwritten(data: TrainingData, bucket: str) -> None:
    uri = storage.join(bucket, "matta")
    model, _ = train(tiny_model_config(), data, tiny_train_config(steps=5), checkpoint_dir=uri)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match="never overwritten"):
        RemoteCheckpointStore(uri).save(5, model, optimizer, {}, {})


def test_local_paths_and_file_uris_keep_the_local_layout(data: TrainingData, tmp_path: Path) -> None:
    uri = f"file://{tmp_path / 'ckpt'}"
    _, result = train(tiny_model_config(), data, tiny_train_config(steps=5), checkpoint_dir=uri)
    assert result.checkpoint == tmp_path / "ckpt" / "step-00000005"
    assert sorted(p.name for p in (tmp_path / "ckpt" / "step-00000005").iterdir()) == [
        "model.safetensors", "optimizer.json", "optimizer.safetensors", "rng.safetensors", "state.json"]
