"""The import-linter contracts in pyproject.toml (``[tool.importlinter]``) hold, and they can fail.

`lint-imports` runs from the repository root with the project's configuration, exactly as a developer runs
``.venv/bin/lint-imports``; ``--no-cache`` keeps it from writing ``.import_linter_cache/`` into the checkout (the
graph builds in well under a second without it).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
TIMEOUT_S = 120


def _lint_imports(*args: str) -> tuple[int, str]:
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return done.returncode, done.stdout + done.stderr


def _flat(output: str) -> str:
    """The output with its line wrapping undone (lint-imports wraps contract names at 80 columns)."""
    return " ".join(output.split())


def test_the_import_contracts_hold() -> None:
    code, output = _lint_imports()
    assert code == 0, f"lint-imports found broken contracts (exit {code}):\n{output}"
    contracts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert contracts, "pyproject.toml has no [[tool.importlinter.contracts]]"
    for contract in contracts:  # every contract was checked, not just read
        assert f"{contract['name']} KEPT" in _flat(output), f"{contract['name']!r} not reported kept:\n{output}"


def test_a_contract_the_code_breaks_fails(tmp_path: Path) -> None:
    # The classifier family does import the shared training machinery: forbidding that must fail, so a passing
    # run above means the contracts were checked against the real import graph.
    config = tmp_path / "importlinter.toml"
    config.write_text(
        "[tool.importlinter]\n"
        'root_packages = ["matta_core"]\n'
        "\n"
        "[[tool.importlinter.contracts]]\n"
        'name = "Must break: the classifier family without the training machinery"\n'
        'type = "forbidden"\n'
        'source_modules = ["matta_core.families.classifier"]\n'
        'forbidden_modules = ["matta_core.training"]\n'
    )
    code, output = _lint_imports("--config", str(config))
    assert code != 0, f"lint-imports passed a contract the code breaks:\n{output}"
    flat = _flat(output)
    assert "Must break: the classifier family without the training machinery BROKEN" in flat, output
    assert "matta_core.families.classifier" in flat and "-> matta_core.training" in flat, output


def test_every_top_level_module_has_a_layer() -> None:
    # The forbidden contracts list their sources one by one: a new top-level package or module that is in
    # neither list would escape them silently.
    import pkgutil

    import matta_core

    contracts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = [c for c in contracts if c["type"] == "forbidden"]
    not_cli, shared = (set(c["source_modules"]) for c in forbidden)
    above = {"matta_core.families", "matta_core.config", "matta_core.steps", "matta_core.workflow"}
    top_level = {f"matta_core.{m.name}" for m in pkgutil.iter_modules(matta_core.__path__)} - {"matta_core.cli"}
    assert top_level == not_cli, f"the library contract's sources differ from matta_core's: {top_level ^ not_cli}"
    assert top_level == shared | above, f"neither shared nor above the families: {top_level ^ (shared | above)}"
