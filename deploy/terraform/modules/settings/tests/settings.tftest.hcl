# terraform test: the sizes of the brief, and refusal of unknown environments.

run "dev_is_small" {
  command = plan
  variables {
    environment = "dev"
  }
  assert {
    condition     = output.size.cpu == "2" && output.size.memory == "2Gi" && output.size.max_instances == 1
    error_message = "dev is 2 vCPU / 2 GB / 1 instance"
  }
  assert {
    condition     = output.size.redis_tier == "BASIC" && output.size.redis_memory_gb == 1
    error_message = "dev Redis is 1 GB Basic"
  }
}

run "staging" {
  command = plan
  variables {
    environment = "staging"
  }
  assert {
    condition     = output.size.memory == "4Gi" && output.size.min_instances == 2 && output.size.redis_memory_gb == 5
    error_message = "staging is 2 vCPU / 4 GB / 2 instances / Redis 5 GB"
  }
}

run "prod_has_ha_and_a_second_region" {
  command = plan
  variables {
    environment = "prod"
  }
  assert {
    condition     = output.size.cpu == "4" && output.size.memory == "8Gi" && output.size.min_instances == 4
    error_message = "prod is 4 vCPU / 8 GB / 4 instances"
  }
  assert {
    condition     = output.size.redis_tier == "STANDARD_HA" && output.size.redis_memory_gb == 10
    error_message = "prod Redis is 10 GB Standard HA"
  }
  assert {
    condition     = output.size.regions == ["us-central1", "us-west4"]
    error_message = "prod runs in us-central1, then us-west4"
  }
}

run "unknown_environment_is_refused" {
  command = plan
  variables {
    environment = "qa"
  }
  expect_failures = [var.environment]
}
