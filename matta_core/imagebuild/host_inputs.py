"""Build inputs that belong to the build machine, not to the image: pip's configuration and what it points at.

A build machine may reach package indexes only through its own settings: a TLS-intercepting proxy whose CA only
the host's bundle holds, local wheel folders and ``file://`` indexes named in pip's config files or ``PIP_*``
variables (on this project's build machine, that is how pip finds the CPU build of torch). The image must not
carry any of it. So pip's *effective* configuration (``pip config list``: every config file and ``PIP_*``
variable, merged the way pip merges them) is written to one temporary ``pip.conf``, and that file, the host's CA
bundle and every local path the configuration names are mounted read-only into the build's RUN steps at the
same paths (``podman build -v``). Build-time mounts leave nothing in any layer; ``tests/docker`` checks the built
image layer by layer.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

# pip options whose values are local paths or URLs that may point at this machine's files.
_PATH_OPTIONS = {"cert", "client-cert", "constraint", "find-links", "index-url", "extra-index-url", "requirement"}
#: Where the merged configuration is mounted: pip reads it as its site-wide file in any image.
PIP_CONF_TARGET = "/etc/pip.conf"


@dataclass(frozen=True)
class Mount:
    """One read-only bind mount for the build's RUN steps."""

    source: Path
    target: str

    def podman_flag(self) -> str:
        return f"{self.source}:{self.target}:ro"


def pip_settings(python: str = sys.executable) -> dict[str, str]:
    """pip's effective settings as ``{option: value}`` (config files first, then ``PIP_*`` variables)."""
    try:
        done = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    by_section: dict[str, dict[str, str]] = {"global": {}, "install": {}, ":env:": {}}
    for line in done.stdout.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        section, _, option = key.rpartition(".")
        value = raw.strip().strip("'\"").replace("\\n", "\n")
        if section in by_section:
            by_section[section][option] = value
    # pip's precedence: the [global] section, then the command's own ([install]), then PIP_* variables.
    return {**by_section["global"], **by_section["install"], **by_section[":env:"]}


def ca_bundle() -> Path | None:
    """The host's CA bundle as Python's ssl module finds it (the proxy's CA is in it where there is one)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def build_mounts(workdir: Path, python: str = sys.executable) -> list[Mount]:
    """Write the merged pip.conf into ``workdir`` and return every mount the build's RUN steps need.

    ``workdir`` must be outside the build context (a temporary folder), so the file cannot reach a layer even
    through a ``COPY``.
    """
    settings = pip_settings(python)
    mounts: dict[str, Mount] = {}
    bundle = ca_bundle()
    if bundle is not None:
        # At the path Debian's OpenSSL and the merged pip.conf's `cert` both look at.
        mounts["/etc/ssl/certs/ca-certificates.crt"] = Mount(bundle, "/etc/ssl/certs/ca-certificates.crt")
        settings["cert"] = "/etc/ssl/certs/ca-certificates.crt"
    for option in sorted(_PATH_OPTIONS & settings.keys()):
        if option == "cert":
            continue
        for value in settings[option].split():
            folder = _local_folder(option, value)
            if folder is not None:
                mounts.setdefault(str(folder), Mount(folder, str(folder)))
    workdir.mkdir(parents=True, exist_ok=True)
    pip_conf = workdir / "pip.conf"
    pip_conf.write_text(render_pip_conf(settings))
    mounts[PIP_CONF_TARGET] = Mount(pip_conf, PIP_CONF_TARGET)
    return list(mounts.values())


def render_pip_conf(settings: dict[str, str]) -> str:
    lines = ["[global]"]
    for option, value in sorted(settings.items()):
        parts = value.split()
        if len(parts) > 1:
            lines.append(f"{option} =")
            lines += [f"    {part}" for part in parts]
        else:
            lines.append(f"{option} = {value}")
    return "\n".join(lines) + "\n"


def _local_folder(option: str, value: str) -> Path | None:
    """The host path a setting needs inside the build, or None for a remote URL."""
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme != "file":
            return None
        path = Path(unquote(parts.path))
    else:
        path = Path(value)
    if not path.is_absolute() or not path.exists():
        return None
    if option in ("index-url", "extra-index-url") and path.name == "simple":
        # A file:// "simple" index links its files relative to its parent (../../files/...).
        return path.parent
    return path
