# Keyless CI: a Workload Identity pool whose GitHub provider accepts only this
# repository's workflows, and the deployer identity they may act as.

variable "project" {
  type        = string
  description = "Project id."
}
variable "github_owner" {
  type        = string
  description = "Owner (user or organisation) of the repository whose workflows deploy."
}
variable "github_repo" {
  type        = string
  description = "Name of that repository."
}
variable "environment" {
  type        = string
  description = "dev, staging or prod."
}

resource "google_iam_workload_identity_pool" "github" {
  project                   = var.project
  workload_identity_pool_id = "github"
  display_name              = "GitHub Actions"
}

resource "google_iam_workload_identity_pool_provider" "github" {
  project                            = var.project
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  workload_identity_pool_provider_id = "github-actions"
  display_name                       = "GitHub Actions OIDC"

  attribute_mapping = {
    "google.subject"        = "assertion.sub"
    "attribute.repository"  = "assertion.repository"
    "attribute.environment" = "assertion.environment"
    "attribute.ref"         = "assertion.ref"
  }
  # Only this repository's workflows, running in this GitHub environment
  # (whose protection rules gate the job).
  attribute_condition = "assertion.sub == 'repo:${var.github_owner}/${var.github_repo}:environment:${var.environment}' && assertion.repository == '${var.github_owner}/${var.github_repo}'"
  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account" "deployer" {
  project      = var.project
  account_id   = "deployer"
  display_name = "CI deployer (GitHub Actions through Workload Identity)"
}

# Workflows of this repository running in this GitHub environment may act as the deployer.
resource "google_service_account_iam_member" "workload_identity" {
  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.environment/${var.environment}"
}

# Deploy revisions and split traffic; read metrics and incidents for the gates.
resource "google_project_iam_member" "deployer" {
  for_each = toset([
    "roles/run.developer",
    "roles/monitoring.viewer",
  ])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.deployer.email}"
}

output "provider" {
  description = "For google-github-actions/auth's workload_identity_provider."
  value       = google_iam_workload_identity_pool_provider.github.name
}

output "deployer" {
  description = "The deployer service account."
  value       = google_service_account.deployer.email
}
