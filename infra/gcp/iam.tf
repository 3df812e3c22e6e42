# Two Google service accounts, each bound to one Kubernetes service account through Workload Identity, each with
# object rights on its own buckets only (no project-wide storage roles).
resource "google_service_account" "pipeline" {
  account_id   = "matta-pipeline"
  display_name = "matta pipeline tasks (KFP, Kubeflow Trainer)"
}

resource "google_service_account" "mlflow" {
  account_id   = "mlflow-server"
  display_name = "MLflow tracking server (artifact proxy)"
}

resource "google_service_account_iam_member" "pipeline_workload_identity" {
  service_account_id = google_service_account.pipeline.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.kfp_namespace}/${var.kfp_service_account}]"
}

resource "google_service_account_iam_member" "mlflow_workload_identity" {
  service_account_id = google_service_account.mlflow.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.mlflow_namespace}/${var.mlflow_service_account}]"
}

# The pipeline writes task artifacts and the Teacher cache; MLflow artifacts go through the server, not the tasks.
resource "google_storage_bucket_iam_member" "pipeline_objects" {
  for_each = toset(["pipeline-root", "teacher-cache"])

  bucket = google_storage_bucket.matta[each.key].name
  role   = "roles/storage.objectUser"
  member = google_service_account.pipeline.member
}

resource "google_storage_bucket_iam_member" "mlflow_objects" {
  bucket = google_storage_bucket.matta["mlflow"].name
  role   = "roles/storage.objectUser"
  member = google_service_account.mlflow.member
}

# GKE nodes pull the images.
resource "google_artifact_registry_repository_iam_member" "nodes_pull" {
  location   = google_artifact_registry_repository.matta.location
  repository = google_artifact_registry_repository.matta.name
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.gpu_nodes.member
}
