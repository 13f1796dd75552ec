#!/usr/bin/env bash
# The local canary run: the production gate code (deploy/lib/canary.sh)
# judging real processes of either service.
#
# A stable server and a canary server sit behind haproxy, which splits the
# traffic by weight (the canary's share steps 10% -> 50% -> 100% as on Cloud
# Run); a local Prometheus scrapes both (labelled revision="stable" and
# revision="canary"); a load generator searches through haproxy. Run twice:
# a healthy canary must be promoted, and a canary made faulty with the
# test-only setting testing.fail_every must be rolled back (all traffic
# returned to the stable server).
#
# Usage: deploy/tests/local-canary.sh <binary> [memory-server|orchestrator]
# (the orchestrator runs the repository's config/agents.toml: the offline
# scripted model). Needs haproxy and prometheus (Debian packages), python3 and curl.
set -euo pipefail

bin="$(realpath "$1")"
service="${2:-memory-server}"
case "$service" in
  memory-server | orchestrator) ;;
  *) echo "unknown service $service" >&2; exit 2 ;;
esac
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$DEPLOY_DIR/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/canary.sh
. "$DEPLOY_DIR/lib/canary.sh"

work="$(mktemp -d)"
pids=()
cleanup() {
  local status=$? p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # The servers were started from subshells, so `wait` cannot see them: poll
  # until they have exited (they snapshot on the way out) before removing
  # their data.
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
  done
  rm -rf "$work" || true
  exit "$status"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() {
  local url="$1"
  for _ in $(seq 200); do
    curl -sf "$url" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "nothing answered at $url"
}

# Starts a server of $service on port $2 with extra TOML $3; prints its pid.
start_server() {
  local name="$1" port="$2" extra="$3" file=default.toml snapshots="snapshot_every_secs = 0"
  mkdir -p "$work/$name"
  if [ "$service" = orchestrator ]; then
    file=orchestrator.toml snapshots=""
    cp "$DEPLOY_DIR/../config/agents.toml" "$work/$name/agents.toml"
  fi
  cat >"$work/$name/$file" <<EOF
[server]
host = "127.0.0.1"
port = $port
[storage]
path = "$work/$name/data"
$snapshots
[log]
level = "warn"
$extra
EOF
  "$bin" --config-dir "$work/$name" >"$work/$name.out" 2>"$work/$name.log" &
  echo $!
}

stable_port="$(free_port)" healthy_port="$(free_port)" faulty_port="$(free_port)"
proxy_port="$(free_port)" prom_port="$(free_port)" alerts_port="$(free_port)"

# The stable build, and two candidates: a healthy one and one that fails every
# fifth request (each its own "revision", as on Cloud Run).
pids+=("$(start_server stable "$stable_port" "")")
pids+=("$(start_server canary-healthy "$healthy_port" "")")
pids+=("$(start_server canary-faulty "$faulty_port" $'[testing]\nfail_every = 5')")
for port in "$stable_port" "$healthy_port" "$faulty_port"; do
  wait_http "http://127.0.0.1:$port/readyz"
done

# The alerts API of this "project": no incident open.
mkdir -p "$work/alerts"
echo '{"alerts": []}' >"$work/alerts/alerts"
python3 -m http.server "$alerts_port" --bind 127.0.0.1 --directory "$work/alerts" \
  >/dev/null 2>&1 &
pids+=($!)

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: $service
    static_configs:
      - targets: ["127.0.0.1:$stable_port"]
        labels: {revision: stable}
      - targets: ["127.0.0.1:$healthy_port"]
        labels: {revision: canary-healthy}
      - targets: ["127.0.0.1:$faulty_port"]
        labels: {revision: canary-faulty}
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$prom_port/-/ready"

haproxy_pid=""
# Splits traffic: $1 percent to the canary on port $2, the rest to the stable server.
set_canary_weight() {
  local canary="$1" canary_port="$2" old="$haproxy_pid"
  cat >"$work/haproxy.cfg" <<EOF
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend memory
  bind 127.0.0.1:$proxy_port
  default_backend servers
backend servers
  balance roundrobin
  server stable 127.0.0.1:$stable_port weight $((100 - canary))
  server canary 127.0.0.1:$canary_port weight $canary
EOF
  if [ -n "$old" ]; then
    haproxy -f "$work/haproxy.cfg" -sf "$old" >>"$work/haproxy.log" 2>&1 &
  else
    haproxy -f "$work/haproxy.cfg" >>"$work/haproxy.log" 2>&1 &
  fi
  haproxy_pid=$!
  # The old haproxy ends on the SIGUSR1 that -sf sends it: that is its soft
  # stop, not a failure, so bash is not to report it ("User defined signal 1").
  disown "$haproxy_pid"
  pids+=("$haproxy_pid")
}

# Searches (memory-server) or runs the offline assistant (orchestrator)
# through haproxy from a few threads until killed.
cat >"$work/load.py" <<'PY'
import json, sys, threading, time, urllib.request
url, service = sys.argv[1], sys.argv[2]
if service == "orchestrator":
    path, request = "/v1/runs", {"agent": "assistant", "input": "hello", "namespace": "canary-run"}
else:
    path, request = "/v1/memories/search", {"namespace": "canary-run", "query": "green tea"}
def worker():
    while True:
        body = json.dumps(request).encode()
        req = urllib.request.Request(url + path, body, {"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5).read()
        except Exception:
            pass
        time.sleep(0.05)
for _ in range(4):
    threading.Thread(target=worker, daemon=True).start()
while True:
    time.sleep(1)
PY

PROJECT=local
CANARY_CONFIG="$DEPLOY_DIR/tests/local-canary.toml"
PROMQL_URL="http://127.0.0.1:$prom_port/api/v1/query"
ALERTS_URL="http://127.0.0.1:$alerts_port/alerts"
MONITORING_AUTH=none
export PROJECT CANARY_CONFIG PROMQL_URL ALERTS_URL MONITORING_AUTH
load_canary_config "$service"

# One rollout of the candidate revision $1 listening on port $2; returns 0 if promoted.
rollout() {
  local revision="$1" port="$2" load_pid step result=0
  log "== $revision"
  set_canary_weight 0 "$port"
  wait_http "http://127.0.0.1:$proxy_port/healthz"
  python3 "$work/load.py" "http://127.0.0.1:$proxy_port" "$service" &
  load_pid=$!
  pids+=("$load_pid")
  for step in $CANARY_STEPS; do
    set_canary_weight "$step" "$port"
    log "$step% of traffic on $revision"
    [ "$step" -ge 100 ] && break
    if ! observe_step "$service" "$revision" "$step"; then
      set_canary_weight 0 "$port"
      log "rolled back: all traffic on the stable server"
      result=1
      break
    fi
  done
  kill "$load_pid" 2>/dev/null || true
  return "$result"
}

if ! rollout canary-healthy "$healthy_port"; then
  die "the healthy canary was rolled back"
fi
log "the healthy canary was promoted"
if rollout canary-faulty "$faulty_port"; then
  die "the faulty canary (every 5th request fails) was promoted"
fi
log "the faulty canary was rolled back"
echo "local canary run ($service): ok"
