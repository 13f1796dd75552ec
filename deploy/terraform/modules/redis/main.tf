# Memorystore for Redis with AUTH and in-transit encryption; RDB snapshots for
# backups. The AUTH string goes to Secret Manager (secrets module).

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
  description = "Instance name."
}
variable "tier" {
  type        = string
  description = "BASIC or STANDARD_HA."
  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}
variable "memory_size_gb" {
  type        = number
  description = "Capacity."
}
variable "network_id" {
  type        = string
  description = "The VPC allowed to connect."
}
variable "labels" {
  type        = map(string)
  description = "Resource labels."
}

resource "google_redis_instance" "memory" {
  project                 = var.project
  region                  = var.region
  name                    = var.name
  tier                    = var.tier
  memory_size_gb          = var.memory_size_gb
  redis_version           = "REDIS_7_0"
  authorized_network      = var.network_id
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"
  labels                  = var.labels

  # The change stream must survive a failover and a restart.
  persistence_config {
    persistence_mode    = "RDB"
    rdb_snapshot_period = "ONE_HOUR"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 4
        minutes = 0
      }
    }
  }
}

output "url" {
  description = "rediss:// URL of the primary (TLS)."
  value       = "rediss://${google_redis_instance.memory.host}:${google_redis_instance.memory.port}"
}

output "auth_string" {
  description = "The AUTH password."
  value       = google_redis_instance.memory.auth_string
  sensitive   = true
}

output "server_ca_certs" {
  description = "PEM of the server CA, for storage.redis_ca_cert_file."
  value       = join("\n", google_redis_instance.memory.server_ca_certs[*].cert)
}
