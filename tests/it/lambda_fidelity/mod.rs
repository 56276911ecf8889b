//! Lambda fidelity, judged against situations from public bug reports (aws-lambda-go,
//! aws-lambda-rust-runtime, aws-sam-cli, the Runtime Interface Emulator, rules_oci and others):
//! bootstraps and scripts read as the kernel and the dynamic loader read them, files added beside
//! the bootstrap, `check` following links inside an image and checking every architecture of an
//! index, and the emulator's limits and timings. Each area is a module; fixtures are made the way
//! users make them (musl-gcc, strip, CRLF files, umoci, the real `lambda_runtime`).

mod bootstraps;
mod check;
mod common;
mod emulator;
mod emulator_external;
mod files;
