#!/usr/bin/env bash
# The buildah peer of the benchmark: the same job as `lambda-image build` with two
# architectures, done the way a buildah user would. For each architecture: `from` the base's
# per-architecture image, `copy` the bootstrap to /var/runtime/bootstrap (0755), `config --cmd`,
# `commit`, and `push` it; then `manifest create`, `add` both, and `manifest push --all`.
# With a `oci:DIR` target the images go to an OCI layout instead of a registry.
#
# usage: buildah.sh STORE BASE TARGET BOOTSTRAP_AMD64 BOOTSTRAP_ARM64
#   STORE   buildah's storage root (kept between runs = warm; emptied by the caller = cold)
#   BASE    the base's index, e.g. docker://127.0.0.1:5000/lambda/base:al2023 or oci:DIR:TAG
#   TARGET  docker://HOST/REPO:TAG or oci:DIR:TAG
set -euo pipefail

store=$1
base=$2
target=$3
bootstrap_amd64=$4
bootstrap_arm64=$5

buildah() {
    command buildah --root "$store/root" --runroot "$store/run" --storage-driver "${BUILDAH_STORAGE_DRIVER:-overlay}" "$@"
}
id=$$-$RANDOM
tls=(--tls-verify=false)

images=()
for arch in amd64 arm64; do
    if [ "$arch" = amd64 ]; then bootstrap=$bootstrap_amd64; else bootstrap=$bootstrap_arm64; fi
    from_flags=(--arch "$arch" --pull=missing --quiet --name "bench-$id-$arch-container")
    [[ $base == docker://* ]] && from_flags+=("${tls[@]}")
    container=$(buildah from "${from_flags[@]}" "$base")
    buildah copy --quiet --chmod 0755 "$container" "$bootstrap" /var/runtime/bootstrap >/dev/null
    buildah config --cmd '["bootstrap"]' "$container"
    image="localhost/bench-$id-$arch"
    buildah commit --quiet "$container" "$image" >/dev/null
    buildah rm "$container" >/dev/null
    case $target in
        docker://*) buildah push --quiet "${tls[@]}" "$image" "$target-$arch" ;;
        oci:*) buildah push --quiet "$image" "$target-$arch" ;;
    esac
    images+=("$image")
done

list="localhost/bench-$id-list"
buildah manifest create "$list" >/dev/null
for image in "${images[@]}"; do
    buildah manifest add "$list" "containers-storage:$image" >/dev/null
done
case $target in
    docker://*) buildah manifest push --quiet --all "${tls[@]}" "$list" "$target" ;;
    oci:*) buildah manifest push --quiet --all "$list" "$target" ;;
esac
buildah manifest rm "$list" >/dev/null
buildah rmi "${images[@]}" >/dev/null
