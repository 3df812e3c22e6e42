"""The vendored Trainer CRDs are what SOURCE.md says they are (byte for byte, licence beside them)."""

from __future__ import annotations

import hashlib
import re

from tests.infra.crd_schema import CRD_DIR, crd_schemas


def test_vendored_files_match_their_recorded_hashes() -> None:
    source = (CRD_DIR / "SOURCE.md").read_text()
    recorded = dict(re.findall(r"`manifests/base/crds/([\w.]+\.yaml)`\s*\(sha256 `([0-9a-f]{64})`\)", source))
    assert set(recorded) == {p.name for p in CRD_DIR.glob("*.yaml")}
    for name, digest in recorded.items():
        assert hashlib.sha256((CRD_DIR / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (CRD_DIR / "LICENSE").read_text()
    assert re.search(r"Release tag: `v\d+\.\d+\.\d+`", source)


def test_both_kinds_are_vendored() -> None:
    assert {kind for _, kind in crd_schemas()} == {"TrainJob", "ClusterTrainingRuntime"}
