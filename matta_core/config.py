"""The run configuration: one validated document for every pipeline parameter, checked before any step runs.

Loaded from YAML/JSON or built in code; `PipelineConfig.model_validate` turns bad values into one readable
message per field (`train.epochs: must be > 0, got -1`). The same document drives `matta run` locally and the
compiled KFP pipeline's parameters on a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from matta_core.features.hashing import FeaturizerConfig
from matta_core.losses import LossConfig
from matta_core.models.classifier_config import ClassifierConfig
from matta_core.nested.widths import WidthError
from matta_core.release.config import ReleaseConfig
from matta_core.training.config import TrainConfig


class ConfigError(ValueError):
    """A run configuration that cannot run; the message lists every bad field and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSection(_Section):
    # A registered data set name ("banking77") or a CSV/JSONL/Parquet file URI (path, file://, gs://).
    source: str = "banking77"
    test_source: str | None = None
    # Offline mirror of the registered data sets (tests, CI, air-gapped clusters); None downloads and verifies.
    mirror_dir: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    max_bad_fraction: float = Field(0.05, ge=0.0, le=1.0)
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    # Keep only the first N training rows (after the deterministic split): quick runs and tests. None = all.
    limit_train_rows: int | None = Field(None, gt=0)
    limit_test_rows: int | None = Field(None, gt=0)


class TeacherSection(_Section):
    # A teacher spec for `matta_core.teachers.make_teacher`; the default is the frozen MiniLM with a fitted head.
    spec: dict[str, Any] = Field(default_factory=lambda: {"kind": "minilm"})
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
        return ClassifierConfig(
            num_classes=num_classes,
            hidden_widths=tuple(self.hidden_widths),
            student_widths=tuple(self.student_widths),
            embed_dim=self.embed_dim,
            min_width=self.min_width,
            dropout=self.dropout,
            features=FeaturizerConfig(self.num_buckets, tuple(self.word_ngrams), tuple(self.char_ngrams)),
        )


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
    data: DataSection = Field(default_factory=DataSection)
    teacher: TeacherSection = Field(default_factory=TeacherSection)
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    # Per-layer widths to extract and evaluate; each must fit the TA (every entry <= hidden_widths).
    widths: list[list[int]] = Field(default_factory=lambda: [[1024], [512], [256], [128], [64], [32], [16]])
    output_dir: str = "outputs/matta-banking77"
    # Where Teacher outputs are cached across runs (content-addressed; safe to share between runs and users).
    cache_dir: str = ".matta_cache"
    # MLflow tracking URI; None = the embedded sqlite store in the output folder.
    tracking_uri: str | None = None
    # Time batch-1 latency and batch-256 throughput of every width (off for quick tests).
    measure_speed: bool = True
    # Declared after `train`: its validator reads the trained baselines (and checks the default too).
    release: ReleaseSection = Field(default_factory=ReleaseSection, validate_default=True)

    @field_validator("widths")
    @classmethod
    def _widths_fit_the_model(cls, widths: list[list[int]], info: ValidationInfo) -> list[list[int]]:
        model = info.data.get("model")
        if model is None:  # the model section itself was invalid and is reported on its own
            return widths
        config = model.classifier_config(num_classes=2)  # the class count does not affect widths
        if not widths:
            raise ValueError("list at least one per-layer width to extract")
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
        if train is None or not release.enabled:  # an invalid train section is reported on its own
            return release
        if release.baseline_arm not in train.baselines:
            # A size class without a champion (every class, on the first release) is gated against this model.
            raise ValueError(f"baseline_arm {release.baseline_arm!r} is not trained (train.baselines = "
                             f"{list(train.baselines)}): add it to train.baselines, or set release.enabled: false")
        return release

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
