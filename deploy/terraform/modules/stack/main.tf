# One environment: network, Redis, secrets, images, the services in each of
# its regions, keyless CI and monitoring. envs/<env> instantiate it.

variable "environment" {
  type        = string
  description = "dev, staging or prod."
}
variable "project" {
  type        = string
  description = "The environment's project."
}
variable "github_repository" {
  type        = string
  description = "owner/name of the repository that deploys."
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}
variable "memory_server_image" {
  type        = string
  description = "The first memory-server image (deploy.sh rolls out the next ones)."
}
variable "orchestrator_image" {
  type        = string
  description = "The first orchestrator image; null leaves the orchestrator out."
  default     = null
}
variable "pulling_projects" {
  type        = list(string)
  description = "Project numbers of the environments that deploy this one's images (dev: staging's and prod's)."
  default     = []
}
variable "notification_channels" {
  type        = list(string)
  description = "Where alerts go."
  default     = []
}

module "settings" {
  source      = "../settings"
  environment = var.environment
}

locals {
  name    = "ai-orchestra-${var.environment}"
  size    = module.settings.size
  primary = module.settings.primary_region
  labels  = module.settings.labels
}

module "network" {
  source  = "../network"
  project = var.project
  regions = local.size.regions
  name    = local.name
}

module "redis" {
  source         = "../redis"
  project        = var.project
  region         = local.primary
  name           = "${local.name}-memory"
  tier           = local.size.redis_tier
  memory_size_gb = local.size.redis_memory_gb
  network_id     = module.network.network_id
  labels         = local.labels
}

# One identity per service: neither uses the default compute account, and
# only the orchestrator may call the memory server.
resource "google_service_account" "memory_server" {
  project      = var.project
  account_id   = "memory-server-run"
  display_name = "Cloud Run: memory-server"
}

resource "google_service_account" "orchestrator" {
  project      = var.project
  account_id   = "orchestrator-run"
  display_name = "Cloud Run: orchestrator"
}

module "identity" {
  source       = "../identity"
  project      = var.project
  github_owner = split("/", var.github_repository)[0]
  github_repo  = split("/", var.github_repository)[1]
  environment  = var.environment
}

# The deployer rolls out revisions that run as these identities.
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    memory-server = google_service_account.memory_server.name
    orchestrator  = google_service_account.orchestrator.name
  }
  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${module.identity.deployer}"
}

module "registry" {
  source  = "../registry"
  project = var.project
  region  = local.primary
  labels  = local.labels
  writers = { deployer = module.identity.deployer }
  readers = {
    memory-server = google_service_account.memory_server.email
    orchestrator  = google_service_account.orchestrator.email
  }

  pulling_projects = var.pulling_projects
}

module "secrets" {
  source  = "../secrets"
  project = var.project
  labels  = local.labels

  secrets = {
    # API keys (TOML array of tables); versions are added by the operator.
    memory-server-api-keys = { memory-server = google_service_account.memory_server.email }
    redis-auth = {
      memory-server = google_service_account.memory_server.email
      orchestrator  = google_service_account.orchestrator.email
    }
    redis-server-ca = {
      memory-server = google_service_account.memory_server.email
      orchestrator  = google_service_account.orchestrator.email
    }
    # The orchestrator's key for the memory server.
    orchestrator-memory-key = { orchestrator = google_service_account.orchestrator.email }
    # Its callers' API keys (TOML array of tables), and the API key of an
    # OpenAI-compatible or Gemini API model (agents.toml: api_key_env =
    # "ORCHESTRA_MODEL_API_KEY"); Vertex AI needs none (its service account).
    orchestrator-api-keys  = { orchestrator = google_service_account.orchestrator.email }
    orchestrator-model-key = { orchestrator = google_service_account.orchestrator.email }
  }
  values = {
    redis-auth      = module.redis.auth_string
    redis-server-ca = module.redis.server_ca_certs
  }
}

# One service per region (prod: us-central1 and us-west4), all on the
# primary region's Redis.
module "memory_server" {
  source          = "../service"
  project         = var.project
  for_each        = toset(local.size.regions)
  region          = each.key
  name            = "memory-server"
  image           = var.memory_server_image
  size            = local.size
  ingress         = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  connector_id    = module.network.connector_ids[each.key]
  service_account = google_service_account.memory_server.email
  labels          = local.labels

