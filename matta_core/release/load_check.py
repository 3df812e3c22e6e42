"""Loadability check: a logged model must load and predict where only its logged requirements are installed.

A model that loads only where matta is installed (its code imports ``matta_core``, or its requirements name
``matta``, which no public package index has) cannot be served by the A/B system. Running the check in the
project's own environment would never notice, and a pipeline pod or a container usually has no package index to
build a fresh one from. So the gate builds the model's environment out of what is installed, and nothing more:

1. This process downloads the model (``models:/...`` from any tracking store) and reads its ``requirements.txt``.
   Every line must be a ``name==version`` pin a public index can serve. Refused, by line: pip options (``-e``,
   ``-r``, ``--index-url``), direct URLs and paths, unpinned names, local version labels (``torch==2.13.0+cpu``),
   and the project's own distribution (``matta``, the one that provides ``matta_core``, ``components`` and
   ``pipelines``).
2. It resolves the requirements' closure in the installed environment: each distribution, then through its
   metadata its dependencies (markers and extras evaluated), each checked against the installed version. A
   requirement that is missing, or installed at another version, fails the check by name. pip, setuptools and
   wheel join the closure, as in any fresh virtual environment.
3. It builds a *clean site*: a folder of symlinks to the files of the closure's distributions only, their
   ``.dist-info`` included, so imports and ``importlib.metadata`` alike see the closure and nothing else. A
   directory shared with a distribution outside it (``mlflow/`` holds files of both ``mlflow-skinny`` and
   ``mlflow``) is rebuilt entry by entry.
4. A fresh interpreter starts with ``-I -S`` (no site-packages, no user site, no ``PYTHON*`` variables, no
   working-directory imports), puts the clean site on ``sys.path``, installs an import blocker that refuses
   ``matta_core``, ``components`` and ``pipelines`` wherever they might be found, and with
   ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false`` loads each model from its downloaded folder and predicts a few
   texts. The caller compares the labels with the candidate's own. Models with the same requirements share one
   interpreter. A ``No module named 'x'`` failure is explained: which installed distribution provides ``x`` and
   that it is not in the model's requirements.

``environment="venv"`` runs the same child in a real virtual environment instead: ``python -m venv`` and
``pip install -r requirements.txt`` (pip's own configuration picks the index; nothing is passed), cached under
`venv_cache_dir` by the requirements' hash. It needs an index, and it proves what the isolated check cannot: that
the pins resolve there, with whatever versions pip picks for the dependencies the requirements do not pin.

This file is also the script the child runs (``python -I -S load_check.py --child REQUEST.json RESULT.json``):
at module level it imports the standard library only, and nothing of matta is imported in the child.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ENV_NO_PICKLE = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
#: The project's own top-level packages: never importable where a model is checked.
PROJECT_PACKAGES = ("matta_core", "components", "pipelines")
#: What every fresh virtual environment holds besides the requirements (MLflow's python_env.yaml build deps).
SEED_DISTRIBUTIONS = ("pip", "setuptools", "wheel")
ENVIRONMENTS = ("isolated", "venv")
REQUIREMENTS_FILE = "requirements.txt"
VENV_CACHE_ENV = "MATTA_LOAD_CHECK_VENV_CACHE"


@dataclass(frozen=True)
class LoadResult:
    """What the clean environment saw for one model URI."""

    model_uri: str
    ok: bool
    labels: list[str]
    error: str | None
    seconds: float
    #: Per text, the probability of every class in class order (the ``probability_<name>`` columns).
    probabilities: list[list[float]] = field(default_factory=list)
    #: Where it ran, in words: "clean site of 46 distributions" or "venv /path".
    environment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequirementError(ValueError):
    """A model's requirements cannot make a clean environment; the message names each offending requirement."""


