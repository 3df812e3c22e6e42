"""infra/gcp, checked without terraform (not installable here, and its providers cannot be downloaded).

What is checked: every .tf file parses as HCL2 (python-hcl2); the layout is the conventional one (versions.tf with
exact provider pins, variables.tf, outputs.tf, every variable described and typed); formatting as far as a line
check can tell `terraform fmt`'s output (2-space indentation steps, no tabs, no trailing whitespace, a final
newline); the Workload Identity bindings name the Kubernetes service accounts infra/ renders. NOT checked: what
`terraform validate` checks (provider schemas, references, types), `terraform fmt`'s alignment of `=` signs and its
canonical spacing inside expressions, and anything `terraform plan` would find."""

from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

from tests.infra.render import INFRA

GCP = INFRA / "gcp"
TF_FILES = sorted(GCP.glob("*.tf"))


def format_problems(text: str) -> list[str]:
    """Lines of a .tf file that terraform fmt would change, as far as a line check can tell."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if "\t" in line:
            problems.append(f"{number}: tab")
        if line != line.rstrip():
            problems.append(f"{number}: trailing whitespace")
        indent = len(line) - len(line.lstrip(" "))
        if indent % 2:
            problems.append(f"{number}: indentation of {indent} spaces (terraform fmt uses steps of 2)")
    if text and not text.endswith("\n"):
        problems.append("no final newline")
    if "\n\n\n" in text:
        problems.append("two blank lines in a row")
    return problems


def _plain(node: object) -> object:
    # python-hcl2 8 keeps HCL's quotes around string literals and block labels, and marks blocks; drop both.
    if isinstance(node, dict):
        return {str(_plain(k)): _plain(v) for k, v in node.items() if k != "__is_block__"}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


def parsed(path: Path) -> dict:
    """A .tf file as python-hcl2 reads it, string literals unquoted."""
    with path.open() as handle:
        return _plain(hcl2.load(handle))  # type: ignore[return-value]


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.name)
def test_terraform_file_parses_and_is_formatted(path: Path) -> None:
    parsed(path)
    assert format_problems(path.read_text()) == []


def test_format_check_bites() -> None:
    assert format_problems('resource "a" "b" {\n\tname = "x" \n   count = 1\n}') == [
        "2: tab", "2: trailing whitespace", "3: indentation of 3 spaces (terraform fmt uses steps of 2)",
        "no final newline"]


def test_parser_bites(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tf"
    broken.write_text('resource "google_storage_bucket" "b" {\n  name = "b"\n')
    with pytest.raises(Exception):  # noqa: B017 - python-hcl2 raises lark's errors, several kinds
        parsed(broken)


def test_conventional_layout_and_pinned_providers() -> None:
    assert {"versions.tf", "variables.tf", "outputs.tf"} <= {p.name for p in TF_FILES}
    (terraform,) = parsed(GCP / "versions.tf")["terraform"]
    (providers,) = terraform["required_providers"]
    for name, spec in providers.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"]), f"provider {name} is not pinned exactly"
    for block in parsed(GCP / "variables.tf")["variable"]:
        ((name, spec),) = block.items()
        assert spec.get("description") and spec.get("type"), f"variable {name} needs a description and a type"


def _defaults() -> dict[str, object]:
    return {name: spec.get("default") for block in parsed(GCP / "variables.tf")["variable"]
            for name, spec in block.items()}


def test_workload_identity_binds_the_rendered_service_accounts(rendered: dict[str, list[dict]]) -> None:
    defaults = _defaults()
    accounts = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["metadata"]["annotations"]
                for o in rendered["overlays/prod"] if o["kind"] == "ServiceAccount"}
    bindings = {(defaults["kfp_namespace"], defaults["kfp_service_account"]): "matta-pipeline",
                (defaults["mlflow_namespace"], defaults["mlflow_service_account"]): "mlflow-server"}
    assert set(accounts) == set(bindings)
    for key, google_account in bindings.items():
        assert accounts[key]["iam.gke.io/gcp-service-account"].startswith(f"{google_account}@")
    iam = (GCP / "iam.tf").read_text()
    for account_id in bindings.values():
        assert f'account_id   = "{account_id}"' in iam


def test_gpu_pool_taint_is_the_one_the_pipeline_tolerates() -> None:
    (pool,) = [r["google_container_node_pool"]["gpu"] for r in parsed(GCP / "gke.tf")["resource"]
               if "google_container_node_pool" in r]
    (node_config,) = pool["node_config"]
    assert node_config["taint"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    (accelerator,) = node_config["guest_accelerator"]
    assert _defaults()["gpu_accelerator_type"] == "nvidia-l4"
    assert "${var.gpu_accelerator_type}" in str(accelerator["type"])


def test_buckets_are_private_versioned_and_expire() -> None:
    (bucket,) = [r["google_storage_bucket"]["matta"] for r in parsed(GCP / "storage.tf")["resource"]
                 if "google_storage_bucket" in r]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"] == [{"enabled": True}]
    assert bucket["lifecycle_rule"]
