"""Build-machine inputs: pip's effective configuration merged into one file, and what gets mounted for RUN steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from matta_core.imagebuild import host_inputs
from matta_core.imagebuild.base import debian_mirror, registry_host


@pytest.fixture
def pip_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pip configuration of the test's own: one config file plus a PIP_* variable, nothing of this machine's."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (tmp_path / "index" / "simple").mkdir(parents=True)
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2.14.1\n")
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nconstraint = {constraints}\nextra-index-url = file://{tmp_path}/index/simple\n"
                      "    https://example.invalid/simple\ntimeout = 5\n[install]\ntimeout = 7\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return tmp_path


def test_settings_merge_like_pip(pip_env: Path) -> None:
    settings = host_inputs.pip_settings(sys.executable)
    assert settings["find-links"] == str(pip_env / "wheels")  # from the variable
    assert settings["constraint"] == str(pip_env / "constraints.txt")
    assert settings["timeout"] == "7"  # [install] wins over [global]
    assert settings["extra-index-url"].split() == [f"file://{pip_env}/index/simple", "https://example.invalid/simple"]


def test_mounts_are_the_local_paths_the_settings_name(pip_env: Path) -> None:
    work = pip_env / "build-work"
    mounts = {m.target: m for m in host_inputs.build_mounts(work, sys.executable)}
    # The file:// "simple" index is mounted with its parent (its pages link to ../../files/...); remote URLs
    # are left to the network.
    assert set(mounts) >= {str(pip_env / "wheels"), str(pip_env / "constraints.txt"), str(pip_env / "index"),
                           host_inputs.PIP_CONF_TARGET}
    assert all(m.source == Path(m.target) for t, m in mounts.items()
               if t not in (host_inputs.PIP_CONF_TARGET, "/etc/ssl/certs/ca-certificates.crt"))
    assert mounts[host_inputs.PIP_CONF_TARGET].source == work / "pip.conf"
    assert all(m.podman_flag().endswith(":ro") for m in mounts.values())
    merged = (work / "pip.conf").read_text()
    assert merged.startswith("[global]\n") and f"find-links = {pip_env / 'wheels'}" in merged
    # pip inside the build reads the merged file exactly as it was meant: same settings back.
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("PIP_")},
                               "PIP_CONFIG_FILE": str(work / "pip.conf")})
    assert f"global.find-links='{pip_env / 'wheels'}'" in done.stdout
    assert "example.invalid" in done.stdout


def test_the_merged_file_is_written_outside_the_build_context(pip_env: Path) -> None:
    work = pip_env / "elsewhere"
    host_inputs.build_mounts(work, sys.executable)
    repo = Path(__file__).resolve().parents[2]
    assert not (work / "pip.conf").resolve().is_relative_to(repo)


def test_registry_host_by_dockers_rule() -> None:
    assert registry_host("python:3.11.15-slim-bookworm") == "registry-1.docker.io"
    assert registry_host("nvidia/cuda:13.0.2-base-ubuntu24.04") == "registry-1.docker.io"
    assert registry_host("europe-docker.pkg.dev/p/r/matta:0.1.0") == "europe-docker.pkg.dev"
    assert registry_host("localhost:5000/matta:1") == "localhost:5000"


def test_debian_mirror_is_the_one_apt_uses() -> None:
    mirror = debian_mirror()
    assert mirror.startswith(("http://", "https://")) and mirror.endswith("/debian")
