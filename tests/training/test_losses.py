"""Every term of the MatTA objective against a hand computation, and where its gradients may (not) flow.

The reference values are computed with plain Python `math` on 2 examples x 3 classes, never with the torch
functions under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from matta_core.distillation import soft_kl, ta_distill_ramp
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.loss import matta_loss, supervised_loss
from matta_core.families.classifier.model import NestedClassifier
from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer
from matta_core.loss_config import LossConfig

# 2 examples x 3 classes.
STUDENT = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
TA = [[1.5, 2.5, -0.5], [0.5, -0.5, 2.0]]
TEACHER = [[2.0, 0.0, 1.0], [1.0, 1.0, -2.0]]
SAMPLED = [[[0.2, 0.1, 0.0], [1.0, 0.0, 1.0]], [[-1.0, 0.5, 0.5], [0.3, 0.3, 0.9]]]
LABELS = [1, 2]


def softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def kl(p: list[float], q: list[float]) -> float:
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True))


def hand_soft_kl(student: list[list[float]], target: list[list[float]], tau: float) -> float:
    """tau^2 * mean over examples of KL(softmax(target/tau) || softmax(student/tau))."""
    per_example = [
        kl(softmax([v / tau for v in t]), softmax([v / tau for v in s])) for s, t in zip(student, target, strict=True)
    ]
    return tau**2 * sum(per_example) / len(per_example)


def hand_ce(logits: list[list[float]], labels: list[int]) -> float:
    return sum(-math.log(softmax(row)[y]) for row, y in zip(logits, labels, strict=True)) / len(labels)


def hand_supervised(logits: list[list[float]], alpha: float, tau: float) -> float:
    return alpha * hand_soft_kl(logits, TEACHER, tau) + (1 - alpha) * hand_ce(logits, LABELS)


def t(values: list, grad: bool = False) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, requires_grad=grad)


def test_soft_kl_closed_form_and_tau_squared_scaling() -> None:
    # Target softmax [3/4, 1/4] against a uniform Student: KL = 3/4 log(3/2) + 1/4 log(1/2).
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert float(soft_kl(t([[0.0, 0.0]]), t([[math.log(3.0), 0.0]]), 1.0)) == pytest.approx(expected, rel=1e-6)
    # At tau = 2 the same distributions come from doubled logits, and the KL is multiplied by tau^2 = 4.
    tau2 = float(soft_kl(t([[0.0, 0.0]]), t([[2 * math.log(3.0), 0.0]]), 2.0))
    assert tau2 == pytest.approx(4 * expected, rel=1e-6)


@pytest.mark.parametrize("tau", [1.0, 2.0, 4.0])
def test_soft_kl_matches_hand_computation(tau: float) -> None:
    assert float(soft_kl(t(STUDENT), t(TEACHER), tau)) == pytest.approx(hand_soft_kl(STUDENT, TEACHER, tau), rel=1e-5)


def test_soft_kl_gradient_is_tau_times_probability_gap() -> None:
    # d/ds [tau^2 KL(p || softmax(s/tau))] = tau * (softmax(s/tau) - p), divided by the batch size.
    tau = 2.0
    student = t(STUDENT, grad=True)
    soft_kl(student, t(TEACHER), tau).backward()
    for i in range(2):
        q = softmax([v / tau for v in STUDENT[i]])
        p = softmax([v / tau for v in TEACHER[i]])
        expected = [tau * (qj - pj) / 2 for qj, pj in zip(q, p, strict=True)]
        assert student.grad[i].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_supervised_loss_mixes_teacher_and_labels(alpha: float) -> None:
    config = LossConfig(temperature=2.0, teacher_weight=alpha)
    got = float(supervised_loss(t(STUDENT), t(TEACHER), torch.tensor(LABELS), config))
    assert got == pytest.approx(hand_supervised(STUDENT, alpha, 2.0), rel=1e-5)


def test_supervised_loss_with_labels_only_or_teacher_only() -> None:
    config = LossConfig(temperature=3.0, teacher_weight=0.5)
    labels_only = float(supervised_loss(t(STUDENT), None, torch.tensor(LABELS), config))
    assert labels_only == pytest.approx(hand_ce(STUDENT, LABELS), rel=1e-5)
    teacher_only = float(supervised_loss(t(STUDENT), t(TEACHER), None, config))
    assert teacher_only == pytest.approx(hand_soft_kl(STUDENT, TEACHER, 3.0), rel=1e-5)
    with pytest.raises(ValueError, match="Teacher outputs, labels, or both"):
        supervised_loss(t(STUDENT), None, None, config)


def test_ta_distill_ramp_before_during_and_after_warmup() -> None:
    config = LossConfig(ta_distill_weight=0.5, ta_distill_warmup=0.2)
    assert ta_distill_ramp(0.0, config) == 0.0
    assert ta_distill_ramp(0.1, config) == pytest.approx(0.25)
    assert ta_distill_ramp(0.2, config) == pytest.approx(0.5)
    assert ta_distill_ramp(0.7, config) == 0.5
    assert ta_distill_ramp(1.0, config) == 0.5
    assert ta_distill_ramp(0.0, LossConfig(ta_distill_weight=0.5, ta_distill_warmup=0.0)) == 0.5


def test_matta_loss_total_is_the_weighted_sum_of_hand_computed_terms() -> None:
    tau, alpha = 2.0, 0.4
    config = LossConfig(temperature=tau, teacher_weight=alpha, ta_distill_weight=0.8, ta_distill_warmup=0.5,
                        ta_weight=1.5, student_weight=0.7, sampled_weight=0.3)
    progress = 0.25  # half-way through warm-up: gamma = 0.4
    terms = matta_loss(t(TA), t(STUDENT), t(TEACHER), torch.tensor(LABELS), config, progress,
                       [t(z) for z in SAMPLED])
    gamma = 0.8 * 0.25 / 0.5
    ta_sup = hand_supervised(TA, alpha, tau)
    student_sup = hand_supervised(STUDENT, alpha, tau)
    online = hand_soft_kl(STUDENT, TA, tau)
    sampled = sum(hand_supervised(z, alpha, tau) + gamma * hand_soft_kl(z, TA, tau) for z in SAMPLED) / 2
    expected = 1.5 * ta_sup + 0.7 * (student_sup + gamma * online) + 0.3 * sampled
    assert terms.parts["gamma"] == pytest.approx(gamma)
    assert terms.parts["ta_supervised"] == pytest.approx(ta_sup, rel=1e-5)
    assert terms.parts["student_supervised"] == pytest.approx(student_sup, rel=1e-5)
    assert terms.parts["student_from_ta"] == pytest.approx(online, rel=1e-5)
    assert terms.parts["sampled"] == pytest.approx(sampled, rel=1e-5)
    assert float(terms.total) == pytest.approx(expected, rel=1e-5)
    assert terms.parts["total"] == pytest.approx(expected, rel=1e-5)


def test_online_term_trains_the_student_and_never_the_ta() -> None:
    # ta_weight=0 leaves the online term as the TA logits' only path to the loss: any TA gradient would be a leak.
    config = LossConfig(temperature=2.0, ta_weight=0.0, ta_distill_weight=1.0, ta_distill_warmup=0.0)
    grads = {}
    for gamma_on in (True, False):
        ta, student = t(TA, grad=True), t(STUDENT, grad=True)
        cfg = config if gamma_on else LossConfig(temperature=2.0, ta_weight=0.0, ta_distill_weight=0.0)
        matta_loss(ta, student, t(TEACHER), torch.tensor(LABELS), cfg, 0.5).total.backward()
        assert ta.grad is None or not bool(ta.grad.any())
        grads[gamma_on] = student.grad.clone()
    # The difference between gamma = 1 and gamma = 0 is the online term's gradient: tau * (q - softmax(TA/tau)) / 2.
    online = grads[True] - grads[False]
    for i in range(2):
        q = softmax([v / 2.0 for v in STUDENT[i]])
        p = softmax([v / 2.0 for v in TA[i]])
        assert online[i].tolist() == pytest.approx([2.0 * (a - b) / 2 for a, b in zip(q, p, strict=True)],
                                                   rel=1e-4, abs=1e-6)


def test_ta_gradient_comes_only_from_its_own_supervised_term() -> None:
    config = LossConfig(temperature=2.0, ta_distill_weight=1.0, ta_distill_warmup=0.0)
    ta, student = t(TA, grad=True), t(STUDENT, grad=True)
    sampled = [t(z, grad=True) for z in SAMPLED]
    matta_loss(ta, student, t(TEACHER), torch.tensor(LABELS), config, 0.5, sampled).total.backward()
    alone = t(TA, grad=True)
    supervised_loss(alone, t(TEACHER), torch.tensor(LABELS), config).backward()
    torch.testing.assert_close(ta.grad, alone.grad, rtol=0, atol=1e-7)


def _tiny_model() -> tuple[NestedClassifier, torch.Tensor]:
    features = FeaturizerConfig(num_buckets=2**10)
    config = ClassifierConfig(num_classes=3, hidden_widths=(16,), student_widths=(4,), embed_dim=8, min_width=2,
                              features=features)
    torch.manual_seed(0)
    model = NestedClassifier(config)
    texts = ["my card has not arrived", "what is the exchange rate", "top up failed", "cancel my transfer"]
    return model, HashedNgramFeaturizer(features).transform(texts).batch([0, 1, 2, 3])


def test_online_term_leaves_the_ta_only_slice_of_a_real_model_untouched() -> None:
    model, batch = _tiny_model()
    hidden = model.embed(batch)
    ta_logits = model.head_forward(hidden, (16,))
    student_logits = model.head_forward(hidden, (4,))
    # ta_weight=0 and no Teacher: the loss is CE(Student) + the online term; only the latter could reach TA rows.
    config = LossConfig(temperature=2.0, ta_weight=0.0, ta_distill_weight=1.0, ta_distill_warmup=0.0)
    matta_loss(ta_logits, student_logits, None, torch.tensor([0, 1, 2, 0]), config, 0.5).total.backward()
    block, head = model.blocks[0], model.head
    assert not bool(block.weight.grad[4:].any()) and not bool(block.bias.grad[4:].any())
    assert not bool(head.weight.grad[:, 4:].any())
    assert bool(block.weight.grad[:4].any()) and bool(head.weight.grad[:, :4].any())


def test_undetached_online_term_would_reach_the_ta_slice() -> None:
    # Control for the test above: without the stop-gradient the TA-only rows DO get gradient, so that test can fail.
    model, batch = _tiny_model()
    hidden = model.embed(batch)
    soft_kl(model.head_forward(hidden, (4,)), model.head_forward(hidden, (16,)), 2.0).backward()
    assert bool(model.blocks[0].weight.grad[4:].any())
