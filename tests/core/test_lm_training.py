"""LM training: data checks and alignment, per-token losses against references, every arm learning a bigram task,
and bit-identical resume. Tiny sizes throughout (vocab 16, d_model 16): each test runs in about a second."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from matta_core.families.decoder.config import DecoderConfig
from matta_core.families.decoder.data import LMBatch, LMDataError, LMTrainingData
from matta_core.families.decoder.loss import (
    LM_LOSS_CONFIG,
    dense_kd,
    lm_matta_loss,
    lm_supervised_loss,
    next_token_ce,
    sparse_topk_kd,
)
from matta_core.families.decoder.model import NestedDecoder
from matta_core.families.decoder.token_loss import SoftTarget, TeacherTopK, token_losses
from matta_core.families.decoder.train_config import LMOptimConfig, default_lm_train_config
from matta_core.families.decoder.trainer import student_decoder_config, train_lm
from matta_core.loss_config import LossConfig
from matta_core.training import Callback, CheckpointError, HistoryCallback, latest_checkpoint

VOCAB, SEQ, K = 16, 12, 4


# -- synthetic bigram task -------------------------------------------------------------------------------------------

def bigram_table(seed: int = 0) -> torch.Tensor:
    """P(next | current) [V, V]: two likely successors per token (0.6, 0.3), the rest share 0.1."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.full((VOCAB, VOCAB), 0.1 / (VOCAB - 2))
    for a in range(VOCAB):
        first, second = torch.randperm(VOCAB, generator=gen)[:2].tolist()
        table[a, first], table[a, second] = 0.6, 0.3
    return table


def bigram_outputs(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """What the causal-LM Teacher would cache for texts drawn from the bigram chain, its logits = log P."""
    table = bigram_table()
    gen = torch.Generator().manual_seed(seed + 1)
    lengths = torch.randint(2, SEQ + 1, (rows,), generator=gen)
    lengths[0] = 1  # a one-token row: allowed, trains nothing
    ids = torch.full((rows, SEQ), 7, dtype=torch.long)  # pad id 7: any pad is normalised away
    values = torch.zeros(rows, SEQ, K)
    indices = torch.full((rows, SEQ, K), -1, dtype=torch.long)
    for r in range(rows):
        token = int(torch.randint(0, VOCAB, (1,), generator=gen))
        for t in range(int(lengths[r])):
            ids[r, t] = token
            top = torch.topk(table[token].log(), K)
            values[r, t], indices[r, t] = top.values, top.indices
            token = int(torch.multinomial(table[token], 1, generator=gen))
    return {"input_ids": ids.numpy(), "lengths": lengths.numpy(), "topk_values": values.numpy(),
            "topk_indices": indices.numpy()}


def tiny_decoder(**overrides) -> DecoderConfig:
    values = dict(vocab_size=VOCAB, n_positions=SEQ, d_model=16, n_layers=2, n_heads=2, ffn_widths=32,
                  student_ffn_widths=8, student_heads=1, min_ffn_width=4)
    return DecoderConfig(**{**values, **overrides})


def tiny_train(**overrides):
    values = dict(steps=60, batch_size=16, lr=1e-2, progress=False, num_threads=1, log_every=10)
    return default_lm_train_config(**{**values, **overrides})


@pytest.fixture(scope="module")
def data() -> LMTrainingData:
    return LMTrainingData.from_teacher_outputs(bigram_outputs(96), vocab_size=VOCAB)


@pytest.fixture(scope="module")
def validation() -> LMTrainingData:
    return LMTrainingData.from_teacher_outputs(bigram_outputs(32, seed=5), vocab_size=VOCAB)


# -- data ------------------------------------------------------------------------------------------------------------

def test_batch_aligns_targets_mask_and_teacher_with_the_next_token(data: LMTrainingData) -> None:
    rows = torch.tensor([3, 0, 5])
    batch = data.batch(rows)
    lengths = data.lengths[rows]
    seq = int(lengths.max()) - 1  # cut to the longest row; its last token is only a target
    assert batch.input_ids.shape == batch.targets.shape == batch.mask.shape == (3, seq)
    assert batch.topk_values.shape == batch.topk_indices.shape == (3, seq, K)
    for j, r in enumerate(rows.tolist()):
        n = int(lengths[j]) - 1
        assert batch.mask[j].tolist() == [True] * n + [False] * (seq - n)
        assert torch.equal(batch.input_ids[j, :n], data.input_ids[r, :n])
        assert torch.equal(batch.targets[j, :n], data.input_ids[r, 1 : n + 1])
        # The Teacher's top-k at position t is its distribution for token t + 1: the target's bigram row.
        assert torch.equal(batch.topk_indices[j, :n], data.topk_indices[r, :n])
    assert not batch.mask[1].any()  # row 0 has one token: nothing to train
    # Pads (7 in the source) are normalised to id 0 / index -1.
    assert int(data.input_ids[0, 1]) == 0 and int(data.topk_indices[0, 1, 0]) == -1
    assert data.num_tokens == int((data.lengths - 1).sum())


def test_ce_only_data_has_no_teacher() -> None:
    plain = LMTrainingData.from_teacher_outputs(bigram_outputs(8), vocab_size=VOCAB, with_teacher=False)
    batch = plain.batch(torch.arange(8))
    assert not plain.has_teacher and batch.topk_values is None and batch.topk_indices is None


def _broken(field: str, value_at, value) -> dict[str, np.ndarray]:
    outputs = {k: v.copy() for k, v in bigram_outputs(6).items()}
    outputs[field][value_at] = value
    return outputs


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (_broken("lengths", 2, SEQ + 1), rf"lengths at row 2 is {SEQ + 1}: allowed 1\.\.{SEQ}"),
        (_broken("lengths", 4, 0), r"lengths at row 4 is 0: allowed 1\.\."),
        (_broken("input_ids", (3, 0), VOCAB), rf"input_ids at row 3, position 0 is {VOCAB}: allowed 0\.\.{VOCAB - 1}"),
        (_broken("topk_indices", (1, 0, 2), VOCAB + 5), r"topk_indices at row 1, position 0, entry 2 is 21"),
        (_broken("topk_indices", (1, 0, 1), -1), r"topk_indices at row 1, position 0, entry 1 is -1"),
        (_broken("topk_values", (2, 1, 0), np.nan), r"topk_values at row 2, position 1, entry 0 is nan"),
        ({**bigram_outputs(6), "lengths": np.array([3, 3])}, r"lengths has 2 rows but input_ids has 6"),
        ({**bigram_outputs(6), "topk_values": np.zeros((6, SEQ, K + 1), np.float32)},
         r"topk_indices has shape \(6, 12, 4\) but topk_values has \(6, 12, 5\)"),
        ({**bigram_outputs(6), "topk_values": np.zeros((6, SEQ - 1, K), np.float32)},
         r"topk_values must be \[rows, max_length, k\] = \[6, 12, k\]"),
        ({**bigram_outputs(6), "input_ids": np.zeros((6, SEQ), np.float32)}, r"input_ids must be integers"),
    ],
)
def test_bad_data_is_refused_naming_the_field_and_row(outputs: dict, message: str) -> None:
    with pytest.raises(LMDataError, match=message):
        LMTrainingData.from_teacher_outputs(outputs, vocab_size=VOCAB)


