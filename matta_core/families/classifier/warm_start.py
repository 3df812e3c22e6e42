"""Warm start (``model.init_from``): the nested classifier's prefix slice starts from a saved standalone model.

The MatTA paper derives the TA from the production Student: training starts where production is, and the TA grows
around it. Four steps, one function each, all plain PyTorch but the first:

1. resolve (`load_warm_start`): ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` through the MLflow
   registry of the step's tracking store (an alias is read once and pinned to its version; the version's logged
   pyfunc holds the standalone folder as its ``model_dir`` artifact, see `matta_core.tracking.models`), or a folder
   holding ``config.json`` + ``model.safetensors``, a path or a ``gs://`` URI (read through `matta_core.storage`);
2. check (`check_compatible`): the same featuriser, labels, dense columns, activation and number of hidden layers,
   and a model that fits inside the TA; each refusal names ``model.init_from``, the field and what is allowed;
3. order (`order_by_importance`): where the saved model is wider than the Student slice (a layer's units, or its
   embedding dims), those are permuted, most important first, so the Student prefix receives the ones that matter
   most. A hidden unit's importance is the norm of its incoming weights times that of its outgoing weights; an
   embedding dim's, the norm of its table column times that of its first-layer input column. Permuting hidden units
   (or embedding dims, table and first layer together) leaves the model's function unchanged;
4. copy (`copy_into`): embedding columns ``[:, :d]``, block i ``weight[:w_i, :in_i]`` and ``bias[:w_i]``, head
   ``weight[:, :in_last]`` and bias. The rest of the TA keeps its random initialisation. A saved model served
   compactly (int8 or float16 rows, untrained rows dropped: the extract step's default) is decoded in one place,
   `embedding_rows`: the slice starts at the values production served, and dropped rows stay random.

The IDF buffer is not copied; it stays the one fitted on this run's training split. IDF is a statistic of the data,
not a learnt weight: every model cut from this run carries it into serving, so it must describe the data this run
trains and is evaluated on (the data content hash in its lineage), not the champion's older data. The champion's
rows keep their meaning under the new IDF: pooling L2-normalises the per-example weights, so a change in IDF
shifts how much each row counts, and training adjusts to that from the first steps.

Only the ``matta`` arm is warm-started; the equal-budget baselines start from random weights as before.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from matta_core import storage
from matta_core.families.classifier.config import ClassifierConfig
from matta_core.families.classifier.model import NestedClassifier
from matta_core.families.classifier.section import INIT_FROM_FORMS, InitFrom, parse_init_from
from matta_core.nested.linear import NestedLinear
from matta_core.serving.matta_text_classifier import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    ExtractedConfig,
    StandaloneClassifier,
    load_classifier,
)

#: A standalone model's float tensors by state-dict name: ``embedding.weight`` (its rows, decoded to float32 by
#: `embedding_rows`), ``blocks.<i>.weight`` / ``.bias``, ``head.weight`` / ``.bias``, and ``embedding.buckets``
#: (int64) when the saved table kept only some buckets' rows: the bucket of each row. No IDF: see the module docstring.
Weights = dict[str, torch.Tensor]
EMBEDDING = "embedding.weight"
BUCKETS = "embedding.buckets"
HEAD_WEIGHT = "head.weight"
HEAD_BIAS = "head.bias"


class WarmStartError(ValueError):
    """A ``model.init_from`` that cannot start this run; the message names it, the field and what is allowed."""


@dataclass(frozen=True)
class WarmStartSource:
    """Where the starting weights came from: the train step's lineage (``train_result.json`` ``init_from``, and the
    ``init_from.*`` params of its MLflow run). Registry fields are None for a folder."""

    uri: str
    registered_model: str | None = None
    alias: str | None = None
    version: str | None = None
    # The MLflow run the version was created from, and the pipeline run that produced it (its registry tag).
    source_run_id: str | None = None
    pipeline_run_id: str | None = None
    weights_sha256: str | None = None

    @property
    def pinned_uri(self) -> str:
        """``models:/<name>/<version>`` for a registered model (an alias moves, a version does not); else `uri`."""
        return f"models:/{self.registered_model}/{self.version}" if self.registered_model else self.uri

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pinned_uri": self.pinned_uri}


@dataclass(frozen=True)
class WarmStart:
    """A resolved ``model.init_from``: its source, its saved config and its weights (float32, on the CPU)."""

    source: WarmStartSource
    config: ExtractedConfig
    weights: Weights

    def check(self, ta: ClassifierConfig, label_names: Sequence[str] | None = None) -> None:
        """Refuse (WarmStartError) a saved model that cannot start the nested model of `ta` (see `check_compatible`)."""
        check_compatible(self.config, ta, label_names, self.source.uri)

    def seeded_buckets(self) -> torch.Tensor | None:
        """The buckets whose rows the saved model trained (sorted), or None when it saved every row (its table
        does not say which were trained): extraction keeps these rows too (`compact.trained_buckets`)."""
        buckets = self.weights.get(BUCKETS)
        return None if buckets is None else torch.unique(buckets)

    def apply(self, model: NestedClassifier) -> None:
        """Copy the saved weights into `model`'s prefix slice, ordered by importance where its Student is narrower."""
        config = model.config
        self.check(config)
        student_dims = config.embed_dim_for(config.student_widths)
        copy_into(model, order_by_importance(self.weights, config.student_widths, student_dims))


