"""The run configuration: one validated document for every pipeline parameter, checked before any step runs.

Loaded from YAML/JSON or built in code; `PipelineConfig.model_validate` turns bad values into one readable
message per field (`train.epochs: must be > 0, got -1`). The same document drives `matta run` locally and the
compiled KFP pipeline's parameters on a cluster.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from matta_core.cluster import ClusterSection, ResourcesSection
from matta_core.config_base import ConfigError, Section
from matta_core.data.section import DataSection
from matta_core.loss_config import LossConfig
from matta_core.release.config import MODEL_PREFIX_PATTERN, ReleaseConfig
from matta_core.training.config import TrainConfig

# The model families' configs import torch (through the featuriser and the nested layers); they are imported where
# a section builds one, so that a task which only reads its config sections (prepare, report, release) never loads
# torch: ~1.2 s per task process (`tests/core/test_import_cost.py`).
if TYPE_CHECKING:
    from matta_core.models.classifier_config import ClassifierConfig
    from matta_core.models.decoder.config import DecoderConfig

#: The model families one pipeline trains: a text classifier, or a causal (decoder) language model.
Task = Literal["classification", "causal_lm"]
TASKS: tuple[str, ...] = ("classification", "causal_lm")
# Registry `kind` of the data sets each task can prepare, and the Teacher output each task distils from.
_TASK_DATASET_KIND = {"classification": "classification", "causal_lm": "text_corpus"}
_TASK_TEACHER_OUTPUT = {"classification": "class_logits", "causal_lm": "topk_logits"}
_CAUSAL_LM_MAX_LENGTH = 64  # `CausalLMTeacher`'s default max_length, for specs that leave it out


def check_task(task: str) -> Task:
    """`task` if it is a known task (a pipeline parameter a cluster user may have edited), else `ConfigError`."""
    if task not in TASKS:
        raise ConfigError(f"pipeline parameter task {task!r} is unknown; allowed: {list(TASKS)}")
    return task  # type: ignore[return-value]  # checked against TASKS, which lists Task's values


_Section = Section


class TeacherSection(_Section):
    # A teacher spec for `matta_core.teachers.make_teacher`; the default is the frozen MiniLM with a fitted head.
    spec: dict[str, Any] = Field(default_factory=lambda: {"kind": "minilm"})
    # Rows per shard of a new Teacher cache entry: how outputs are stored, not what they are, so not in the cache
    # key; an entry written with another size is read with its own layout (`matta_core.teacher_cache.key`).
    shard_rows: int = Field(2048, gt=0)

    @field_validator("spec")
    @classmethod
    def _has_kind(cls, spec: dict[str, Any]) -> dict[str, Any]:
        from matta_core.teachers.factory import SPEC_FIELDS

        if spec.get("kind") not in SPEC_FIELDS:
            raise ValueError(f"kind {spec.get('kind')!r} unknown; allowed: {sorted(SPEC_FIELDS)}")
        return spec


class ModelSection(_Section):
    hidden_widths: list[int] = Field(default_factory=lambda: [1024])
    student_widths: list[int] = Field(default_factory=lambda: [64])
    embed_dim: int = Field(128, gt=0)
    num_buckets: int = Field(2**18, ge=2)
    min_width: int = Field(8, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)

    def classifier_config(self, num_classes: int) -> ClassifierConfig:
        from matta_core.features.hashing import FeaturizerConfig
        from matta_core.models.classifier_config import ClassifierConfig

        return ClassifierConfig(
            num_classes=num_classes,
            hidden_widths=tuple(self.hidden_widths),
            student_widths=tuple(self.student_widths),
            embed_dim=self.embed_dim,
            min_width=self.min_width,
            dropout=self.dropout,
            features=FeaturizerConfig(self.num_buckets, tuple(self.word_ngrams), tuple(self.char_ngrams)),
        )


class DecoderSection(_Section):
    """The causal-LM family's model section (``task: causal_lm``): a `DecoderConfig` less its vocabulary, which
    is the Teacher's (Students read the token ids the Teacher cached). Per-layer fields take one int for every
    block or one per block; left out, they default as `DecoderConfig` says (FFN 4 * d_model, Student FFN a quarter
    of it, Student heads half of n_heads)."""

    # None: the Teacher's max_length, the longest sequence its cache holds.
    n_positions: int | None = Field(None, gt=0)
    d_model: int = Field(128, gt=0)
    n_layers: int = Field(4, gt=0)
    n_heads: int = Field(4, gt=0)
    head_dim: int | None = Field(None, gt=0)
    ffn_widths: int | list[int] | None = None
    student_ffn_widths: int | list[int] | None = None
    student_heads: int | list[int] | None = None
    min_ffn_width: int = Field(8, gt=0)
    min_heads: int = Field(1, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    activation: Literal["gelu", "gelu_tanh"] = "gelu"

    @model_validator(mode="after")
    def _shape_is_valid(self) -> DecoderSection:
        self.decoder_config(vocab_size=1, n_positions=1)  # the shape checks; vocabulary and length come later
        return self

    def decoder_config(self, vocab_size: int, n_positions: int | None = None) -> DecoderConfig:
        """The decoder for a Teacher with `vocab_size` tokens; `n_positions` applies when the section sets none."""
        from matta_core.models.decoder.config import DecoderConfig

        positions = self.n_positions or n_positions
        if positions is None:
            raise ValueError("model.n_positions is not set and no Teacher max_length was given to default it to")

        def per_layer(value: int | list[int] | None) -> int | tuple[int, ...] | None:
            return tuple(value) if isinstance(value, list) else value

        return DecoderConfig(
            vocab_size=vocab_size,
            n_positions=positions,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            head_dim=self.head_dim,
            ffn_widths=per_layer(self.ffn_widths),
            student_ffn_widths=per_layer(self.student_ffn_widths),
            student_heads=per_layer(self.student_heads),
            min_ffn_width=self.min_ffn_width,
            min_heads=self.min_heads,
            dropout=self.dropout,
            activation=self.activation,
        )


#: The model section of each task.
MODEL_SECTIONS: dict[str, type[ModelSection] | type[DecoderSection]] = {
    "classification": ModelSection,
    "causal_lm": DecoderSection,
}


class LossSection(_Section):
    temperature: float = Field(LossConfig.temperature, gt=0.0)
    teacher_weight: float = Field(LossConfig.teacher_weight, ge=0.0, le=1.0)
    ta_distill_weight: float = Field(LossConfig.ta_distill_weight, ge=0.0)
    ta_distill_warmup: float = Field(LossConfig.ta_distill_warmup, ge=0.0, le=1.0)
    ta_weight: float = Field(LossConfig.ta_weight, ge=0.0)
    student_weight: float = Field(LossConfig.student_weight, ge=0.0)
    sampled_weight: float = Field(LossConfig.sampled_weight, ge=0.0)


class TrainSection(_Section):
    epochs: float | None = Field(15.0, gt=0.0)
    steps: int | None = Field(None, gt=0)
    batch_size: int = Field(128, gt=0)
    lr: float = Field(TrainConfig.lr, gt=0.0)  # one source for the default and its why-comment
    weight_decay: float = Field(0.0, ge=0.0)
    optimizer: str = "adamw"
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    num_threads: int | None = Field(None, gt=0)
    sandwich_k: int = Field(TrainConfig.sandwich_k, ge=0)
    checkpoint_every: int = Field(0, ge=0)
    # And after every this many seconds of training (0 = off): a killed run of any length loses at most about this
    # much work, and runs shorter than it write only the final checkpoint.
    checkpoint_every_seconds: float = Field(60.0, ge=0.0)
    # Where checkpoints go (a path or gs:// URI), outside the train task's output artifact, so a retried or
    # preempted task resumes from the newest one. None: inside the output (local runs).
    checkpoint_dir: str | None = None
    loss: LossSection = Field(default_factory=LossSection)
    # Baselines trained in the same step at equal budget, so the report compares like with like.
    baselines: list[Literal["kd", "ce_only"]] = Field(default_factory=lambda: ["kd", "ce_only"])

    @model_validator(mode="after")
    def _one_budget(self) -> TrainSection:
        if self.steps is not None and self.epochs is not None:
            object.__setattr__(self, "epochs", None)  # an explicit step budget wins over the default epochs
        if self.steps is None and self.epochs is None:
            raise ValueError("give a training budget: epochs or steps")
        return self

    def train_config(self, arm: str = "matta", progress: bool = True) -> TrainConfig:
        return TrainConfig(
            arm=arm,
            steps=self.steps,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            optimizer=self.optimizer,
            seed=self.seed,
            device=self.device,
            num_threads=self.num_threads,
            sandwich_k=self.sandwich_k,
            checkpoint_every=self.checkpoint_every,
            checkpoint_every_seconds=self.checkpoint_every_seconds,
            loss=LossConfig(**self.loss.model_dump()),
            progress=progress,
        )


class ReleaseSection(ReleaseConfig):
    """The release stage (`ReleaseConfig`: size classes, gate, handoff, registry names) and its switch.

    The pipeline's last step gates each size class's best width against the class's ``@champion`` (or this run's
    ``baseline_arm`` model), registers what passes as ``@challenger`` and writes the A/B handoffs. It needs the
    MLflow registry: a run without tracking skips it, saying so in the step log and in its gate report.
    """

    # Off: the release step writes a report saying it was skipped and touches no registry.
    enabled: bool = True


class PipelineConfig(_Section):
    """Everything a run needs. Paths may be local or gs:// where a step reads them through the storage layer."""

    name: str = "matta-banking77"
    # The model family: "classification" (a text classifier; the default) or "causal_lm" (a decoder LM distilled
    # from a causal-LM Teacher's top-k logits). One pipeline, the same components: each step dispatches on it.
    # Declared before the sections: their validators read it.
    task: Task = "classification"
    # validate_default: the defaults (Banking77, MiniLM) are checked against the task too.
    data: DataSection = Field(default_factory=DataSection, validate_default=True)
    teacher: TeacherSection = Field(default_factory=TeacherSection, validate_default=True)
    # `ModelSection` for classification, `DecoderSection` for causal_lm (see `MODEL_SECTIONS`).
    model: ModelSection | DecoderSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    # The widths to extract and evaluate, each of which must fit the TA. Classification: per-layer widths
    # ([[1024], [64]]). causal_lm: one [ffn_width, n_heads] pair per block, or "ta", "student", or
    # {"ffn": int | list, "heads": int | list}; stored as explicit pairs.
    widths: list[Any] = Field(default_factory=lambda: [[1024], [512], [256], [128], [64], [32], [16]])
    output_dir: str = "outputs/matta-banking77"
    # `matta run` keeps the pipeline roots (``<output_dir>/kfp/<run>``) of the newest N runs into the output folder,
    # plus every one the step cache still points into, and deletes older ones; 0 keeps all. MLflow keeps what the
    # runs logged.
    keep_runs: int = Field(5, ge=0)
    # Where Teacher outputs are cached across runs (content-addressed; safe to share between runs and users).
    cache_dir: str = ".matta_cache"
    # MLflow tracking URI; None = the embedded sqlite store in the output folder.
    tracking_uri: str | None = None
    # How long every process of the run (driver and steps, here or on a cluster) keeps retrying a tracking server
    # that stopped answering before it fails, in seconds (`matta_core.tracking.retries`); MLflow's own default is
    # about 4 minutes. MLFLOW_HTTP_REQUEST_* variables already in the environment are kept.
    tracking_retry_seconds: int = Field(30, ge=0, le=1000)
    # Time batch-1 latency and batch-256 throughput of every width (off for quick tests).
    measure_speed: bool = True
    # Declared after `train`: its validator reads the trained baselines (and checks the default too).
    release: ReleaseSection = Field(default_factory=ReleaseSection, validate_default=True)
    # Compute per step (CPU, memory, accelerators, retries, timeouts) and where a cluster run goes (pipeline root,
    # images, Secret and ConfigMap names). Neither matters to a local run.
    resources: ResourcesSection = Field(default_factory=ResourcesSection)
    cluster: ClusterSection = Field(default_factory=ClusterSection)

    @model_validator(mode="before")
    @classmethod
    def _causal_lm_defaults(cls, data: Any) -> Any:
        # The field defaults describe the classifier. A causal_lm run that leaves out the model section or the
        # widths gets the decoder's defaults instead (its TA and Student), and training the LM defaults
        # (`matta_core.lm.config`: lr, batch size, tau = 1), written into the config so the steps receive them.
        if not isinstance(data, dict) or data.get("task") != "causal_lm":
            return data
        from matta_core.lm.config import LM_BATCH_SIZE, LM_LR
        from matta_core.lm.losses import LM_LOSS_CONFIG

        train = data.get("train", {})
        if isinstance(train, dict):
            loss = train.get("loss", {})
            if isinstance(loss, dict):
                loss = {"temperature": LM_LOSS_CONFIG.temperature, **loss}
            train = {"lr": LM_LR, "batch_size": LM_BATCH_SIZE, **train, "loss": loss}
        return {"model": {}, "widths": ["ta", "student"], **data, "train": train}

    @field_validator("data")
    @classmethod
    def _data_fits_the_task(cls, data: DataSection, info: ValidationInfo) -> DataSection:
        from matta_core.data import DATASETS

        task = info.data.get("task")
        if task is None:  # an invalid task is reported on its own
            return data
        if data.source in DATASETS:
            kind = DATASETS[data.source].kind
            if kind != _TASK_DATASET_KIND[task]:
                other = next(t for t in TASKS if _TASK_DATASET_KIND[t] == kind)
                raise ValueError(f"source {data.source!r} is a {kind} data set, which task {task!r} cannot train "
                                 f"on; use one of {_datasets_of(task)} or your own file, or set task: {other}")
        if task == "causal_lm":
            from matta_core.lm.text_data import TEXT_FORMATS

            if data.source not in DATASETS and Path(data.source.split("?", 1)[0]).suffix.lower() not in TEXT_FORMATS:
                raise ValueError(f"source {data.source!r}: task 'causal_lm' reads a registered text corpus "
                                 f"({', '.join(_datasets_of('causal_lm'))}) or a {'/'.join(TEXT_FORMATS)} file")
            unused = [f for f in ("test_source", "label_column") if getattr(data, f) is not None]
            if unused:
                raise ValueError(f"{unused} do not apply to task 'causal_lm' (a text corpus has no labels, and its "
                                 "test split is hashed out of the corpus): remove them")
        return data

    @field_validator("teacher")
    @classmethod
    def _teacher_fits_the_task(cls, teacher: TeacherSection, info: ValidationInfo) -> TeacherSection:
        from matta_core.teachers.factory import OUTPUT_KIND

        task = info.data.get("task")
        kind = teacher.spec["kind"]
        if task is not None and OUTPUT_KIND[kind] != _TASK_TEACHER_OUTPUT[task]:
            fitting = sorted(k for k, out in OUTPUT_KIND.items() if out == _TASK_TEACHER_OUTPUT[task])
            raise ValueError(f"spec.kind {kind!r} gives {OUTPUT_KIND[kind]} outputs, but task {task!r} distils "
                             f"from {_TASK_TEACHER_OUTPUT[task]}: use kind {' or '.join(map(repr, fitting))}")
        return teacher

    @field_validator("model", mode="before")
    @classmethod
    def _model_section_of_the_task(cls, model: Any, info: ValidationInfo) -> Any:
        task = info.data.get("task")
        if task is None or not isinstance(model, dict):  # a section object, or an invalid task reported on its own
            return model
        section = MODEL_SECTIONS[task]
        other_task, other = next((t, s) for t, s in MODEL_SECTIONS.items() if t != task)
        foreign = sorted(set(model) - set(section.model_fields) & set(other.model_fields))
        if foreign:
            raise ValueError(f"{foreign} are {other.__name__} fields (task {other_task!r}); task {task!r} takes a "
                             f"{section.__name__}, with fields {sorted(section.model_fields)}")
        return section.model_validate(model)  # errors come out under model.<field>

    @field_validator("model")
    @classmethod
    def _model_fits_the_task(
        cls, model: ModelSection | DecoderSection, info: ValidationInfo
    ) -> ModelSection | DecoderSection:
        task = info.data.get("task")
        if task is not None and not isinstance(model, MODEL_SECTIONS[task]):
            raise ValueError(f"task {task!r} takes a {MODEL_SECTIONS[task].__name__}, got {type(model).__name__}")
        if isinstance(model, DecoderSection) and model.n_positions is not None:
            teacher = info.data.get("teacher")
            max_length = None if teacher is None else teacher.spec.get("max_length", _CAUSAL_LM_MAX_LENGTH)
            if max_length is not None and model.n_positions < max_length:
                raise ValueError(f"n_positions {model.n_positions} is shorter than the Teacher's max_length "
                                 f"{max_length}: the Students read the Teacher's sequences whole; raise n_positions "
                                 "or leave it out (it defaults to max_length)")
        return model

    @field_validator("widths", mode="before")
    @classmethod
    def _widths_as_the_task_writes_them(cls, widths: Any, info: ValidationInfo) -> Any:
        model = info.data.get("model")
        if model is None:  # the model section was invalid and is reported on its own; widths cannot be read
            return widths
        if not isinstance(model, DecoderSection):
            # Classifier widths: per-layer ints (errors under widths.<entry>.<layer>, as pydantic words them).
            return TypeAdapter(list[list[int]]).validate_python(widths)
        if not isinstance(widths, list):
            raise ValueError(f"give a list of widths specs, got {widths!r}")
        from matta_core.models.decoder.widths import resolve_widths
        from matta_core.nested.widths import WidthError

        config = model.decoder_config(vocab_size=1, n_positions=1)  # the vocabulary does not affect widths
        pairs: list[list[list[int]]] = []
        for i, spec in enumerate(widths):
            try:
                resolved = [list(pair) for pair in resolve_widths(config, spec)]
            except (WidthError, TypeError) as error:
                raise ValueError(f"entry {i} {spec!r}: {error}") from None
            if resolved in pairs:
                raise ValueError(f"entry {i} {spec!r} is the same sub-model as entry {pairs.index(resolved)}")
            pairs.append(resolved)
        return pairs

    @field_validator("widths")
    @classmethod
    def _widths_fit_the_model(cls, widths: list[Any], info: ValidationInfo) -> list[Any]:
        model = info.data.get("model")
        if not widths:
            raise ValueError("list at least one width to extract")
        if not isinstance(model, ModelSection):  # decoder widths were checked as they were resolved
            return widths
        from matta_core.nested.widths import WidthError

        config = model.classifier_config(num_classes=2)  # the class count does not affect widths
        for i, entry in enumerate(widths):
            try:
                config.sub_config(tuple(entry))
            except WidthError as error:
                raise ValueError(f"entry {i} {entry}: {error}") from None
        return widths

    @field_validator("release")
    @classmethod
    def _release_has_its_baseline(cls, release: ReleaseSection, info: ValidationInfo) -> ReleaseSection:
        train = info.data.get("train")
        if train is None or not release.enabled or info.data.get("task") != "classification":
            # An invalid train section is reported on its own; a causal_lm run's release step skips (the gate
            # is the classifier's) and says so, needing no baseline.
            return release
        if release.baseline_arm not in train.baselines:
            # A size class without a champion (every class, on the first release) is gated against this model.
            raise ValueError(f"baseline_arm {release.baseline_arm!r} is not trained (train.baselines = "
                             f"{list(train.baselines)}): add it to train.baselines, or set release.enabled: false")
        return release

    @field_validator("release")
    @classmethod
    def _model_prefix_defaults_to_the_name(cls, release: ReleaseSection, info: ValidationInfo) -> ReleaseSection:
        # Registered models are named after the run unless release.model_prefix says otherwise, so two pipelines
        # sharing one MLflow server keep their own champions. Resolved here, once: the steps, the compiled
        # pipeline's parameters and `matta show-config` all carry the name actually used.
        name = info.data.get("name")
        if release.model_prefix is not None or name is None:  # an invalid name is reported on its own
            return release
        if re.fullmatch(MODEL_PREFIX_PATTERN, name):
            return release.model_copy(update={"model_prefix": name})
        if not release.enabled or info.data.get("task") != "classification":
            return release  # this run registers nothing, so its name need not fit a registered model's
        raise ValueError(f"model_prefix is not set, so registered models are named after the run's name, and name "
                         f"{name!r} cannot begin one (letters, digits, '_', '.' and '-', starting with a letter or "
                         "digit): rename the run, or set release.model_prefix")

    @field_validator("resources")
    @classmethod
    def _accelerators_fit_the_devices(cls, resources: ResourcesSection, info: ValidationInfo) -> ResourcesSection:
        train = info.data.get("train")
        if train is not None and train.device == "cpu" and resources.train.accelerator_count:
            raise ValueError(f"train asks for {resources.train.accelerator_count} x "
                             f"{resources.train.accelerator_type} but train.device is 'cpu' (it would not use "
                             "them): set train.device: cuda, or remove resources.train.accelerator_*")
        return resources

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
        """Read a YAML/JSON file (or the defaults), apply dotted `overrides`, and validate."""
        data: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as error:
                raise ConfigError(f"config file {path} is not valid YAML/JSON: {error}") from None
            if not isinstance(data, dict):
                raise ConfigError(f"config file {path} must hold a mapping at the top level")
        for dotted, value in (overrides or {}).items():
            node = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return cls.parse(data, source=str(path) if path else "config")

    @classmethod
    def parse(cls, data: dict[str, Any], source: str = "config") -> PipelineConfig:
        """Validate a plain dict, turning pydantic's errors into one `ConfigError` listing every bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            lines = []
            for problem in error.errors():
                where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
                got = problem.get("input")
                got_text = "" if isinstance(got, dict | BaseModel) else f" (got {got!r})"
                lines.append(f"  {where}: {problem['msg']}{got_text}")
            raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines)) from None


def _datasets_of(task: str) -> list[str]:
    """The registered data sets a task can train on."""
    from matta_core.data import DATASETS

    return sorted(name for name, spec in DATASETS.items() if spec.kind == _TASK_DATASET_KIND[task])
