"""Warm start (``model.init_from``): ordering, checks and copy on tiny models, then a production Student registered
as ``@champion`` in a real MLflow registry (sqlite) starting a real train step on Banking77 rows.

How the starting weights are observed: the train step's model comes from `ClassifierStep.build_model` (compared
here with a cold build under the same seed), and a whole train step run for one step at lr 1e-30 saves a nested
model whose weights are, to float32 precision, the ones it started from.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from matta_core import storage
from matta_core.artifacts.layout import NESTED_DIR, TRAIN_RESULT
from matta_core.config import DataSection, ModelSection, TeacherSection, TrainSection
from matta_core.config_base import ConfigError, load_section
from matta_core.families.classifier.compact import compact, seeded_rows
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.data import TrainingData
from matta_core.families.classifier.extract import extracted_config
from matta_core.families.classifier.extract_step import extract_step
from matta_core.families.classifier.family import FAMILY
from matta_core.families.classifier.model import NestedClassifier
from matta_core.families.classifier.model_io import load_nested
from matta_core.families.classifier.prepare_step import prepare_step
from matta_core.families.classifier.teacher_step import teacher_step
from matta_core.families.classifier.train_step import train_step
from matta_core.families.classifier.trainer import ClassifierStep
from matta_core.families.classifier.warm_start import (
    EMBEDDING,
    WarmStart,
    WarmStartError,
    WarmStartSource,
    check_compatible,
    embedding_rows,
    load_warm_start,
    order_by_importance,
    standalone_weights,
)
from matta_core.features import FeaturizerConfig, HashedNgramFeaturizer, inverse_document_frequency
from matta_core.release.registry import ensure_registered_model, register_version
from matta_core.release.step import train_init_from
from matta_core.serving.matta_text_classifier import WEIGHTS_FILE, ExtractedConfig, load_classifier
from matta_core.tracking import log_standalone_model, pipeline_run, resolve_tracking_uri, step_run
from matta_core.tracking.step_records import Tracking
from matta_core.training import TrainConfig
from matta_core.training.determinism import seed_everything
from tests.gcs_emulator import GCSEmulator, gcs_emulator  # noqa: F401  (registers the session fixture)
from tests.mirror import MIRROR_DIR
from tests.mlflow_server import clean_mlflow_state  # noqa: F401  (autouse: no tracking URI leaks in or out)
from tests.teachers.helpers import tiny_classifier
from tests.training.train_tiny import tiny_texts

LABELS = ("a", "b", "c", "d", "e")
BUCKETS = 2**10


def _saved(widths: tuple[int, ...], embed_dim: int = 8, dense: int = 0, seed: int = 0, **features: Any
           ) -> tuple[torch.nn.Module, ExtractedConfig]:
    """A standalone model with N(0, 0.5) weights (units differ in importance, logits stay near 1) and a non-trivial
    IDF."""
    torch.manual_seed(seed)
    config = ExtractedConfig(num_buckets=BUCKETS, embed_dim=embed_dim, hidden_widths=widths, num_classes=len(LABELS),
                             num_dense_features=dense, activation="relu",
                             features=FeaturizerConfig(num_buckets=BUCKETS, **features), labels=LABELS)
    model = config.build()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
        model.idf.uniform_(0.5, 2.0)
    return model.eval(), config


def _ta(**overrides: Any) -> ClassifierConfig:
    settings: dict[str, Any] = dict(num_classes=len(LABELS), hidden_widths=(24, 20), student_widths=(4, 4),
                                    embed_dim=8, min_width=2, features=FeaturizerConfig(num_buckets=BUCKETS))
    return ClassifierConfig(**{**settings, **overrides})


def _batch(featurizer_config: FeaturizerConfig, rows: int = 40) -> Any:
    features = HashedNgramFeaturizer(featurizer_config).transform(tiny_texts(rows)[0])
    return features.batch(torch.arange(len(features)))


def _logits(model: torch.nn.Module, batch: Any, dense: torch.Tensor | None = None) -> torch.Tensor:
    with torch.no_grad():
        return model(batch.ids, batch.offsets, batch.counts, dense)


def _warm(model: torch.nn.Module, config: ExtractedConfig, uri: str = "/champion") -> WarmStart:
    return WarmStart(WarmStartSource(uri), config, standalone_weights(model))


# ------------------------------------------------------------------------------------------------------ ordering


@pytest.mark.parametrize("dense", [0, 3])
def test_ordering_by_importance_keeps_the_function_and_puts_the_top_units_first(dense: int) -> None:
    model, config = _saved((12, 10), dense=dense)
    weights = standalone_weights(model)
    ordered = order_by_importance(weights, student_widths=(4, 4), student_embed_dims=3)

    for name in (EMBEDDING, "blocks.0.weight", "blocks.1.weight", "head.weight"):
        assert not torch.equal(ordered[name], weights[name]), f"{name} was not permuted"
    permuted = config.build({**ordered, "idf": model.idf.clone()})
    batch = _batch(config.features)
    extra = torch.randn(batch.batch_size, dense) if dense else None
    torch.testing.assert_close(_logits(permuted, batch, extra), _logits(model, batch, extra), atol=1e-5, rtol=0)

    # Most important first: unit j of layer i by |incoming row j| * |outgoing column j|, dims likewise.
    scores = ordered["blocks.0.weight"].norm(dim=1) * ordered["blocks.1.weight"].norm(dim=0)
    assert torch.all(scores[:-1] >= scores[1:])
    scores = ordered["blocks.1.weight"].norm(dim=1) * ordered["head.weight"].norm(dim=0)
    assert torch.all(scores[:-1] >= scores[1:])
    scores = ordered[EMBEDDING].norm(dim=0) * ordered["blocks.0.weight"][:, :8].norm(dim=0)
    assert torch.all(scores[:-1] >= scores[1:])


def test_a_student_sized_model_is_not_reordered() -> None:
    model, _ = _saved((4, 4))
    weights = standalone_weights(model)
    ordered = order_by_importance(weights, student_widths=(4, 4), student_embed_dims=8)
    assert all(torch.equal(ordered[name], weights[name]) for name in weights)


# -------------------------------------------------------------------------------------------------------- checks

CHECKS = {
    "features.num_buckets": dict(features=FeaturizerConfig(num_buckets=2 * BUCKETS)),
    "features.word_ngrams": dict(features=FeaturizerConfig(num_buckets=BUCKETS, word_ngrams=(1, 1))),
    "features.char_ngrams": dict(features=FeaturizerConfig(num_buckets=BUCKETS, char_ngrams=(2, 4))),
    "features.lowercase": dict(features=FeaturizerConfig(num_buckets=BUCKETS, lowercase=False)),
    "num_classes": dict(num_classes=6),
    "num_dense_features": dict(num_dense_features=2),
    "activation": dict(activation="gelu"),
    "hidden_widths:": dict(hidden_widths=(24,), student_widths=(4,)),
    "hidden_widths[1]": dict(hidden_widths=(24, 8)),
    "embed_dim": dict(embed_dim=6),
}


@pytest.mark.parametrize("field", list(CHECKS))
def test_each_refusal_names_init_from_the_field_and_what_is_allowed(field: str) -> None:
    _, saved = _saved((12, 10))
    with pytest.raises(WarmStartError) as caught:
        check_compatible(saved, _ta(**CHECKS[field]), LABELS, "models:/prod-xs@champion")
    message = str(caught.value)
    assert message.startswith("model.init_from 'models:/prod-xs@champion' cannot start this model")
    assert f"  {field}" in message and "allowed:" in message
    assert len(message.splitlines()) == 2  # that problem only


def test_labels_must_match_in_order_and_every_problem_is_listed() -> None:
    _, saved = _saved((12, 10))
    check_compatible(saved, _ta(), LABELS, "/champion")  # the same labels: fine
    with pytest.raises(WarmStartError, match=r"labels: 2 of 5 differ .*class 0: 'a' vs 'b', 1: 'b' vs 'a'"):
        check_compatible(saved, _ta(), ("b", "a", "c", "d", "e"), "/champion")
    with pytest.raises(WarmStartError) as caught:
        check_compatible(saved, _ta(activation="gelu", embed_dim=6), LABELS, "/champion")
    assert [line.split(":")[0].strip() for line in str(caught.value).splitlines()[1:]] == ["activation", "embed_dim"]


def test_nested_embedding_the_saved_dims_must_fit_what_the_ta_has() -> None:
    _, saved = _saved((12, 10), embed_dim=8)
    nested = _ta(embed_dim=16, student_embed_dim=4, min_embed_dim=2)
    check_compatible(saved, nested, LABELS, "/champion")  # 8 <= the TA's 16; the Student reads 4 of them
    with pytest.raises(WarmStartError, match=r"embed_dim: the saved model has 8 .* the TA reads 6"):
        check_compatible(saved, _ta(embed_dim=6, student_embed_dim=4, min_embed_dim=2), LABELS, "/champion")


def test_init_from_forms_are_checked_where_the_config_is_read() -> None:
    for good in ("models:/prod-xs@champion", "models:/prod-xs/3", "/models/student", "gs://bucket/student"):
        assert ModelSection(init_from=good).classifier_config(2).init_from == good
    for bad, said in (("models:/prod-xs", "is not a registered model version"),
                      ("models:/prod-xs/latest", "is not a registered model version"),
                      ("s3://bucket/student", "scheme 's3' is not supported"), (" /x", "surrounding spaces")):
        with pytest.raises(ConfigError, match=rf"model\.init_from: .*{said}.*allowed: models:/<name>@<alias>"):
            load_section(ModelSection, json.dumps({"init_from": bad}), "model")
    # Unset, nothing changes: the saved nested config has no init_from key at all.
    assert "init_from" not in ModelSection().classifier_config(2).to_dict()


# ---------------------------------------------------------------------------------------------------------- copy


def test_copy_puts_a_student_sized_champion_in_the_student_slice_and_leaves_the_rest_random() -> None:
    champion, config = _saved((4, 4))
    ta = _ta()
    torch.manual_seed(7)
    cold = NestedClassifier(ta)
    torch.manual_seed(7)
    warm = NestedClassifier(ta)
    _warm(champion, config).apply(warm)

    state = champion.state_dict()
    pairs = [(warm.embedding.weight[:, :8], state[EMBEDDING]),
             (warm.blocks[0].weight[:4, :8], state["blocks.0.weight"]),
             (warm.blocks[0].bias[:4], state["blocks.0.bias"]),
             (warm.blocks[1].weight[:4, :4], state["blocks.1.weight"]),
             (warm.blocks[1].bias[:4], state["blocks.1.bias"]),
             (warm.head.weight[:, :4], state["head.weight"]), (warm.head.bias, state["head.bias"])]
    for got, want in pairs:
        assert torch.equal(got, want)
    # Outside the slice: the random initialisation, untouched; the IDF: not the champion's.
    assert torch.equal(warm.blocks[0].weight[4:], cold.blocks[0].weight[4:])
    assert torch.equal(warm.blocks[1].weight[:, 4:], cold.blocks[1].weight[:, 4:])
    assert torch.equal(warm.head.weight[:, 4:], cold.head.weight[:, 4:])
    assert torch.equal(warm.idf, cold.idf)
    # So the Student of the nested model predicts what the champion predicts (with the champion's IDF).
    warm.set_idf(champion.idf)
    batch = _batch(ta.features)
    with torch.no_grad():
        torch.testing.assert_close(warm(batch, (4, 4)), _logits(champion, batch), atol=1e-5, rtol=0)


def test_a_wider_champion_is_ordered_then_copied_and_runs_as_itself_in_the_nested_model() -> None:
    champion, config = _saved((12, 10))
    warm = NestedClassifier(_ta())
    _warm(champion, config).apply(warm)
    ordered = order_by_importance(standalone_weights(champion), (4, 4), 8)
    assert torch.equal(warm.blocks[0].weight[:12, :8], ordered["blocks.0.weight"])
    assert torch.equal(warm.blocks[1].weight[:10, :12], ordered["blocks.1.weight"])
    assert torch.equal(warm.head.weight[:, :10], ordered["head.weight"])
    warm.set_idf(champion.idf)
    batch = _batch(config.features)
    with torch.no_grad():  # the copy preserves the champion's function at its own widths
        torch.testing.assert_close(warm(batch, (12, 10)), _logits(champion, batch), atol=1e-5, rtol=0)


def test_a_champion_with_more_dims_than_the_nested_student_gives_it_the_most_important_ones() -> None:
    champion, config = _saved((12, 10), embed_dim=8)
    ta = _ta(embed_dim=16, student_embed_dim=4, min_embed_dim=2)
    warm = NestedClassifier(ta)
    _warm(champion, config).apply(warm)
    ordered = order_by_importance(standalone_weights(champion), (4, 4), ta.embed_dim_for((4, 4)))
    assert not torch.equal(ordered[EMBEDDING], standalone_weights(champion)[EMBEDDING])
    assert torch.equal(warm.embedding.weight[:, :8], ordered[EMBEDDING])
    assert torch.equal(warm.blocks[0].weight[:12, :8], ordered["blocks.0.weight"])


def test_a_compact_champion_is_decoded_in_one_place_and_lands_on_its_buckets() -> None:
    full, config = _saved((4, 4))
    full.idf.fill_(2.0)  # IDF fitted on a training split: every bucket it never saw has the same one
    keep = np.array([3, 17, 200, 1000])
    served, _ = compact(full, config, dtype="int8", keep_buckets=keep)
    warm = NestedClassifier(_ta())
    cold = {name: tensor.clone() for name, tensor in warm.state_dict().items()}
    _warm(served, config).apply(warm)

    state = served.state_dict()
    decoded = state["embedding.rows"].float() * state["embedding.scale"][:, None]
    torch.testing.assert_close(decoded, full.embedding.weight[keep], atol=0.5 / 127 * 2, rtol=0)  # int8 rounding
    assert torch.equal(warm.embedding.weight[keep, :8], decoded)
    others = torch.ones(BUCKETS, dtype=torch.bool)
    others[keep] = False
    assert torch.equal(warm.embedding.weight[others], cold[EMBEDDING][others])  # untrained rows: the nested model's
    assert torch.equal(warm.blocks[0].weight[:4, :8], full.blocks[0].weight)


def test_an_embedding_in_no_known_form_is_refused_by_the_one_reader() -> None:
    with pytest.raises(WarmStartError, match=r"embedding holds \['embedding.codes'\]; a warm start reads a float "
                                             r"table \(embedding.weight\) or compact rows"):
        embedding_rows({"embedding.codes": torch.zeros(4, 2, dtype=torch.uint8), "head.bias": torch.zeros(2)})


# --------------------------------------------------------------------------------------------------- folders


def test_folders_local_and_missing(tmp_path: Path) -> None:
    champion, config = _saved((4, 4))
    from matta_core.families.classifier.extract import save_extracted

    folder = save_extracted(champion, config, tmp_path / "student")
    warm = load_warm_start(str(folder))
    assert warm.source.to_dict() == {
        "uri": str(folder), "registered_model": None, "alias": None, "version": None, "source_run_id": None,
        "pipeline_run_id": None, "weights_sha256": hashlib.sha256((folder / WEIGHTS_FILE).read_bytes()).hexdigest(),
        "pinned_uri": str(folder)}
    assert all(torch.equal(warm.weights[k], v) for k, v in standalone_weights(champion).items())
    with pytest.raises(WarmStartError, match=rf"model.init_from '{tmp_path}/nothing': no such folder"):
        load_warm_start(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WarmStartError, match=rf"model.init_from '{tmp_path}/empty': .*config.json is missing"):
        load_warm_start(str(tmp_path / "empty"))


def test_a_gs_folder_is_read_through_the_storage_layer(tmp_path: Path, gcs_emulator: GCSEmulator) -> None:  # noqa: F811
    champion, config = _saved((4, 4))
    from matta_core.families.classifier.extract import save_extracted

    folder = save_extracted(champion, config, tmp_path / "student")
    root = gcs_emulator.make_bucket(f"warm-start-{uuid.uuid4().hex[:12]}")
    for name in ("config.json", WEIGHTS_FILE):
        storage.upload_file(folder / name, storage.join(root, "student", name))
    warm = load_warm_start(storage.join(root, "student"))
    assert all(torch.equal(warm.weights[k], v) for k, v in standalone_weights(champion).items())
    assert warm.config == load_classifier(folder)[1]
    with pytest.raises(WarmStartError, match=rf"model.init_from '{root}/gone': {root}/gone/config.json is missing"):
        load_warm_start(storage.join(root, "gone"))


# ------------------------------------------------------------------------------------ the registry, end to end

DATA = DataSection(mirror_dir=str(MIRROR_DIR), limit_train_rows=400, limit_test_rows=100)
FEATURES = dict(num_buckets=2**12, embed_dim=16)
PRODUCTION = ModelSection(hidden_widths=[32], student_widths=[8], min_width=4, **FEATURES)  # what made the champion
WARM_TA = ModelSection(hidden_widths=[64], student_widths=[8], min_width=4, **FEATURES)  # the new, wider TA
NAME = "prod-xs"
PRODUCTION_RUN = "production-run-1"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Banking77 rows prepared with their Teacher outputs; a production Student (trained, extracted, logged as the
    release step logs it) registered as NAME v1 @champion in a sqlite store."""
    root = tmp_path_factory.mktemp("warm-start")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # nothing MLflow writes by default lands in the repository
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        return _production_champion(root)


