//! `lambda-image check`: lint an image (registry reference, OCI layout or archive) for what Lambda
//! would reject, and/or check bootstraps against a base without building anything.
//!
//! Exit status: 0 when nothing is an error; 3 (`bootstrap`) when a bootstrap check finds an
//! error, as `build` would refuse the bootstrap; 7 (`image_rejected`) when the image lint finds
//! one (an image index is an error only when IMAGE names it by digest or with `--image-uri`; by
//! tag it is a warning); 3 when both do. The report is printed either way (with `--json`, its
//! `"error"` member says why it failed). Failing to read the image at all is an ordinary error
//! with its own exit code (4 for a bad image, 6 for a registry).

use clap::Args;
use serde::Serialize;

use super::outcome::Finished;
use crate::bootstrap::base_knowledge::{BaseFacts, check_bootstraps, layers_are_local};
use crate::bootstrap::checks::CheckName;
use crate::bootstrap::glibc::GlibcVersion;
use crate::bootstrap::{Bootstrap, BootstrapSpec};
use crate::catalog::BaseReference;
use crate::catalog::DEFAULT_BASE;
use crate::error::{Error, ErrorKind, Result};
use crate::findings::{Finding, Level};
use crate::lint::{LintOptions, LintReport, lint};
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

/// `sentence` without its final full stop (and the spaces after it), so that more text can
/// follow it: `… directory").` becomes `… directory")`; an ellipsis stays.
fn without_final_stop(sentence: &str) -> &str {
    let trimmed = sentence.trim_end();
    match trimmed.strip_suffix('.') {
        Some(rest) if !rest.ends_with('.') => rest,
        _ => trimmed,
    }
}

impl CheckReport {
    /// The failure the findings stand for: a bootstrap error finding is a rejected bootstrap
    /// (kind `bootstrap`, exit 3, also when the image has errors too); an image error finding
    /// is `image_rejected` (exit 7). The message quotes the first error and counts the rest.
    pub fn failure(&self) -> Option<Error> {
        let errors = |findings: &[Finding]| -> Vec<String> {
            findings
                .iter()
                .filter(|finding| finding.level == Level::Error)
                .map(|finding| finding.message.clone())
                .collect()
        };
        let bootstrap_errors = errors(&self.bootstraps);
        let image_errors = self
            .image
            .as_ref()
            .map_or_else(Vec::new, |image| errors(&image.findings));
        let counted = |count: usize| match count {
            1 => "1 error".to_owned(),
            count => format!("{count} errors"),
        };
        // Findings are sentences (`… fails with "No such file or directory").`); the count and
        // the image's errors follow the first one, so its final full stop goes.
        fn first_of(errors: &[String]) -> Option<&str> {
            errors.first().map(|first| without_final_stop(first))
        }
        let (kind, mut message, more) = match (first_of(&bootstrap_errors), first_of(&image_errors))
        {
            (Some(first), _) => (
                ErrorKind::Bootstrap,
                format!("a bootstrap check failed (build and zip would refuse it): {first}"),
                bootstrap_errors.len() - 1,
            ),
            (None, Some(first)) => (
                ErrorKind::ImageRejected,
                format!("Lambda would reject the image: {first}"),
                image_errors.len() - 1,
            ),
            (None, None) => return None,
        };
        if more > 0 {
            let plural = if more == 1 { "" } else { "s" };
            message.push_str(&format!(" (and {more} more error{plural})"));
        }
        if kind == ErrorKind::Bootstrap && !image_errors.is_empty() {
            message.push_str(&format!(
                "; the image has {} as well",
                counted(image_errors.len())
            ));
        }
        Some(Error::new(kind, message).hint("every finding, with what to change, is in the report"))
    }

    /// The report for the common ending of commands, with its failure.
    pub fn finished(&self) -> Finished {
        Finished::report(self, self.to_text().into_bytes(), self.failure())
    }

