"""Gate decisions name models by their pipeline-root URIs, not the pod-local paths a cluster task read them at."""

from __future__ import annotations

from matta_core.release.gate import REFERENCE_BASELINE, GateDecision, Reference
from matta_core.storage.artifact_uri import artifact_uri


def test_kfp_mounts_become_their_uris_and_local_paths_stay() -> None:
    assert artifact_uri("/gcs/team-bucket/root/matta-1/extract/model") == "gs://team-bucket/root/matta-1/extract/model"
    assert artifact_uri("/minio/mlpipeline/v2/artifacts/x") == "minio://mlpipeline/v2/artifacts/x"
    assert artifact_uri("/s3/bucket/x") == "s3://bucket/x"
    assert artifact_uri("/home/me/outputs/kfp/model") == "/home/me/outputs/kfp/model"
    assert artifact_uri("/gcsx/not-a-mount") == "/gcsx/not-a-mount"
    assert artifact_uri(None) is None


def test_a_gate_decision_on_a_cluster_records_uris() -> None:
    decision = GateDecision(
        size_class="s", registered_model="matta-s", pipeline_run_id="run", candidate={"name": "ta-96"},
        candidate_model_dir="/gcs/team-bucket/root/matta-1/extract-and-evaluate/model",
        reference=Reference(REFERENCE_BASELINE, "ce_only",
                            model_dir="/gcs/team-bucket/root/matta-1/train-models/trained/baselines/ce_only"),
        comparison=None, checks=[], test_rows=0, test_rows_hash="h",
    )
    stored = decision.to_dict()
    assert stored["candidate_model_dir"] == "gs://team-bucket/root/matta-1/extract-and-evaluate/model"
    assert stored["reference"]["model_dir"] == "gs://team-bucket/root/matta-1/train-models/trained/baselines/ce_only"
    assert stored["reference"]["kind"] == REFERENCE_BASELINE
    assert decision.candidate_model_dir.startswith("/gcs/")  # the task itself still reads the mounted path
