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

output "url" {
  description = "<region>-docker.pkg.dev/<project>/images"
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}
