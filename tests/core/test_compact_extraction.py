"""Compact extraction: trained rows only, int8 or float16 rows, saved as format v2 and served by the same file.

What must hold: dropping untrained rows changes nothing for text whose n-grams were all trained; int8 stays within
its rounding; a saved compact model reloads bit for bit and serves through `TextPredictor`; the extract step
measures and records the cost; inconsistent files and configs are refused by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from matta_core.config import DataSection, ModelSection, PipelineConfig, TrainSection
from matta_core.families.classifier.compact import (
    compact,
    quantize_rows,
    save_seeded_rows,
    seeded_rows,
    trained_buckets,
)
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.extract import extract, extracted_config, load_extracted, save_extracted
from matta_core.families.classifier.extract_step import extract_step
from matta_core.families.classifier.inputs import load_inputs
from matta_core.families.classifier.model import NestedClassifier
from matta_core.families.classifier.prepare_step import prepare_step
from matta_core.families.classifier.train_step import train_step
from matta_core.features import HashedNgramFeaturizer
from matta_core.sections import ExtractionSection
from matta_core.serving.matta_text_classifier import FORMAT, FORMAT_COMPACT, TextPredictor, load_classifier
from pipelines.matta_pipeline import pipeline_arguments
from tests.data.helpers import banking_rows, write_csv

TEXTS = [row["text"] for row in banking_rows()[:400]]


def _model(embed_dim: int = 8) -> tuple[NestedClassifier, ClassifierConfig]:
    torch.manual_seed(0)
    config = ClassifierConfig(num_classes=5, hidden_widths=(16,), student_widths=(8,), embed_dim=embed_dim,
                              features={"num_buckets": 2**12})
    nested = NestedClassifier(config)
    idf = torch.rand(2**12) + 1.0
    trained = torch.as_tensor(trained_buckets(tuple(TEXTS[:200]), config.features))
    untrained = torch.ones(2**12, dtype=torch.bool)
    untrained[trained] = False
    idf[untrained] = 7.5  # as the IDF fit gives every bucket no training text hashed into: one, largest, value
    nested.set_idf(idf)
    return nested, config


def _logits(model: torch.nn.Module, texts: list[str], config: ClassifierConfig) -> torch.Tensor:
    indptr, indices, counts = HashedNgramFeaturizer(config.features).csr(texts)
    with torch.inference_mode():
        return model(torch.from_numpy(indices), torch.from_numpy(indptr[:-1]), torch.from_numpy(counts))


def test_int8_rows_round_within_half_a_step_and_zero_rows_survive() -> None:
    rows = torch.randn(50, 12) * torch.linspace(0.01, 3.0, 50)[:, None]
    rows[7] = 0.0
    values, scale = quantize_rows(rows)
    assert values.dtype == torch.int8 and int(values.abs().max()) <= 127
    assert torch.all(scale > 0) and scale[7] == 1.0 and torch.all(values[7] == 0)
    error = (values.float() * scale[:, None] - rows).abs()
    assert torch.all(error <= scale[:, None] / 2 + 1e-7)


def test_dropping_untrained_rows_changes_nothing_for_trained_text_and_zeroes_the_rest() -> None:
    nested, config = _model()
    full = extract(nested, (8,))
    keep = trained_buckets(tuple(TEXTS[:200]), config.features)
    served, served_config = compact(full, extracted_config(config, (8,)), dtype="float32", keep_buckets=keep)
    assert served_config.embedding_rows == "trained" and len(served.embedding.rows) == len(keep) < 2**12
    # Every n-gram of a training text has its row: the logits are the full model's.
    torch.testing.assert_close(_logits(served, TEXTS[:200], config), _logits(full, TEXTS[:200], config),
                               rtol=0, atol=1e-6)
    # Unseen text: as if the untrained rows were zero (their IDF still counts in each example's norm).
    zeroed = extract(nested, (8,))
    mask = torch.zeros(2**12, dtype=torch.bool)
    mask[torch.as_tensor(keep)] = True
    with torch.no_grad():
        zeroed.embedding.weight[~mask] = 0.0
    unseen = TEXTS[200:]
    torch.testing.assert_close(_logits(served, unseen, config), _logits(zeroed, unseen, config), rtol=0, atol=1e-5)
    assert not torch.allclose(_logits(served, unseen, config), _logits(full, unseen, config), atol=1e-4)


@pytest.mark.parametrize("dtype", ["int8", "float16"])
def test_a_compact_model_saves_as_v2_reloads_exactly_and_serves(tmp_path: Path, dtype: str) -> None:
    nested, config = _model(embed_dim=16)
    full = extract(nested, (8,))
    keep = trained_buckets(tuple(TEXTS[:200]), config.features)
    served, served_config = compact(full, extracted_config(config, (8,), labels=tuple("abcde")), dtype=dtype,
                                    keep_buckets=keep)
    np.testing.assert_allclose(_logits(served, TEXTS[:200], config), _logits(full, TEXTS[:200], config),
                               atol=0.05 if dtype == "int8" else 0.01)
    save_extracted(served, served_config, tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["format"] == FORMAT_COMPACT
    stored = load_file(str(tmp_path / "model" / "model.safetensors"))
    assert stored["embedding.rows"].dtype == {"int8": torch.int8, "float16": torch.float16}[dtype]
    assert stored["embedding.buckets"].dtype == torch.int32 and "idf" not in stored
    reloaded, reloaded_config = load_classifier(tmp_path / "model")
    assert reloaded_config == served_config
    torch.testing.assert_close(_logits(reloaded, TEXTS, config), _logits(served, TEXTS, config), rtol=0, atol=0)
    predictor = TextPredictor(tmp_path / "model")
    np.testing.assert_allclose(predictor.logits(TEXTS[:20]), _logits(served, TEXTS[:20], config).numpy(), atol=1e-6)
    # Much smaller than the float32 table of every bucket.
    save_extracted(full, extracted_config(config, (8,)), tmp_path / "full")
    assert (tmp_path / "model" / "model.safetensors").stat().st_size * 3 < \
        (tmp_path / "full" / "model.safetensors").stat().st_size


def test_inconsistent_compact_files_and_configs_are_refused_by_name(tmp_path: Path) -> None:
    nested, config = _model()
    full = extract(nested, (8,))
    keep = trained_buckets(tuple(TEXTS[:200]), config.features)
    served, served_config = compact(full, extracted_config(config, (8,)), dtype="int8", keep_buckets=keep)
    save_extracted(served, served_config, tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    state = load_file(str(weights))
    state["embedding.buckets"] = state["embedding.buckets"].flip(0).contiguous()
    save_file(state, str(weights))
    with pytest.raises(ValueError, match=r"model.safetensors does not match .*config.json: .*not sorted and "
                                         r"distinct"):
        load_classifier(tmp_path / "model")
    # A v1 reader's format string on a compact model is refused, not half-loaded.
    with pytest.raises(ValueError, match="embedding_dtype must be one of"):
        extracted_config(config, (8,)).from_dict({**served_config.to_dict(), "embedding_dtype": "int4"})
    # Rows cannot be dropped when the dropped buckets disagree on their IDF (IDF not fitted on training alone).
    nested.idf[0:4] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="drop_untrained_rows: false"):
        compact(extract(nested, (8,)), extracted_config(config, (8,)), dtype="int8",
                keep_buckets=np.array([10, 11]))


def test_the_extract_step_stores_trained_int8_rows_and_records_what_it_cost(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "intents.csv", banking_rows()[::10][:900])
    data = DataSection(source=str(path))
    prepared, trained = str(tmp_path / "prepared"), str(tmp_path / "trained")
    prepare_step(data, prepared)
    model = ModelSection(hidden_widths=[64], student_widths=[16], embed_dim=16, num_buckets=2**14)
    train_step(prepared, None, trained, model, TrainSection(epochs=3, batch_size=64, baselines=[], num_threads=1),
               data, progress=False)

    result = extract_step(trained, [16], str(tmp_path / "compact"), prepared, data)  # the section's defaults
    served, config = load_extracted(tmp_path / "compact")
    train_texts = load_inputs(prepared, data).splits["train"].texts
    expected_rows = np.unique(HashedNgramFeaturizer(config.features).csr(train_texts)[1])
    assert (config.embedding_dtype, config.embedding_rows) == ("int8", "trained")
    np.testing.assert_array_equal(served.embedding.buckets.numpy(), expected_rows)
    cost = config.metadata["compression"]
    assert cost == result["compression"]
    assert cost["rows_kept"] == len(expected_rows) and cost["rows_of"] == 2**14
    assert cost["validation_rows"] > 0 and abs(cost["validation_accuracy_served"]
                                                - cost["validation_accuracy_float32"]) <= 0.05
    assert 0 < cost["max_abs_logit_change"] < 1.0

    as_trained = ExtractionSection(embedding_dtype="float32", drop_untrained_rows=False)
    extract_step(trained, [16], str(tmp_path / "full"), prepared, data, as_trained)
    _, full_config = load_extracted(tmp_path / "full")
    assert json.loads((tmp_path / "full" / "config.json").read_text())["format"] == FORMAT
    assert full_config.metadata["compression"] == {"embedding_dtype": "float32", "embedding_rows": "all"}
    assert (tmp_path / "compact" / "model.safetensors").stat().st_size * 4 < \
        (tmp_path / "full" / "model.safetensors").stat().st_size


def test_rows_a_warm_start_brought_are_recorded_for_extraction(tmp_path: Path) -> None:
    assert seeded_rows(tmp_path) == (False, pytest.approx(np.zeros(0)))  # no warm start: nothing extra to keep
    save_seeded_rows(tmp_path, torch.tensor([9, 3, 700]))
    every, rows = seeded_rows(tmp_path)
    assert not every and rows.tolist() == [9, 3, 700]
    save_seeded_rows(tmp_path, None)  # a champion that saved its whole table: every row may hold trained values
    assert seeded_rows(tmp_path)[0] is True


def test_the_extraction_section_travels_to_the_pipeline_and_only_a_classifier_takes_it() -> None:
    config = PipelineConfig.model_validate({"extraction": {"embedding_dtype": "float16"}})
    assert json.loads(pipeline_arguments(config)["extraction_json"]) == {"embedding_dtype": "float16",
                                                                        "drop_untrained_rows": True}
    with pytest.raises(ValueError, match=r"extraction\.embedding_dtype"):
        PipelineConfig.model_validate({"extraction": {"embedding_dtype": "int4"}})
    with pytest.raises(ValueError, match=r"task 'causal_lm' writes its extracted models as trained: remove the "
                                         r"extraction section \(it sets \['drop_untrained_rows'\]\)"):
        PipelineConfig.model_validate({"task": "causal_lm", "data": {"source": "wiki_sents"},
                                       "extraction": {"drop_untrained_rows": False}})
