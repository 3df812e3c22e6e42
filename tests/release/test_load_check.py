"""The gate's loadability check loads a model where only its logged requirements are importable, matta is not.

One good model and five bad ones are logged to a real sqlite store and checked in one call, as the release step
does: the good one must load and predict exactly what its folder predicts; each bad one must be rejected with a
message that names the cause (a requirement on matta, a local build label, a version not installed, code that
imports matta, code that imports a package its requirements do not name).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from matta_core.release.load_check import (
    LoadResult,
    RequirementError,
    build_clean_site,
    check_loadable,
    parse_requirements,
    resolve_closure,
)
from matta_core.tracking import log_standalone_model
from matta_core.tracking.models import runtime_requirements
from matta_core.tracking.text_predictor import TextPredictor
from tests.tiny_student import write_tiny_student

SCRIPTS = Path(__file__).parent / "scripts"
TORCH = torch.__version__.split("+")[0]  # the public version, as logged requirements pin it
LABELS = ("card_arrival", "top_up", "fees", "pin")
TEXTS = [
    "I still have not received my new card",
    "How do I top up my account with a cheque?",
    "why was I charged a fee for my transfer",
    "Can I change my PIN at an ATM?",
    "where is my card, it has been two weeks",
    "",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny extracted Student with weights large enough that predictions differ by text."""
    return write_tiny_student(tmp_path_factory.mktemp("student") / "student-8", 4, LABELS)


def _replace(prefix: str, line: str) -> list[str]:
    return [line if pin.startswith(prefix) else pin for pin in runtime_requirements()]


@pytest.fixture(scope="module")
def checked(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadResult]:
    store = f"sqlite:///{tmp_path_factory.mktemp('load-check-store') / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    try:
        def standalone(name: str, requirements: list[str] | None = None) -> str:
            return log_standalone_model(model_dir, name, input_example_texts=TEXTS[:2],
                                        pip_requirements=requirements)

        def from_code(name: str, script: str) -> str:
            info = mlflow.pyfunc.log_model(name=name, python_model=str(SCRIPTS / script),
                                           artifacts={"model_dir": str(model_dir)},
                                           pip_requirements=runtime_requirements())
            return str(info.model_uri)

        uris = {
            "good": standalone("good"),
            "requires_matta": standalone("requires-matta", [*runtime_requirements(), "matta==0.1.0"]),
            "local_label": standalone("local-label", _replace("torch==", f"torch=={TORCH}+cpu")),
            "not_installed": standalone("not-installed", _replace("numpy==", "numpy==1.26.0")),
            "imports_matta": from_code("imports-matta", "needs_matta_model.py"),
            "imports_unlisted": from_code("imports-unlisted", "needs_sklearn_model.py"),
        }
    finally:
        mlflow.set_tracking_uri(None)
    results = check_loadable(list(uris.values()), store, TEXTS)
    return {case: results[uri] for case, uri in uris.items()}


def test_good_model_loads_without_matta_and_predicts_exactly_its_folder(checked: dict[str, LoadResult],
                                                                         model_dir: Path) -> None:
    result = checked["good"]
    assert result.ok, result.error
    assert result.environment.startswith("clean site of ")
    predictor = TextPredictor(model_dir)
    expected = predictor.probabilities(TEXTS)
    assert result.labels == [predictor.names[i] for i in expected.argmax(axis=1)]
    assert len(set(result.labels)) > 1, "the tiny model should not predict one class for everything"
    np.testing.assert_allclose(np.array(result.probabilities), expected, rtol=0, atol=1e-6)


def test_requirement_on_matta_is_rejected(checked: dict[str, LoadResult]) -> None:
    result = checked["requires_matta"]
    assert not result.ok
    assert "'matta==0.1.0' is this project's own distribution, which no public package index has" in result.error


def test_local_version_label_is_rejected(checked: dict[str, LoadResult]) -> None:
    result = checked["local_label"]
    assert not result.ok
    assert f"'torch=={TORCH}+cpu' pins a local version label" in result.error
    assert f"pin torch=={TORCH}" in result.error


def test_version_not_installed_is_named(checked: dict[str, LoadResult]) -> None:
    result = checked["not_installed"]
    assert not result.ok
    assert (f"numpy==1.26.0 (needed by requirements.txt) but numpy {np.__version__} is installed here"
            in result.error)


def test_code_that_imports_matta_is_rejected(checked: dict[str, LoadResult]) -> None:
    result = checked["imports_matta"]
    assert not result.ok
    assert "No module named 'matta_core" in result.error and "matta's own code" in result.error


def test_code_that_imports_an_unlisted_package_is_rejected(checked: dict[str, LoadResult]) -> None:
    result = checked["imports_unlisted"]
    assert not result.ok
    assert "No module named 'sklearn'" in result.error
    assert "'sklearn' is installed here by scikit-learn, which is not among the model's requirements" in result.error


@pytest.mark.parametrize(("line", "message"), [
    ("-e .", "pip options are not allowed"),
    ("--index-url https://example.org/simple", "pip options are not allowed"),
    ("mypkg @ file:///tmp/mypkg-1.0.whl", "points at file:///tmp/mypkg-1.0.whl"),
    ("./dist/mypkg-1.0.whl", "is not a 'name==version' requirement"),
    ("numpy", "is not pinned with '=='"),
    ("numpy>=1.26", "is not pinned with '=='"),
    ("Matta==0.1.0", "this project's own distribution"),
])
def test_requirements_an_index_cannot_serve_are_refused_by_line(line: str, message: str) -> None:
    with pytest.raises(RequirementError, match="cannot be installed from a public index") as refused:
        parse_requirements(["numpy==2.0.0", line])
    assert repr(line) in str(refused.value) and message in str(refused.value)


def test_clean_site_holds_the_closure_and_nothing_else(tmp_path: Path) -> None:
    closure = resolve_closure(parse_requirements(runtime_requirements()))
    assert {"mlflow-skinny", "torch", "numpy", "pandas", "safetensors", "pip"} <= set(closure)
    assert not {"mlflow", "matta", "scikit-learn", "sqlalchemy"} & set(closure)
    site = build_clean_site(closure, tmp_path / "site")
    probe = (
        "import importlib.metadata as m, importlib.util as u, json, site, sys\n"
        f"site.addsitedir({str(site)!r})\n"
        "import mlflow.pyfunc, torch\n"
        "print(json.dumps({'dists': sorted({d.metadata['Name'].lower() for d in m.distributions()}),\n"
        "  'found': {n: u.find_spec(n) is not None for n in ('matta_core', 'components', 'sklearn', 'sqlalchemy',\n"
        "                                                     'mlflow', 'torch', 'pandas')},\n"
        "  'ui': u.find_spec('mlflow.server').submodule_search_locations[0]}))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    names = {importlib.metadata.distribution(name).metadata["Name"].lower() for name in closure}
    assert set(seen["dists"]) == names
    assert seen["found"] == {"matta_core": False, "components": False, "sklearn": False, "sqlalchemy": False,
                             "mlflow": True, "torch": True, "pandas": True}
    # mlflow/ is shared with the full mlflow distribution: only mlflow-skinny's files are there (no UI build).
    assert not (Path(seen["ui"]) / "js").exists()
