#!/usr/bin/env bash
# Runs the benchmark (benches/pipeline.rs): lambda-image against buildah and the floor.
#
# Installs what the tests need (through tests/run.sh, which also compiles them), buildah, GNU
# time and curl; downloads the Go binaries used as bootstraps (restic and rclone, amd64 and
# arm64, from Debian) into target/bench-deps/bin/; then runs `cargo bench --bench pipeline`.
# LAMBDA_IMAGE_BENCH_RUNS sets the runs per tool and scenario (default 5).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd)"

bash tests/run.sh --no-run

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
missing=()
for pkg in buildah time curl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    "${SUDO[@]}" apt-get -qq update
    "${SUDO[@]}" apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

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

cargo bench --bench pipeline
