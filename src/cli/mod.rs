//! The command line: clap definitions, one file per command.

pub mod build;
pub mod function;
pub mod invoke;
pub mod serve;

use clap::{Parser, Subcommand};

/// Build AWS Lambda container images from a compiled `bootstrap`, without Docker.
#[derive(Debug, Parser)]
#[command(name = "lambda-image", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size difference between commands costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put bootstrap executables on a Lambda base image and write the result.
    Build(build::BuildArgs),
    /// Run a bootstrap once on a local Lambda Runtime API and print its answer to one event.
    Invoke(invoke::InvokeArgs),
    /// Serve a bootstrap (or an external runtime) like the Lambda Runtime Interface Emulator.
    Serve(serve::ServeArgs),
}
