"""`matta component <step>`: run one pipeline step from folders on disk, through its KFP component's own code.

Each command calls the component's Python function (``components/``) with artifacts that point at the given
paths, so a step reads and writes exactly the layout it has inside the pipeline: a folder written by
``matta component prepare --prepared DIR`` is what ``matta component teacher --prepared DIR ...`` reads. Tracking is
off unless ``--parent-run-id`` names an MLflow run to attach the step's child run to.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from matta_core.cli.app import app
from matta_core.cli.common import ConfigOption, SetOption, load_config
from matta_core.cli.errors import fail
from matta_core.families.base import ModelFamily
from matta_core.families.registry import family_for

component_app = typer.Typer(help="Run one pipeline step from files on disk (the component's own code).",
                            no_args_is_help=True)
app.add_typer(component_app, name="component")

PathIn = Annotated[Path, typer.Option(exists=True, file_okay=False, dir_okay=True, resolve_path=True)]
PathOut = Annotated[Path, typer.Option(resolve_path=True)]
MetricsOption = Annotated[Path | None, typer.Option(
    "--metrics", resolve_path=True, help="Where the step's metrics JSON goes (default: <output>.metrics.json).")]
ParentRunOption = Annotated[str, typer.Option(
    "--parent-run-id", help="MLflow run to attach this step's child run to (default: no tracking).")]
TrackingUriOption = Annotated[str | None, typer.Option(
    "--tracking-uri", help="MLflow store of --parent-run-id (default: the config's tracking_uri).")]


@component_app.command()
def prepare(
    prepared: PathOut, config: ConfigOption = None, set_: SetOption = [],  # noqa: B006
    metrics: MetricsOption = None, parent_run_id: ParentRunOption = "", tracking_uri: TrackingUriOption = None,
) -> None:
    """Validate, deduplicate and split the data into --prepared."""
    from matta_core.config import DataSection
    from matta_core.data.version import DataVersionError, data_version

    args = _common(config, set_, parent_run_id, tracking_uri)
    try:  # what the pipeline's first task reads; the step records nothing of it, but takes it as its cache key
        version = data_version(DataSection.model_validate_json(args["data_json"]))
    except DataVersionError as error:
        fail(error)
    _call("prepare", data_json=args["data_json"], data_version=version, prepared=_dataset(prepared),
          **_shared(args), metrics=_metrics(metrics, prepared))


@component_app.command()
def teacher(
    prepared: PathIn, teacher: PathOut, config: ConfigOption = None, set_: SetOption = [],  # noqa: B006
    metrics: MetricsOption = None, parent_run_id: ParentRunOption = "", tracking_uri: TrackingUriOption = None,
) -> None:
    """Run the Teacher (through its cache) over --prepared into --teacher."""
    args = _common(config, set_, parent_run_id, tracking_uri)
    _call("teacher", prepared=_dataset(prepared), data_json=args["data_json"], teacher_json=args["teacher_json"],
          cache_dir=args["cache_dir"], teacher=_dataset(teacher), metrics=_metrics(metrics, teacher),
          **_shared(args))


@component_app.command()
def train(
    prepared: PathIn, teacher: PathIn, trained: PathOut, config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006
    metrics: MetricsOption = None, parent_run_id: ParentRunOption = "", tracking_uri: TrackingUriOption = None,
) -> None:
    """Train the TA+Student and the baselines from --prepared and --teacher into --trained."""
    args = _common(config, set_, parent_run_id, tracking_uri)
    baselines = _call("train", prepared=_dataset(prepared), teacher=_dataset(teacher), data_json=args["data_json"],
                      model_json=args["model_json"], train_json=args["train_json"], trained=_model(trained),
                      metrics=_metrics(metrics, trained), **_shared(args))
    typer.echo(f"baseline models: {', '.join(baselines) or 'none'}")


@component_app.command()
def extract(
    trained: PathIn, prepared: PathIn, model: PathOut,
    widths: Annotated[str, typer.Option(
        help="Per-layer widths, comma separated: 96 or 256,64; for task causal_lm one ffn:heads pair per block: "
             "512:4,128:2.")],
    config: ConfigOption = None, set_: SetOption = [],  # noqa: B006
    metrics: MetricsOption = None, parent_run_id: ParentRunOption = "", tracking_uri: TrackingUriOption = None,
) -> None:
    """Cut the standalone model of --widths out of --trained into --model (parity-checked)."""
    args = _common(config, set_, parent_run_id, tracking_uri)
    parsed = _parse_widths(widths, family_for(args["task"]))
    _call("extract", trained=_model(trained), prepared=_dataset(prepared), widths=parsed,
          data_json=args["data_json"], extraction_json=args["extraction_json"], model=_model(model),
          metrics=_metrics(metrics, model), **_shared(args))


@component_app.command()
def evaluate(
    model: PathIn, prepared: PathIn, evaluation: PathOut, config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006
    model_subdir: Annotated[str, typer.Option(help="A model inside --model, e.g. baselines/kd.")] = "",
    teacher: Annotated[Path | None, typer.Option(
        exists=True, file_okay=False, resolve_path=True,
        help="The Teacher step's folder: required for task causal_lm (its test token ids and cloze examples).")] = None,
    metrics: MetricsOption = None, parent_run_id: ParentRunOption = "", tracking_uri: TrackingUriOption = None,
) -> None:
    """Evaluate the standalone model in --model on the test split of --prepared into --evaluation."""
    args = _common(config, set_, parent_run_id, tracking_uri)
    if teacher is None and family_for(args["task"]).evaluation_reads_teacher:
        raise typer.BadParameter(f"task {args['task']} scores a model on the Teacher's test token ids: give "
                                 "--teacher DIR")
    # The classifier reads no Teacher output here: an empty URI (path "") stands for none.
    from kfp.dsl import Dataset

    _call("evaluate", model=_model(model), prepared=_dataset(prepared),
          teacher=_dataset(teacher) if teacher is not None else Dataset(uri=""),
          data_json=args["data_json"],
          measure_speed=args["measure_speed"], model_subdir=model_subdir, evaluation=_dataset(evaluation),
          metrics=_metrics(metrics, evaluation), **_shared(args))


@component_app.command()
def report(
    evaluation: Annotated[list[Path], typer.Option(exists=True, file_okay=False, resolve_path=True,
                                                   help="An evaluation folder; repeat for every model.")],
    teacher: PathIn, report: PathOut, config: ConfigOption = None, set_: SetOption = [],  # noqa: B006
    metrics: MetricsOption = None, parent_run_id: ParentRunOption = "", tracking_uri: TrackingUriOption = None,
) -> None:
    """Write the report (table, Pareto front, chart) over the --evaluation folders into --report."""
    from kfp.dsl import HTML, Markdown

    args = _common(config, set_, parent_run_id, tracking_uri)
    with _numbered(evaluation) as evaluations:
        _call("report", evaluations=evaluations, teacher=_dataset(teacher), report=_dataset(report),
              report_html=HTML(uri=str(report.with_name(report.name + ".html"))),
              report_md=Markdown(uri=str(report.with_name(report.name + ".md"))),
              metrics=_metrics(metrics, report), **_shared(args))


@component_app.command()
def release(
    evaluation: Annotated[list[Path], typer.Option(exists=True, file_okay=False, resolve_path=True,
                                                   help="An evaluation folder (widths and baselines); repeat.")],
    model: Annotated[list[Path], typer.Option(exists=True, file_okay=False, resolve_path=True,
                                              help="An extracted width model folder; repeat for every width.")],
    trained: PathIn, teacher: PathIn, prepared: PathIn, release: PathOut, config: ConfigOption = None,
    set_: SetOption = [],  # noqa: B006
    metrics: MetricsOption = None, parent_run_id: ParentRunOption = "", tracking_uri: TrackingUriOption = None,
) -> None:
    """Gate each size class's best width against its @champion (or the ce_only baseline in --trained), register
    what passes as @challenger and write the A/B handoffs into --release. Needs --parent-run-id (the registry is
    MLflow's); without it the step only writes a report saying it was skipped."""
    from kfp.dsl import Markdown

    args = _common(config, set_, parent_run_id, tracking_uri)
    with _numbered(evaluation) as evaluations, _numbered(model) as width_models:
        _call("release", evaluations=evaluations, width_models=width_models, trained=_model(trained),
              teacher=_dataset(teacher), prepared=_dataset(prepared), data_json=args["data_json"],
              release_json=args["release_json"], release=_dataset(release),
              gate_report=Markdown(uri=str(release.with_name(release.name + ".md"))),
              metrics=_metrics(metrics, release), **_shared(args, release=True))


# --- helpers --------------------------------------------------------------------------------------------


@contextmanager
def _numbered(folders: list[Path]) -> Iterator[Any]:
    """The given folders as the pipeline hands them to the report and release steps: one artifact whose numbered
    sub-folders (`matta_core.steps.evaluate_all.numbered_dir`) are, here, links to them, in the given order."""
    from kfp.dsl import Dataset

    from matta_core.steps.evaluate_all import numbered_dir

    with tempfile.TemporaryDirectory(prefix="matta-numbered-") as tmp:
        for index, folder in enumerate(folders):
            Path(numbered_dir(tmp, index)).symlink_to(folder, target_is_directory=True)
        yield Dataset(uri=tmp)


def _parse_widths(text: str, family: ModelFamily) -> list[Any]:
    """``96`` / ``256,64`` (per-layer ints), or for the decoder ``512:4,128:2`` ((ffn, heads) per block): as the
    task's family writes a width spec (`ModelFamily.widths_form`)."""
    try:
        return family.parse_widths_text(text)
    except ValueError:
        raise typer.BadParameter(f"--widths expects {family.widths_form}, got {text!r}") from None


def _common(config: Path | None, overrides: list[str], parent_run_id: str, tracking_uri: str | None) -> dict[str, Any]:
    """The component parameters every step shares, from the validated config (exit 2 when it is invalid)."""
    from pipelines.code_version import code_version
    from pipelines.matta_pipeline import pipeline_arguments

    run_config = load_config(config, overrides)
    uri = tracking_uri if tracking_uri is not None else (run_config.tracking_uri or "")
    args = pipeline_arguments(run_config, tracking_uri=uri, parent_run_id=parent_run_id)
    return {**args, "code_version": code_version()}


def _shared(args: dict[str, Any], *, release: bool = False) -> dict[str, str]:
    """The parameters every component takes: the task, the code version and the MLflow parent run. The steps
    that may be cached also take the experiment, to find a parent run by the run's identity on a cluster; here
    it stays empty (a step runs tracked only under the ``--parent-run-id`` given)."""
    shared = {key: args[key] for key in ("task", "code_version", "tracking_uri", "parent_run_id")}
    return shared if release else {**shared, "experiment": ""}


def _call(name: str, **kwargs: Any) -> Any:
    """Run the component's function; a bad config section exits 2 like a bad config file."""
    from components import COMPONENTS
    from matta_core.config import ConfigError

    func: Callable[..., Any] = COMPONENTS[name].python_func
    try:
        result = func(**kwargs)
    except ConfigError as error:
        fail(error)
    metrics = kwargs["metrics"]
    typer.echo(f"{name}: done; metrics in {metrics.path}")
    for key, value in sorted(metrics.metadata.items()):
        typer.echo(f"  {key} = {value:g}")
    return result


def _dataset(path: Path) -> Any:
    from kfp.dsl import Dataset

    return Dataset(uri=str(path))


def _model(path: Path) -> Any:
    from kfp.dsl import Model

    return Model(uri=str(path))


def _metrics(path: Path | None, output: Path) -> Any:
    from kfp.dsl import Metrics

    return Metrics(uri=str(path if path is not None else output.with_name(output.name + ".metrics.json")))
