#!/usr/bin/env bash
# The umoci + runc peer of the run_image benchmark: what a user without a daemon does today to
# run a built image against `lambda-image serve --external` (already listening). Unpacks the
# image into a runtime bundle with `umoci unpack` unless the bundle is already there (cold: the
# caller removed it; warm: it is reused as it is), and after unpacking edits its config.json with
# jq: the Runtime API's environment added, no network namespace (the host's), no terminal, uid 0.
# Then `runc run -d`, one `curl` of the invocation (the answer on stdout), and `runc delete -f`.
#
# usage: runc.sh IMAGE BUNDLE STATE URL EVENT [KEY=VALUE...]
#   IMAGE      DIR:TAG, an OCI layout and a tag naming an image manifest
#   BUNDLE     the runtime bundle's directory (kept between runs = warm)
#   STATE      runc's state root
#   URL        serve's invocation URL
#   EVENT      the event, posted as the body
#   KEY=VALUE  the environment `serve --external` printed
set -euo pipefail

image=$1
bundle=$2
state=$3
url=$4
event=$5
shift 5

if [ ! -f "$bundle/config.json" ]; then
    umoci unpack --image "$image" "$bundle" >/dev/null
    env_json=$(printf '%s\n' "$@" | jq -R . | jq -s .)
    jq --argjson env "$env_json" '
        .process.terminal = false
        | .process.user = {uid: 0, gid: 0}
        | .process.env += $env
        | .linux.namespaces |= map(select(.type != "network"))
    ' "$bundle/config.json" >"$bundle/config.json.new"
    mv "$bundle/config.json.new" "$bundle/config.json"
fi

id=run-image-bench-$$
log=$state/$id.log
mkdir -p "$state"
runc --root "$state" run -d --bundle "$bundle" "$id" </dev/null >"$log" 2>&1
if ! curl -sS --fail-with-body --max-time 30 -H 'Content-Type: application/json' -d "$event" "$url"; then
    echo "runc.sh: no answer; the container said:" >&2
    cat "$log" >&2
    runc --root "$state" delete -f "$id" || true
    exit 1
fi
echo
runc --root "$state" delete -f "$id"
rm -f "$log"
