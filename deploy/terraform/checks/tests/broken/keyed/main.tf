# A module that keys a resource by the elements of a list variable.

variable "members" {
  type        = list(string)
  description = "Members."
}

resource "google_project_iam_member" "member" {
  for_each = toset(var.members)
  project  = "p"
  role     = "roles/viewer"
  member   = each.value
}
