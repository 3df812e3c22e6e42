"""The "levers" round of `benchmarks/tune_matta.py` (`benchmarks/tune_levers.py`): every candidate builds a valid
model and training config that changes only what it names, and the warm-start candidates differ only in ordering."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))  # benchmarks/ is not a package
import quality  # noqa: E402
import tune_levers  # noqa: E402
import tune_matta  # noqa: E402

from matta_core.families.classifier.model import NestedClassifier  # noqa: E402
from matta_core.families.classifier.trainer import _fixed_widths  # noqa: E402
from matta_core.families.classifier.warm_start import copy_into, order_by_importance  # noqa: E402


def test_jobs_run_every_candidate_seed_by_seed_at_the_library_shape() -> None:
    jobs = tune_levers.jobs([0, 1], 15.0)
    assert [j.tag for j in jobs] == list(tune_levers.LEVERS) * 2
    assert [j.seed for j in jobs] == [0] * len(tune_levers.LEVERS) + [1] * len(tune_levers.LEVERS)
    assert {j.student_width for j in jobs} == {tune_matta.EMBED_STUDENT} and {j.arm for j in jobs} == {"matta"}
    assert all(j.eval_splits == ("validation",) for j in jobs)  # the test split is never scored while choosing
    assert len({j.run_id for j in jobs}) == len(jobs)


def test_each_candidate_changes_only_what_it_names() -> None:
    by_tag = {j.tag: j for j in tune_levers.jobs([0], 15.0)}
    base = quality.train_config(by_tag["baseline"]).to_dict()
    for tag, job in by_tag.items():
        changed = {k for k, v in quality.train_config(job).to_dict().items() if base.get(k, "absent") != v}
        changed |= {f"loss.{k}" for k, v in quality.train_config(job).loss.to_dict().items()
                    if base["loss"][k] != v}
        changed.discard("loss")
        expected = {"ta_distill_warmup=0.3": {"loss.ta_distill_warmup"},
                    "ta_distill_warmup=0.5": {"loss.ta_distill_warmup"},
                    "loss_widths=extracted": {"loss_widths"}}.get(tag, set())
        assert changed == expected, tag
    assert by_tag["ta=2048"].regime.ta_width == 2048 and by_tag["baseline"].regime.ta_width == 1024


def test_loss_widths_candidate_trains_every_default_extracted_width_of_the_library_model() -> None:
    job = next(j for j in tune_levers.jobs([0], 15.0) if j.tag == "loss_widths=extracted")
    config = quality.model_config(job.regime, job.student_width)
    assert _fixed_widths(config, quality.train_config(job)) == [(16,), (32,), (128,), (256,), (512,)]


def test_wider_embedding_candidate_keeps_every_width_up_to_the_student_at_128_dims() -> None:
    job = next(j for j in tune_levers.jobs([0], 15.0) if j.tag.startswith("embed_dim=256"))
    config = quality.model_config(job.regime, job.student_width)
    dims = {w: config.embed_dim_for((w,)) for w in tune_matta.EMBED_WIDTHS}
    assert dims[32] == dims[64] == 128 and dims[1024] == 256 and 128 < dims[256] < 256


def test_ordering_is_the_only_difference_between_the_warm_start_candidates() -> None:
    # What the two candidates copy into the Student slice: the trained order, or the 64 most important units.
    torch.manual_seed(0)
    job = next(j for j in tune_levers.jobs([0], 15.0) if j.tag == "baseline")
    ta = quality.model_config(job.regime, job.student_width)
    saved = NestedClassifier(quality.model_config(job.regime, 256).sub_config((256,)))
    weights = {"embedding.weight": saved.embedding.weight.detach().clone(),
               **{k: v.detach().clone() for k, v in saved.state_dict().items() if k.startswith(("blocks.", "head."))}}
    ordered, unordered = NestedClassifier(ta), NestedClassifier(ta)
    copy_into(ordered, order_by_importance(weights, ta.student_widths, ta.embed_dim_for(ta.student_widths)))
    copy_into(unordered, weights)
    first_ordered = ordered.blocks[0].weight[:64, :128]
    first_unordered = unordered.blocks[0].weight[:64, :128]
    assert torch.equal(first_unordered, weights["blocks.0.weight"][:64])
    assert not torch.equal(first_ordered, first_unordered)
    # The same 256 units either way, in another order.
    rows = {tuple(r.tolist()) for r in ordered.blocks[0].weight[:256, :128].detach()}
    assert rows == {tuple(r.tolist()) for r in weights["blocks.0.weight"]}
