"""checkov over the rendered overlays and the Terraform: no failed check, every skip justified where it is made
(an annotation in the manifest, a `# checkov:skip=ID: reason` comment in the .tf file), and the scanner bites."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.checkov import failures, scan, skips
from tests.infra.render import INFRA, OVERLAYS

# The skips this project accepts, each justified in the file that makes it. A new skip must be added here too, so
# review sees it twice.
ACCEPTED_SKIPS = {
    "kubernetes": {"CKV_K8S_43", "CKV_K8S_35"},
    "terraform": {"CKV_GCP_62", "CKV_GCP_84", "CKV_GCP_6"},
}


@pytest.fixture(scope="module")
def overlay_reports(rendered_text: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("rendered")
    reports = {}
    for name in OVERLAYS:
        path = folder / f"{name.replace('/', '-')}.yaml"
        path.write_text(rendered_text[name])
        reports[name] = scan(path, "kubernetes")
    return reports


@pytest.fixture(scope="module")
def terraform_report() -> dict:
    return scan(INFRA / "gcp", "terraform")


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_passes_checkov(overlay_reports: dict[str, dict], name: str) -> None:
    report = overlay_reports[name]
    assert report["summary"]["passed"] > 50, report["summary"]
    assert failures(report) == []
    for check, reason in skips(report):
        assert check in ACCEPTED_SKIPS["kubernetes"], check
        assert len(reason.strip()) > 20, f"{check} skipped without a justification"


def test_terraform_passes_checkov(terraform_report: dict) -> None:
    assert terraform_report["summary"]["passed"] > 30, terraform_report["summary"]
    assert failures(terraform_report) == []
    found = skips(terraform_report)
    assert {check for check, _ in found} <= ACCEPTED_SKIPS["terraform"]
    assert all(len(reason.strip()) > 20 for _, reason in found), found


def test_checkov_bites(tmp_path: Path) -> None:
    # A pod that breaks the rules the overlays keep: root, privileged, no limits, :latest.
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: mlflow\nspec:\n  containers:\n"
        "    - name: c\n      image: mlflow-server:latest\n      securityContext:\n        privileged: true\n"
        "        runAsUser: 0\n"
    )
    failed = {line.split()[0] for line in failures(scan(bad, "kubernetes"))}
    assert {"CKV_K8S_14", "CKV_K8S_16", "CKV_K8S_11", "CKV_K8S_20"} <= failed, failed
    bucket = tmp_path / "tf"
    bucket.mkdir()
    (bucket / "main.tf").write_text('resource "google_storage_bucket" "b" {\n  name     = "b"\n  location = "EU"\n}\n')
    failed = {line.split()[0] for line in failures(scan(bucket, "terraform"))}
    assert {"CKV_GCP_29", "CKV_GCP_114"} <= failed, failed
