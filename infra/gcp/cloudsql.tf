# MLflow's backend store (runs, registry) and its basic-auth database, on a private IP in the cluster's VPC.
data "google_compute_network" "cluster" {
  name = var.network_name
}

resource "google_compute_global_address" "private_services" {
  name          = "matta-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = data.google_compute_network.cluster.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = data.google_compute_network.cluster.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

resource "google_sql_database_instance" "mlflow" {
  # checkov:skip=CKV_GCP_6: ssl_mode ENCRYPTED_ONLY refuses every unencrypted connection; the check wants client certificates too, which MLflow's driver would need per pod (or a Cloud SQL Auth Proxy sidecar) on a private-IP-only instance
  name                = "matta-mlflow-${var.environment}"
  database_version    = "POSTGRES_18"
  region              = var.region
  deletion_protection = var.environment == "prod"

  settings {
    tier              = var.cloudsql_tier
    availability_type = var.environment == "prod" ? "REGIONAL" : "ZONAL"

    ip_configuration {
      ipv4_enabled    = false
      private_network = data.google_compute_network.cluster.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
    }

    # PostgreSQL logging that the CIS benchmark (and checkov) ask for.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "mlflow" {
  name     = "mlflow"
  instance = google_sql_database_instance.mlflow.name
}

resource "google_sql_database" "mlflow_auth" {
  name     = "mlflow_auth"
  instance = google_sql_database_instance.mlflow.name
}

# The password is generated here and kept in Terraform state only: protect the state bucket accordingly, and copy
# it into infra/mlflow's untracked env and ini files (outputs.tf prints it on request).
resource "random_password" "mlflow_db" {
  length  = 32
  special = false
}

resource "google_sql_user" "mlflow" {
  name     = "mlflow"
  instance = google_sql_database_instance.mlflow.name
  password = random_password.mlflow_db.result
}