    /// The findings for people: bootstrap findings, then the image lint.
    pub fn to_text(&self) -> String {
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
    // A base mirror named badly is refused before anything is checked or pulled.
    crate::catalog::mirror()?;
    if args.image.is_none() && args.bootstraps.is_empty() {
        return Err(Error::usage("nothing to check: give an IMAGE, or --bootstrap PATH")
            .hint("e.g. lambda-image check oci:./out:v1, or lambda-image check --bootstrap ./bootstrap --base provided.al2"));
    }
    if args.bootstraps.is_empty()
        && let Some(check) = args.checks.skip_checks.first()
    {
        let names: Vec<&str> = CheckName::ALL.iter().map(|check| check.name()).collect();
        return Err(Error::usage(format!(
            "--skip-checks {}: checking an IMAGE runs no bootstrap checks; --skip-checks \
             ({}) applies to --bootstrap",
            check.name(),
            names.join(", ")
        ))
        .hint("drop --skip-checks, or give the bootstrap to check with --bootstrap PATH"));
    }
    let creds = args
        .password_stdin
        .credential("--creds", args.creds.as_deref())?;
    let bootstraps = crate::bootstrap::per_architecture::inspect_bootstraps(&args.bootstraps)?;
    let bootstrap_findings = check_bootstrap_files(args, &bootstraps)?;

    let image = match &args.image {
        None => None,
        Some(reference) => {
            let session = args.registry.image_session(reference, creds)?;
            let opened =
                crate::build::open_image(reference, &[], session.as_ref(), ImageRole::Image)?;
            let deploy_reference = |digest: &crate::digest::Sha256Digest| match reference {
                BaseReference::Registry(reference) => {
                    format!("{}/{}@{digest}", reference.registry, reference.repository)
                }
                BaseReference::Local(_) | BaseReference::Scratch => digest.to_string(),
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

/// The bootstrap checks; their errors are findings here, not a failure of the command. A local
/// `--base` is opened as `build` opens it, whatever the bootstraps (static ones too): one that
/// cannot be read, or lacks a bootstrap's architecture, fails the command as it fails `build`
/// (`base`, exit 4). A registry base is never contacted.
fn check_bootstrap_files(args: &CheckArgs, bootstraps: &[Bootstrap]) -> Result<Vec<Finding>> {
    if bootstraps.is_empty() {
        return Ok(Vec::new());
    }
    let facts = BaseFacts::without_layers(&args.base, args.base_glibc);
    let local_base = match &args.base {
        BaseReference::Local(_) => {
            let architectures: Vec<_> = bootstraps.iter().map(|b| b.architecture).collect();
            Some(crate::build::open_image(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn error(check: &'static str) -> Finding {
        Finding::new(check, None, Level::Error, format!("{check} is wrong"))
    }

    fn report(bootstraps: Vec<Finding>, image: Option<Vec<Finding>>) -> CheckReport {
        CheckReport {
            image: image.map(|findings| LintReport {
                reference: "oci:img:v1".into(),
                digest: Some("sha256:00".into()),
                index: false,
                images: Vec::new(),
                findings,
            }),
            bootstraps,
        }
    }

    #[test]
    fn bootstrap_errors_are_3_image_errors_7_and_both_3() {
        let warning = Finding::new("index", None, Level::Warning, "an index");
        assert!(
            report(vec![], Some(vec![warning.clone()]))
                .failure()
                .is_none()
        );

        let image = report(vec![], Some(vec![error("entrypoint"), error("bootstrap")]))
            .failure()
            .unwrap();
        assert_eq!(image.kind(), ErrorKind::ImageRejected);
        assert_eq!(
            image.message(),
            "Lambda would reject the image: entrypoint is wrong (and 1 more error)"
        );

        let bootstrap = report(vec![error("glibc")], None).failure().unwrap();
        assert_eq!(bootstrap.kind(), ErrorKind::Bootstrap);

        let both = report(
            vec![error("glibc")],
            Some(vec![error("entrypoint"), warning]),
        )
        .failure()
        .unwrap();
        assert_eq!(both.kind().exit_code(), 3);
        assert_eq!(
            both.message(),
            "a bootstrap check failed (build and zip would refuse it): glibc is wrong; the \
             image has 1 error as well"
        );
    }

    #[test]
    fn a_finding_ending_in_a_full_stop_is_joined_cleanly() {
        let sentence = |check: &'static str, message: &str| {
            Finding::new(check, None, Level::Error, message.to_owned())
        };
        let both = report(
            vec![
                sentence(
                    "loader",
                    "the loader /lib64/ld-linux-x86-64.so.2 is missing (running it fails with \
                     \"No such file or directory\").",
                ),
                sentence("glibc", "glibc is too old."),
            ],
            Some(vec![error("entrypoint"), error("cmd")]),
        )
        .failure()
        .unwrap();
        assert_eq!(
            both.message(),
            "a bootstrap check failed (build and zip would refuse it): the loader \
             /lib64/ld-linux-x86-64.so.2 is missing (running it fails with \"No such file or \
             directory\") (and 1 more error); the image has 2 errors as well"
        );
        let image = report(vec![], Some(vec![sentence("entrypoint", "no entrypoint.")]))
            .failure()
            .unwrap();
        assert_eq!(
            image.message(),
            "Lambda would reject the image: no entrypoint"
        );
        assert_eq!(without_final_stop("wait..."), "wait...");
        assert_eq!(without_final_stop("done. "), "done");
    }
}
