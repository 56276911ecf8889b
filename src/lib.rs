//! lambda-image as a library: everything the `lambda-image` binary does, in modules the binary
//! (`src/main.rs`), the fuzz targets (`fuzz/`) and the benchmark can reach. Not a stable API: the
//! command line is the interface.

pub mod assemble;
pub mod base_kit;
pub mod bootstrap;
pub mod build;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod credentials;
pub mod deploy;
pub mod digest;
pub mod emulator;
pub mod error;
pub mod findings;
pub mod image;
pub mod lambda_layer;
pub mod layer;
pub mod lint;
pub mod package;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod report;
pub mod rootfs;
pub mod sandbox;
pub mod scratch_base;
pub mod temporary;
pub mod timestamp;
pub mod transport;
