//! The command line: clap definitions, one file per command.

pub mod build;
pub mod zip;

use clap::{Parser, Subcommand};

/// Build AWS Lambda container images from a compiled `bootstrap`, without Docker.
#[derive(Debug, Parser)]
#[command(name = "lambda-image", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the largest command's flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put bootstrap executables on a Lambda base image and write the result.
    Build(build::BuildArgs),
    /// Write the .zip deployment package for the provided.al2023 / provided.al2 runtimes.
    Zip(zip::ZipArgs),
}
