# The dev environment. State lives in a bucket created once by hand (see
# docs/operations.md, first-time setup).

terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.50"
    }
  }
  backend "gcs" {
    bucket = "ai-orchestra-dev-tfstate"
    prefix = "terraform"
  }
}

variable "project" {
  type        = string
  description = "The dev project."
  default     = "ai-orchestra-dev"
}

variable "github_repository" {
  type        = string
  description = "owner/name of the repository that deploys."
}

variable "memory_server_image" {
  type        = string
  description = "The first memory-server image."
}

variable "pulling_projects" {
  type        = list(string)
  description = "Project numbers of staging and prod: their Cloud Run pulls the images CI builds into dev's registry."
  default     = []
}

variable "notification_channels" {
  type        = list(string)
  description = "Alert notification channel ids."
  default     = []
}

provider "google" {
  project = var.project
  region  = "us-central1"
}

module "stack" {
  source                = "../../modules/stack"
  environment           = "dev"
  project               = var.project
  github_repository     = var.github_repository
  memory_server_image   = var.memory_server_image
  notification_channels = var.notification_channels
  pulling_projects      = var.pulling_projects
}

output "stack" {
  description = "URLs and the values the deploy workflow needs."

  value = {
    memory_server_urls         = module.stack.memory_server_urls
    workload_identity_provider = module.stack.workload_identity_provider
    deployer_service_account   = module.stack.deployer_service_account
    artifact_repository        = module.stack.artifact_repository
  }
}
