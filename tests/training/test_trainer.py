"""The joint trainer on a tiny real run (200 Banking77 rows): arms, determinism, errors, checkpoints."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.utils.deterministic
from safetensors import safe_open

import matta_core.training.checkpoint as checkpoint_module
from matta_core.families.classifier.data import TrainingData, TrainingDataError
from matta_core.families.classifier.extract import expected_param_count
from matta_core.families.classifier.trainer import train
from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer, SparseFeatures
from matta_core.nested import WidthError
from matta_core.training import (
    Callback,
    CheckpointError,
    DeviceError,
    HistoryCallback,
    JsonlMetricsCallback,
    TrainConfig,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    make_optimizer,
    optimizer_names,
    register_optimizer,
)
from matta_core.training.checkpoint import CHECKPOINT_FILES
from matta_core.training.order import BatchOrder
from tests.training.train_tiny import fake_teacher, tiny_data, tiny_model_config, tiny_texts, tiny_train_config


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return tiny_data()


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs: max abs diff {float((a[name] - b[name]).abs().max())}"


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- arms and determinism ------------------------------------------------------------------------------------------


def test_same_seed_same_weights_different_seed_different_weights(data: TrainingData) -> None:
    first, result = train(tiny_model_config(), data, tiny_train_config())
    second, _ = train(tiny_model_config(), data, tiny_train_config())
    other, _ = train(tiny_model_config(), data, tiny_train_config(seed=1))
    assert_same_weights(weights(first), weights(second))
    assert any(not torch.equal(a, b) for a, b in zip(weights(first).values(), weights(other).values(), strict=True))
    # Deterministic kernels are switched on only for the run, not left on for the caller.
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory
    assert result.steps == 20 and [r["step"] for r in result.history] == [5, 10, 15, 20]


@pytest.mark.parametrize("arm", ["matta", "kd", "ce_only"])
def test_each_arm_trains_and_baselines_have_only_student_parameters(data: TrainingData, arm: str) -> None:
    config = tiny_model_config()
    model, result = train(config, data, tiny_train_config(arm=arm, steps=30))
    widths = config.ta_widths if arm == "matta" else config.student_widths
    assert param_count(model) == expected_param_count(config, widths)
    assert model.config.ta_widths == widths
    assert result.arm == arm and result.steps == 30 and math.isfinite(result.final_loss["total"])
    assert result.history[-1]["total"] < result.history[0]["total"]
    if arm == "matta":
        assert {"ta_supervised", "student_supervised", "student_from_ta", "sampled", "gamma"} <= set(result.mean_loss)


def test_epochs_become_steps_with_the_last_partial_batch_wrapped(data: TrainingData) -> None:
    config = tiny_train_config(steps=None, epochs=1.5)
    assert config.total_steps(len(data)) == math.ceil(1.5 * 200 / 32)
    order = BatchOrder(num_rows=10, batch_size=4, seed=3)
    stream = torch.cat([order.rows(s) for s in range(5)])  # 20 positions = exactly two epochs
    assert sorted(stream[:10].tolist()) == list(range(10)) and sorted(stream[10:].tolist()) == list(range(10))
    assert order.rows(2).tolist() == stream[8:12].tolist()  # step 2 straddles the epoch boundary
    assert torch.equal(BatchOrder(10, 4, 3).rows(4), order.rows(4))  # recomputable without state


def test_validation_metrics_and_callbacks(data: TrainingData, tmp_path: Path) -> None:
    history = HistoryCallback()
    metrics_file = tmp_path / "metrics.jsonl"
    _, result = train(tiny_model_config(), data, tiny_train_config(eval_every=10), validation=data,
                      callbacks=[history, JsonlMetricsCallback(metrics_file)])
    assert [r["step"] for r in history.records] == list(range(1, 21))
    assert "val/ta_accuracy" in history.records[9] and "val/ta_accuracy" not in history.records[8]
    assert set(result.validation) == {"val/ta_accuracy", "val/student_accuracy"}
    assert 0.0 <= result.validation["val/student_accuracy"] <= 1.0
    lines = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(1, 21))


def test_optimizer_registry(data: TrainingData) -> None:
    assert {"adamw", "sgd"} <= set(optimizer_names())
    with pytest.raises(ValueError, match="already registered"):
        register_optimizer("adamw", lambda params, lr, wd: torch.optim.Adam(params, lr=lr))
    register_optimizer("adam_test", lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd),
                       replace=True)
    assert isinstance(make_optimizer("adam_test", [torch.nn.Parameter(torch.zeros(2))], 0.1), torch.optim.Adam)
    _, result = train(tiny_model_config(), data, tiny_train_config(optimizer="adam_test", steps=5))
    _, sgd = train(tiny_model_config(), data, tiny_train_config(optimizer="sgd", steps=5))
    assert math.isfinite(result.final_loss["total"]) and math.isfinite(sgd.final_loss["total"])


# --- clear errors --------------------------------------------------------------------------------------------------


def test_student_wider_than_ta_names_the_layer() -> None:
    with pytest.raises(WidthError, match=r"layer blocks\.1: asked width 20, allowed 2\.\.12"):
        tiny_model_config(student_widths=(4, 20))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(steps=0), "steps must be a positive integer"),
        (dict(steps=-3), "steps must be a positive integer"),
        (dict(steps=None), "exactly one of steps and epochs"),
        (dict(epochs=2.0), "exactly one of steps and epochs"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(lr=0.0), "lr must be a positive number"),
        (dict(lr=-1e-3), "lr must be a positive number"),
        (dict(arm="distill"), r"arm 'distill' unknown; allowed: \['matta', 'kd', 'ce_only'\]"),
        (dict(optimizer="lion"), "optimizer 'lion' unknown"),
        (dict(device="tpu"), "device 'tpu' unknown"),
        (dict(sandwich_k=-1), "sandwich_k must be an integer >= 0"),
    ],
)
def test_train_config_errors(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_train_config(**overrides)


def test_train_config_round_trips_through_dict() -> None:
    config = tiny_train_config(sample_low=(2, 3), checkpoint_every=5)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match=r"unknown train config fields \['stepz'\]"):
        TrainConfig.from_dict({"stepz": 3})


def test_sample_low_outside_a_layer_names_the_layer(data: TrainingData) -> None:
    with pytest.raises(ValueError, match=r"sample_low for layer blocks\.1 is 13; allowed 2\.\.12"):
        train(tiny_model_config(), data, tiny_train_config(sample_low=(2, 13)))


def test_empty_data() -> None:
    featurizer = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=2**10))
    with pytest.raises(TrainingDataError, match="no training rows"):
        TrainingData.from_texts(featurizer, [], [], None)
    with pytest.raises(TrainingDataError, match="no training rows"):
        TrainingData(SparseFeatures(sp.csr_matrix((0, 2**10))), np.zeros(0, dtype=np.int64), None)


def test_label_out_of_range_names_row_and_allowed_range() -> None:
    texts, labels = tiny_texts()
    labels = labels.copy()
    labels[17] = 77
    featurizer = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=2**10))
    with pytest.raises(TrainingDataError, match=r"label at row 17 is 77: allowed 0\.\.76 \(num_classes=77\)"):
        TrainingData.from_texts(featurizer, texts, labels, None, num_classes=77)
    # Without num_classes the model config bounds the labels, when training starts.
    unbounded = TrainingData.from_texts(featurizer, texts, labels, None)
    with pytest.raises(TrainingDataError, match=r"label at row 17 is 77: allowed 0\.\.76"):
        train(tiny_model_config(), unbounded, tiny_train_config(arm="ce_only"))
    labels[3] = -1
    with pytest.raises(TrainingDataError, match=r"label at row 3 is -1"):
        TrainingData.from_texts(featurizer, texts, labels, None, num_classes=77)


def test_row_counts_and_dtypes_are_checked() -> None:
    texts, labels = tiny_texts()
    featurizer = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=2**10))
    with pytest.raises(TrainingDataError, match="labels have 199 rows but the features have 200 rows"):
        TrainingData.from_texts(featurizer, texts, labels[:199], None)
    with pytest.raises(TrainingDataError, match="Teacher logits have 10 rows but the features have 200 rows"):
        TrainingData.from_texts(featurizer, texts, None, fake_teacher(labels[:10]))
    with pytest.raises(TrainingDataError, match="integer class indices"):
        TrainingData.from_texts(featurizer, texts, labels.astype(np.float32), None)
    with pytest.raises(TrainingDataError, match="labels, Teacher logits, or both"):
        TrainingData.from_texts(featurizer, texts, None, None)


def test_nan_teacher_logits_name_the_row() -> None:
    texts, labels = tiny_texts()
    teacher = fake_teacher(labels)
    teacher[42, 5] = np.nan
    featurizer = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=2**10))
    with pytest.raises(TrainingDataError, match=r"Teacher logits at row 42, class 5 are nan"):
        TrainingData.from_texts(featurizer, texts, labels, teacher)


def test_nan_dense_feature_names_column_and_row() -> None:
    texts, labels = tiny_texts()
    dense = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    dense[7, 1] = np.nan
    featurizer = HashedNgramFeaturizer(FeaturizerConfig(num_buckets=2**10))
    with pytest.raises(TrainingDataError, match=r"dense feature column 1 at row 7 is nan"):
        TrainingData.from_texts(featurizer, texts, labels, None, dense=dense)
    dense[7, 1] = 0.0
    good = TrainingData.from_texts(featurizer, texts, labels, None, dense=dense)
    model, _ = train(tiny_model_config(num_dense_features=2), good, tiny_train_config(steps=3))
    assert model.config.num_dense_features == 2
    with pytest.raises(TrainingDataError, match="2 dense feature columns but the model config has num_dense_"):
        train(tiny_model_config(), good, tiny_train_config(steps=3))


def test_arm_needs_its_targets() -> None:
    with pytest.raises(TrainingDataError, match="'ce_only' trains on labels"):
        train(tiny_model_config(), tiny_data(with_labels=False), tiny_train_config(arm="ce_only"))
    with pytest.raises(TrainingDataError, match="'kd' distils from the Teacher"):
        train(tiny_model_config(), tiny_data(with_teacher=False), tiny_train_config(arm="kd"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is missing")
def test_cuda_requested_without_a_gpu(data: TrainingData) -> None:
    with pytest.raises(DeviceError, match="CUDA is not available"):
        train(tiny_model_config(), data, tiny_train_config(device="cuda"))
    model, _ = train(tiny_model_config(), data, tiny_train_config(device="auto", steps=2))
    assert next(model.parameters()).device.type == "cpu"


# --- checkpoints ---------------------------------------------------------------------------------------------------


def test_checkpoint_files_are_safetensors_and_json_only(data: TrainingData, tmp_path: Path) -> None:
    model, result = train(tiny_model_config(), data, tiny_train_config(checkpoint_every=5, keep_checkpoints=2),
                          checkpoint_dir=tmp_path)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [15, 20]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000015", "step-00000020"]
    final = tmp_path / "step-00000020"
    assert result.checkpoint == final and latest_checkpoint(tmp_path) == final
    assert sorted(p.name for p in final.iterdir()) == sorted(CHECKPOINT_FILES)
    for path in final.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            with safe_open(str(path), framework="pt") as f:
                assert list(f.keys())
    with safe_open(str(final / "model.safetensors"), framework="pt") as f:
        saved = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    assert_same_weights(saved, weights(model))
    state = json.loads((final / "state.json").read_text())
    assert state["step"] == 20 and state["arm"] == "matta" and state["format_version"] == 1
    assert state["model_config"] == json.loads(json.dumps(tiny_model_config().to_dict()))
    assert load_checkpoint(final).step == 20


def test_failed_checkpoint_write_leaves_no_partial_directory(  # type: ignore[no-untyped-def]
    data: TrainingData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault_record
) -> None:
    real_save = checkpoint_module.save_file
    calls = []

    def save_then_fail(tensors: dict, path: str, *args: object, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        real_save(tensors, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "save_file", save_then_fail)
    with pytest.raises(OSError, match="disk full") as err:
        train(tiny_model_config(), data, tiny_train_config(checkpoint_every=5), checkpoint_dir=tmp_path)
    assert len(calls) == 2  # the first file was written, the second write failed
    assert list(tmp_path.iterdir()) == []
    assert latest_checkpoint(tmp_path) is None
    fault_record("A checkpoint write that fails half-way", fault="the second file of a checkpoint fails to write "
                 "(an OSError, as a full disk raises)", sees=str(err.value),
                 kept="no partial checkpoint directory: the newest whole checkpoint stays the one a resume reads")


def test_litter_from_a_killed_writer_is_ignored_then_removed(data: TrainingData, tmp_path: Path) -> None:
    litter = tmp_path / ".step-00000005.tmp-abc123"
    litter.mkdir()
    (litter / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path) is None
    train(tiny_model_config(), data, tiny_train_config(steps=5), checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000005"]


class _Interrupt(Callback):
    """Stops a run after `step` steps, as a crash would (the run's checkpoints stay behind)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("dropout", [0.0, 0.3])  # dropout draws from torch's global RNG: it must be restored too
def test_resume_after_interruption_matches_uninterrupted_run(
    data: TrainingData, tmp_path: Path, dropout: float
) -> None:
    model_config = tiny_model_config(dropout=dropout)
    config = tiny_train_config(steps=20, checkpoint_every=5, log_every=3)
    straight, straight_result = train(model_config, data, config, checkpoint_dir=tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        train(model_config, data, config, checkpoint_dir=tmp_path / "resumed", callbacks=[_Interrupt(12)])
    assert latest_checkpoint(tmp_path / "resumed").name == "step-00000010"
    metrics = tmp_path / "metrics.jsonl"
    resumed, result = train(model_config, data, config, checkpoint_dir=tmp_path / "resumed",
                            callbacks=[JsonlMetricsCallback(metrics)])
    assert result.start_step == 10
    assert_same_weights(weights(resumed), weights(straight))
    assert result.history == straight_result.history
    assert result.mean_loss == straight_result.mean_loss
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == list(range(11, 21))


def test_resume_refuses_a_different_run(data: TrainingData, tmp_path: Path) -> None:
    train(tiny_model_config(), data, tiny_train_config(steps=5), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=rf"train_config\.lr: checkpoint {TrainConfig.lr}, now 0\.02"):
        train(tiny_model_config(), data, tiny_train_config(steps=5, lr=0.02), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"model_config\.embed_dim: checkpoint 8, now 16"):
        train(tiny_model_config(embed_dim=16), data, tiny_train_config(steps=5), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="resume=False"):
        train(tiny_model_config(), data, tiny_train_config(steps=5), checkpoint_dir=tmp_path, resume=False)
    # Observation-only settings may change on resume; a finished run just returns its checkpointed model.
    model, result = train(tiny_model_config(), data, tiny_train_config(steps=5, log_every=1, progress=True),
                          checkpoint_dir=tmp_path)
    assert result.start_step == 5 and result.steps == 5 and model.config == tiny_model_config()


class _SlowSteps(Callback):
    """Makes each step take `seconds` of wall time, as a large model's steps would."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        time.sleep(self.seconds)


def test_time_based_checkpoints_bound_the_work_a_killed_run_loses(data: TrainingData, tmp_path: Path) -> None:
    """checkpoint_every_seconds, with no step interval: a run killed after ~0.6 s of 0.1 s steps resumes from a
    checkpoint a few steps back, not from step 0; the resumed run equals an uninterrupted one."""
    config = tiny_train_config(steps=12, checkpoint_every_seconds=0.25, keep_checkpoints=20)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_config(), data, config, checkpoint_dir=tmp_path / "resumed",
              callbacks=[_SlowSteps(0.1), _Interrupt(7)])
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "resumed").glob("step-*"))
    assert steps and all(b - a <= 4 for a, b in zip([0, *steps], steps, strict=False))  # ~every 3 steps of 0.1 s
    assert 3 <= steps[-1] <= 7
    straight, _ = train(tiny_model_config(), data, config, checkpoint_dir=tmp_path / "straight")
    resumed, result = train(tiny_model_config(), data, config, checkpoint_dir=tmp_path / "resumed")
    assert result.start_step == steps[-1]
    assert_same_weights(weights(resumed), weights(straight))
