# The GPU node pool, added to an existing cluster. Tainted so only pods that tolerate
# nvidia.com/gpu=present:NoSchedule land on it: the pipeline's GPU tasks (resources.<step>.tolerations, key
# nvidia.com/gpu, operator Exists) and infra/trainer's runtime carry that toleration.
resource "google_service_account" "gpu_nodes" {
  account_id   = "matta-gpu-nodes"
  display_name = "matta GPU node pool (node identity only; pods use Workload Identity)"
}

resource "google_project_iam_member" "gpu_nodes_logging" {
  for_each = toset(["roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/monitoring.viewer"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.gpu_nodes.member
}

resource "google_container_node_pool" "gpu" {
  name     = "matta-gpu"
  cluster  = var.gke_cluster_name
  location = var.gke_location

  autoscaling {
    min_node_count = 0
    max_node_count = var.gpu_max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.gpu_machine_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.gpu_nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    guest_accelerator {
      type  = var.gpu_accelerator_type
      count = 1

      gpu_driver_installation_config {
        gpu_driver_version = "LATEST"
      }
    }

    taint {
      key    = "nvidia.com/gpu"
      value  = "present"
      effect = "NO_SCHEDULE"
    }

    # Pods get Google credentials through Workload Identity, never the node's.
    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    labels = {
      "matta.io/pool" = "gpu"
    }
  }
}