def _production_champion(root: Path) -> dict[str, Any]:
    prepared, teacher = str(root / "prepared"), str(root / "teacher")
    prepare_step(DATA, prepared)
    tiny_classifier(num_classes=77).save(str(root / "teacher-model"))
    teacher_step(prepared, teacher, TeacherSection(spec={"kind": "safetensors", "path": str(root / "teacher-model")}),
                 DATA, cache_dir=str(root / "cache"), progress=False)
    train_step(prepared, teacher, str(root / "production"), PRODUCTION,
               TrainSection(steps=30, batch_size=32, lr=1e-2, num_threads=1, baselines=[]), DATA, progress=False)
    student = root / "student-8"
    extract_step(str(root / "production"), [8], str(student), prepared, DATA)

    uri = resolve_tracking_uri(None, output_dir=root)
    client = MlflowClient(uri)
    with pipeline_run(uri, "warm-start", "production") as parent, \
            step_run(parent.run_id, "release", tracking_uri=uri) as release:
        model_uri = log_standalone_model(student, "xs-student-8", input_example_texts=["card arrival"])
    ensure_registered_model(client, NAME)
    version = register_version(client, NAME, model_uri, PRODUCTION_RUN, {}, run_id=release.run_id).version
    client.set_registered_model_alias(NAME, "champion", version)
    mlflow.set_tracking_uri(None)
    return {"root": root, "prepared": prepared, "teacher": teacher, "uri": uri, "student": student,
            "version": version, "release_run_id": release.run_id}


