"""What a model family supplies to the pipeline: the `ModelFamily` protocol.

The pipeline's steps (`matta_core.steps.tracked`), the in-process path (`matta_core.workflow`), the run config
(`matta_core.config`), the preflight and the CLI find a family by the run's ``task`` (`registry.family_for`) and
call it through this protocol; none of them tests which family runs.

A family object is cheap to import (every task process reads its config): its module imports no torch, and each
step method imports its step module when called. The nested model, its loss terms and its training step live in
the family's `model.py`, `loss.py` and `trainer.py` (on the shared loop, `matta_core.training.loop`), used by its
train step; extraction and evaluation rows by its extract and evaluate steps; report rows by its report step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from matta_core.config_base import Section

if TYPE_CHECKING:
    from matta_core.data.section import DataSection
    from matta_core.release.rows import EvalRows
    from matta_core.sections import ExtractionSection, TeacherSection, TrainSection
    from matta_core.tracking.step_records import Tracking



class ModelFamily(Protocol):
    """One model family: its config rules, and each pipeline step with its MLflow record."""

    #: The run config's ``task`` value that selects this family.
    task: str
    @property
    def section(self) -> type[Section]:
        """The ``model:`` section class of the run config (pydantic; imports no torch)."""
    #: The registry `kind` of the data sets it trains on (`matta_core.data.registry`).
    dataset_kind: str
    #: The Teacher output it distils from (`matta_core.teachers.factory.OUTPUT_KIND`).
    teacher_output: str
    #: The file formats of a user's own data, for messages ("CSV/JSONL/Parquet").
    source_formats: str
    #: How one width spec is written on the command line, for messages.
    widths_form: str
    #: Whether its evaluate step scores models on the Teacher step's outputs (so needs that folder).
    evaluation_reads_teacher: bool
    #: Why the release step registers nothing for this family, or None when its models can be gated and released.
    release_skip_reason: str | None
    #: Whether its extraction reads the run config's ``extraction`` section (else only the defaults are accepted).
    reads_extraction_section: bool
    #: Whether its trainer can compute the loss at every extracted width each step (`train.widths_per_step:
    #: extracted`, `TrainConfig.loss_widths`) instead of sampling widths.
    trains_every_width: bool

    # --- the run config ---------------------------------------------------------------------------------------

    def config_defaults(self, data: dict[str, Any]) -> dict[str, Any]:
        """A raw run config with this family's defaults filled in (before validation)."""

    def check_data(self, data: DataSection) -> None:
        """Raise ValueError when `data` cannot feed this family (a message naming the field and what is allowed)."""

    def check_model(self, model: Section, teacher: TeacherSection | None) -> None:
        """Raise ValueError when the model section does not fit the rest of the config (e.g. the Teacher)."""

    def resolve_widths(self, model: Section, widths: Any) -> list[Any]:
        """The config's ``widths`` in their stored form, each checked against the model: ValueError otherwise."""

    def check_widths(self, model: Section, widths: list[Any]) -> None:
        """After `resolve_widths`: ValueError when an entry does not fit the model."""

    def parse_widths(self, widths: Sequence[Any]) -> list[Any]:
        """One width spec from a pipeline parameter (KFP hands numbers over as floats)."""

    def parse_widths_text(self, text: str) -> list[Any]:
        """One width spec as written on the command line (``matta component extract --widths``); ValueError when it
        is not in `widths_form`."""

    def widths_label(self, widths: Sequence[Any]) -> str:
        """The folder and run name part of a width spec (``256x64``)."""

    # --- the steps, each with its MLflow record (a child run of the pipeline run when tracking is on) -----------

    def prepare(self, data: DataSection, out_dir: str, tracking: Tracking) -> dict[str, float]:
        """Step 1: validate, dedupe and split the data into `out_dir`; returns the step's metrics."""

    def teacher(self, prepared_dir: str, out_dir: str, teacher: TeacherSection, data: DataSection, cache_dir: str,
                tracking: Tracking, *, progress: bool = False) -> dict[str, float]:
        """Step 2: the Teacher's outputs on every split, through the content-addressed cache (`progress`: show
        progress bars, as `matta demo` does)."""

    def train(self, prepared_dir: str, teacher_dir: str, out_dir: str, model: Section, train: TrainSection,
              data: DataSection, tracking: Tracking, *, progress: bool = False,
              init_from_version: str = "") -> tuple[dict[str, float], list[str]]:
        """Step 3: train the nested model (MatTA) and the baselines; returns metrics and the baselines' folders
        (relative to `out_dir`). `init_from_version`: what `pin_init_from` read when the run started."""

    def pin_init_from(self, model: Section, tracking_uri: str) -> str:
        """What the model section's warm start names now (``model.init_from``: an alias's version, a folder's
        digest), for the run's first task to pass to the train task as its cache key; "" when there is none."""

    def extract(self, trained_dir: str, widths: Sequence[Any], out_dir: str, prepared_dir: str, data: DataSection,
                tracking: Tracking, extraction: ExtractionSection | None = None) -> dict[str, float]:
        """Step 4: one standalone model cut out of the nested one, parity-checked, stored as `extraction` says
        (None: the section's defaults)."""

    def evaluate(self, model_dir: str, prepared_dir: str, teacher_dir: str | None, out_dir: str, data: DataSection,
                 measure_speed: bool, tracking: Tracking) -> dict[str, float]:
        """Step 5: the evaluation row of one standalone model (quality and serving cost) in `out_dir`."""

    def report(self, evaluations: Sequence[Mapping[str, Any]], teacher_dir: str | None, out_dir: str, *,
               prepared_dir: str | None = None, trained_dir: str | None = None) -> dict[str, Any]:
        """Step 6: the report (its rows, the Pareto front, the chart) written to `out_dir`; returns it."""

    def report_metrics(self, report: Mapping[str, Any]) -> dict[str, float]:
        """The per-model metrics of a report that the pipeline's parent run gets (``accuracy/<model>``, ...)."""

    def model_name(self, model_dir: str) -> str:
        """The name a saved standalone model records (its evaluation is called so), without loading its weights."""

    def eval_rows(self, prepared_dir: str, data: DataSection) -> EvalRows:
        """The labelled test rows the release gate scores every model of a size class on."""

    def example_texts(self, prepared_dir: str, data: DataSection) -> list[str]:
        """A few input texts, logged as each model's MLflow input example."""
