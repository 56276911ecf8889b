//! `lambda-image check`: lint an image (registry reference, OCI layout or archive) for what Lambda
//! would reject, and/or check bootstraps against a base without building anything.
//!
//! Exit status: 0 when nothing is an error, 1 when a finding is (an image index is an error only
//! when IMAGE names it by digest or with `--image-uri`; by tag it is a warning). Failing to read the image at all
//! is an ordinary error with its own exit code (4 for a bad image, 6 for a registry).

use clap::Args;
use serde::Serialize;

use crate::bootstrap::base_knowledge::{BaseFacts, check_bootstraps, layers_are_local};
use crate::bootstrap::glibc::GlibcVersion;
use crate::bootstrap::{Bootstrap, BootstrapSpec};
use crate::catalog::DEFAULT_BASE;
use crate::error::{Error, Result};
use crate::findings::{Finding, has_errors};
use crate::lint::{LintOptions, LintReport, lint};
use crate::reference::BaseReference;
use crate::registry::{Session, SessionOptions};
use crate::transport::source::ImageRole;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The image to lint: HOST/REPO:TAG, HOST/REPO@sha256:..., oci:DIR[:TAG],
    /// oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG].
    #[arg(value_name = "IMAGE")]
    pub image: Option<BaseReference>,

    /// A bootstrap to check (repeatable), against --base, as `build` would.
    #[arg(long = "bootstrap", value_name = "[ARCH=]PATH")]
    pub bootstraps: Vec<BootstrapSpec>,

    /// The base the bootstraps will run on. A registry base is checked through the catalog
    /// (nothing is downloaded); a local one through its own files.
    #[arg(long, value_name = "REF", default_value = DEFAULT_BASE)]
    pub base: BaseReference,

    /// The base's glibc version, for bases not in the catalog (e.g. 2.34).
    #[arg(long, value_name = "VERSION")]
    pub base_glibc: Option<GlibcVersion>,

    #[command(flatten)]
    pub checks: super::SkipChecks,

    /// Credentials for the image's registry.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,

    #[command(flatten)]
    pub password_stdin: super::PasswordStdin,

    #[command(flatten)]
    pub registry: super::RegistryFlags,

    /// Check IMAGE as the ImageUri a function will be given: an image index is then an error
    /// (Lambda rejects it), as it is when IMAGE names an index by digest. An index named by tag
    /// (what CI checks after `build --tag`) is a warning listing each architecture's REPO@sha256:...
    /// to deploy.
    #[arg(long)]
    pub image_uri: bool,

    /// Print the findings as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What `check` found.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The image lint, when an IMAGE was given.
    pub image: Option<LintReport>,
    /// The bootstrap checks, when --bootstrap was given.
    pub bootstraps: Vec<Finding>,
}

impl CheckReport {
    /// 1 when any finding is an error, else 0.
    pub fn exit_code(&self) -> u8 {
        let image_errors = self.image.as_ref().is_some_and(LintReport::has_errors);
        u8::from(image_errors || has_errors(&self.bootstraps))
    }

    pub fn render(&self, json: bool) -> String {
        if json {
            return serde_json::to_string(self).expect("the report always serializes") + "\n";
        }
        let mut text = String::new();
        for finding in &self.bootstraps {
            text.push_str(&finding.to_text());
            text.push('\n');
        }
        if let Some(image) = &self.image {
            text.push_str(&image.to_text());
        }
        text
    }
}

pub fn run(args: &CheckArgs) -> Result<CheckReport> {
    if args.image.is_none() && args.bootstraps.is_empty() {
        return Err(Error::usage("nothing to check: give an IMAGE, or --bootstrap PATH")
            .hint("e.g. lambda-image check oci:./out:v1, or lambda-image check --bootstrap ./bootstrap --base provided.al2"));
    }
    if args.bootstraps.is_empty()
        && let Some(check) = args.checks.skip_checks.first()
    {
        return Err(Error::usage(format!(
            "--skip-checks {}: checking an IMAGE runs no bootstrap checks; --skip-checks \
             (architecture, glibc, interpreter, libraries) applies to --bootstrap",
            check.name()
        ))
        .hint("drop --skip-checks, or give the bootstrap to check with --bootstrap PATH"));
    }
    let creds = args
        .password_stdin
        .credential("--creds", args.creds.as_deref())?;
    let bootstraps = super::build::inspect_bootstraps(&args.bootstraps)?;
    let bootstrap_findings = check_bootstrap_files(args, &bootstraps)?;

    let image = match &args.image {
        None => None,
        Some(reference) => {
            let session = match reference {
                BaseReference::Registry(registry_reference) => Some(Session::connect(
                    Some(registry_reference),
                    &[],
                    SessionOptions {
                        base_creds: creds,
                        creds: None,
                        read_role: crate::registry::advice::HostRole::Checked,
                        ..args.registry.session_options()
                    },
                )?),
                BaseReference::Local(_) => None,
            };
            let opened = super::open_image(reference, &[], session.as_ref(), ImageRole::Image)?;
            let deploy_reference = |digest: &crate::digest::Sha256Digest| match reference {
                BaseReference::Registry(reference) => {
                    format!("{}/{}@{digest}", reference.registry, reference.repository)
                }
                BaseReference::Local(_) => digest.to_string(),
            };
            let by_digest = matches!(reference, BaseReference::Registry(reference) if reference.digest.is_some());
            let options = LintOptions {
                as_image_uri: args.image_uri || by_digest,
            };
            Some(lint(&opened, &deploy_reference, options)?)
        }
    };
    Ok(CheckReport {
        image,
        bootstraps: bootstrap_findings,
    })
}

/// The bootstrap checks; their errors are findings here, not a failure of the command.
fn check_bootstrap_files(args: &CheckArgs, bootstraps: &[Bootstrap]) -> Result<Vec<Finding>> {
    if bootstraps.is_empty() {
        return Ok(Vec::new());
    }
    let facts = BaseFacts::without_layers(&args.base, args.base_glibc);
    let local_base = match &args.base {
        BaseReference::Local(_) if !bootstraps.iter().all(Bootstrap::is_static) => {
            let architectures: Vec<_> = bootstraps.iter().map(|b| b.architecture).collect();
            Some(super::open_image(
                &args.base,
                &architectures,
                None,
                ImageRole::Base,
            )?)
        }
        _ => None,
    };
    let local_base = local_base.filter(layers_are_local);
    check_bootstraps(
        bootstraps,
        &facts,
        local_base.as_ref(),
        &args.checks.skip_checks,
    )
}
