//! Shared support code for the integration tests (`tests/it/main.rs` and the benchmark
//! `benches/pipeline.rs` include it as `mod support;`), split by concern:
//!
//! * [`fixtures`]: test inputs made once per test process (the stand-in base image layout,
//!   bootstraps, real Lambda functions, certificates) and the blob and digest helpers that
//!   read and write OCI layouts;
//! * [`tools`]: running external programs (skopeo, umoci, runc, tar) and the binary under
//!   test, builds in the background, `lambda-image serve`, table-driven cases;
//! * [`registries`]: the real distribution registry and the servers around it (token server,
//!   fault-injecting reverse proxy, forward proxies, ECR with moto), on a small HTTP server.
//!
//! Everything is re-exported here, so tests name `support::fixtures()`,
//! `support::registry::TestRegistry` or `support::runc::Container` whatever folder holds it.
//!
//! External tools and the arm64 busybox are installed by `bash tests/run.sh`; when one is
//! missing, the helpers panic with a message saying so instead of skipping tests.

pub mod fixtures;
pub mod registries;
pub mod tools;

pub use fixtures::*;
pub use registries::*;
pub use tools::*;
