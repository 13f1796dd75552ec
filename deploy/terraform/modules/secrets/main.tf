# Secret Manager secrets the services read as environment variables, and who
# may read each: a secret is granted only to the service accounts listed for it.

variable "project" {
  type        = string
  description = "Project id."
}
variable "secrets" {
  description = "Secret id => { value (null: versions are added out of band), accessors (service account emails) }."

  type = map(object({
    value     = optional(string)
    accessors = list(string)
  }))
}
variable "labels" {
  type        = map(string)
  description = "Resource labels."
}

resource "google_secret_manager_secret" "secret" {
  for_each  = var.secrets
  project   = var.project
  secret_id = each.key
  labels    = var.labels
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "value" {
  for_each    = { for k, v in var.secrets : k => v if v.value != null }
  secret      = google_secret_manager_secret.secret[each.key].id
  secret_data = each.value.value
}

locals {
  grants = flatten([
    for id, s in var.secrets : [for sa in s.accessors : { id = id, sa = sa }]
  ])
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each  = { for g in local.grants : "${g.id}/${g.sa}" => g }
  project   = var.project
  secret_id = google_secret_manager_secret.secret[each.value.id].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value.sa}"
}

output "ids" {
  description = "Secret id => resource id."
  value       = { for k, s in google_secret_manager_secret.secret : k => s.id }
}
