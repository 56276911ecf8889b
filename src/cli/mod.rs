//! The command line: clap definitions, one file per command.

pub mod base;
pub mod build;
pub mod check;
pub mod function;
pub mod invoke;
mod make_images;
pub mod serve;
pub mod zip;

use clap::{Parser, Subcommand};

use crate::error::Result;
use crate::platform::Architecture;
use crate::reference::BaseReference;
use crate::registry::pull::{RemoteRepository, open_registry_base};
use crate::registry::{Session, SessionOptions};
use crate::transport::source::{ImageRole, ResolvedBase, open_local};

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
    /// The catalog of Lambda bases, and base kits for builds without internet.
    Base(base::BaseArgs),
    /// Lint an image for what Lambda would reject, and check bootstraps against a base.
    Check(check::CheckArgs),
    /// Write the .zip deployment package for the provided.al2023 / provided.al2 runtimes.
    Zip(zip::ZipArgs),
    /// Run a bootstrap once on a local Lambda Runtime API and print its answer to one event.
    Invoke(invoke::InvokeArgs),
    /// Serve a bootstrap (or an external runtime) like the Lambda Runtime Interface Emulator.
    Serve(serve::ServeArgs),
}

/// `--skip-checks`, shared by every command that checks bootstraps.
#[derive(Debug, clap::Args)]
pub struct SkipChecks {
    /// Skip a named bootstrap check (repeatable or comma-separated); reported as skipped.
    #[arg(
        long = "skip-checks",
        value_name = "CHECK",
        value_enum,
        value_delimiter = ','
    )]
    pub skip_checks: Vec<crate::bootstrap::checks::CheckName>,
}

/// The flags every command that talks to registries shares.
#[derive(Debug, clap::Args)]
pub struct RegistryFlags {
    /// Allow plain HTTP to this registry host[:port] (repeatable). Loopback hosts always may.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,

    /// Where pulled blobs are cached [default: $XDG_CACHE_HOME/lambda-image or ~/.cache/lambda-image].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// No progress output on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// The AWS region to get ECR credentials in [default: the region in the ECR host name].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

impl RegistryFlags {
    /// Session options from these flags, with no credentials.
    pub fn session_options(&self) -> SessionOptions {
        SessionOptions {
            creds: None,
            base_creds: None,
            insecure_registries: self.insecure_registries.clone(),
            cache_dir: self.cache_dir.clone(),
            quiet: self.quiet,
            region: self.region.clone(),
        }
    }
}

/// Opens an image from wherever `reference` points; a registry reference needs a session.
/// With no wanted architectures, every Lambda architecture it has is resolved. `role` names it
/// in messages.
pub fn open_image(
    reference: &BaseReference,
    wanted: &[Architecture],
    session: Option<&Session>,
    role: ImageRole,
) -> Result<ResolvedBase> {
    match (reference, session) {
        (BaseReference::Local(location), _) => open_local(location, wanted, role),
        (BaseReference::Registry(reference), Some(session)) => {
            let repository = RemoteRepository::new(
                session.registry(&reference.registry),
                &reference.repository,
                session.cache.clone(),
                session.progress.clone(),
            );
            open_registry_base(reference, wanted, repository)
        }
        (BaseReference::Registry(_), None) => unreachable!("a registry reference opens a session"),
    }
}
