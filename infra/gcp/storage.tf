locals {
  # One bucket per job, named after the project (bucket names are global): infra/kfp and infra/mlflow use them.
  buckets = {
    pipeline-root = { retention_days = var.pipeline_root_retention_days }
    teacher-cache = { retention_days = 365 }
    mlflow        = { retention_days = 0 }
  }
}

resource "google_storage_bucket" "matta" {
  # checkov:skip=CKV_GCP_62: access logs would need a fourth bucket (itself unlogged); Cloud Audit Logs' data-access logs cover these buckets instead
  for_each = local.buckets

  name                        = "${var.project_id}-matta-${each.key}"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  # Versioning guards against an overwrite or delete by mistake; noncurrent versions expire after 30 days so it
  # costs little.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  # Task artifacts and Teacher outputs are reproducible: old ones expire. MLflow's artifacts are the registry's
  # models and never expire here (retention_days 0).
  dynamic "lifecycle_rule" {
    for_each = each.value.retention_days > 0 ? [each.value.retention_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}
