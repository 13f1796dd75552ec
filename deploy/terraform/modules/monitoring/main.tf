# Alert policies and a dashboard for one service, in PromQL over Cloud
# Monitoring. The open incidents of these policies are also a canary gate.

variable "project" {
  type        = string
  description = "Project id."
}
variable "service" {
  type        = string
  description = "Cloud Run service name."
}
variable "baseline_instances" {
  type        = number
  description = "Expected instance count; alert above 150% of it."
}
variable "notification_channels" {
  type        = list(string)
  description = "Channel ids to notify."
  default     = []
}

locals {
  sel = "monitored_resource=\"cloud_run_revision\",service_name=\"${var.service}\""

  alerts = {
    error-ratio = {
      name     = "${var.service}: 5xx ratio above 1% for 5 minutes"
      query    = "sum(rate(run_googleapis_com:request_count{${local.sel},response_code_class=\"5xx\"}[1m])) / sum(rate(run_googleapis_com:request_count{${local.sel}}[1m])) > 0.01"
      duration = "300s"
      runbook  = "Errors: check the latest revision (roll back with deploy/rollback.sh), then logs and Redis health. See docs/operations.md#alerts."
    }
    latency-p95 = {
      name     = "${var.service}: p95 latency above 500 ms for 10 minutes"
      query    = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:request_latencies_bucket{${local.sel}}[5m]))) > 500"
      duration = "600s"
      runbook  = "Latency: check instance CPU, Redis latency and replication lag; scale or roll back. See docs/operations.md#alerts."
    }
    cpu = {
      name     = "${var.service}: CPU above 85% for 15 minutes"
      query    = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:container_cpu_utilizations_bucket{${local.sel}}[5m]))) > 0.85"
      duration = "900s"
      runbook  = "CPU: raise max instances or CPU in the environment's sizes. See docs/operations.md#alerts."
    }
    memory = {
      name     = "${var.service}: memory above 90% for 15 minutes"
      query    = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:container_memory_utilizations_bucket{${local.sel}}[5m]))) > 0.9"
      duration = "900s"
      runbook  = "Memory: the index grows with the memories stored; raise the memory size. See docs/operations.md#alerts."
    }
    instances = {
      name     = "${var.service}: instance count above 150% of baseline"
      query    = "sum(run_googleapis_com:container_instance_count{${local.sel}}) > ${1.5 * var.baseline_instances}"
      duration = "300s"
      runbook  = "Instances: unexpected scale-out; check traffic and latency. See docs/operations.md#alerts."
    }
  }
}

resource "google_monitoring_alert_policy" "alert" {
  for_each              = local.alerts
  project               = var.project
  display_name          = each.value.name
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = each.value.name
    condition_prometheus_query_language {
      query               = each.value.query
      duration            = each.value.duration
      evaluation_interval = "60s"
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    content   = each.value.runbook
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_dashboard" "service" {
  project = var.project

  dashboard_json = jsonencode({
    displayName = "${var.service}"

    gridLayout = {
      columns = 2

      widgets = [
        for title, q in {
          "Requests/s by status class" = "sum by (response_code_class) (rate(run_googleapis_com:request_count{${local.sel}}[1m]))"
          "p95 latency (ms)"           = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:request_latencies_bucket{${local.sel}}[5m])))"
          "CPU utilization (p95)"      = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:container_cpu_utilizations_bucket{${local.sel}}[5m])))"
          "Memory utilization (p95)"   = "histogram_quantile(0.95, sum by (le) (rate(run_googleapis_com:container_memory_utilizations_bucket{${local.sel}}[5m])))"
          "Instances"                  = "sum(run_googleapis_com:container_instance_count{${local.sel}})"
          "Requests/s by revision"     = "sum by (revision_name) (rate(run_googleapis_com:request_count{${local.sel}}[1m]))"
          } : {
          title = title

          xyChart = {
            dataSets = [{
              timeSeriesQuery = { prometheusQuery = q }
              plotType        = "LINE"
            }]
          }
        }
      ]
    }
  })
}

output "alert_policies" {
  description = "Alert policy ids by name."
  value       = { for k, p in google_monitoring_alert_policy.alert : k => p.id }
}