def test_half_a_teacher_and_an_incompatible_model_are_refused(data: LMTrainingData) -> None:
    outputs = bigram_outputs(4)
    with pytest.raises(LMDataError, match="topk_values was given without topk_indices"):
        LMTrainingData(outputs["input_ids"], outputs["lengths"], outputs["topk_values"], vocab_size=VOCAB)
    with pytest.raises(LMDataError, match="vocab_size 16 but the decoder config has vocab_size 17"):
        data.check_compatible(tiny_decoder(vocab_size=17))
    with pytest.raises(LMDataError, match=r"reads 11 positions, but the decoder config has n_positions=8"):
        data.check_compatible(tiny_decoder(n_positions=8))


# -- losses ----------------------------------------------------------------------------------------------------------

def one_position(values, indices, logits) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.tensor([[logits]]), torch.tensor([[values]]), torch.tensor([[indices]]), torch.tensor([[True]]))


def test_sparse_kd_matches_a_hand_computed_reference() -> None:
    tau = 2.0
    student, values, indices, mask = one_position([3.0, 1.0], [2, 0], [0.5, -1.0, 2.0, 0.0])
    # Teacher: softmax([3, 1] / 2) over its two entries; Student: full softmax([0.5, -1, 2, 0] / 2) at ids 2, 0.
    p = [math.exp(1.5) / (math.exp(1.5) + math.exp(0.5)), math.exp(0.5) / (math.exp(1.5) + math.exp(0.5))]
    z = sum(math.exp(v / tau) for v in (0.5, -1.0, 2.0, 0.0))
    q = [math.exp(1.0) / z, math.exp(0.25) / z]
    expected = tau**2 * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert float(sparse_topk_kd(student, values, indices, mask, tau)) == pytest.approx(expected, rel=1e-6)


