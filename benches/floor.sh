#!/usr/bin/env bash
# The floor of the benchmark: only the work no tool can avoid to get bootstraps into a
# registry. For each bootstrap, in parallel: tar it, `gzip -1` it, `sha256sum` the result, and
# (unless the registry is `-`) upload that blob with curl (POST, then one PUT with the body).
# No base handling, no manifests, no checks.
#
# usage: floor.sh REGISTRY|- REPOSITORY BOOTSTRAP...
set -euo pipefail

registry=$1
repository=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

one_layer() {
    local bootstrap=$1 blob=$2
    tar -C "$(dirname "$bootstrap")" -cf - "$(basename "$bootstrap")" | gzip -1 >"$blob"
    local digest
    digest="sha256:$(sha256sum "$blob" | cut -d' ' -f1)"
    [ "$registry" = "-" ] && return 0
    local location
    location=$(curl -fsS -X POST -D - -o /dev/null "http://$registry/v2/$repository/blobs/uploads/" |
        tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
    case $location in
        http*) ;;
        *) location="http://$registry$location" ;;
    esac
    local separator='?'
    [[ $location == *\?* ]] && separator='&'
    curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$blob" \
        -o /dev/null "$location${separator}digest=$digest"
}

pids=()
index=0
for bootstrap in "$@"; do
    one_layer "$bootstrap" "$work/layer$index.tar.gz" &
    pids+=($!)
    index=$((index + 1))
done
for pid in "${pids[@]}"; do
    wait "$pid"
done