# --------------------------------------------------------------------------------------------------------- resolve


def load_warm_start(init_from: str, tracking_uri: str | None = None, *, alias_version: str = "") -> WarmStart:
    """Resolve ``model.init_from`` and load the saved model it names (see the module docstring for the forms).

    `tracking_uri`: the step's tracking store (default ``MLFLOW_TRACKING_URI``), needed for ``models:/`` URIs.
    `alias_version`: for ``models:/<name>@<alias>``, the version the alias named when the pipeline run started
    (`pin_init_from`, read by its first task): that version is loaded, and recorded with the alias, even if the
    alias has moved since. Every refusal (an unknown registered model, alias or version, a missing folder or file)
    is a WarmStartError naming `init_from`.
    """
    parsed = _parse(init_from)
    with tempfile.TemporaryDirectory(prefix="matta-init-from-") as tmp:
        if parsed.registered:
            folder, source = _from_registry(parsed, tracking_uri, Path(tmp), alias_version)
        else:
            folder, source = _from_folder(parsed, Path(tmp)), WarmStartSource(init_from)
        try:
            model, config = load_classifier(folder)
        except (FileNotFoundError, KeyError, ValueError, RuntimeError) as error:
            raise WarmStartError(f"model.init_from {init_from!r}: {error}; allowed: {INIT_FROM_FORMS}") from None
        with (folder / WEIGHTS_FILE).open("rb") as weights_file:
            digest = hashlib.file_digest(weights_file, "sha256").hexdigest()
        try:
            weights = standalone_weights(model)  # copies: nothing points into the folder about to be removed
        except WarmStartError as error:
            raise WarmStartError(f"model.init_from {init_from!r}: {error}") from None
    return WarmStart(replace(source, weights_sha256=digest), config, weights)


def pin_init_from(init_from: str, tracking_uri: str | None = None) -> str:
    """What ``model.init_from`` names NOW, for a pipeline run's first task to pass on as the train task's cache key:
    the version an alias names (``"3"``), or the sha256 of a folder's config and weights (``"sha256:..."``);
    ``""`` for a version named by number (the URI pins it) and when no tracking store is configured (the train
    step then refuses the URI itself). An alias moves and a folder can be overwritten: a cached training that
    started from other weights must not be reused (KFP keys its cache on a task's inputs, and the URI in the model
    section stays the same)."""
    parsed = _parse(init_from)
    if not parsed.registered:
        uri = parsed.uri
        parts = [f"{name}:{storage.sha256(storage.join(uri, name))}" for name in (CONFIG_FILE, WEIGHTS_FILE)
                 if storage.exists(storage.join(uri, name))]
        return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""
    if parsed.alias is None:
        return ""
    from matta_core.tracking.uri import configured_tracking_uri

    if not configured_tracking_uri(tracking_uri):
        return ""
    return _registry_version(parsed, tracking_uri)[2]


def _parse(init_from: str) -> InitFrom:
    try:
        return parse_init_from(init_from)
    except ValueError as error:
        raise WarmStartError(f"model.{error}") from None


