#!/usr/bin/env bash
# rollback.sh ENV SERVICE [REVISION]: all traffic back to a stable revision.
#
# The revision is, in order: the argument; the revision deploy.sh recorded as
# stable before its last successful rollout; else the newest ready revision
# that is not serving now. Canary tags are removed.
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/common.sh
. "$DEPLOY_DIR/lib/common.sh"

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  die "usage: rollback.sh ENV SERVICE [REVISION]"
fi
env="$1" service="$2" target="${3:-}"
load_environment "$env"

current="$(serving_revision "$service")"
if [ -z "$target" ]; then
  if [ -f "$(previous_file "$env" "$service")" ]; then
    target="$(cat "$(previous_file "$env" "$service")")"
    log "recorded stable revision: $target"
  fi
  if [ -z "$target" ] || [ "$target" = "$current" ]; then
    # Revisions come newest first; take the first ready one that is not serving now.
    target="$(gc run revisions list --service "$service" --format=json | json_eval \
      "next((r['metadata']['name'] for r in j if r['metadata']['name'] != '$current' and any(c.get('type')=='Ready' and c.get('status')=='True' for c in r.get('status',{}).get('conditions',[]))), None)")"
    [ -n "$target" ] || die "no earlier ready revision of $service to roll back to"
    log "previous ready revision: $target"
  fi
fi

log "rolling $service ($env) back to $target (serving now: ${current:-a split})"
route_all_to "$service" "$target"
# Rolled back: nothing newer to return to.
rm -f "$(previous_file "$env" "$service")"
log "done: $target serves 100% of $service"
