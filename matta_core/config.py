"""The run configuration: one validated document for every pipeline parameter, checked before any step runs.

Loaded from YAML/JSON or built in code; `PipelineConfig.model_validate` turns bad values into one readable
message per field (`train.epochs: must be > 0, got -1`). The same document drives `matta run` locally and the
compiled KFP pipeline's parameters on a cluster.

The sections every family reads live in `matta_core.sections` and `matta_core.data.section`; the ``model:``
section and the rules that differ by family (defaults, data, widths) come from the family the ``task`` selects
(`matta_core.families.registry`). All are re-exported here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from matta_core.cluster import ClusterSection, ResourcesSection
from matta_core.config_base import ConfigError, Section
from matta_core.data.section import DataSection
from matta_core.families.base import ModelFamily
from matta_core.families.classifier.section import ModelSection
from matta_core.families.decoder.section import DecoderSection
from matta_core.families.registry import FAMILIES, TASKS, AnyModelSection, family_for
from matta_core.release.config import MODEL_PREFIX_PATTERN, ReleaseConfig
from matta_core.sections import ExtractionSection, LossSection, TeacherSection, TrainSection

__all__ = [
    "MODEL_SECTIONS", "TASKS", "ConfigError", "DataSection", "DecoderSection", "ExtractionSection", "LossSection",
    "ModelSection",
    "PipelineConfig", "ReleaseSection", "Task", "TeacherSection", "TrainSection", "check_task",
]

#: The model families one pipeline trains (`matta_core.families.registry`): a text classifier, or a causal
#: (decoder) language model.
Task = Literal["classification", "causal_lm"]
#: The model section of each task.
MODEL_SECTIONS: dict[str, type[Section]] = {task: family.section for task, family in FAMILIES.items()}


def check_task(task: str) -> Task:
    """`task` if it is a known task (a pipeline parameter a cluster user may have edited), else `ConfigError`."""
    return family_for(task).task  # type: ignore[return-value]  # the registry's tasks are Task's values


_Section = Section


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
    # The model section of the task's family: `ModelSection` for classification, `DecoderSection` for causal_lm.
    model: AnyModelSection = Field(default_factory=ModelSection)
    train: TrainSection = Field(default_factory=TrainSection)
    # The widths to extract and evaluate, each of which must fit the TA. Classification: per-layer widths
    # ([[1024], [64]]). causal_lm: one [ffn_width, n_heads] pair per block, or "ta", "student", or
    # {"ffn": int | list, "heads": int | list}; stored as explicit pairs.
    widths: list[Any] = Field(default_factory=lambda: [[1024], [512], [256], [128], [64], [32], [16]])
    # How each extracted width stores its embedding table (classifier: int8, trained rows only; see the section).
    extraction: ExtractionSection = Field(default_factory=ExtractionSection)
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
    def _family_defaults(cls, data: Any) -> Any:
        # The field defaults describe the default family (the classifier); another family fills in its own (the
        # decoder: its model section, TA and Student widths, and LM training defaults), written into the config so
        # the steps receive them. An unknown task is reported on its own.
        if not isinstance(data, dict) or data.get("task", TASKS[0]) not in FAMILIES:
            return data
        return family_for(data.get("task", TASKS[0])).config_defaults(data)

    @field_validator("data")
    @classmethod
    def _data_fits_the_task(cls, data: DataSection, info: ValidationInfo) -> DataSection:
        from matta_core.data import DATASETS

        task = info.data.get("task")
        if task is None:  # an invalid task is reported on its own
            return data
        family = family_for(task)
        if data.source in DATASETS:
            kind = DATASETS[data.source].kind
            if kind != family.dataset_kind:
                other = next(t for t, f in FAMILIES.items() if f.dataset_kind == kind)
                raise ValueError(f"source {data.source!r} is a {kind} data set, which task {task!r} cannot train "
                                 f"on; use one of {_datasets_of(task)} or your own file, or set task: {other}")
        family.check_data(data)
        return data

    @field_validator("teacher")
    @classmethod
    def _teacher_fits_the_task(cls, teacher: TeacherSection, info: ValidationInfo) -> TeacherSection:
        from matta_core.teachers.factory import OUTPUT_KIND

        task = info.data.get("task")
        kind = teacher.spec["kind"]
        wanted = None if task is None else family_for(task).teacher_output
        if wanted is not None and OUTPUT_KIND[kind] != wanted:
            fitting = sorted(k for k, out in OUTPUT_KIND.items() if out == wanted)
            raise ValueError(f"spec.kind {kind!r} gives {OUTPUT_KIND[kind]} outputs, but task {task!r} distils "
                             f"from {wanted}: use kind {' or '.join(map(repr, fitting))}")
        return teacher

    @field_validator("model", mode="before")
    @classmethod
    def _model_section_of_the_task(cls, model: Any, info: ValidationInfo) -> Any:
        task = info.data.get("task")
        if task is None or not isinstance(model, dict):  # a section object, or an invalid task reported on its own
            return model
        section = MODEL_SECTIONS[task]
        for other_task, other in MODEL_SECTIONS.items():
            foreign = sorted(set(model) - set(section.model_fields) & set(other.model_fields))
            if other_task != task and foreign:
                raise ValueError(f"{foreign} are {other.__name__} fields (task {other_task!r}); task {task!r} takes "
                                 f"a {section.__name__}, with fields {sorted(section.model_fields)}")
        return section.model_validate(model)  # errors come out under model.<field>

    @field_validator("model")
    @classmethod
    def _model_fits_the_task(cls, model: AnyModelSection, info: ValidationInfo) -> AnyModelSection:
        task = info.data.get("task")
        if task is None:
            return model
        if not isinstance(model, MODEL_SECTIONS[task]):
            raise ValueError(f"task {task!r} takes a {MODEL_SECTIONS[task].__name__}, got {type(model).__name__}")
        family_for(task).check_model(model, info.data.get("teacher"))
        return model

    @field_validator("widths", mode="before")
    @classmethod
    def _widths_as_the_task_writes_them(cls, widths: Any, info: ValidationInfo) -> Any:
        model = info.data.get("model")
        if model is None:  # the model section was invalid and is reported on its own; widths cannot be read
            return widths
        return _family_of(model).resolve_widths(model, widths)

    @field_validator("widths")
    @classmethod
    def _widths_fit_the_model(cls, widths: list[Any], info: ValidationInfo) -> list[Any]:
        model = info.data.get("model")
        if not widths:
            raise ValueError("list at least one width to extract")
        if model is not None:
            _family_of(model).check_widths(model, widths)
        return widths

    @field_validator("extraction")
    @classmethod
    def _extraction_fits_the_task(cls, extraction: ExtractionSection, info: ValidationInfo) -> ExtractionSection:
        task = info.data.get("task")
        if task is not None and extraction.model_fields_set and not family_for(task).reads_extraction_section:
            raise ValueError(f"task {task!r} writes its extracted models as trained: remove the extraction "
                             f"section (it sets {sorted(extraction.model_fields_set)})")
        return extraction

    @field_validator("release")
    @classmethod
    def _release_has_its_baseline(cls, release: ReleaseSection, info: ValidationInfo) -> ReleaseSection:
        train = info.data.get("train")
        if train is None or not release.enabled or not _releases(info.data.get("task")):
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
        if not release.enabled or not _releases(info.data.get("task")):
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

    @model_validator(mode="after")
    def _widths_trained_every_step(self) -> PipelineConfig:
        # `train.widths_per_step: extracted` trains every width of `widths` every step: resolved here, where both
        # are known, into `train.loss_widths`, so the train step (and its cache key) receives the list itself.
        extracted = self.train.widths_per_step == "extracted"
        if extracted and not family_for(self.task).trains_every_width:
            raise ValueError(f"train.widths_per_step 'extracted' is built for the classifier family; task "
                             f"{self.task!r} samples its widths each step: set train.widths_per_step: sampled")
        loss_widths = [list(w) for w in self.widths] if extracted else None
        if self.train.loss_widths != loss_widths:
            object.__setattr__(self, "train", self.train.model_copy(update={"loss_widths": loss_widths}))
        return self

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

    return sorted(name for name, spec in DATASETS.items() if spec.kind == family_for(task).dataset_kind)


def _family_of(model: Section) -> ModelFamily:
    """The family whose model section `model` is (validation already paired the section with the task)."""
    return next(family for family in FAMILIES.values() if isinstance(model, family.section))


def _releases(task: str | None) -> bool:
    """Whether a run of `task` gates and registers models (an unknown task is reported on its own)."""
    return task in FAMILIES and family_for(task).release_skip_reason is None
