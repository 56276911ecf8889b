#!/usr/bin/env bash
# The curl floor of the link benchmark (benches/link.rs): the upload of blobs that are already
# compressed and hashed, nothing else. For each blob, in parallel: `POST` an upload session,
# then one `PUT ?digest=` with the whole blob as its body (curl, plain HTTP). No compression, no
# hashing, no HEAD, no manifests: what is left is moving the bytes over the link.
#
# usage: curl_floor.sh REGISTRY REPOSITORY BLOB...
#   BLOB  a file named after its sha256 hex digest, e.g. an OCI layout's blobs/sha256/<hex>
set -euo pipefail

registry=$1
repository=$2
shift 2

one_blob() {
    local blob=$1
    local digest
    digest="sha256:$(basename "$blob")"
    local location
    location=$(curl -fsS -X POST -D - -o /dev/null "http://$registry/v2/$repository/blobs/uploads/" |
        tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
    case $location in
        http*) ;;
        *) location="http://$registry$location" ;;
    esac
    local separator='?'
    [[ $location == *\?* ]] && separator='&'
    # -T streams the file with its length; an empty Expect keeps curl from waiting for a
    # `100 Continue` before the body.
    curl -fsS -H 'Content-Type: application/octet-stream' -H 'Expect:' -T "$blob" \
        -o /dev/null "$location${separator}digest=$digest"
}

pids=()
for blob in "$@"; do
    one_blob "$blob" &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid"
done
