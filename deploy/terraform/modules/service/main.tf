# One Cloud Run (v2) service in one region, running as its own service
# account (created by the stack, shared by its regions). Terraform owns the
# service's configuration; deploy/deploy.sh owns the image and the traffic
# split, which Terraform therefore ignores after creation.

variable "project" {
  type        = string
  description = "Project id."
}
variable "region" {
  type        = string
  description = "Region."
}
variable "name" {
  type        = string
  description = "Service name (memory-server, orchestrator)."
}
variable "image" {
  type        = string
  description = "The first image; later ones come from deploy.sh."
}
variable "size" {
  description = "cpu, memory, min_instances, max_instances, concurrency (settings module)."

  type = object({
    cpu           = string
    memory        = string
    min_instances = number
    max_instances = number
    concurrency   = number
  })
}
variable "ingress" {
  type        = string
  description = "INGRESS_TRAFFIC_INTERNAL_ONLY for the memory server; ALL behind auth otherwise."
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
}
variable "timeout" {
  type        = string
  description = "Longest request (streamed runs of the orchestrator need minutes)."
  default     = "60s"
}
variable "egress" {
  type        = string
  description = "PRIVATE_RANGES_ONLY (Redis only); ALL_TRAFFIC to reach an internal-ingress service through the VPC."
  default     = "PRIVATE_RANGES_ONLY"
}
variable "connector_id" {
  type        = string
  description = "Serverless VPC Access connector (private egress to Redis)."
}
variable "env" {
  type        = map(string)
  description = "Plain environment variables."
  default     = {}
}
variable "secret_env" {
  type        = map(string)
  description = "Environment variable => Secret Manager secret id (latest version)."
  default     = {}
}
variable "secret_files" {
  type        = map(string)
  description = "Directory => Secret Manager secret id; the latest version is the file `value` in it."
  default     = {}
}
variable "invokers" {
  type        = map(string)
  description = "Name => service account allowed to call this service (roles/run.invoker); names, not emails, key the grants so plans know them before the accounts exist."
  default     = {}
}
variable "service_account" {
  type        = string
  description = "The service's own identity (one per service, never the default compute account)."
}
variable "labels" {
  type        = map(string)
  description = "Resource labels."
}

resource "google_cloud_run_v2_service" "service" {
  project             = var.project
  location            = var.region
  name                = var.name
  ingress             = var.ingress
  labels              = var.labels
  deletion_protection = true

  template {
    service_account                  = var.service_account
    max_instance_request_concurrency = var.size.concurrency
    timeout                          = var.timeout

    scaling {
      min_instance_count = var.size.min_instances
      max_instance_count = var.size.max_instances
    }

    vpc_access {
      connector = var.connector_id
      egress    = var.egress
    }

    dynamic "volumes" {
      for_each = var.secret_files
      content {
        name = "secret${replace(volumes.key, "/", "-")}"
        secret {
          secret = volumes.value
          items {
            version = "latest"
            path    = "value"
          }
        }
      }
    }

    containers {
      image = var.image
      ports {
        container_port = 8080
      }
      resources {
        limits = {
          cpu    = var.size.cpu
          memory = var.size.memory
        }
        # The index lives in memory, and the change-stream follower and the
        # background job workers run between requests: CPU stays allocated.
        cpu_idle = false
      }

      dynamic "env" {
        for_each = var.env
        content {
          name  = env.key
          value = env.value
        }
      }
      dynamic "env" {
        for_each = var.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      dynamic "volume_mounts" {
        for_each = var.secret_files
        content {
          name       = "secret${replace(volume_mounts.key, "/", "-")}"
          mount_path = volume_mounts.key
        }
      }

      # Ready only once the index has caught up with the store.
      startup_probe {
        http_get {
          path = "/readyz"
        }
        period_seconds    = 2
        failure_threshold = 60
        timeout_seconds   = 2
      }
      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 10
        failure_threshold = 3
        timeout_seconds   = 2
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      template[0].revision,
      traffic,
      client,
      client_version,
    ]
  }
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = var.invokers
  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_service.service.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value}"
}

output "uri" {
  description = "The service URL."
  value       = google_cloud_run_v2_service.service.uri
}
