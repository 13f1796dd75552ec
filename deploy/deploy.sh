#!/usr/bin/env bash
# deploy.sh ENV SERVICE IMAGE: canary rollout of IMAGE to a Cloud Run service.
#
# 1. Deploys a revision with no traffic and a `canary-*` tag.
# 2. Smoke-tests it through the tag URL: /healthz, /readyz and, for
#    memory-server, one real memory round trip (store, read, search, delete);
#    for the orchestrator, its agents and a thread created, read and deleted.
#    A failure stops here; the revision never receives traffic.
#    With LOAD_SCENARIO set (a scenario file of benches/scenarios/), the tag
#    URL is then load-tested with orchestra-bench (ORCHESTRA_BENCH, default
#    on PATH) against LOAD_SLO (default p95<200ms,errors<0.1%); a missed
#    objective also stops here.
# 3. Moves traffic through the steps of config/canary.toml (10% -> 50% ->
#    100%), judging each step by the canary's error ratio and p95 latency
#    (PromQL on Cloud Monitoring) and by open alert incidents.
# 4. On any failure, sends all traffic back to the stable revision, drops the
#    tag and exits non-zero. On success, records the revision it replaced, for
#    rollback.sh.
#
# Needs: gcloud (authenticated), curl, python3 3.11+. SMOKE_API_KEY is the API
# key the smoke test uses. Terraform owns the service's configuration; this
# script owns only the image and the traffic split.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$DEPLOY_DIR/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib/canary.sh
. "$DEPLOY_DIR/lib/canary.sh"

[ $# -eq 3 ] || die "usage: deploy.sh ENV SERVICE IMAGE"
env="$1" service="$2" image="$3"
load_environment "$env"
load_canary_config "$service"
: "${SMOKE_API_KEY:?set SMOKE_API_KEY to an API key with write access to the smoke-test namespace}"

stable="$(serving_revision "$service")"
[ -n "$stable" ] || die "$service has no revision serving 100% of traffic; finish or roll back the previous rollout first"
tag="canary-$(date -u +%Y%m%d%H%M%S)"
log "deploying $image to $service ($env, $PROJECT/$REGION); stable revision $stable"

revision="$(gc run deploy "$service" --image "$image" --no-traffic --tag "$tag" \
  --format='value(status.latestCreatedRevisionName)')"
[ -n "$revision" ] || die "gcloud did not name the new revision"
log "revision $revision deployed with no traffic, tag $tag"

# Puts everything back on the stable revision and fails.
abort() {
  log "rolling back: $*"
  route_all_to "$service" "$stable"
  log "all traffic on $stable again"
  exit 1
}

# The canary's tag URL.
tag_url() {
  describe_service "$service" | json_eval \
    "next((t.get('url') for t in j.get('status',{}).get('traffic',[]) if t.get('tag')=='$tag'), None)"
}

smoke_test() {
  local url auth
  url="$(tag_url)"
  [ -n "$url" ] || { log "no URL for tag $tag"; return 1; }
  # Cloud Run's IAM token goes in X-Serverless-Authorization, leaving
  # Authorization for the API key.
  auth="X-Serverless-Authorization: Bearer $(gcloud auth print-identity-token)"
  http_get "$url/healthz" -H "$auth" >/dev/null || { log "smoke: /healthz failed"; return 1; }
  http_get "$url/readyz" -H "$auth" >/dev/null || { log "smoke: /readyz failed"; return 1; }
  case "$service" in
    orchestrator) smoke_orchestrator "$url" "$auth" || return 1 ;;
    *) smoke_memory_server "$url" "$auth" || return 1 ;;
  esac
  log "smoke test passed at $url"
}

# The agents are loaded, and a thread is created, read and deleted (through
# the shared store); no model is called, so a smoke test costs nothing.
smoke_orchestrator() {
  local url="$1" auth="$2" key="Authorization: Bearer $SMOKE_API_KEY" id
  http_get "$url/v1/agents" -H "$auth" -H "$key" | json_eval "len(j['agents']) > 0" | grep -qx True ||
    { log "smoke: no agents"; return 1; }
  id="$(http_get "$url/v1/threads" -X POST -H "$auth" -H "$key" -H 'Content-Type: application/json' \
    -d '{"namespace":"smoke-test","metadata":{"deploy":"'"$tag"'"}}' | json_eval "j['id']")" ||
    { log "smoke: creating a thread failed"; return 1; }
  http_get "$url/v1/threads/$id" -H "$auth" -H "$key" >/dev/null ||
    { log "smoke: reading the thread back failed"; return 1; }
  http_get "$url/v1/threads/$id" -X DELETE -H "$auth" -H "$key" >/dev/null ||
    { log "smoke: deleting the thread failed"; return 1; }
}

# One memory stored, read, found by search and deleted.
smoke_memory_server() {
  local url="$1" auth="$2" ns id body
  ns="smoke-test"
  body="{\"namespace\":\"$ns\",\"text\":\"deploy smoke test $tag\"}"
  id="$(http_get "$url/v1/memories" -X POST -H "$auth" -H "Authorization: Bearer $SMOKE_API_KEY" \
    -H 'Content-Type: application/json' -d "$body" | json_eval "j['memory']['id']")" ||
    { log "smoke: storing a memory failed"; return 1; }
  http_get "$url/v1/memories/$id" -H "$auth" -H "Authorization: Bearer $SMOKE_API_KEY" >/dev/null ||
    { log "smoke: reading the memory back failed"; return 1; }
  http_get "$url/v1/memories/search" -X POST -H "$auth" -H "Authorization: Bearer $SMOKE_API_KEY" \
    -H 'Content-Type: application/json' -d "{\"namespace\":\"$ns\",\"query\":\"smoke test $tag\"}" |
    json_eval "any(h['memory']['id']=='$id' for h in j['results'])" | grep -qx True ||
    { log "smoke: the memory was not found by search"; return 1; }
  http_get "$url/v1/memories/$id" -X DELETE -H "$auth" -H "Authorization: Bearer $SMOKE_API_KEY" >/dev/null ||
    { log "smoke: deleting the memory failed"; return 1; }
}

# The scenario's load through the tag URL, gated on the SLO (exit 2: missed).
load_test() {
  local url host
  url="$(tag_url)"
  host="${url#https://}"
  host="${host%%/*}"
  log "load test: $LOAD_SCENARIO against $url, SLO ${LOAD_SLO:-p95<200ms,errors<0.1%}"
  ORCHESTRA_BENCH_KEY="$SMOKE_API_KEY" "${ORCHESTRA_BENCH:-orchestra-bench}" run "$LOAD_SCENARIO" \
    --url "$url" --target-allow "$host" --identity-token gcloud --quiet \
    --slo "${LOAD_SLO:-p95<200ms,errors<0.1%}"
}

smoke_test || abort "smoke test failed; $revision never received traffic"
if [ -n "${LOAD_SCENARIO:-}" ]; then
  load_test || abort "load test missed its objectives; $revision never received traffic"
fi

for step in $CANARY_STEPS; do
  gc run services update-traffic "$service" --to-tags "$tag=$step" >/dev/null ||
    abort "could not route $step% to $revision"
  log "$step% of traffic on $revision"
  [ "$step" -ge 100 ] && break
  observe_step "$service" "$revision" "$step" || abort "$revision failed its gates at $step%"
done

printf '%s\n' "$stable" >"$(previous_file "$env" "$service")"
log "done: $revision serves 100% of $service ($env); $stable recorded for rollback"