def test_sparse_kd_is_zero_only_without_student_mass_outside_the_top_k() -> None:
    values, indices = [2.0, 1.0, -0.5], [4, 1, 3]
    matched = torch.full((6,), -1e4)
    matched[indices] = torch.tensor(values)
    _, v, i, mask = one_position(values, indices, [0.0] * 6)
    assert float(sparse_topk_kd(matched[None, None], v, i, mask, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # Same proportions inside the top k, mass m outside: KL = -log(1 - m) exactly, so outside mass is penalised.
    leaky = matched.clone()
    leaky[[0, 2, 5]] = 1.5
    inside = float(torch.softmax(leaky, 0)[indices].sum())
    kd = float(sparse_topk_kd(leaky[None, None], v, i, mask, 1.0))
    assert kd == pytest.approx(-math.log(inside), rel=1e-5) and kd > 0.1


def test_padded_positions_and_missing_entries_change_nothing() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, VOCAB, generator=gen)
    ta = torch.randn(2, 5, VOCAB, generator=gen)
    values = torch.randn(2, 5, K, generator=gen).sort(-1, descending=True).values
    indices = torch.stack([torch.randperm(VOCAB, generator=gen)[:K] for _ in range(10)]).view(2, 5, K)
    targets = torch.randint(0, VOCAB, (2, 5), generator=gen)
    mask = torch.tensor([[True, True, True, False, False], [True, False, False, False, False]])
    before = [sparse_topk_kd(logits, values, indices, mask, 2.0), dense_kd(logits, ta, mask, 2.0),
              next_token_ce(logits, targets, mask)]
    # Garbage wherever the mask is False: NaN / inf logits, out-of-range ids and -1 indices.
    pad = ~mask
    logits2, ta2, values2 = logits.clone(), ta.clone(), values.clone()
    indices2, targets2 = indices.clone(), targets.clone()
    logits2[pad], ta2[pad], values2[pad] = float("nan"), float("inf"), float("nan")
    indices2[pad], targets2[pad] = -1, -100
    after = [sparse_topk_kd(logits2, values2, indices2, mask, 2.0), dense_kd(logits2, ta2, mask, 2.0),
             next_token_ce(logits2, targets2, mask)]
    for a, b in zip(before, after, strict=True):
        assert torch.isfinite(b) and float(a) == pytest.approx(float(b), rel=1e-6)
    # A -1 entry at a real position is simply left out of the Teacher's renormalisation.
    dropped = indices.clone()
    dropped[0, 0, K - 1] = -1
    only_mask = torch.zeros_like(mask)
    only_mask[0, 0] = True
    reference = sparse_topk_kd(logits[:, :1], values[:, :1, : K - 1], indices[:, :1, : K - 1], only_mask[:, :1], 2.0)
    assert float(sparse_topk_kd(logits, values, dropped, only_mask, 2.0)) == pytest.approx(float(reference), rel=1e-6)
    # No scored position at all: 0, not NaN.
    assert float(next_token_ce(logits, targets, torch.zeros_like(mask))) == 0.0


def test_dense_kd_and_ce_match_torch_references() -> None:
    gen = torch.Generator().manual_seed(1)
    student, ta = torch.randn(3, 4, VOCAB, generator=gen), torch.randn(3, 4, VOCAB, generator=gen)
    targets = torch.randint(0, VOCAB, (3, 4), generator=gen)
    mask = torch.rand(3, 4, generator=gen) > 0.3
    tau = 3.0
    kl = F.kl_div(F.log_softmax(student[mask] / tau, -1), F.log_softmax(ta[mask] / tau, -1), log_target=True,
                  reduction="batchmean")
    assert float(dense_kd(student, ta, mask, tau)) == pytest.approx(float(kl) * tau**2, rel=1e-5)
    ce = F.cross_entropy(student[mask], targets[mask])
    assert float(next_token_ce(student, targets, mask)) == pytest.approx(float(ce), rel=1e-6)


def reference_losses(z, targets, mask, tau, values, indices, ta):
    """The three terms written the plain autograd way (log-softmax everywhere), for the hand-written gradient."""
    valid = mask[..., None] & (indices >= 0)
    log_p = torch.log_softmax(torch.where(valid, values / tau, torch.tensor(float("-inf"), dtype=z.dtype)), -1)
    p = torch.where(valid, log_p.exp(), 0.0)
    log_q = torch.log_softmax(z / tau, -1)
    kd_tok = (p * (torch.where(valid, log_p, 0.0) - log_q.gather(-1, indices.clamp(min=0)))).sum(-1)
    ce_tok = -torch.log_softmax(z, -1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
    log_a = torch.log_softmax(ta / tau, -1)
    on_tok = (log_a.exp() * (log_a - log_q)).sum(-1)
    n = mask.sum()
    return [tau**2 * kd_tok[mask].sum() / n, ce_tok[mask].sum() / n, tau**2 * on_tok[mask].sum() / n]


@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_hand_written_gradient_matches_autograd(tau: float) -> None:
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(2, 5, VOCAB, generator=gen, dtype=torch.float64, requires_grad=True)
    ta = torch.randn(2, 5, VOCAB, generator=gen, dtype=torch.float64)
    values = torch.randn(2, 5, K, generator=gen, dtype=torch.float64)
    indices = torch.stack([torch.randperm(VOCAB, generator=gen)[:K] for _ in range(10)]).view(2, 5, K)
    indices[0, 1, 2] = -1  # one absent entry
    indices[1, 0] = -1  # a scored position with no Teacher entry at all
    targets = torch.randint(0, VOCAB, (2, 5), generator=gen)
    mask = torch.tensor([[True, True, True, True, False], [True, True, True, False, False]])
    weights = (0.3, 0.5, 0.7)
    topk = TeacherTopK.build(values, indices, mask, tau)
    fused = token_losses(z, targets, mask, tau, topk=topk, soft=SoftTarget.build(ta, tau))
    reference = reference_losses(z, targets, mask, tau, values, indices, ta)
    for a, b in zip(fused, reference, strict=True):
        assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-10)
    (grad,) = torch.autograd.grad(sum(w * t for w, t in zip(weights, fused, strict=True)), z)
    (expected,) = torch.autograd.grad(sum(w * t for w, t in zip(weights, reference, strict=True)), z)
    assert torch.allclose(grad, expected, atol=1e-12)
    assert float(grad[0, 4].abs().sum()) == 0.0  # a padded position gets no gradient
    # And against finite differences, independently of the reference above.
    cut = (slice(None), slice(0, 2))
    small = z.detach()[cut].clone().requires_grad_(True)
    topk_small = TeacherTopK.build(values[cut], indices[cut], mask[cut], tau)
    soft_small = SoftTarget.build(ta[cut], tau)
    assert torch.autograd.gradcheck(
        lambda x: token_losses(x, targets[cut], mask[cut], tau, topk=topk_small, soft=soft_small), (small,),
        fast_mode=True,
    )


def test_online_distillation_trains_the_student_never_the_ta(data: LMTrainingData) -> None:
    batch = data.batch(torch.arange(1, 9))
    shape = (*batch.targets.shape, VOCAB)
    gen = torch.Generator().manual_seed(2)
    ta = torch.randn(shape, generator=gen, requires_grad=True)
    student = torch.randn(shape, generator=gen, requires_grad=True)
    dense_kd(student, ta, batch.mask, 1.0).backward()
    assert ta.grad is None and student.grad is not None and float(student.grad.abs().sum()) > 0
    # In the joint loss the TA's gradient is that of its own supervised term: the online term adds nothing.
    config = LossConfig(temperature=1.0, ta_distill_warmup=0.0)
    ta.grad = student.grad = None
    terms = lm_matta_loss(ta, student, batch, config, progress=0.5, sampled_logits=[student * 0.5])
    terms.total.backward()
    assert terms.parts["gamma"] == 0.5 and terms.parts["student_from_ta"] > 0
    joint_grad = ta.grad.clone()
    ta.grad = None
    lm_supervised_loss(ta, batch, config)[0].backward()
    assert torch.allclose(joint_grad, ta.grad, atol=1e-7)


def test_supervised_loss_mixes_kd_and_ce_and_falls_back_to_ce(data: LMTrainingData) -> None:
    batch = data.batch(torch.arange(1, 9))
    logits = torch.randn(*batch.targets.shape, VOCAB, generator=torch.Generator().manual_seed(3))
    kd = sparse_topk_kd(logits, batch.topk_values, batch.topk_indices, batch.mask, 1.0)
    ce = next_token_ce(logits, batch.targets, batch.mask)
    loss, nll = lm_supervised_loss(logits, batch, LM_LOSS_CONFIG)
    assert float(loss) == pytest.approx(0.5 * float(kd) + 0.5 * float(ce), rel=1e-6) and float(nll) == float(ce)
    no_teacher = LMBatch(batch.input_ids, batch.targets, batch.mask, None, None)
    assert float(lm_supervised_loss(logits, no_teacher, LM_LOSS_CONFIG)[0]) == float(ce)


# -- training --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arm", ["matta", "kd", "ce_only"])
def test_every_arm_learns_the_bigram_task(arm: str, data: LMTrainingData, validation: LMTrainingData) -> None:
    history = HistoryCallback()
    model, result = train_lm(tiny_decoder(), data, tiny_train(arm=arm), callbacks=[history],
                             validation=validation)
    first, last = result.history[0]["student_nll"], result.history[-1]["student_nll"]
    assert last < first - 0.5, (first, last)
    # Uniform guessing scores log(16) = 2.77 nats; the bigram chain's own entropy is ~1.2.
    assert result.validation["val/student_nll"] < 2.0
    assert result.validation["val/student_perplexity"] == pytest.approx(math.exp(result.validation["val/student_nll"]))
    if arm == "matta":
        assert result.validation["val/ta_nll"] < 2.0 and "sampled" in result.final_loss
    else:
        assert model.config == student_decoder_config(tiny_decoder())
        assert model.config.ta_widths == model.config.student_widths == tiny_decoder().student_widths
    # Linear warm-up over 2 % of 60 steps = 2 steps, then the base rate; gradients clipped to norm 1.
    assert [r["lr"] for r in history.records[:3]] == pytest.approx([5e-3, 1e-2, 1e-2])
    assert all(math.isfinite(r["grad_norm"]) for r in history.records)
    assert result.to_dict()["optim"] == LMOptimConfig().to_dict()


def test_kd_arm_needs_teacher_data() -> None:
    plain = LMTrainingData.from_teacher_outputs(bigram_outputs(8), vocab_size=VOCAB, with_teacher=False)
    with pytest.raises(LMDataError, match="arm 'kd' distils from the Teacher"):
        train_lm(tiny_decoder(), plain, tiny_train(arm="kd", steps=2))


class _Interrupt(Callback):
    """Stops a run after `step` steps, as a crash would (the run's checkpoints stay behind)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, step: int, metrics: dict[str, float]) -> None:
        if step == self.step:
            raise KeyboardInterrupt


def test_resume_after_interruption_matches_uninterrupted_run(data: LMTrainingData, tmp_path: Path) -> None:
    # Dropout draws from torch's global RNG and the sandwich sampler from its own: both must be restored.
    decoder = tiny_decoder(dropout=0.1)
    config = tiny_train(steps=12, checkpoint_every=4, log_every=3)
    straight, straight_result = train_lm(decoder, data, config, checkpoint_dir=tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        train_lm(decoder, data, config, checkpoint_dir=tmp_path / "resumed", callbacks=[_Interrupt(7)])
    assert latest_checkpoint(tmp_path / "resumed").name == "step-00000004"
    resumed, result = train_lm(decoder, data, config, checkpoint_dir=tmp_path / "resumed")
    assert result.start_step == 4
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert result.history == straight_result.history and result.mean_loss == straight_result.mean_loss


def test_resume_refuses_a_different_run(data: LMTrainingData, tmp_path: Path) -> None:
    train_lm(tiny_decoder(), data, tiny_train(steps=2), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"lm_optim\.clip_norm: checkpoint 1\.0, now 0\.5"):
        train_lm(tiny_decoder(), data, tiny_train(steps=2), optim=LMOptimConfig(clip_norm=0.5),
                 checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"model_config\.d_model: checkpoint 16, now 32"):
        train_lm(tiny_decoder(d_model=32), data, tiny_train(steps=2), checkpoint_dir=tmp_path)


def test_default_lm_config_uses_tau_1_and_a_transformer_learning_rate() -> None:
    config = default_lm_train_config(steps=10, loss={"teacher_weight": 0.8})
    assert config.lr == 1e-3 and config.loss.temperature == 1.0 and config.loss.teacher_weight == 0.8
    assert LMOptimConfig(warmup_fraction=0.1).lr_scale(0, 100) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="clip_norm must be a positive number"):
        LMOptimConfig(clip_norm=0.0)


def test_student_decoder_config_keeps_per_block_head_counts() -> None:
    config = tiny_decoder(n_layers=2, student_heads=(2, 1), student_ffn_widths=(8, 4))
    baseline = student_decoder_config(config)
    assert baseline.student_widths == config.student_widths and baseline.head_dim == config.head_dim
    assert NestedDecoder(baseline)(torch.zeros(1, 3, dtype=torch.long), baseline.student_widths).shape == (1, 3, VOCAB)
