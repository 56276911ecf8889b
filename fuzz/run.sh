#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, libFuzzer with AddressSanitizer) for FUZZ_SECONDS each
# (default 60), one process at a time, and fails if any target crashes, hangs (-timeout) or runs
# out of memory (-rss_limit_mb). Not part of tests/run.sh.
#
# Installs what it needs: a C++ compiler (libFuzzer is built from C++ by libfuzzer-sys) and
# cargo-fuzz at a pinned version. cargo-fuzz passes -Z flags to rustc; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them, so no nightly is needed.
#
# Inputs of each target: fuzz/seeds/TARGET (committed, realistic inputs), fuzz/regressions/TARGET
# (committed, every input that once crashed: rerun first), and fuzz/corpus/TARGET (what the fuzzer
# learns, kept between runs, not committed). Crashing inputs land in fuzz/artifacts/TARGET.
#
#   bash fuzz/run.sh                  # every target, 60 s each
#   FUZZ_SECONDS=600 bash fuzz/run.sh elf_inspector
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
CARGO_FUZZ_VERSION=0.13.2

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    SUDO=()
fi

if ! command -v c++ >/dev/null 2>&1; then
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq g++
fi

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    inputs=("corpus/$target" "seeds/$target")
    if [ -d "regressions/$target" ]; then
        inputs+=("regressions/$target")
    fi
    echo "== fuzz/run.sh: $target for ${FUZZ_SECONDS}s"
    if ! cargo fuzz run "$target" "${inputs[@]}" -- \
        -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz/run.sh: crashes in ${failed[*]}; reproducers are in fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} targets, ${FUZZ_SECONDS}s each, no crash"
