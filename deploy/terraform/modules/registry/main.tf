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
variable "writers" {
  type        = list(string)
  description = "Service accounts that push images (CI)."
}
variable "readers" {
  type        = list(string)
  description = "Service accounts that pull images (Cloud Run services)."
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
  for_each   = toset(var.writers)
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${each.value}"
}

resource "google_artifact_registry_repository_iam_member" "reader" {
  for_each   = toset(var.readers)
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:${each.value}"
}

# Cloud Run pulls with its service agent, one per project: in another
# project, that agent needs read access here.
resource "google_artifact_registry_repository_iam_member" "pulling_project" {
  for_each   = toset(var.pulling_projects)
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = "serviceAccount:service-${each.value}@serverless-robot-prod.iam.gserviceaccount.com"
}

output "url" {
  description = "<region>-docker.pkg.dev/<project>/images"
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}
