#!/usr/bin/env bats
# deploy.sh and rollback.sh against a fake gcloud and a fake curl (tests/fakes)
# that keep a Cloud Run service's traffic split and answer metric queries.

setup() {
  DEPLOY="$BATS_TEST_DIRNAME/.."
  export FAKE_DIR="$BATS_TEST_TMPDIR/fake"
  export DEPLOY_STATE_DIR="$BATS_TEST_TMPDIR/state"
  export CANARY_CONFIG="$BATS_TEST_DIRNAME/canary-test.toml"
  export SMOKE_API_KEY="smoke-key"
  export PATH="$BATS_TEST_DIRNAME/fakes:$PATH"
  mkdir -p "$FAKE_DIR"
  # The service before the rollout: the old revision serves everything.
  echo '[{"revisionName": "svc-00001-old", "percent": 100}]' >"$FAKE_DIR/traffic.json"
  cat >"$FAKE_DIR/revisions.json" <<'JSON'
[
  {"metadata": {"name": "svc-00003-bad"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
  {"metadata": {"name": "svc-00002-broken"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
  {"metadata": {"name": "svc-00001-old"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
]
JSON
}

serving() {
  python3 -c "import json; t=json.load(open('$FAKE_DIR/traffic.json')); print(' '.join(f\"{x['revisionName']}={x['percent']}\" for x in t if x['percent']))"
}

@test "a healthy canary is promoted step by step and the old revision recorded" {
  run "$DEPLOY/deploy.sh" dev svc us-docker.pkg.dev/p/r/memory-server:abc
  [ "$status" -eq 0 ]
  grep -q -- '--to-tags canary-[0-9]*=10 ' "$FAKE_DIR/gcloud.log"
  grep -q -- '--to-tags canary-[0-9]*=50 ' "$FAKE_DIR/gcloud.log"
  grep -q -- '--to-tags canary-[0-9]*=100 ' "$FAKE_DIR/gcloud.log"
  ! grep -q -- '--to-revisions' "$FAKE_DIR/gcloud.log"
  [ "$(serving)" = "svc-00002-new=100" ]
  [ "$(cat "$DEPLOY_STATE_DIR/dev-svc.previous")" = "svc-00001-old" ]
  [[ "$output" == *"10% of traffic on svc-00002-new"* ]]
  [[ "$output" == *"check 2/2"* ]]
  [[ "$output" == *"done: svc-00002-new serves 100%"* ]]
}

@test "an error spike rolls back to the stable revision" {
  export FAKE_ERROR_RATIO=0.05
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -ne 0 ]
  [[ "$output" == *"error ratio 0.0500 > 0.01"* ]]
  [[ "$output" == *"rolling back"* ]]
  ! grep -q -- '=50 ' "$FAKE_DIR/gcloud.log"
  grep -q -- '--to-revisions svc-00001-old=100' "$FAKE_DIR/gcloud.log"
  grep -q -- '--remove-tags canary-' "$FAKE_DIR/gcloud.log"
  [ "$(serving)" = "svc-00001-old=100" ]
  [ ! -f "$DEPLOY_STATE_DIR/dev-svc.previous" ]
}

@test "a latency spike rolls back" {
  export FAKE_P95_MS=900
  run "$DEPLOY/deploy.sh" staging svc image:v2
  [ "$status" -ne 0 ]
  [[ "$output" == *"p95 latency 900.0 ms > 500 ms"* ]]
  [ "$(serving)" = "svc-00001-old=100" ]
}

@test "one bad check alone does not fail the step" {
  # Two bad checks in a row fail; here latency recovers after the first.
  export FAKE_P95_MS="900 120"
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -eq 0 ]
  [[ "$output" == *"bad check 1/2: p95 latency 900.0 ms"* ]]
  [ "$(serving)" = "svc-00002-new=100" ]
}

@test "too little traffic waits, then decides on the traffic that came" {
  export FAKE_REQUESTS="5 20 1000"
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -eq 0 ]
  [[ "$output" == *"waiting: only 5"* ]]
  [[ "$output" == *"waiting: only 20"* ]]
  [ "$(serving)" = "svc-00002-new=100" ]
}

@test "traffic that never comes fails the rollout after the longest wait" {
  export FAKE_REQUESTS="5"
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -ne 0 ]
  [[ "$output" == *"too little traffic"* ]]
  [ "$(serving)" = "svc-00001-old=100" ]
}

@test "an open alert incident rolls back" {
  export FAKE_OPEN_ALERTS=1
  run "$DEPLOY/deploy.sh" prod svc image:v2
  [ "$status" -ne 0 ]
  [[ "$output" == *"1 alert incident(s) open"* ]]
  [ "$(serving)" = "svc-00001-old=100" ]
}

@test "a failing smoke test never receives traffic" {
  export FAKE_SMOKE=fail
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -ne 0 ]
  [[ "$output" == *"smoke: /healthz failed"* ]]
  ! grep -q -- '--to-tags' "$FAKE_DIR/gcloud.log"
  [ "$(serving)" = "svc-00001-old=100" ]
  # The smoke test went to the tag URL, never to the service's own.
  grep -q 'https://canary-[0-9]*---svc.run.app/healthz' "$FAKE_DIR/curl.log"
}

@test "a load test through the tag URL gates the rollout when LOAD_SCENARIO is set" {
  export LOAD_SCENARIO=benches/scenarios/smoke.toml
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -eq 0 ]
  [ "$(serving)" = "svc-00002-new=100" ]
  # The canary's tag URL, allowed by name, with the IAM token and the key
  # (in the environment, not on the command line) and the default SLO.
  grep -q -- "run benches/scenarios/smoke.toml --url https://canary-[0-9]*---svc.run.app --target-allow canary-[0-9]*---svc.run.app --identity-token gcloud --quiet --slo p95<200ms,errors<0.1%" "$FAKE_DIR/orchestra-bench.log"
  grep -qx "key=smoke-key" "$FAKE_DIR/orchestra-bench.log"
  ! grep -q "smoke-key" <(grep -- "--url" "$FAKE_DIR/orchestra-bench.log")
}

