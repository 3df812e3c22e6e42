"""build_image and the image name, without a Docker engine.

The real docker SDK runs in every test. Where a test needs an engine to answer, a stub speaking the few
Engine API calls involved (version, ping, build, push) listens on 127.0.0.1: it checks what the SDK sends
(the build context after .dockerignore, the build arguments) and how build_image reads the streamed reply.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from matta_core.image import (
    DEFAULT_PLATFORM,
    ImageBuildError,
    ImageTagError,
    build_image,
    check_image_ref,
    default_image_tag,
    engine_address,
)

REPO = Path(__file__).resolve().parents[2]
IMAGE_ID = "sha256:" + "ab" * 32
PUSHED_DIGEST = "sha256:" + "cd" * 32


@pytest.fixture(autouse=True)
def docker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No docker CLI config, context, TLS or proxy of the machine running the tests leaks in."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "MATTA_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- no engine ------------------------------------------------------------------------------------------

NO_ENGINE = [
    "no Docker engine reachable at {host}: start Docker, or set DOCKER_HOST",
    "on CI without an engine, build the image with your registry's builder (e.g. Cloud Build) from docker/Dockerfile",
]


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_no_engine_is_one_clear_error(kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    host = f"tcp://127.0.0.1:{unused_port()}" if kind == "tcp" else f"unix://{tmp_path}/no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(ImageBuildError) as info:
        build_image("matta:0.1.0")
    for text in NO_ENGINE:
        assert text.format(host=host) in str(info.value)
    # Nothing from inside docker/requests is chained onto it.
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_no_engine_traceback_stays_out_of_docker_and_requests(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/no-docker.sock"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DOCKER_HOST": host, "DOCKER_CONFIG": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", "from matta_core.image import build_image; build_image('matta:0.1.0')"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1
    assert NO_ENGINE[0].format(host=host) in done.stderr
    for inner in ("site-packages/docker/", "site-packages/requests/", "urllib3", "During handling"):
        assert inner not in done.stderr, done.stderr


def test_engine_address_defaults_to_the_local_socket() -> None:
    assert engine_address() == "unix:///var/run/docker.sock"


# --- names ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag", ["matta", "matta:latest", "registry.example.com:5000/team/matta", "eu.gcr.io/p/matta:LATEST"]
)
def test_moving_tags_are_refused_before_any_engine_is_asked(tag: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # An engine address that would fail: the tag check must come first, or this would be an ImageBuildError.
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{unused_port()}")
    with pytest.raises(ImageTagError, match=r"latest.*moves with every build.*KFP"):
        build_image(tag)


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("matta@sha256:" + "0" * 64, "a build is named by a tag"),
        ("Matta:1.0", "not a valid repository name component"),
        ("matta:-rc1", "is not a Docker tag"),
        ("", "image name is empty"),
    ],
)
def test_malformed_build_names_are_refused(tag: str, message: str) -> None:
    with pytest.raises(ImageTagError, match=message):
        build_image(tag)


@pytest.mark.parametrize(
    "ref",
    [
        "matta:0.1.0",
        "localhost:5000/matta:0.1.0-gpu",
        "europe-docker.pkg.dev/p/r/matta:0.1.0",
        "matta@sha256:" + "a" * 64,
    ],
)
def test_versioned_and_digest_refs_are_accepted(ref: str) -> None:
    assert check_image_ref(ref) == ref


def test_push_needs_a_registry_path() -> None:
    with pytest.raises(ImageTagError, match="push=True needs a registry path"):
        build_image("matta:0.1.0", push=True)


def test_unknown_variant_and_missing_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant 'tpu' is not one of"):
        build_image("matta:0.1.0", variant="tpu")  # type: ignore[arg-type]
    with pytest.raises(ImageBuildError, match=re.escape(f"no docker/Dockerfile.gpu under {tmp_path}")):
        build_image("matta:0.1.0", variant="gpu", context=tmp_path)


def test_default_image_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_image_tag() == f"matta:{metadata.version('matta')}"
    pinned = "europe-docker.pkg.dev/p/r/matta@sha256:" + "e" * 64
    monkeypatch.setenv("MATTA_IMAGE", f"  {pinned} ")
    assert default_image_tag() == pinned
    monkeypatch.setenv("MATTA_IMAGE", "europe-docker.pkg.dev/p/r/matta:latest")
    with pytest.raises(ImageTagError, match=r"^MATTA_IMAGE: .*latest"):
        default_image_tag()


# --- a stub engine --------------------------------------------------------------------------------------


class StubEngine(ThreadingHTTPServer):
    """Answers the Engine API calls build_image makes; records what it was sent."""

    def __init__(self, build_reply: list[dict[str, Any]], push_reply: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.build_reply, self.push_reply = build_reply, push_reply
        self.posts: list[tuple[str, dict[str, list[str]], bytes]] = []

    @property
    def host(self) -> str:
        return f"tcp://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StubEngine

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        body = b"OK" if path.endswith("/_ping") else json.dumps({"ApiVersion": "1.45", "Version": "stub"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        self.server.posts.append((url.path, parse_qs(url.query), self._body()))
        reply = self.server.build_reply if url.path.endswith("/build") else self.server.push_reply
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")  # the SDK streams only chunked replies
        self.end_headers()
        for message in reply:
            data = (json.dumps(message) + "\r\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return body


@pytest.fixture
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubEngine]:
    build_reply, push_reply = getattr(request, "param", (None, None))
    server = StubEngine(
        build_reply or [{"stream": "Step 1/20 : ARG PYTHON_IMAGE\n"}, {"aux": {"ID": IMAGE_ID}}, {"stream": "done\n"}],
        push_reply or [{"status": "Pushed", "id": "abc", "progressDetail": {}}, {"aux": {"Digest": PUSHED_DIGEST}}],
    )
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    monkeypatch.setenv("DOCKER_HOST", server.host)
    yield server
    server.shutdown()
    server.server_close()


def test_build_sends_the_filtered_context_and_returns_the_image_id(
    engine: StubEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    image_id = build_image("matta:0.1.0", build_args={"TORCH_INDEX_URL": "https://mirror.example/whl/cpu"})

    assert image_id == IMAGE_ID
    out = capsys.readouterr().out
    assert "Step 1/20 : ARG PYTHON_IMAGE" in out and f"built matta:0.1.0 ({IMAGE_ID})" in out
    ((path, query, body),) = engine.posts
    assert path.endswith("/build")
    assert query["t"] == ["matta:0.1.0"] and query["dockerfile"] == ["docker/Dockerfile"]
    assert query["platform"] == [DEFAULT_PLATFORM]
    args = json.loads(query["buildargs"][0])
    assert args["TORCH_INDEX_URL"] == "https://mirror.example/whl/cpu"
    assert args["VERSION"] == metadata.version("matta")
    with tarfile.open(fileobj=io.BytesIO(body)) as context:
        names = set(context.getnames())
    assert {
        "pyproject.toml",
        "README.md",
        "matta_core/__init__.py",
        "matta_core/image.py",
        "docker/Dockerfile",
    } <= names
    assert not {n.split("/")[0] for n in names} & {".venv", ".git", "tests", "outputs", "runs"}


@pytest.mark.parametrize(
    "engine",
    [([{"stream": "Step 5/20 : RUN pip install\n"}, {"error": "The command returned a non-zero code: 1"}], None)],
    indirect=True,
)
def test_a_failed_build_step_is_an_image_build_error(engine: StubEngine) -> None:
    with pytest.raises(ImageBuildError, match=r"docker build of matta:0\.1\.0-gpu failed: The command returned"):
        build_image("matta:0.1.0-gpu", variant="gpu", platform=None)
    ((_, query, _),) = engine.posts
    assert query["dockerfile"] == ["docker/Dockerfile.gpu"] and "platform" not in query


def test_push_reports_the_digest_to_pin(engine: StubEngine, capsys: pytest.CaptureFixture[str]) -> None:
    tag = "localhost:5000/team/matta:0.1.0"
    assert build_image(tag, push=True) == IMAGE_ID
    (_, _, _), (path, query, _) = engine.posts
    assert path.endswith("/images/localhost:5000/team/matta/push") and query["tag"] == ["0.1.0"]
    assert f"pushed localhost:5000/team/matta@{PUSHED_DIGEST}" in capsys.readouterr().out


def test_cli_without_an_engine_says_so_and_exits_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from matta_core.cli import app

    host = f"unix://{tmp_path}/no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    result = CliRunner().invoke(app, ["image", "build", "--tag", "matta:0.1.0"])
    assert result.exit_code == 1, result.output
    assert NO_ENGINE[0].format(host=host) in result.output


def test_cli_refuses_a_moving_tag_before_building() -> None:
    from typer.testing import CliRunner

    from matta_core.cli import app

    result = CliRunner().invoke(app, ["image", "build", "--tag", "matta:latest"])
    assert result.exit_code == 2, result.output
    assert "uses ':latest'" in result.output
