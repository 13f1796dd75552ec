#!/usr/bin/env bash
# Shared by deploy.sh and rollback.sh: settings, logging, JSON, gcloud and HTTP.
# Sourced, not run. Every external call goes through `gcloud` or `curl` on
# PATH, which is what the bats tests replace with fakes.

# Prints a timestamped progress line on stderr.
log() {
  printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

# Prints an error and exits non-zero.
die() {
  log "error: $*"
  exit 1
}

# Loads deploy/environments/<env>.env (PROJECT, REGION) after checking the name.
load_environment() {
  local env="$1" file
  case "$env" in
    dev | staging | prod) ;;
    *) die "unknown environment '$env': use dev, staging or prod" ;;
  esac
  file="$DEPLOY_DIR/environments/$env.env"
  [ -f "$file" ] || die "missing $file"
  # shellcheck source=/dev/null
  . "$file"
  if [ -z "${PROJECT:-}" ] || [ -z "${REGION:-}" ]; then
    die "$file must set PROJECT and REGION"
  fi
}

# Reads key $2 of TOML file $1 (python3's tomllib), the [services.$3] value
# first when service $3 is given; lists print space-separated.
toml_get() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    config = tomllib.load(f)
# A [services.<name>] table overrides the top-level value for that service.
value = config.get("services", {}).get(sys.argv[3], {}).get(sys.argv[2], config[sys.argv[2]])
print(" ".join(map(str, value)) if isinstance(value, list) else value)
PY
}

# Evaluates a Python expression over the JSON on stdin (bound to `j`); prints the result.
json_eval() {
  python3 -c "import json,sys; j=json.load(sys.stdin); r=($1); print('' if r is None else r)"
}

# Runs gcloud for this environment's project and region.
gc() {
  gcloud "$@" --project "$PROJECT" --region "$REGION" --quiet
}

# The service's description as JSON.
describe_service() {
  gc run services describe "$1" --format=json
}

# Where deploy.sh records, for an environment and service, the revision that
# was stable before its last successful rollout (what rollback.sh returns to).
previous_file() {
  local dir="${DEPLOY_STATE_DIR:-$HOME/.ai-orchestra-deploy}"
  mkdir -p "$dir"
  printf '%s/%s-%s.previous' "$dir" "$1" "$2"
}

# The revision serving 100% of the traffic now, if one does.
serving_revision() {
  describe_service "$1" | json_eval \
    "next((t.get('revisionName') for t in j.get('status',{}).get('traffic',[]) if t.get('percent')==100), None)"
}

# Sends all traffic to revision $2 of service $1 and drops the canary tags.
route_all_to() {
  local service="$1" revision="$2" tags
  gc run services update-traffic "$service" --to-revisions "$revision=100" >/dev/null
  tags="$(describe_service "$service" | json_eval \
    "','.join(t['tag'] for t in j.get('status',{}).get('traffic',[]) if t.get('tag','').startswith('canary-'))")"
  if [ -n "$tags" ]; then
    gc run services update-traffic "$service" --remove-tags "$tags" >/dev/null
  fi
}

# GETs a URL with optional extra headers; prints the body, fails on non-2xx.
http_get() {
  local url="$1"
  shift
  curl -fsS --max-time 20 "$@" "$url"
}