def _from_folder(parsed: InitFrom, into: Path) -> Path:
    """The saved model's local folder: the folder itself, or a ``gs://`` folder's two files copied into `into`."""
    uri = parsed.uri
    if storage.is_local(uri):
        folder = Path(storage.to_local_path(uri))
        if not folder.is_dir():
            raise WarmStartError(f"model.init_from {uri!r}: no such folder; allowed: {INIT_FROM_FORMS}")
        return folder
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        source = storage.join(uri, name)
        try:
            storage.download_file(source, into / name)
        except FileNotFoundError:
            raise WarmStartError(f"model.init_from {uri!r}: {source} is missing, so it is not a saved standalone "
                                 f"model; allowed: {INIT_FROM_FORMS}") from None
    return into


def _from_registry(parsed: InitFrom, tracking_uri: str | None, into: Path, alias_version: str = ""
                   ) -> tuple[Path, WarmStartSource]:
    """Pin the version (an alias's `alias_version` when given), download its logged model into `into`, and return
    the standalone folder inside it."""
    from mlflow.artifacts import download_artifacts

    from matta_core.release import tags as RT

    uri, name = parsed.uri, str(parsed.registered_model)
    client, store, version = _registry_version(parsed, tracking_uri, alias_version)
    found = client.get_model_version(name, version)
    # The version's own artifact location, not models:/<name>/<version>: MLflow resolves that through the process's
    # global registry URI, which need not be this store.
    location = client.get_model_version_download_uri(name, version)
    root = Path(download_artifacts(artifact_uri=location, dst_path=str(into), tracking_uri=store))
    source = WarmStartSource(uri, name, parsed.alias, str(version), source_run_id=found.run_id or None,
                             pipeline_run_id=found.tags.get(RT.PIPELINE_RUN_ID))
    return _standalone_folder(root, uri, name, str(version)), source


def _registry_version(parsed: InitFrom, tracking_uri: str | None, alias_version: str = ""
                      ) -> tuple[Any, str, str]:
    """The registry client of the step's store, the store's URI and the version `parsed` names (an alias read now,
    unless `alias_version` says what it named when the run started); refusals name the URI."""
    from mlflow import MlflowClient

    from matta_core.release.registry import (
        RegistryNotFoundError,
        get_aliases,
        require_model_version,
        require_registered_model,
    )
    from matta_core.tracking.uri import check_tracking_uri, configured_tracking_uri, resolve_tracking_uri

    uri, name = parsed.uri, str(parsed.registered_model)
    if not configured_tracking_uri(tracking_uri):
        raise WarmStartError(f"model.init_from {uri!r} names a registered model, but no MLflow tracking store is "
                             "configured (the step's tracking_uri, or MLFLOW_TRACKING_URI): run with tracking, or "
                             "give a folder (a path or gs:// URI) holding a saved standalone model")
    store = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(store)
    client = MlflowClient(store)
    try:
        if parsed.alias is not None and alias_version:
            version = alias_version
            require_model_version(client, name, version)
        elif parsed.alias is not None:
            require_registered_model(client, name)
            aliases = get_aliases(client, name)
            version = aliases.get(parsed.alias)
            if version is None:
                held = ", ".join(f"@{a} (v{v})" for a, v in sorted(aliases.items())) or "none"
                raise WarmStartError(f"model.init_from {uri!r}: registered model {name!r} has no alias "
                                     f"@{parsed.alias} (its aliases: {held}); allowed: one of its aliases, or a "
                                     f"version as models:/{name}/<version>")
        else:
            version = str(parsed.version)
            require_model_version(client, name, version)
    except RegistryNotFoundError as error:
        raise WarmStartError(f"model.init_from {uri!r}: {error}") from None
    return client, store, str(version)


def _standalone_folder(root: Path, uri: str, name: str, version: str) -> Path:
    """The saved model inside a downloaded pyfunc: the folder its MLmodel names as the ``model_dir`` artifact."""
    from mlflow.models import Model

    from matta_core.tracking.models import MODEL_DIR_ARTIFACT

    artifacts = Model.load(str(root)).flavors.get("python_function", {}).get("artifacts") or {}
    path = (artifacts.get(MODEL_DIR_ARTIFACT) or {}).get("path")
    if not path or not (root / path / CONFIG_FILE).is_file():
        raise WarmStartError(f"model.init_from {uri!r}: version {version} of {name!r} holds no matta standalone "
                             f"classifier (its MLmodel names no {MODEL_DIR_ARTIFACT!r} artifact with {CONFIG_FILE}); "
                             "allowed: a version logged by matta (`log_standalone_model`, as the release step does)")
    return root / path


