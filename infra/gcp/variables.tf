variable "project_id" {
  description = "The Google Cloud project (one per environment): buckets, registry, Cloud SQL and service accounts live here."
  type        = string
}

variable "environment" {
  description = "dev or prod: prod turns on Cloud SQL high availability and deletion protection."
  type        = string
  default     = "dev"

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "Region of the buckets, the registry and Cloud SQL (the GKE cluster's region)."
  type        = string
  default     = "europe-west4"
}

variable "network_name" {
  description = "The VPC of the GKE cluster: Cloud SQL gets a private IP in it."
  type        = string
  default     = "default"
}

variable "gke_cluster_name" {
  description = "The existing GKE cluster (Workload Identity and the Cloud Storage FUSE CSI driver enabled) that gets the GPU node pool."
  type        = string
}

variable "gke_location" {
  description = "The GKE cluster's location (region or zone)."
  type        = string
  default     = "europe-west4"
}

variable "gpu_machine_type" {
  description = "Machine type of the GPU nodes (g2 machines carry NVIDIA L4 GPUs)."
  type        = string
  default     = "g2-standard-8"
}

variable "gpu_accelerator_type" {
  description = "GPU type; the pipeline's and infra/trainer's node selector cloud.google.com/gke-accelerator must name the same."
  type        = string
  default     = "nvidia-l4"
}

variable "gpu_max_nodes" {
  description = "Upper bound of the GPU pool's autoscaler (it scales to zero when no task asks for a GPU)."
  type        = number
  default     = 2
}

variable "cloudsql_tier" {
  description = "Machine tier of the MLflow database."
  type        = string
  default     = "db-custom-1-3840"
}

variable "kfp_namespace" {
  description = "Kubeflow profile namespace that runs matta (infra/kfp)."
  type        = string
  default     = "kubeflow-user-example-com"
}

variable "kfp_service_account" {
  description = "Kubernetes service account of the pipeline's pods (infra/kfp/serviceaccount.yaml)."
  type        = string
  default     = "default-editor"
}

variable "mlflow_namespace" {
  description = "Namespace of the MLflow server (infra/mlflow)."
  type        = string
  default     = "mlflow"
}

variable "mlflow_service_account" {
  description = "Kubernetes service account of the MLflow server (infra/mlflow/serviceaccount.yaml)."
  type        = string
  default     = "mlflow-server"
}

variable "pipeline_root_retention_days" {
  description = "Days a task artifact under the pipeline root is kept (MLflow keeps what is released)."
  type        = number
  default     = 90
}
