# The Docker repository images are pushed to (by digest) and deployed from.

variable "project" {
  type        = string
  description = "Project id."
}
variable "region" {
  type        = string
  description = "Region."
}
variable "labels" {
  type        = map(string)
  description = "Resource labels."
}
# Grantees are maps from a fixed name to an email: for_each keys must be
# known at plan, and a new service account's email is not.
variable "writers" {
  type        = map(string)
  description = "Name => service account that pushes images (CI)."
}
variable "readers" {
  type        = map(string)
  description = "Name => service account that pulls images (Cloud Run services)."
}
variable "pulling_projects" {
  type        = list(string)
  description = "Numbers of other projects whose Cloud Run deploys images from here (staging and prod run the digest dev built)."
  default     = []
  validation {
    condition     = alltrue([for n in var.pulling_projects : can(regex("^[0-9]+$", n))])
    error_message = "pulling_projects are project numbers (digits), not ids."
  }
}

resource "google_artifact_registry_repository" "images" {
  # checkov:skip=CKV_GCP_84:Images hold no secrets or user data; Google-managed encryption at rest is enough and avoids running a KMS key for them
  project       = var.project
  location      = var.region
  repository_id = "images"
  format        = "DOCKER"
  labels        = var.labels
  docker_config {
    immutable_tags = true
  }
}

resource "google_artifact_registry_repository_iam_member" "writer" {
  for_each   = var.writers
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${each.value}"
}

# Readers: the services' own accounts, and for each project in
# pulling_projects its Cloud Run service agent, which is what pulls an image
# from another project.
locals {
  readers = merge(
    { for name, account in var.readers : name => "serviceAccount:${account}" },
    { for number in var.pulling_projects : "project-${number}" => "serviceAccount:service-${number}@serverless-robot-prod.iam.gserviceaccount.com" },
  )
}

resource "google_artifact_registry_repository_iam_member" "reader" {
  for_each   = local.readers
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}

output "url" {
  description = "<region>-docker.pkg.dev/<project>/images"
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}