def embedding_rows(state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A saved model's embedding as float32 rows ``[rows, embed_dim]`` and the bucket of each row (None: one row per
    bucket, in order): the one place that reads the table, whatever form it is stored in.

    A full table is ``embedding.weight``. A compact one (`matta_text_classifier.CompactEmbeddingBag`, what extraction
    serves) is ``embedding.rows`` in float32, float16 or int8 (times its per-row ``embedding.scale``), with the kept
    buckets in ``embedding.buckets`` when it dropped the untrained rows; decoded rows are the values production
    served. A dropped bucket's row held only its random initialisation, so the nested model keeps its own there.
    """
    table = state.get(EMBEDDING)
    if table is not None and table.is_floating_point() and table.dim() == 2:
        return table.detach().float().clone(), None
    rows = state.get("embedding.rows")
    if table is not None or rows is None or rows.dim() != 2:
        found = sorted(name for name in state if name.startswith("embedding."))
        raise WarmStartError(f"the saved model's embedding holds {found}; a warm start reads a float table "
                             f"({EMBEDDING}) or compact rows (embedding.rows [+ scale, buckets]): decode other forms "
                             "in warm_start.embedding_rows")
    values = rows.detach().float()
    scale = state.get("embedding.scale")
    if scale is not None:
        values = values * scale.detach().float()[:, None]
    buckets = state.get(BUCKETS)
    return values.clone(), None if buckets is None else buckets.detach().long().clone()


def standalone_weights(model: StandaloneClassifier) -> Weights:
    """The tensors a warm start copies, as float32 copies: the embedding rows (and their buckets, if not all),
    every block and the head."""
    state = model.state_dict()
    rows, buckets = embedding_rows(state)
    weights = {EMBEDDING: rows} if buckets is None else {EMBEDDING: rows, BUCKETS: buckets}
    for name, tensor in state.items():
        if name.startswith(("blocks.", "head.")):
            weights[name] = tensor.detach().float().clone()
    return weights


# ----------------------------------------------------------------------------------------------------------- check


def check_compatible(
    saved: ExtractedConfig, ta: ClassifierConfig, label_names: Sequence[str] | None, init_from: str
) -> None:
    """Refuse (WarmStartError, every problem on its own line) a saved model that cannot start the nested model of
    `ta`: the featuriser (buckets, n-gram ranges, lowercasing), the labels (count, and names in order when both are
    known; `label_names`: this run's), the dense columns, the activation and the number of hidden layers must be
    equal; each width and the embedding dims must be at most the TA's."""
    problems = []
    for field in ("num_buckets", "word_ngrams", "char_ngrams", "lowercase"):
        theirs, ours = getattr(saved.features, field), getattr(ta.features, field)
        if theirs != ours:
            problems.append(f"features.{field}: the saved model has {theirs}, this run {ours}; allowed: the same "
                            f"featuriser ({_featuriser(saved)})")
    if saved.num_classes != ta.num_classes:
        problems.append(f"num_classes: the saved model has {saved.num_classes} classes, this run's data "
                        f"{ta.num_classes}; allowed: the same labels in the same order")
    elif label_names is not None and saved.labels and tuple(saved.labels) != tuple(label_names):
        wrong = [i for i, (a, b) in enumerate(zip(saved.labels, label_names, strict=True)) if a != b]
        shown = ", ".join(f"{i}: {saved.labels[i]!r} vs {label_names[i]!r}" for i in wrong[:5])
        problems.append(f"labels: {len(wrong)} of {saved.num_classes} differ from this run's data "
                        f"(class {shown}); allowed: the same labels in the same order")
    for field in ("num_dense_features", "activation"):
        theirs, ours = getattr(saved, field), getattr(ta, field)
        if theirs != ours:
            problems.append(f"{field}: the saved model has {theirs!r}, this run {ours!r}; allowed: {ours!r}")
    layers = len(ta.hidden_widths)
    if len(saved.hidden_widths) != layers:
        problems.append(f"hidden_widths: the saved model has {len(saved.hidden_widths)} hidden layers "
                        f"{list(saved.hidden_widths)}, model.hidden_widths {layers} {list(ta.hidden_widths)}; "
                        "allowed: the same number of layers")
    else:
        for i, (theirs, ours) in enumerate(zip(saved.hidden_widths, ta.hidden_widths, strict=True)):
            if theirs > ours:
                problems.append(f"hidden_widths[{i}]: the saved model's layer {i} is {theirs} wide, the TA's "
                                f"(model.hidden_widths[{i}]) {ours}; allowed: at most {ours} (it must fit in the TA)")
    ta_dims = ta.embed_dim_for(ta.ta_widths)
    if saved.embed_dim > ta_dims:
        problems.append(f"embed_dim: the saved model has {saved.embed_dim} embedding dims, the TA reads {ta_dims} "
                        f"(model.embed_dim); allowed: at most {ta_dims}")
    if problems:
        raise WarmStartError(f"model.init_from {init_from!r} cannot start this model:\n"
                             + "\n".join(f"  {p}" for p in problems))


def _featuriser(config: ExtractedConfig) -> str:
    f = config.features
    return (f"model.num_buckets {f.num_buckets}, model.word_ngrams {list(f.word_ngrams)}, model.char_ngrams "
            f"{list(f.char_ngrams)}, lowercase {f.lowercase}")


# ----------------------------------------------------------------------------------------------------------- order


def order_by_importance(weights: Weights, student_widths: Sequence[int], student_embed_dims: int) -> Weights:
    """`weights` with the units the Student slice cannot hold all of permuted most important first (see module).

    Layer i's units are permuted only when the saved layer is wider than ``student_widths[i]``, the embedding dims
    only when there are more than `student_embed_dims`; elsewhere the order is kept, so a saved model the size of the
    Student lands in its slice unchanged. Dense feature columns (after the embedding dims) never move. The result
    computes the same function as `weights`.
    """
    out = dict(weights)
    layers = sum(1 for name in weights if name.startswith("blocks.") and name.endswith(".weight"))
    table, first = out[EMBEDDING], out["blocks.0.weight"]
    dims = table.shape[1]
    if dims > student_embed_dims:
        order = _most_important_first(table.norm(dim=0) * first[:, :dims].norm(dim=0))
        out[EMBEDDING] = table[:, order]
        out["blocks.0.weight"] = torch.cat([first[:, :dims][:, order], first[:, dims:]], dim=1)
    for i in range(layers):
        weight, bias = out[f"blocks.{i}.weight"], out[f"blocks.{i}.bias"]
        if weight.shape[0] <= student_widths[i]:
            continue
        reader = HEAD_WEIGHT if i == layers - 1 else f"blocks.{i + 1}.weight"  # what reads this layer's units
        order = _most_important_first(weight.norm(dim=1) * out[reader].norm(dim=0))
        out[f"blocks.{i}.weight"], out[f"blocks.{i}.bias"] = weight[order], bias[order]
        out[reader] = out[reader][:, order]
    return out


def _most_important_first(scores: torch.Tensor) -> torch.Tensor:
    # Stable: equal scores keep their order, so the permutation depends on the weights alone.
    return torch.argsort(scores, descending=True, stable=True)


# ------------------------------------------------------------------------------------------------------------ copy


@torch.no_grad()
def copy_into(model: NestedClassifier, weights: Weights) -> None:
    """Write `weights` (a standalone model that fits in `model`'s TA) into `model`'s prefix slice, in place."""
    config = model.config
    table = weights[EMBEDDING]
    dims = table.shape[1]
    if BUCKETS in weights:  # only the saved buckets' rows: the others keep the nested model's random rows
        model.embedding.weight[weights[BUCKETS], :dims] = table
    else:
        model.embedding.weight[:, :dims] = table
    layers: list[NestedLinear] = [*model.blocks, model.head]  # type: ignore[list-item]  # ModuleList of them
    for i, block in enumerate(layers[:-1]):
        weight, bias = weights[f"blocks.{i}.weight"], weights[f"blocks.{i}.bias"]
        width = weight.shape[0]
        if i == 0:
            # The first layer reads the embedding dims, then the dense columns, which sit after all the TA's dims.
            block.weight[:width, :dims] = weight[:, :dims]
            dense = config.num_dense_features
            block.weight[:width, config.embed_dim:config.embed_dim + dense] = weight[:, dims:dims + dense]
        else:
            block.weight[:width, :weight.shape[1]] = weight
        _bias(block)[:width] = bias
    head = weights[HEAD_WEIGHT]
    model.head.weight[:, :head.shape[1]] = head
    _bias(model.head)[:] = weights[HEAD_BIAS]


def _bias(layer: NestedLinear) -> torch.Tensor:
    assert layer.bias is not None  # the classifier's layers all have one
    return layer.bias
