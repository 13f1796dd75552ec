# A VPC for the environment, and in each region a Serverless VPC Access
# connector through which Cloud Run reaches Memorystore's private address,
# and a Cloud NAT: a service that sends all its traffic through the VPC (the
# orchestrator, to reach the internal-ingress memory server) still reaches
# Vertex AI and other public endpoints.

variable "project" {
  type        = string
  description = "Project id."
}
variable "regions" {
  type        = list(string)
  description = "Regions that get a connector (one VPC spans them all)."
}
variable "name" {
  type        = string
  description = "Name prefix, e.g. ai-orchestra-prod."
}
variable "connector_range" {
  type        = string
  description = "An unused range; each region's connector takes the next /28 of it."
  default     = "10.8.0.0/24"
}

resource "google_compute_network" "vpc" {
  project                 = var.project
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false
}

# Nothing from outside reaches the VPC: Cloud Run enters through the
# connectors and Memorystore is peered; Google adds the connectors' own rules
# at higher priority.
resource "google_compute_firewall" "deny_ingress" {
  project       = var.project
  name          = "${var.name}-deny-ingress"
  network       = google_compute_network.vpc.name
  direction     = "INGRESS"
  priority      = 65534
  source_ranges = ["0.0.0.0/0"]
  deny {
    protocol = "all"
  }
  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "connector" {
  for_each      = { for i, r in var.regions : r => i }
  project       = var.project
  region        = each.key
  name          = "conn-${each.value}"
  network       = google_compute_network.vpc.name
  ip_cidr_range = cidrsubnet(var.connector_range, 4, each.value)
  min_instances = 2
  max_instances = 10
  machine_type  = "e2-micro"
}

resource "google_compute_router" "nat" {
  for_each = toset(var.regions)
  project  = var.project
  region   = each.key
  name     = "${var.name}-nat-${each.key}"
  network  = google_compute_network.vpc.id
}

resource "google_compute_router_nat" "nat" {
  for_each                           = toset(var.regions)
  project                            = var.project
  region                             = each.key
  name                               = "${var.name}-nat-${each.key}"
  router                             = google_compute_router.nat[each.key].name
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

output "network_id" {
  description = "The VPC, for Memorystore's authorized network."
  value       = google_compute_network.vpc.id
}

output "connector_ids" {
  description = "Region => connector, for Cloud Run's VPC access."
  value       = { for r, c in google_vpc_access_connector.connector : r => c.id }
}
