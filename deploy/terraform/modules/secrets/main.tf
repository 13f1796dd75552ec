# Secret Manager secrets the services read as environment variables, and who
# may read each: a secret is granted only to the service accounts listed for it.

variable "project" {
  type        = string
  description = "Project id."
}
variable "secrets" {
  description = "Secret id => who may read it: name => service account email (fixed names key the grants, so plans know them before the accounts exist)."
  type        = map(map(string))
}
variable "values" {
  description = "Secret id => the version Terraform writes; the other secrets get versions out of band. Keys must be literal (known at plan)."
  type        = map(string)
  default     = {}
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

# keys(), not the map: the values are secrets (and unknown until Redis exists),
# the ids are not.
resource "google_secret_manager_secret_version" "value" {
  for_each    = toset(keys(var.values))
  secret      = google_secret_manager_secret.secret[each.key].id
  secret_data = var.values[each.key]
}

locals {
  grants = merge([
    for id, readers in var.secrets : {
      for name, account in readers : "${id}/${name}" => { id = id, account = account }
    }
  ]...)
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each  = local.grants
  project   = var.project
  secret_id = google_secret_manager_secret.secret[each.value.id].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value.account}"
}

output "ids" {
  description = "Secret id => resource id."
  value       = { for k, s in google_secret_manager_secret.secret : k => s.id }
}
