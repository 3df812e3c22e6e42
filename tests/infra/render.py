"""Rendering infra/'s kustomizations offline, the way a user applies them: a copy of infra/ with the untracked
secret files written from their checked-in ``*.example`` (placeholder values only), then ``kubectl kustomize``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
#: Every kustomization a user applies or creates, relative to infra/: the two overlays and the TrainJob template.
OVERLAYS: tuple[str, ...] = ("overlays/dev", "overlays/prod")
KUSTOMIZATIONS: tuple[str, ...] = (*OVERLAYS, "trainer/job")
#: The untracked files the user writes (gitignored), each from the example beside it.
UNTRACKED: dict[str, str] = {
    "mlflow/mlflow-server.env": "mlflow/mlflow-server.env.example",
    "mlflow/mlflow-auth.ini": "mlflow/mlflow-auth.ini.example",
    "kfp/matta-mlflow.env": "kfp/matta-mlflow.env.example",
}
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def copy_infra(destination: Path) -> Path:
    """A copy of infra/ at `destination` with the untracked files made from their examples; never the user's own
    secret files (they are not copied, so no real secret reaches a test's output)."""
    ignored = {Path(p).name for p in UNTRACKED} | {"terraform.tfvars", ".terraform"}
    shutil.copytree(INFRA, destination, ignore=lambda _dir, names: [n for n in names if n in ignored])
    for target, example in UNTRACKED.items():
        shutil.copyfile(destination / example, destination / target)
    return destination


def kustomize(directory: Path) -> str:
    """`kubectl kustomize directory`'s YAML; AssertionError with kubectl's message when it does not render."""
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return done.stdout


def documents(text: str) -> list[dict]:
    """The objects of a multi-document YAML stream, empty documents left out."""
    return [d for d in yaml.load_all(text, Loader=yaml.CSafeLoader) if d]
