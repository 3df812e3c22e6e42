"""docker/mlflow-server/Dockerfile (the image of infra/mlflow), linted like the project's Dockerfiles: hadolint, a
pinned base, a numeric non-root user, pinned packages that agree with pyproject.toml, no pip cache."""

from __future__ import annotations

import re
import shlex
import tomllib

from matta_core.image import check_image_ref
from tests.docker.test_dockerfiles import REPO, commands, hadolint, read_dockerfile

PATH = REPO / "docker" / "mlflow-server" / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    findings = hadolint(PATH)
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_base_is_pinned_and_user_is_numeric_non_root() -> None:
    df = read_dockerfile(PATH)
    (base,) = df.external_bases()
    check_image_ref(base)
    assert re.search(r":\d+\.\d+\.\d+", base), base
    uid, _, gid = df.all("USER")[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    # infra/mlflow runs it as this uid.
    assert f"runAsUser: {uid}" in (REPO / "infra" / "mlflow" / "deployment.yaml").read_text()


def test_packages_are_pinned_and_mlflow_matches_the_project() -> None:
    df = read_dockerfile(PATH)
    installs = [c for r in df.all("RUN") for c in commands(r) if "pip install" in c]
    assert installs and all("--no-cache-dir" in c for c in installs)
    packages = [w for c in installs for w in shlex.split(c)[2:] if not w.startswith("-")]
    assert packages and all(re.fullmatch(r"[\w.-]+(\[[\w,]+\])?==[\w.]+", p) for p in packages), packages
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (project_mlflow,) = [d for d in extras["local"] if d.startswith("mlflow==")]
    # The deployment runs --app-name=basic-auth, which needs MLflow's [auth] extra (Flask-WTF).
    assert project_mlflow.replace("mlflow", "mlflow[auth]", 1) in packages
    assert {re.sub(r"\[.*\]", "", p.split("==")[0]) for p in packages} == {
        "mlflow", "psycopg2-binary", "google-cloud-storage"}
