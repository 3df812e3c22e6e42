"""The classifier's embedding nests too (`student_embed_dim`): each width reads a prefix of every n-gram's row, its
extracted model ships only that prefix, and it still gives exactly the nested model's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from matta_core.config import ModelSection
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.extract import (
    expected_param_count,
    extract,
    extracted_config,
    load_extracted,
    save_extracted,
)
from matta_core.families.classifier.model import NestedClassifier
from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer
from matta_core.training.config import TrainConfig
from tests.data.helpers import banking_rows

FEATURES = FeaturizerConfig(num_buckets=2**10, word_ngrams=(1, 2), char_ngrams=(3, 4))
CONFIG = ClassifierConfig(num_classes=5, hidden_widths=(256, 64), student_widths=(16, 16), embed_dim=64,
                          student_embed_dim=8, min_embed_dim=4, min_width=4, features=FEATURES)


def test_the_schedule_runs_from_the_student_to_the_ta() -> None:
    dims = {w: CONFIG.embed_dim_for((w, 16)) for w in (4, 8, 16, 32, 64, 128, 256)}
    assert dims[16] == 8 and dims[256] == 64  # the Student's and the TA's own
    assert dims[8] == 4 and dims[4] == 4  # proportional below the Student, never under min_embed_dim
    assert dims[64] == 23  # log-linear between: 8 * (64/8) ** (log(64/16) / log(256/16)) = 8 * 8 ** 0.5
    assert list(dims.values()) == sorted(dims.values())  # wider never reads fewer dims
    assert CONFIG.sub_config((64, 32)).embed_dim == 23 and CONFIG.sub_config((64, 32)).student_embed_dim is None
    plain = ClassifierConfig(num_classes=5, hidden_widths=(256,), student_widths=(16,), embed_dim=64)
    assert plain.embed_dim_for((16,)) == 64  # not nested: every width reads every dim, as before


@pytest.mark.parametrize(("fields", "message"), [
    ({"student_embed_dim": 128}, r"student_embed_dim must be in min_embed_dim..embed_dim \(4..64\), got 128"),
    ({"student_embed_dim": 2}, r"student_embed_dim must be in min_embed_dim..embed_dim \(4..64\), got 2"),
    ({"num_dense_features": 3}, "nests the embedding of text-only models; num_dense_features must be 0, got 3"),
    ({"student_widths": (256, 16)}, "needs a first hidden layer wider in the TA \\(256\\) than in the Student"),
])
def test_a_nesting_that_cannot_work_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClassifierConfig(**{**CONFIG.to_dict(), "features": FEATURES, **fields})


def test_the_config_round_trips_and_the_run_config_carries_it() -> None:
    assert ClassifierConfig.from_dict(CONFIG.to_dict()) == CONFIG
    section = ModelSection(hidden_widths=[256, 64], student_widths=[16, 16], embed_dim=64, student_embed_dim=8,
                           min_embed_dim=4, min_width=4)
    built = section.classifier_config(num_classes=5)
    assert (built.student_embed_dim, built.min_embed_dim) == (8, 4)
    assert ModelSection().classifier_config(2).student_embed_dim is None  # the default does not nest


@pytest.mark.parametrize("widths", [(256, 64), (16, 16), (64, 32), (8, 4), (128, 16)])
def test_every_width_ships_only_its_dims_and_matches_the_nested_model(widths: tuple[int, int], tmp_path: Path) -> None:
    torch.manual_seed(0)
    nested = NestedClassifier(CONFIG).eval()
    texts = [row["text"] for row in banking_rows()[:64]]
    features = HashedNgramFeaturizer(FEATURES).transform(texts)
    nested.set_idf(torch.rand(FEATURES.num_buckets) + 0.5)
    batch = features.batch(torch.arange(len(texts)))
    standalone = extract(nested, widths)
    dims = CONFIG.embed_dim_for(widths)
    assert tuple(standalone.embedding.weight.shape) == (FEATURES.num_buckets, dims)
    assert sum(p.numel() for p in standalone.parameters()) == expected_param_count(CONFIG, widths)
    save_extracted(standalone, extracted_config(CONFIG, widths), tmp_path / "model")
    loaded, saved = load_extracted(tmp_path / "model")
    assert saved.embed_dim == dims
    with torch.inference_mode():
        reference = nested(batch, widths)
        for model in (standalone, loaded):
            assert torch.allclose(model(batch.ids, batch.offsets, batch.counts, batch.dense), reference, atol=1e-5)
    table_bytes = FEATURES.num_buckets * dims * 4
    assert (tmp_path / "model" / "model.safetensors").stat().st_size < table_bytes + 400_000


def test_a_nested_embedding_trains_every_width_through_its_prefix() -> None:
    from matta_core.families.classifier.data import TrainingData
    from matta_core.families.classifier.trainer import train

    names = sorted({row["label"] for row in banking_rows()})[:5]
    rows = [row for row in banking_rows() if row["label"] in names]
    texts, labels = [r["text"] for r in rows], torch.tensor([names.index(r["label"]) for r in rows])
    data = TrainingData(HashedNgramFeaturizer(FEATURES).transform(texts), labels, None, num_classes=5)
    config = TrainConfig(arm="matta", steps=60, batch_size=32, lr=0.01, log_every=10, progress=False)
    model, result = train(CONFIG, data, config)
    assert result.history[-1]["student_supervised"] < result.history[0]["student_supervised"] / 2
    # The Student reads only the first 8 dims: the rest of every row learnt from the wider widths alone, so the
    # Student's outputs do not depend on them.
    batch = data.features.batch(torch.arange(16))
    with torch.inference_mode():
        before = model(batch, CONFIG.student_widths)
        model.embedding.weight[:, 8:] = 0.0
        assert torch.equal(model(batch, CONFIG.student_widths), before)


def test_the_run_config_blames_the_model_section_for_a_bad_nesting() -> None:
    from matta_core.config import ConfigError, PipelineConfig

    with pytest.raises(ConfigError) as caught:
        PipelineConfig.parse({"model": {"embed_dim": 64, "student_embed_dim": 96}})
    assert "  model: Value error, student_embed_dim must be in min_embed_dim..embed_dim (8..64), got 96" in str(
        caught.value)
    assert "widths" not in str(caught.value)