  env = {
    ORCHESTRA_ENV                          = var.environment
    ORCHESTRA__STORAGE__REDIS_URL          = module.redis.url
    ORCHESTRA__STORAGE__REDIS_CA_CERT_FILE = "/secrets/redis-ca/value"
    ORCHESTRA__STORAGE__WAIT_REPLICAS      = local.size.redis_tier == "STANDARD_HA" ? "1" : "0"
    ORCHESTRA__LOG__GCP_PROJECT            = var.project
  }
  secret_env = {
    ORCHESTRA__AUTH__KEYS              = module.secrets.ids["memory-server-api-keys"]
    ORCHESTRA__STORAGE__REDIS_PASSWORD = module.secrets.ids["redis-auth"]
  }
  secret_files = {
    "/secrets/redis-ca" = module.secrets.ids["redis-server-ca"]
  }
  invokers = { orchestrator = google_service_account.orchestrator.email }
}

module "orchestrator" {
  source          = "../service"
  for_each        = var.orchestrator_image == null ? toset([]) : toset(local.size.regions)
  project         = var.project
  region          = each.key
  name            = "orchestrator"
  image           = var.orchestrator_image
  size            = local.size
  ingress         = "INGRESS_TRAFFIC_ALL"
  connector_id    = module.network.connector_ids[each.key]
  service_account = google_service_account.orchestrator.email
  labels          = local.labels
  # Streamed runs last minutes; runs.max_run_ms (240 s) stays inside this.
  timeout = "300s"
  # All egress through the VPC: the memory server's ingress is internal.
  egress = "ALL_TRAFFIC"

  env = {
    ORCHESTRA_ENV                          = var.environment
    ORCHESTRA__MEMORY__URL                 = module.memory_server[each.key].uri
    ORCHESTRA__STORAGE__REDIS_URL          = module.redis.url
    ORCHESTRA__STORAGE__REDIS_CA_CERT_FILE = "/secrets/redis-ca/value"
    ORCHESTRA__STORAGE__WAIT_REPLICAS      = local.size.redis_tier == "STANDARD_HA" ? "1" : "0"
    ORCHESTRA__LOG__GCP_PROJECT            = var.project
  }
  secret_env = {
    ORCHESTRA__MEMORY__API_KEY         = module.secrets.ids["orchestrator-memory-key"]
    ORCHESTRA__AUTH__KEYS              = module.secrets.ids["orchestrator-api-keys"]
    ORCHESTRA__STORAGE__REDIS_PASSWORD = module.secrets.ids["redis-auth"]
    ORCHESTRA_MODEL_API_KEY            = module.secrets.ids["orchestrator-model-key"]
  }
  secret_files = {
    "/secrets/redis-ca" = module.secrets.ids["redis-server-ca"]
  }
}

# Gemini on Vertex AI, as the orchestrator's own identity.
resource "google_project_iam_member" "orchestrator_vertex_ai" {
  project = var.project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.orchestrator.email}"
}

module "monitoring" {
  source                = "../monitoring"
  project               = var.project
  service               = "memory-server"
  baseline_instances    = local.size.min_instances * length(local.size.regions)
  notification_channels = var.notification_channels
}

# The same alerts (and canary gates) for the orchestrator, once it is deployed.
module "monitoring_orchestrator" {
  source                = "../monitoring"
  count                 = var.orchestrator_image == null ? 0 : 1
  project               = var.project
  service               = "orchestrator"
  baseline_instances    = local.size.min_instances * length(local.size.regions)
  notification_channels = var.notification_channels
}

output "memory_server_urls" {
  description = "Region => memory-server URL."
  value       = { for r, m in module.memory_server : r => m.uri }
}

output "orchestrator_urls" {
  description = "Region => orchestrator URL (empty without orchestrator_image)."
  value       = { for r, m in module.orchestrator : r => m.uri }
}

output "workload_identity_provider" {
  description = "For the deploy workflow's WIF_PROVIDER variable."
  value       = module.identity.provider
}

output "deployer_service_account" {
  description = "For the deploy workflow's DEPLOYER_SERVICE_ACCOUNT variable."
  value       = module.identity.deployer
}

output "artifact_repository" {
  description = "For the deploy workflow's ARTIFACT_REPOSITORY variable."
  value       = module.registry.url
}
