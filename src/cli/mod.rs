//! The command line: clap definitions, one file per command.

pub mod build;

use clap::{Parser, Subcommand};

/// Build AWS Lambda container images from a compiled `bootstrap`, without Docker.
#[derive(Debug, Parser)]
#[command(name = "lambda-image", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put bootstrap executables on a Lambda base image and write the result.
    Build(build::BuildArgs),
}
