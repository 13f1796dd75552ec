#!/usr/bin/env bash
# The canary gates: PromQL reads of the canary revision's traffic, errors and
# latency, open alert incidents, and the verdict of each check. Sourced by
# deploy.sh; the same code judges the local canary run against a local
# Prometheus (PROMQL_URL / ALERTS_URL point elsewhere there).

# Loads the rollout settings of config/canary.toml (or $CANARY_CONFIG) for
# service $1 (its [services.<name>] table overrides the defaults).
load_canary_config() {
  local file="${CANARY_CONFIG:-$DEPLOY_DIR/../config/canary.toml}" service="${1:-}" key
  [ -f "$file" ] || die "missing canary config $file"
  for key in steps checks_per_step check_every_secs min_requests max_wait_secs \
    bad_checks_to_fail max_error_ratio max_p95_ms lookback \
    query_requests query_errors query_p95_ms; do
    printf -v "CANARY_${key^^}" '%s' "$(toml_get "$file" "$key" "$service")" || die "canary config: $key"
  done
  PROMQL_URL="${PROMQL_URL:-https://monitoring.googleapis.com/v1/projects/$PROJECT/location/global/prometheus/api/v1/query}"
  ALERTS_URL="${ALERTS_URL:-https://monitoring.googleapis.com/v3/projects/$PROJECT/alerts}"
}

# The bearer token for Cloud Monitoring (none for a local Prometheus).
monitoring_auth() {
  if [ "${MONITORING_AUTH:-gcloud}" = gcloud ]; then
    printf 'Authorization: Bearer %s' "$(gcloud auth print-access-token)"
  else
    printf 'X-No-Auth: 1'
  fi
}

# Fills {service}, {revision} and {lookback} into a query template.
render_query() {
  local q="$1"
  q="${q//\{service\}/$2}"
  q="${q//\{revision\}/$3}"
  printf '%s' "${q//\{lookback\}/$CANARY_LOOKBACK}"
}

# Runs an instant PromQL query; prints its scalar value (0 when there is no series).
promql() {
  http_get "$PROMQL_URL" -G --data-urlencode "query=$1" -H "$(monitoring_auth)" | json_eval \
    "(lambda r: r[0]['value'][1] if r else '0')(j['data']['result'])"
}

# Number of alert incidents open on the project now.
open_incidents() {
  http_get "$ALERTS_URL" -G --data-urlencode 'filter=state="OPEN"' -H "$(monitoring_auth)" |
    json_eval "len(j.get('alerts', []))"
}

# One check of revision $2 of service $1: prints `wait`, `good` or
# `bad <reason>`.
check_canary() {
  local service="$1" revision="$2" requests errors p95 incidents
  incidents="$(open_incidents)" || { echo "bad cannot read alert incidents"; return; }
  if [ "$incidents" -gt 0 ]; then
    echo "bad $incidents alert incident(s) open"
    return
  fi
  requests="$(promql "$(render_query "$CANARY_QUERY_REQUESTS" "$service" "$revision")")" ||
    { echo "bad cannot read metrics"; return; }
  if ! python3 -c "import sys; sys.exit(0 if float('$requests') >= float('$CANARY_MIN_REQUESTS') else 1)"; then
    echo "wait only $requests request(s) so far, $CANARY_MIN_REQUESTS needed"
    return
  fi
  errors="$(promql "$(render_query "$CANARY_QUERY_ERRORS" "$service" "$revision")")" ||
    { echo "bad cannot read metrics"; return; }
  p95="$(promql "$(render_query "$CANARY_QUERY_P95_MS" "$service" "$revision")")" ||
    { echo "bad cannot read metrics"; return; }
  python3 - "$requests" "$errors" "$p95" "$CANARY_MAX_ERROR_RATIO" "$CANARY_MAX_P95_MS" <<'PY'
import math, sys
requests, errors, p95, max_ratio, max_p95 = map(float, sys.argv[1:])
ratio = errors / requests
if ratio > max_ratio:
    print(f"bad error ratio {ratio:.4f} > {max_ratio} over {requests:.0f} requests")
elif math.isnan(p95) or p95 > max_p95:
    print(f"bad p95 latency {p95:.1f} ms > {max_p95:.0f} ms")
else:
    print(f"good error ratio {ratio:.4f}, p95 {p95:.1f} ms over {requests:.0f} requests")
PY
}

# Watches the canary at its current step until it has enough good checks
# (returns 0) or fails a gate or waits too long for traffic (returns 1).
observe_step() {
  local service="$1" revision="$2" step="$3"
  local good=0 bad=0 waited=0 verdict
  while [ "$good" -lt "$CANARY_CHECKS_PER_STEP" ]; do
    sleep "$CANARY_CHECK_EVERY_SECS"
    verdict="$(check_canary "$service" "$revision")"
    case "$verdict" in
      good*)
        good=$((good + 1))
        bad=0
        log "  $step%: check $good/$CANARY_CHECKS_PER_STEP ${verdict#good }"
        ;;
      wait*)
        waited=$((waited + CANARY_CHECK_EVERY_SECS))
        log "  $step%: waiting: ${verdict#wait }"
        if [ "$waited" -ge "$CANARY_MAX_WAIT_SECS" ]; then
          log "  $step%: too little traffic after ${waited}s"
          return 1
        fi
        ;;
      *)
        bad=$((bad + 1))
        log "  $step%: bad check $bad/$CANARY_BAD_CHECKS_TO_FAIL: ${verdict#bad }"
        if [ "$bad" -ge "$CANARY_BAD_CHECKS_TO_FAIL" ]; then
          return 1
        fi
        ;;
    esac
  done
}
