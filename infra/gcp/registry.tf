resource "google_artifact_registry_repository" "matta" {
  # checkov:skip=CKV_GCP_84: Google-managed encryption keys suffice for public-source images; CMEK would add a KMS key ring to operate
  location      = var.region
  repository_id = "matta"
  description   = "matta, matta-gpu and mlflow-server images, tagged by version (never latest)."
  format        = "DOCKER"

  docker_config {
    immutable_tags = true
  }
}