def check_loadable(
    model_uris: Sequence[str],
    tracking_uri: str,
    texts: Sequence[str],
    *,
    timeout_s: float = 300.0,
    environment: str = "isolated",
    venv_cache_dir: str | Path | None = None,
) -> dict[str, LoadResult]:
    """Load and predict every URI in an environment of its logged requirements only (see module); result per URI.

    `environment`: ``"isolated"`` (a clean site of installed distributions; no index needed) or ``"venv"`` (a
    virtual environment pip builds from the requirements, cached in `venv_cache_dir`, default
    ``$MATTA_LOAD_CHECK_VENV_CACHE`` or ``<tmp>/matta-load-check-venvs``).
    """
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment {environment!r} unknown; allowed: {list(ENVIRONMENTS)}")
    if not model_uris:
        return {}
    results: dict[str, LoadResult] = {}
    with tempfile.TemporaryDirectory(prefix="matta-load-check-") as tmp:
        groups: dict[tuple[str, ...], list[tuple[str, Path]]] = {}
        for i, uri in enumerate(dict.fromkeys(model_uris)):
            started = time.perf_counter()
            try:
                local = _download(uri, tracking_uri, Path(tmp) / f"model-{i}")
                lines = read_requirements(local / REQUIREMENTS_FILE)
            except Exception as exc:  # reported to the gate, which fails the check with this message
                results[uri] = LoadResult(uri, False, [], f"cannot read the logged model: {type(exc).__name__}: "
                                          f"{exc}", time.perf_counter() - started)
                continue
            groups.setdefault(tuple(lines), []).append((uri, local))
        for g, (pins, models) in enumerate(groups.items()):
            started = time.perf_counter()
            try:
                requirements = parse_requirements(pins)
                if environment == "isolated":
                    closure = resolve_closure(requirements)
                    site_dir = build_clean_site(closure, Path(tmp) / f"site-{g}")
                    command, where = [sys.executable, "-I", "-S"], f"clean site of {len(closure)} distributions"
                else:
                    closure, site_dir = {}, None
                    python = ensure_venv(pins, Path(venv_cache_dir or _default_venv_cache()))
                    command, where = [str(python), "-I"], f"venv {python.parent.parent}"
            except (RequirementError, RuntimeError) as exc:
                for uri, _ in models:
                    results[uri] = LoadResult(uri, False, [], str(exc), time.perf_counter() - started)
                continue
            answers = _run_child(command, site_dir, models, tracking_uri, texts, Path(tmp) / f"child-{g}", timeout_s)
            for uri, answer in answers.items():
                error = answer.error and _explain(answer.error, closure)
                results[uri] = LoadResult(**{**answer.to_dict(), "error": error, "environment": where})
    return results


# ------------------------------------------------------------------------------------------ the requirements


