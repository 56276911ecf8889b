#!/usr/bin/env bash
# The podman peer of the run_image benchmark: the image run by rootful podman against
# `lambda-image serve --external` (already listening). `podman run --rm -d --network host
# --ulimit … -e … oci:DIR:TAG` (it imports the image into its storage first when the storage
# does not have it: cold when the caller emptied the storage, warm when an earlier run left it
# there), one `curl` of the invocation (the answer on stdout), then `podman rm -f --time 0`
# (SIGKILL at once, as `runc delete -f`: the function is the container's PID 1 and ignores
# SIGTERM, so podman's default would wait 10 s).
#
# usage: podman.sh DRIVER STORE IMAGE URL EVENT [KEY=VALUE...]
#   DRIVER     the storage driver: overlay or vfs
#   STORE      podman's storage root and run root (STORE/root, STORE/run)
#   IMAGE      oci:DIR:TAG
#   URL        serve's invocation URL
#   EVENT      the event, posted as the body
#   KEY=VALUE  the environment `serve --external` printed
set -euo pipefail

driver=$1
store=$2
image=$3
url=$4
event=$5
shift 5

podman() {
    command podman --root "$store/root" --runroot "$store/run" \
        --storage-driver "$driver" \
        --cgroup-manager cgroupfs --events-backend file "$@"
}

env_flags=()
for variable in "$@"; do
    env_flags+=(-e "$variable")
done
# The limits runc's own default config.json sets (umoci writes it): podman's defaults (1048576
# open files, and the host's process limit) are refused to a root without CAP_SYS_RESOURCE, as
# in a container.
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
id=$(podman run --rm -d --quiet --network host "${limits[@]}" "${env_flags[@]}" "$image")
if ! curl -sS --fail-with-body --max-time 30 -H 'Content-Type: application/json' -d "$event" "$url"; then
    echo "podman.sh: no answer; the container said:" >&2
    podman logs "$id" >&2 || true
    podman rm -f --time 0 "$id" >/dev/null || true
    exit 1
fi
echo
podman rm -f --time 0 "$id" >/dev/null
