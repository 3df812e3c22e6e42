"""`matta benchmark quality` / `quality-lm`: run the quality benchmarks (benchmarks/quality.py, quality_lm.py)
from the `matta` command.

The benchmark scripts live in the repository, not in the installed package (they measure the package, they are
not part of it), so this command works from a source checkout (an editable install) and says so otherwise.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from matta_core.cli.app import app

benchmark_app = typer.Typer(help="Measured claims: benchmarks that write benchmarks/results/*.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """Import `benchmarks/<name>.py` as module `name`.

    Its folder goes on `sys.path` (not just a spec load) because the benchmark trains in spawned worker processes,
    which re-import it by module name, and spawned children inherit the parent's `sys.path`.
    """
    script = BENCHMARKS_DIR / f"{name}.py"
    if not script.is_file():
        typer.echo(f"error: {script} not found: `matta benchmark` runs from a source checkout of matta "
                   "(pip install -e .)", err=True)
        raise typer.Exit(2)
    if str(BENCHMARKS_DIR) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS_DIR))
    return importlib.import_module(name)


@benchmark_app.command("quality")
def quality(
    quick: Annotated[bool, typer.Option(help="CI smoke run (< 3 min): checks the plumbing, not the method.")] = False,
    out: Annotated[Path | None, typer.Option(help="Folder for quality_banking77.{json,md,png}.")] = None,
    mirror_dir: Annotated[str | None, typer.Option(help="Offline Banking77 mirror; default $MATTA_DATA_MIRROR, "
                                                        "else download and verify.")] = None,
    workers: Annotated[int, typer.Option(help="Training processes, one torch thread each.")] = 2,
) -> None:
    """MatTA vs CE-only, KD, per-width MatTA, Shampoo arms, the Teacher and TF-IDF on Banking77's test split."""
    argv = ["--workers", str(workers)]
    if quick:
        argv.append("--quick")
    if out is not None:
        argv += ["--out", str(out)]
    if mirror_dir is not None:
        argv += ["--mirror-dir", mirror_dir]
    load_benchmark("quality").main(argv)


@benchmark_app.command("quality-lm")
def quality_lm(
    quick: Annotated[bool, typer.Option(help="CI smoke run (~1 min, warm cache): checks the plumbing, not the "
                                             "method.")] = False,
    out: Annotated[Path | None, typer.Option(help="Folder for quality_lm.{json,md,png}.")] = None,
    mirror_dir: Annotated[str | None, typer.Option(help="Offline data mirror (wiki_sents); default "
                                                        "$MATTA_DATA_MIRROR, else download and verify.")] = None,
    workers: Annotated[int, typer.Option(help="Training processes, one torch thread each.")] = 2,
    steps: Annotated[int | None, typer.Option(help="Override the training steps of every run.")] = None,
) -> None:
    """MatTA vs CE-only and KD decoders (one MatTA run, every width extracted) and the SmolLM2 Teacher on
    wiki_sents' test split: perplexity and last-word cloze accuracy."""
    argv = ["--workers", str(workers)]
    if quick:
        argv.append("--quick")
    if out is not None:
        argv += ["--out", str(out)]
    if mirror_dir is not None:
        argv += ["--mirror-dir", mirror_dir]
    if steps is not None:
        argv += ["--steps", str(steps)]
    load_benchmark("quality_lm").main(argv)
