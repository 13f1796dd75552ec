# Everything the custom policies forbid; scripts/lint-deploy checks that each
# of CKV_AIO_1..3 fails here, so none of them can pass vacuously.

resource "google_cloud_run_v2_service" "default_identity" {
  name     = "memory-server"
  location = "us-central1"
  template {
    service_account = "123456789-compute@developer.gserviceaccount.com"
    containers {
      image = "memory-server"
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "public" {
  name     = "memory-server"
  location = "us-central1"
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_redis_instance" "open" {
  name                    = "memory"
  memory_size_gb          = 1
  auth_enabled            = false
  transit_encryption_mode = "DISABLED"
}
