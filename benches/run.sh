#!/usr/bin/env bash
# Runs a benchmark: lambda-image against its peers (buildah and the floor; umoci + runc and
# podman for run_image).
#
# usage: run.sh [pipeline|link|run_image]
#   pipeline   (default) benches/pipeline.rs, on loopback
#   link       benches/link.rs, over a shaped link to a registry in a network namespace (root)
#   run_image  benches/run_image.rs, `invoke --image` against umoci + runc and podman (root)
#
# Installs what the tests need (through tests/run.sh, which also compiles them), buildah, GNU
# time and curl (and iproute2 for `link`; runc, umoci, jq and podman instead of buildah for
# `run_image`); for pipeline and link, downloads the Go binaries used as bootstraps (restic
# and rclone, amd64 and arm64, from Debian) into target/bench-deps/bin/; then runs
# `cargo bench --bench NAME`. LAMBDA_IMAGE_BENCH_RUNS sets the runs per tool and scenario
# (default 5); see benches/link.rs for the link benchmark's other variables.
set -euo pipefail

bench=${1:-pipeline}
case $bench in
    pipeline) packages=(buildah time curl) ;;
    link)
        packages=(buildah time curl iproute2)
        if [ "$(id -u)" -ne 0 ]; then
            echo "run.sh link: the link benchmark makes a network namespace and must run as root" >&2
            exit 2
        fi
        ;;
    run_image)
        packages=(runc umoci jq podman time curl)
        if [ "$(id -u)" -ne 0 ]; then
            echo "run.sh run_image: runc and podman run containers as root; run it as root" >&2
            exit 2
        fi
        ;;
    *)
        echo "usage: $0 [pipeline|link|run_image]" >&2
        exit 2
        ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd)"

bash tests/run.sh --no-run

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    "${SUDO[@]}" apt-get -qq update
    "${SUDO[@]}" apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Go bootstraps of pipeline and link; run_image runs the tests' echo function instead.
if [ "$bench" != run_image ]; then
    deps="$repo_root/target/bench-deps"
    mkdir -p "$deps/bin"
    download_opts=(-qq)
    [ "$(id -u)" -eq 0 ] && download_opts+=(-o APT::Sandbox::User=root)
    for program in restic rclone; do
        for arch in amd64 arm64; do
            binary="$deps/bin/$program-$arch"
            [ -x "$binary" ] && continue
            rm -rf "$deps/extract" && mkdir -p "$deps/extract"
            (cd "$deps/extract" && apt-get "${download_opts[@]}" download "$program:$arch")
            dpkg-deb -x "$deps/extract"/*.deb "$deps/extract/root"
            cp "$deps/extract/root/usr/bin/$program" "$binary"
            chmod 0755 "$binary"
        done
    done
    rm -rf "$deps/extract"
fi

cargo bench --bench "$bench"
