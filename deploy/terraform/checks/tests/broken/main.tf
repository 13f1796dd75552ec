# Planted mistakes for offline_validate.py's selftest: each `expect` comment
# names the line and the error the validator must report there, and it must
# report nothing else. Never applied.

variable "region" {
  type        = string
  description = "Region."
}

locals {
  labels = { app = "broken" }
}

# expect: google_compute_network.net has no argument or block "auto_subnets"
# expect: google_compute_network.net: required argument "name" is not set
# expect: google_compute_network.net: lifecycle has no argument "ignore_change"
# expect: google_compute_network.net: ignore_changes names "labels", which it does not have
resource "google_compute_network" "net" {
  auto_subnets = false
  lifecycle {
    ignore_change  = [description]
    ignore_changes = [labels]
  }
}

# expect: google_redis_instance.redis has no argument or block "tls"
# expect: google_redis_instance.redis.maintenance_policy.weekly_maintenance_window: required block "start_time" is missing
# expect: google_redis_instance.redis.maintenance_policy has no block "window"
# expect: google_redis_instance.redis: required argument "memory_size_gb" is not set
resource "google_redis_instance" "redis" {
  name   = "redis"
  region = var.region
  labels = local.labels
  tls    = true
  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
    }
    dynamic "window" {
      for_each = [1]
      content {
        day = "MONDAY"
      }
    }
  }
}

# expect: provider 6.50.0 has no resource type google_cloud_run_service_v3
resource "google_cloud_run_service_v3" "nope" {
  name = "nope"
}

# expect: google_cloud_run_v2_service.svc.template.containers has no argument or block "port"
resource "google_cloud_run_v2_service" "svc" {
  name     = "svc"
  location = var.region
  template {
    dynamic "containers" {
      for_each = ["a"]
      content {
        image = containers.value
        port  = 8080
      }
    }
  }
}

# expect: module "service" (../../../modules/service) has no variable "replicas"
# expect: module "service" (../../../modules/service): required variable "image" is not set
module "service" {
  source          = "../../../modules/service"
  project         = "p"
  region          = var.region
  name            = "svc"
  connector_id    = "c"
  service_account = "sa"
  labels          = local.labels
  replicas        = 2
  size = {
    cpu           = "1"
    memory        = "1Gi"
    min_instances = 0
    max_instances = 1
    concurrency   = 80
  }
}

output "wiring" {
  description = "References, each line one mistake."
  value = [
    # expect: no variable "zone" is declared
    var.zone,
    # expect: no local "names" is declared
    local.names,
    # expect: module "service" has no output "url"
    module.service.url,
    # expect: no module "database" is called
    module.database.uri,
    # expect: google_redis_instance has no attribute "hostname"
    google_redis_instance.redis.hostname,
    # expect: no resource google_redis_instance.cache in this module
    google_redis_instance.cache.host,
    google_redis_instance.redis.host,
    google_cloud_run_v2_service.svc.uri,
    module.service.uri,
  ]
}

# expect: google_service_account_iam_member.by_email: for_each keys are known only after apply
resource "google_service_account_iam_member" "by_email" {
  for_each           = toset([google_compute_network.net.id])
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "user:someone@example.com"
}

# expect: module "keyed" (./keyed): "members" becomes for_each keys there but is known only after apply
module "keyed" {
  source  = "./keyed"
  members = [google_redis_instance.redis.host]
}
