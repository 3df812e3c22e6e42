output "pipeline_root" {
  description = "cluster.pipeline_root and infra/kfp's defaultPipelineRoot."
  value       = "gs://${google_storage_bucket.matta["pipeline-root"].name}/root"
}

output "teacher_cache" {
  description = "The run config's cache_dir."
  value       = "gs://${google_storage_bucket.matta["teacher-cache"].name}/cache"
}

output "mlflow_artifacts_destination" {
  description = "MLFLOW_ARTIFACTS_DESTINATION in infra/mlflow/mlflow-server.config.env."
  value       = "gs://${google_storage_bucket.matta["mlflow"].name}/artifacts"
}

output "image_registry" {
  description = "Where `matta image build --push` sends the images."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.matta.repository_id}"
}

output "mlflow_database_private_ip" {
  description = "The host of MLFLOW_BACKEND_STORE_URI and of the basic-auth database_uri."
  value       = google_sql_database_instance.mlflow.private_ip_address
}

output "mlflow_database_password" {
  description = "The mlflow user's password (terraform output -raw mlflow_database_password)."
  value       = random_password.mlflow_db.result
  sensitive   = true
}

output "pipeline_service_account" {
  description = "infra/kfp/serviceaccount.yaml's iam.gke.io/gcp-service-account."
  value       = google_service_account.pipeline.email
}

output "mlflow_service_account" {
  description = "infra/mlflow/serviceaccount.yaml's iam.gke.io/gcp-service-account."
  value       = google_service_account.mlflow.email
}