@test "a missed load-test objective never receives traffic" {
  export LOAD_SCENARIO=benches/scenarios/smoke.toml LOAD_SLO='p99<50ms' FAKE_BENCH_EXIT=2
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -ne 0 ]
  [[ "$output" == *"load test missed its objectives"* ]]
  grep -q -- "--slo p99<50ms" "$FAKE_DIR/orchestra-bench.log"
  ! grep -q -- '--to-tags' "$FAKE_DIR/gcloud.log"
  [ "$(serving)" = "svc-00001-old=100" ]
}

@test "without LOAD_SCENARIO no load test runs" {
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -eq 0 ]
  [ ! -f "$FAKE_DIR/orchestra-bench.log" ]
}

@test "an orchestrator rollout smoke-tests a thread and uses its own latency gate" {
  # 2 s p95 fails the default 500 ms gate ("a latency spike rolls back"),
  # not the orchestrator's 30 s.
  FAKE_P95_MS=2000 run "$DEPLOY/deploy.sh" dev orchestrator us-docker.pkg.dev/p/r/orchestrator:abc
  [ "$status" -eq 0 ]
  [[ "$output" == *"smoke test passed"* ]]
  grep -q -- "-X POST .*/v1/threads" "$FAKE_DIR/curl.log"
  grep -q -- "/v1/threads/t-1 .*-X DELETE\|-X DELETE .*/v1/threads/t-1" "$FAKE_DIR/curl.log"
  ! grep -q "/v1/memories" "$FAKE_DIR/curl.log"
  [ "$(serving)" = "svc-00002-new=100" ]
}

@test "rollback restores the stable revision the deploy recorded" {
  run "$DEPLOY/deploy.sh" dev svc image:v2
  [ "$status" -eq 0 ]
  [ "$(serving)" = "svc-00002-new=100" ]
  run "$DEPLOY/rollback.sh" dev svc
  [ "$status" -eq 0 ]
  [[ "$output" == *"recorded stable revision: svc-00001-old"* ]]
  [ "$(serving)" = "svc-00001-old=100" ]
}

@test "rollback without a record takes the newest ready revision not serving" {
  echo '[{"revisionName": "svc-00003-bad", "percent": 100}]' >"$FAKE_DIR/traffic.json"
  run "$DEPLOY/rollback.sh" dev svc
  [ "$status" -eq 0 ]
  [[ "$output" == *"previous ready revision: svc-00001-old"* ]]
  [ "$(serving)" = "svc-00001-old=100" ]
}

@test "rollback to a named revision, and bad arguments say what to fix" {
  run "$DEPLOY/rollback.sh" dev svc svc-00001-old
  [ "$status" -eq 0 ]
  [ "$(serving)" = "svc-00001-old=100" ]
  run "$DEPLOY/rollback.sh" qa svc
  [ "$status" -ne 0 ]
  [[ "$output" == *"unknown environment 'qa'"* ]]
  run "$DEPLOY/deploy.sh" dev svc
  [ "$status" -ne 0 ]
  [[ "$output" == *"usage: deploy.sh ENV SERVICE IMAGE"* ]]
}