def read_requirements(path: Path) -> list[str]:
    """The requirement lines of a logged ``requirements.txt`` (comments and blank lines dropped)."""
    if not path.is_file():
        raise FileNotFoundError(f"the logged model has no {path.name}: it cannot say what it needs to load")
    lines = [line.split(" #", 1)[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def project_distributions() -> set[str]:
    """Canonical names of the installed distributions that provide `PROJECT_PACKAGES` (``matta``)."""
    import importlib.metadata

    from packaging.utils import canonicalize_name

    providers = importlib.metadata.packages_distributions()
    found = {canonicalize_name(d) for package in PROJECT_PACKAGES for d in providers.get(package, [])}
    return found | {"matta"}


def parse_requirements(lines: Sequence[str]) -> list[Any]:
    """`lines` as `packaging` requirements; `RequirementError` naming every line a public index cannot serve."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    own = project_distributions()
    requirements, problems = [], []
    for line in lines:
        if line.startswith("-"):
            problems.append(f"{line!r}: pip options are not allowed; a serving host installs plain pins from its "
                            "own index")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            problems.append(f"{line!r} is not a 'name==version' requirement (a path or URL?)")
            continue
        name = canonicalize_name(requirement.name)
        pins = [s for s in requirement.specifier if s.operator in ("==", "===")]
        if requirement.url:
            problems.append(f"{line!r} points at {requirement.url}, not at a package index")
        elif name in own:
            problems.append(f"{line!r} is this project's own distribution, which no public package index has: "
                            "the model must carry its serving code (matta_core.serving) and need only public "
                            "packages")
        elif any("+" in s.version for s in requirement.specifier):
            public = ",".join(f"{s.operator}{s.version.split('+')[0]}" for s in requirement.specifier)
            problems.append(f"{line!r} pins a local version label, which public indexes do not serve; pin "
                            f"{requirement.name}{public}")
        elif not pins:
            problems.append(f"{line!r} is not pinned with '==': the served environment could differ from the "
                            "checked one")
        requirements.append(requirement)
    if problems:
        raise RequirementError("the model's requirements.txt cannot be installed from a public index: "
                               + "; ".join(problems))
    return requirements


def resolve_closure(requirements: Iterable[Any]) -> dict[str, Any]:
    """Installed distributions that `requirements` need, transitively, by canonical name (+ `SEED_DISTRIBUTIONS`).

    Raises `RequirementError` naming each requirement that is not installed or is installed at another version.
    """
    import importlib.metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    closure: dict[str, importlib.metadata.Distribution] = {}
    expanded: set[tuple[str, str]] = set()  # (distribution, extra) whose dependencies are queued
    problems: list[str] = []
    queue: list[tuple[Requirement, str]] = [(r, REQUIREMENTS_FILE) for r in requirements
                                            if r.marker is None or r.marker.evaluate({"extra": ""})]
    while queue:
        requirement, needed_by = queue.pop(0)
        name = canonicalize_name(requirement.name)
        if name not in closure:
            try:
                closure[name] = importlib.metadata.distribution(requirement.name)
            except importlib.metadata.PackageNotFoundError:
                problems.append(f"{requirement} (needed by {needed_by}) is not installed here")
                expanded.add((name, ""))
                continue
        dist = closure[name]
        if not requirement.specifier.contains(dist.version, prereleases=True):
            problems.append(f"{requirement} (needed by {needed_by}) but {dist.metadata['Name']} {dist.version} is "
                            "installed here")
        for extra in sorted(requirement.extras) or [""]:
            if (name, extra) in expanded:
                continue
            expanded.add((name, extra))
            for line in dist.requires or []:
                dependency = Requirement(line)
                if dependency.marker is None or dependency.marker.evaluate({"extra": extra}):
                    queue.append((dependency, f"{dist.metadata['Name']} {dist.version}"))
    if problems:
        raise RequirementError("the model's requirements do not match this environment: " + "; ".join(problems))
    for seed in SEED_DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            closure.setdefault(seed, importlib.metadata.distribution(seed))
    return closure


# ----------------------------------------------------------------------------------------- the environments


def build_clean_site(closure: Mapping[str, Any], target: Path) -> Path:
    """A folder in which exactly the files of `closure`'s distributions are importable (symlinks; see module)."""
    import importlib.metadata

    from packaging.utils import canonicalize_name

    wanted: dict[tuple[str, ...], Path] = {}
    for dist in closure.values():
        paths = _installed_paths(dist)
        if paths is None:
            raise RequirementError(f"{dist.metadata['Name']} {dist.version} was installed without a file list "
                                   "(RECORD), so a clean environment cannot be made of it; reinstall it with pip")
        base = Path(dist.locate_file(""))
        for parts in paths:
            wanted.setdefault(parts, base.joinpath(*parts))
    # Every folder that holds a file of some other distribution must be rebuilt, not linked whole.
    foreign: set[tuple[str, ...]] = set()
    for dist in importlib.metadata.distributions():
        if canonicalize_name(dist.metadata["Name"] or "") not in closure:
            for parts in _installed_paths(dist) or []:
                foreign.update(parts[:i] for i in range(1, len(parts) + 1))
    target.mkdir(parents=True)
    linked: set[tuple[str, ...]] = set()
    for parts, real in sorted(wanted.items()):
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            if prefix in linked:
                break
            if prefix not in foreign or depth == len(parts):
                source = real
                for _ in range(len(parts) - depth):
                    source = source.parent
                if not (source.exists() or source.is_symlink()):
                    break  # a RECORD entry whose file is gone (a .pyc pip never wrote): nothing to link
                link = target.joinpath(*prefix)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source, target_is_directory=source.is_dir())
                linked.add(prefix)
                break
    return target


def _installed_paths(dist: Any) -> list[tuple[str, ...]] | None:
    """The files a distribution installed, as path parts relative to its site folder (scripts outside it dropped).

    Read from RECORD directly: ``Distribution.files`` stats every file, which takes seconds for a large
    environment.
    """
    record = dist.read_text("RECORD")
    if record is not None:
        names = [row[0] for row in csv.reader(record.splitlines()) if row]
    elif dist.files is not None:
        names = [str(file) for file in dist.files]
    else:
        return None
    parts = (tuple(name.split("/")) for name in names if name and not name.startswith("/"))
    return [p for p in parts if ".." not in p]


def ensure_venv(requirements: Sequence[str], cache_dir: Path, *, timeout_s: float = 1800.0) -> Path:
    """The python of a virtual environment with exactly `requirements` installed by pip; built once per hash.

    pip's own configuration (its config files and ``PIP_*`` variables) decides where packages come from. Raises
    `RuntimeError` with pip's output when they do not install.
    """
    text = "\n".join(requirements) + "\n"
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{text}".encode()).hexdigest()[:20]
    cache_dir.mkdir(parents=True, exist_ok=True)
    root, python = cache_dir / key, cache_dir / key / "bin" / "python"
    with open(cache_dir / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per key; the others wait, then reuse its venv
        if (root / ".complete").is_file():
            return python
        shutil.rmtree(root, ignore_errors=True)
        (cache_dir / f"{key}.txt").write_text(text)
        steps = [[sys.executable, "-m", "venv", str(root)],
                 [str(python), "-m", "pip", "install", "--no-input", "-r", str(cache_dir / f"{key}.txt")]]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"building the model's virtual environment took over {timeout_s:g} s at "
                                   f"{' '.join(step[-3:])!r}") from exc
            if done.returncode != 0:
                raise RuntimeError(f"building the model's virtual environment failed at {' '.join(step[-3:])!r} "
                                   f"(exit {done.returncode}): {(done.stdout + done.stderr).strip()[-3000:]}")
        (root / ".complete").write_text(text)
    return python


def _default_venv_cache() -> Path:
    return Path(os.environ.get(VENV_CACHE_ENV) or Path(tempfile.gettempdir()) / "matta-load-check-venvs")


def _download(model_uri: str, tracking_uri: str, dst: Path) -> Path:
    """The model's files in a local folder; ``models:/`` URIs are resolved against `tracking_uri` (also the
    registry), not against whatever URI this process has set globally."""
    import mlflow
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    source = model_uri
    if model_uri.startswith("models:/"):
        client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        found = get_model_name_and_version(client, model_uri)
        source = (client.get_logged_model(found[0]).artifact_location if len(found) == 1
                  else client.get_model_version_download_uri(*found))
    dst.mkdir(parents=True)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=tracking_uri))


