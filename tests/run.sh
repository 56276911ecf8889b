#!/usr/bin/env bash
# The project's one test command.
#
# Installs everything the integration tests need (skopeo, umoci, busybox-static, gcc and
# the aarch64 cross compiler, runc, a local docker registry, qemu-user-static, unzip and
# python3 for checking .zip packages, zip for packages made as users make them, curl,
# strace and iproute2 for the offline build in a network namespace, util-linux's
# unshare), creates a Python virtualenv with moto[server] (the ECR, Lambda, IAM and S3
# API emulator, with boto3) in target/test-deps/moto-venv, fetches an arm64
# busybox-static into target/test-deps/busybox-arm64/ for the arm64 base-image fixture,
# then runs `cargo test --all-targets` with any extra arguments appended. Target flags
# add to --all-targets rather than narrowing it, so filter by test name instead, e.g.
# `bash tests/run.sh -- skopeo`. The integration tests are one test binary,
# tests/it/main.rs, whose test names start with their module (the file under tests/it/),
# so `bash tests/run.sh -- registry_interop::tls::` runs one area.
#
# Safe to run repeatedly: installs and downloads are skipped when already done.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd)"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "tests/run.sh: not root and sudo is not available; cannot install test dependencies" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_quiet=(-qq -o=Dpkg::Use-Pty=0)

packages=(
    skopeo umoci busybox-static gcc gcc-aarch64-linux-gnu libc6-dev
    libc6-dev-arm64-cross runc docker-registry qemu-user-static apache2-utils openssl
    unzip python3 python3-venv curl strace iproute2 util-linux
    # nginx: a TLS front end that requires client certificates, in front of the registry
    # (tests/it/registry_interop/tls.rs), as registries behind nginx are set up.
    nginx
    # tinyproxy, microsocks: the real HTTP (CONNECT, BasicAuth) and SOCKS5 proxies of
    # tests/it/registry_interop/proxies.rs.
    tinyproxy microsocks
    # musl-tools: musl-gcc, for bootstraps linked dynamically against musl (tests/it/lambda_fidelity/bootstraps.rs, check.rs).
    musl-tools
    # zlib1g-dev: gcc -lz, a program needing libz.so.1 (tests/it/lambda_fidelity/bootstraps.rs).
    zlib1g-dev
    # zip: packages made as users make them, with `zip -r` (tests/it/deploy/packages.rs).
    zip
    # groff-base, man-db: render the manual pages of `lambda-image man` (tests/it/cli_surface.rs).
    groff-base man-db
)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

apt_updated=0
if [ "${#missing[@]}" -gt 0 ]; then
    echo "tests/run.sh: installing ${missing[*]}" >&2
    "${SUDO[@]}" apt-get "${apt_quiet[@]}" update
    apt_updated=1
    "${SUDO[@]}" apt-get "${apt_quiet[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# arm64 busybox-static for the arm64 half of the base image fixture.
deps_dir="$repo_root/target/test-deps"
busybox_arm64_dir="$deps_dir/busybox-arm64"
if [ ! -x "$busybox_arm64_dir/bin/busybox" ] && [ ! -x "$busybox_arm64_dir/usr/bin/busybox" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        "${SUDO[@]}" dpkg --add-architecture arm64
        "${SUDO[@]}" apt-get "${apt_quiet[@]}" update
        apt_updated=1
    fi
    mkdir -p "$deps_dir"
    rm -f "$deps_dir"/busybox-static_*_arm64.deb
    # apt drops to user _apt for downloads unless told otherwise; as root, skip that so
    # it can write into target/ without a warning.
    download_opts=("${apt_quiet[@]}")
    if [ "$(id -u)" -eq 0 ]; then
        download_opts+=(-o APT::Sandbox::User=root)
    fi
    download() { (cd "$deps_dir" && apt-get "${download_opts[@]}" download busybox-static:arm64); }
    if ! download; then
        # Package lists may be stale or lack arm64 entries: refresh once and retry.
        if [ "$apt_updated" -eq 1 ]; then
            echo "tests/run.sh: could not download busybox-static:arm64" >&2
            exit 1
        fi
        "${SUDO[@]}" apt-get "${apt_quiet[@]}" update
        download
    fi
    rm -rf "$busybox_arm64_dir"
    dpkg-deb -x "$deps_dir"/busybox-static_*_arm64.deb "$busybox_arm64_dir"
fi

# moto, the ECR API emulator of tests/it/ecr.rs, in its own virtualenv (Debian's python refuses
# system-wide pip installs). Pinned, so the emulated API does not change under the tests.
moto_version="5.2.5"
moto_venv="$deps_dir/moto-venv"
if ! "$moto_venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$moto_version')" 2>/dev/null; then
    rm -rf "$moto_venv"
    python3 -m venv "$moto_venv"
    "$moto_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version"
fi

cargo test --all-targets "$@"
