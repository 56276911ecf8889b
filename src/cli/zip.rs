//! `lambda-image zip`: one bootstrap (+ includes) → the `.zip` deployment package Lambda's
//! `provided.al2023` / `provided.al2` runtimes take, checked like `build` checks its bootstraps.
//!
//! The order keeps failures cheap: arguments, then the bootstrap's checks against the runtime's
//! facts (its catalog entry: glibc, program interpreters, `PATH`; the same checks as `build`),
//! then the file tree and its unzipped size, and only then the write (see
//! `crate::package` for what goes in the zip and how).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::bootstrap::base_knowledge::{BaseFacts, check_bootstraps};
use crate::bootstrap::checks::enforce;
use crate::bootstrap::{self, BootstrapSpec};
use crate::catalog;
use crate::error::{Error, Result};
use crate::findings::report_findings;
use crate::layer::IncludeSpec;
use crate::package::dos_time::zip_timestamp;
use crate::package::limits::{check_unzipped_size, upload_finding};
use crate::package::report::ZipReport;
use crate::package::writer::write_zip;
use crate::package::{PackageContents, TASK_ROOT};
use crate::timestamp::BuildTimestamp;

#[derive(Debug, Args)]
pub struct ZipArgs {
    /// The compiled bootstrap; its architecture is read from the ELF header. Exactly one: a
    /// .zip is for one architecture. ARCH=PATH (amd64= or arm64=) states it, e.g. for a #! script.
    #[arg(long = "bootstrap", value_name = "[ARCH=]PATH", required = true)]
    pub bootstraps: Vec<BootstrapSpec>,

    /// Extra files or a directory, placed where the function will see them: DEST is under
    /// /var/task, where Lambda unpacks the zip, e.g. ./config.json:/var/task/config.json
    /// (repeatable).
    #[arg(long = "include", value_name = "SRC:DEST")]
    pub includes: Vec<IncludeSpec>,

    /// The Lambda runtime the package is for; the bootstrap is checked against its glibc and
    /// program interpreters, as `build` checks against the same base image.
    #[arg(long, value_enum, default_value = "provided.al2023")]
    pub runtime: Runtime,

    #[command(flatten)]
    pub checks: super::PackageSkipChecks,

    /// The .zip to write (replaced if it exists); its directory must exist.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The OS-only Lambda runtimes a `.zip` with a `bootstrap` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    #[value(name = "provided.al2023")]
    ProvidedAl2023,
    #[value(name = "provided.al2")]
    ProvidedAl2,
}

impl Runtime {
    /// Lambda's name for it, also its name in the base-image catalog.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::ProvidedAl2023 => "provided.al2023",
            Runtime::ProvidedAl2 => "provided.al2",
        }
    }

    /// What the runtime offers a bootstrap: the catalog entry of its base image.
    fn facts(self) -> Result<BaseFacts> {
        let entry = catalog::by_name(self.name())
            .ok_or_else(|| Error::failure(format!("{} is not in the catalog", self.name())))?;
        Ok(BaseFacts::of_catalog(entry))
    }
}

/// Writes the package and returns what to report.
pub fn run(args: &ZipArgs) -> Result<ZipReport> {
    let timestamp = zip_timestamp(BuildTimestamp::from_environment()?.seconds)?;
    let spec = one_bootstrap(&args.bootstraps)?;
    let bootstrap = bootstrap::inspect(spec)?;
    let contents = PackageContents::new(&bootstrap.path, bootstrap.size, &args.includes)?;
    // Package entries are named relative to the task root, where Lambda unpacks them.
    let packaged = contents
        .entries()
        .iter()
        .map(|(name, entry)| (name.as_str(), entry));
    let runtime = args
        .runtime
        .facts()?
        .adding_entries(TASK_ROOT, packaged)
        .with_bootstrap_directory(TASK_ROOT);
    let mut findings = check_bootstraps(
        std::slice::from_ref(&bootstrap),
        &runtime,
        None,
        &args.checks.skip_checks,
    )?;
    enforce(&findings)?;
    if args.runtime != Runtime::ProvidedAl2
        && let Some(library) = crate::deploy::zip_package::al2_only_library(&bootstrap.kind)
    {
        return Err(Error::bootstrap(format!(
            "bootstrap {} needs {library} (OpenSSL 1.0), which {} does not have: it would fail \
             to start",
            bootstrap.path.display(),
            args.runtime.name()
        ))
        .hint("package it for --runtime provided.al2, or link it against OpenSSL 3"));
    }

    check_unzipped_size(contents.unzipped_size())?;
    let written = write_zip(&contents, timestamp, &args.output)?;
    findings.extend(contents.findings().iter().cloned());
    findings.extend(upload_finding(written.size, bootstrap.architecture));
    report_findings(&findings);

    Ok(ZipReport::new(
        args.output.display().to_string(),
        &written.sha256,
        written.size,
        contents.unzipped_size(),
        bootstrap.architecture,
        args.runtime.name(),
        findings,
    ))
}

/// The one `--bootstrap`: a function, so a zip, has one architecture.
fn one_bootstrap(specs: &[BootstrapSpec]) -> Result<&BootstrapSpec> {
    match specs {
        [spec] => Ok(spec),
        _ => Err(Error::usage(format!(
            "a .zip package holds one bootstrap, for one architecture, but {} --bootstrap were given",
            specs.len()
        ))
        .hint(format!(
            "run lambda-image zip once per architecture, e.g. -o function-arm64.zip; Lambda unpacks \
             the zip into {TASK_ROOT} and runs {TASK_ROOT}/bootstrap"
        ))),
    }
}