def _one_step(**overrides: Any) -> TrainSection:
    # lr 1e-30: Adam moves every weight by at most 1e-30, below float32 precision for any non-zero weight, so the
    # saved nested model holds the weights training started from.
    return TrainSection(**{"steps": 1, "batch_size": 32, "lr": 1e-30, "num_threads": 1, "baselines": [],
                           **overrides})


def _served(student: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The production Student as it serves: its layers, and its embedding rows decoded (int8 values times their row
    scales: the extract step's default form) with the bucket of each kept row."""
    state = load_classifier(student)[0].state_dict()
    assert state["embedding.rows"].dtype == torch.int8  # the compact form production serves, not a float table
    rows = state["embedding.rows"].float() * state["embedding.scale"][:, None]
    layers = {name: state[name] for name in ("blocks.0.weight", "blocks.0.bias", "head.weight", "head.bias")}
    return {EMBEDDING: rows, **layers}, state["embedding.buckets"].long()


def _student_slice(model: NestedClassifier, buckets: torch.Tensor, dims: int, width: int) -> dict[str, torch.Tensor]:
    """Where a warm start puts a `width`-wide, `dims`-dim one-layer model: its kept buckets' rows, layers' prefixes."""
    return {EMBEDDING: model.embedding.weight[buckets, :dims],
            "blocks.0.weight": model.blocks[0].weight[:width, :dims], "blocks.0.bias": model.blocks[0].bias[:width],
            "head.weight": model.head.weight[:, :width], "head.bias": model.head.bias}


def test_training_from_champion_starts_the_student_slice_at_its_weights_and_records_the_version(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    uri, out = registry["uri"], tmp_path / "trained"
    model = WARM_TA.model_copy(update={"init_from": f"models:/{NAME}@champion"})
    with pipeline_run(uri, "warm-start", "warm") as parent:
        FAMILY.train(registry["prepared"], registry["teacher"], str(out), model, _one_step(), DATA,
                     Tracking(uri, parent.run_id))

    served, buckets = _served(registry["student"])
    nested = load_nested(out / NESTED_DIR)
    for name, weights in _student_slice(nested, buckets, 16, 8).items():
        # Equal but for the one step's ~1e-30 moves, which only a weight of exactly 0 shows (int8 rows hold many).
        torch.testing.assert_close(weights.detach(), served[name], atol=1e-29, rtol=0, msg=name)

    # Lineage: the version the alias named, its run, its pipeline run and its weights, in the train result ...
    pinned = f"models:/{NAME}/{registry['version']}"
    recorded = json.loads((out / TRAIN_RESULT).read_text())["init_from"]
    assert recorded == {
        "uri": f"models:/{NAME}@champion", "registered_model": NAME, "alias": "champion",
        "version": registry["version"], "source_run_id": registry["release_run_id"], "pipeline_run_id": PRODUCTION_RUN,
        "weights_sha256": hashlib.sha256((registry["student"] / WEIGHTS_FILE).read_bytes()).hexdigest(),
        "pinned_uri": pinned,
    }
    assert json.loads((out / NESTED_DIR / "model_config.json").read_text())["init_from"] == pinned
    # ... and on the train run, where the release step finds it.
    client = MlflowClient(uri)
    assert train_init_from(client, parent.run_id) == recorded
    train_run = client.search_runs([client.get_run(parent.run_id).info.experiment_id],
                                   f"tags.`mlflow.parentRunId` = '{parent.run_id}'")[0]
    assert train_run.data.params["model.init_from"] == f"models:/{NAME}@champion"
    assert train_run.data.params["init_from.version"] == registry["version"]

    # The rows the champion brought are kept when this run's widths are extracted (they hold trained values).
    _, seeded = seeded_rows(out)
    np.testing.assert_array_equal(seeded, torch.unique(buckets).numpy())
    extract_step(str(out), [8], str(tmp_path / "extracted"), registry["prepared"], DATA)
    kept = load_classifier(tmp_path / "extracted")[0].embedding.buckets.numpy()
    assert set(seeded) <= set(kept)


def test_the_train_steps_starting_model_is_the_cold_one_with_the_champion_in_its_student_slice(
    registry: dict[str, Any]
) -> None:
    # What the train step trains from: ClassifierStep.build_model, with and without the warm start, same seed.
    warm_start = load_warm_start(f"models:/{NAME}/{registry['version']}", registry["uri"])
    assert warm_start.source.alias is None and warm_start.source.pinned_uri == f"models:/{NAME}/1"
    config = WARM_TA.classifier_config(num_classes=77)
    texts, labels = tiny_texts(200)
    features = HashedNgramFeaturizer(config.features).transform(texts)
    data = TrainingData(features, torch.as_tensor(labels.copy()), None, num_classes=77)
    idf = inverse_document_frequency(features, config.features.num_buckets)
    train_config = TrainConfig(steps=1, progress=False)

    def build(warm: WarmStart | None) -> NestedClassifier:
        seed_everything(0)
        return ClassifierStep(config, train_config, data, idf=idf, warm_start=warm).build_model()

    cold, warm = build(None), build(warm_start)
    # The cold model with the served champion written into its Student slice, and nothing else changed.
    served, buckets = _served(registry["student"])
    expected = {name: tensor.clone() for name, tensor in cold.state_dict().items()}
    with torch.no_grad():
        expected[EMBEDDING][buckets, :16] = served[EMBEDDING]
        expected["blocks.0.weight"][:8, :16] = served["blocks.0.weight"]
        expected["blocks.0.bias"][:8] = served["blocks.0.bias"]
        expected["head.weight"][:, :8] = served["head.weight"]
        expected["head.bias"][:] = served["head.bias"]
    for name, tensor in warm.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    assert len(buckets) < config.features.num_buckets  # so some rows kept the cold model's random values
    np.testing.assert_array_equal(warm.idf.numpy(), np.asarray(idf, dtype=np.float32))  # the new data's IDF
    with pytest.raises(ValueError, match="arm 'kd' is an equal-budget baseline"):
        ClassifierStep(config, TrainConfig(arm="kd", steps=1), data, warm_start=warm_start)


def test_registry_refusals_name_the_uri(registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    uri = registry["uri"]
    with pytest.raises(WarmStartError, match=rf"models:/{NAME}@nosuch': registered model '{NAME}' has no alias "
                                             r"@nosuch \(its aliases: @champion \(v1\)\)"):
        load_warm_start(f"models:/{NAME}@nosuch", uri)
    with pytest.raises(WarmStartError, match=r"'models:/prod-s@champion': registered model 'prod-s' does not exist"):
        load_warm_start("models:/prod-s@champion", uri)
    with pytest.raises(WarmStartError, match=rf"'models:/{NAME}/7': registered model '{NAME}' has no version '7'"):
        load_warm_start(f"models:/{NAME}/7", uri)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(WarmStartError, match="names a registered model, but no MLflow tracking store is configured"):
        load_warm_start(f"models:/{NAME}@champion", None)


def test_an_incompatible_champion_is_refused_before_anything_trains(registry: dict[str, Any], tmp_path: Path) -> None:
    narrow = WARM_TA.model_copy(update={"init_from": f"models:/{NAME}@champion", "hidden_widths": [6],
                                        "student_widths": [4]})
    other_buckets = WARM_TA.model_copy(update={"init_from": f"models:/{NAME}@champion", "num_buckets": 2**11})
    for model, said in ((narrow, r"hidden_widths\[0\]: the saved model's layer 0 is 8 wide, the TA's "
                                 r"\(model.hidden_widths\[0\]\) 6; allowed: at most 6"),
                        (other_buckets, r"features.num_buckets: the saved model has 4096, this run 2048")):
        with pytest.raises(WarmStartError, match=said):
            train_step(registry["prepared"], registry["teacher"], str(tmp_path / "refused"), model, _one_step(),
                       DATA, progress=False, tracking_uri=registry["uri"])
        assert not (tmp_path / "refused" / NESTED_DIR).exists()


def test_an_extracted_config_round_trips_what_the_checks_read() -> None:
    # The checks read the saved config the extract step writes: the same fields, the same values.
    config = WARM_TA.classifier_config(num_classes=77)
    saved = extracted_config(config, (8,), tuple(str(i) for i in range(77)))
    check_compatible(saved, config, saved.labels, "/champion")
