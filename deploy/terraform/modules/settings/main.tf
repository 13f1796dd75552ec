# Provider-free: the sizes of each environment and the rules they must obey.
# Every other module takes its numbers from here, so `terraform test` on this
# module checks the whole sizing without a cloud.

terraform {
  required_version = ">= 1.6"
}

variable "environment" {
  description = "dev, staging or prod."
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

locals {
  sizes = {
    dev = {
      cpu             = "2"
      memory          = "2Gi"
      min_instances   = 1
      max_instances   = 1
      concurrency     = 80
      redis_tier      = "BASIC"
      redis_memory_gb = 1
      regions         = ["us-central1"]
    }
    staging = {
      cpu             = "2"
      memory          = "4Gi"
      min_instances   = 2
      max_instances   = 2
      concurrency     = 80
      redis_tier      = "STANDARD_HA"
      redis_memory_gb = 5
      regions         = ["us-central1"]
    }
    prod = {
      cpu             = "4"
      memory          = "8Gi"
      min_instances   = 4
      max_instances   = 4
      concurrency     = 80
      redis_tier      = "STANDARD_HA"
      redis_memory_gb = 10
      regions         = ["us-central1", "us-west4"]
    }
  }
  size = local.sizes[var.environment]
}

output "size" {
  description = "CPU, memory, instances, concurrency, Redis tier and size, regions (primary first)."
  value       = local.size

  precondition {
    condition     = local.size.min_instances <= local.size.max_instances
    error_message = "min_instances must not exceed max_instances."
  }
  precondition {
    condition     = var.environment != "prod" || local.size.redis_tier == "STANDARD_HA"
    error_message = "prod Redis must be STANDARD_HA (a replica to fail over to)."
  }
  precondition {
    condition     = local.size.regions[0] == "us-central1"
    error_message = "the primary region is us-central1."
  }
}

output "primary_region" {
  description = "Where the service and Redis run first."
  value       = local.size.regions[0]
}

output "labels" {
  description = "Labels every resource carries."

  value = {
    app         = "ai-orchestra"
    environment = var.environment
    managed-by  = "terraform"
  }
}