def _run_child(command: list[str], site_dir: Path | None, models: list[tuple[str, Path]], tracking_uri: str,
               texts: Sequence[str], work: Path, timeout_s: float) -> dict[str, LoadResult]:
    work.mkdir()
    request, result = work / "request.json", work / "result.json"
    request.write_text(json.dumps({
        "site_dir": None if site_dir is None else str(site_dir), "blocked": list(PROJECT_PACKAGES),
        "models": [{"model_uri": uri, "path": str(path)} for uri, path in models], "texts": [str(t) for t in texts],
    }))
    env = {**os.environ, **ENV_NO_PICKLE, "MLFLOW_TRACKING_URI": tracking_uri}
    try:
        done = subprocess.run([*command, str(Path(__file__).resolve()), "--child", str(request), str(result)],
                              cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {uri: LoadResult(uri, False, [], f"load check timed out after {timeout_s:g} s", timeout_s)
                for uri, _ in models}
    if done.returncode != 0 or not result.is_file():
        why = f"load-check process exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        return {uri: LoadResult(uri, False, [], why, 0.0) for uri, _ in models}
    return {a["model_uri"]: LoadResult(**a) for a in json.loads(result.read_text())}


_NO_MODULE = re.compile(r"No module named '([^'.]+)")


def _explain(error: str, closure: Mapping[str, Any]) -> str:
    """Add to a ``No module named 'x'`` error which installed distribution has ``x`` and why it was not there."""
    import importlib.metadata

    found = _NO_MODULE.search(error)
    if not found or found.group(1) in PROJECT_PACKAGES:
        return error  # the blocker's own message already says what is wrong
    providers = importlib.metadata.packages_distributions().get(found.group(1))
    if not providers:
        return error
    return (f"{error} [{found.group(1)!r} is installed here by {', '.join(sorted(set(providers)))}, which is not "
            "among the model's requirements or their dependencies: add it to the logged requirements]")


# -------------------------------------------------------------------------------------- the child process


class _ProjectBlocker:
    """A meta path finder that refuses the project's packages, wherever a path entry could find them."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        top = fullname.partition(".")[0]
        if top in self.names:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} in the model's clean environment: {top} is matta's own code, which "
                "a serving host does not have; the model must carry everything it imports (see "
                "matta_core.serving) and require only public packages", name=fullname)
        return None


def _load_and_predict(model_uri: str, path: str, texts: list[str]) -> LoadResult:
    started = time.perf_counter()
    try:
        import mlflow.pyfunc
        import pandas as pd

        frame = mlflow.pyfunc.load_model(path).predict(pd.DataFrame({"text": texts}))
        labels = [str(v) for v in frame["label"]]
        columns = [c for c in frame.columns if str(c).startswith("probability_")]
        probabilities = frame[columns].astype(float).values.tolist()
    except Exception as exc:  # reported to the gate, which fails the check with this message
        return LoadResult(model_uri, False, [], f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
    return LoadResult(model_uri, True, labels, None, time.perf_counter() - started, probabilities)


def _child(request_path: str, result_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    if request["site_dir"]:
        import site

        site.addsitedir(request["site_dir"])
    blocked = request["blocked"]
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in blocked)
    if loaded:
        raise SystemExit(f"the load-check process started with project modules already imported: {loaded}")
    sys.meta_path.insert(0, _ProjectBlocker(blocked))
    results = [_load_and_predict(m["model_uri"], m["path"], request["texts"]).to_dict() for m in request["models"]]
    Path(result_path).write_text(json.dumps(results))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "--child":
        raise SystemExit("usage: python -I -S load_check.py --child REQUEST.json RESULT.json")
    _child(args[1], args[2])


if __name__ == "__main__":
    main()
