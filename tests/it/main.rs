//! The integration tests: one test binary, one module per area.
//!
//! Every module runs the built `lambda-image` binary (and real tools: skopeo, umoci, runc, the
//! distribution registry, moto) against the shared fixtures and servers of `tests/support/`.
//! Test names carry their module, so `cargo test --test it registry_interop::tls::` runs one
//! area and `cargo test --test it skopeo` every test whose name contains `skopeo`.
//! `bash tests/run.sh` installs what they need and runs them all.

#[path = "../support/mod.rs"]
mod support;

mod base_catalog;
mod base_kit;
mod build_errors;
mod build_outputs;
mod build_registry;
mod cli_surface;
mod credential_hints;
mod deploy;
mod ecr;
mod exit_codes;
mod extensions;
mod faults;
mod faults_outputs;
mod fixtures_selftest;
mod hostile_input;
mod interrupted_and_stdout;
mod invoke;
mod invoke_image;
mod lambda_checks;
mod lambda_fidelity;
mod lambda_layers;
mod layering;
mod offline_kits;
mod registry_interop;
mod registry_selftest;
mod round_trips;
mod run_image;
mod sandbox;
mod scratch_base;
mod secrets;
mod streaming;
mod zip;
mod zip_errors;
