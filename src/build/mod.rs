//! `lambda-image build` as a library: a [`Plan`] in (bootstraps + base + what to change + where
//! to write), a [`BuildReport`] out (one image per architecture, an index when there are
//! several, and the checks' findings).
//!
//! The steps, in order: check what can be checked before anything is opened (the bootstraps,
//! the targets, the output); start making every architecture's new layer, which needs nothing
//! else; meanwhile open the base (from the cache offline, else wherever it is) and check the
//! bootstraps against it; push the base's blobs and each new layer as it is compressed, make
//! the images, then push the manifests and tags and write the local output.
//!
//! Not here: flags and printing. The findings go to the caller's `on_findings` before anything
//! is made (the command line prints them on stderr); registry progress goes to stderr through
//! the session's [`crate::registry::progress::Progress`] unless `quiet`; the report's advice is
//! left for the caller to print.

mod base;
mod images;
mod layers;
pub mod offline_base;
mod plan;
mod report;
mod targets;

use std::path::Path;

pub use base::open_image;
use images::{LayerPushes, MakeImages, make_images};
use layers::LayerJobs;
pub use offline_base::{open_cached_base, record_base_tag};
pub use plan::{Plan, RegistryAccess};

use crate::assemble::ImageSettings;
use crate::bootstrap::Bootstrap;
use crate::bootstrap::base_knowledge::{BaseFacts, check_bootstraps, layers_are_local};
use crate::bootstrap::checks::{CheckName, enforce};
use crate::bootstrap::execute_bits;
use crate::bootstrap::extensions::check_extensions;
use crate::bootstrap::per_architecture::inspect_bootstraps;
use crate::cache::blobs::BlobCache;
use crate::cache::layers::LayerCache;
use crate::catalog::BaseReference;
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::image::ImageFormat;
use crate::image::set::ImageSet;
use crate::layer::LayerContents;
use crate::platform::Architecture;
use crate::registry::manifests::push_manifests;
use crate::report::{BuildReport, ReportedBase};
use crate::transport::sink::{plan_output, write_output};
use crate::transport::source::ImageRole;

/// Runs the build `plan` and returns what to report. `on_findings` is called once with the
/// bootstrap checks' findings, after the base is opened and before anything is pushed or
/// written; they are also in the report. Errors: a check that fails, a base that cannot be opened, a layer or an
/// output that cannot be written, a push that fails.
pub fn build(plan: &Plan, on_findings: &dyn Fn(&[Finding])) -> Result<BuildReport> {
    // A base mirror named badly is refused before anything is read or pulled.
    crate::catalog::mirror()?;
    if plan.handler.trim().is_empty() {
        return Err(Error::usage("--handler must not be empty"));
    }
    // The built-in scratch has no glibc to state and no registry to log in to: a flag about
    // either means something else was meant.
    if plan.base == BaseReference::Scratch {
        let (flag, why) = match (&plan.base_glibc, &plan.registries.base_creds) {
            (Some(_), _) => ("--base-glibc", "it has no C library"),
            (None, Some((_, flag))) => (*flag, "it is built in, with no registry to log in to"),
            (None, None) => ("", ""),
        };
        if !flag.is_empty() {
            return Err(
                Error::usage(format!("{flag} does not apply to --base scratch: {why}")).hint(
                    format!("drop {flag}, or name the base it was meant for with --base"),
                ),
            );
        }
    }

    let bootstraps = inspect_bootstraps(&plan.bootstraps)?;
    let architectures: Vec<Architecture> = bootstraps.iter().map(|b| b.architecture).collect();
    let cache = BlobCache::open(plan.registries.cache_dir.as_deref())?;
    // The `--layer` zips, fetched and unpacked; their files live until the build ends.
    let lambda_layers = crate::lambda_layer::prepare(
        &plan.lambda_layers,
        &architectures,
        cache.as_ref(),
        plan.offline,
    )?;
    // What can be checked before anything is opened or downloaded fails fast.
    let contents = layers::layer_contents(&plan.includes, &bootstraps, &lambda_layers)?;
    let contents = crate::scratch_base::with_layer_entries(&plan.base, contents)?;
    let facts = base_facts(plan, &contents);
    let mut findings = check_programs(&bootstraps, &contents, &facts, None, &plan.skip_checks)?;
    enforce(&findings)?;

    let targets = targets::check_targets(plan, &architectures)?;
    let output = plan
        .output
        .as_ref()
        .map(|output| plan_output(output, &architectures))
        .transpose()?;
    // Offline, a registry base comes from the cache, resolved and verified whole before any
    // registry is contacted or anything written.
    let cached_base = match (&plan.base, plan.offline) {
        (BaseReference::Registry(reference), true) => {
            Some(open_cached_base(cache.as_ref(), reference, &architectures)?)
        }
        _ => None,
    };
    // New layers are written beside the output (or in the cache), not in /tmp (often a small
    // tmpfs), and removed when the build ends.
    let scratch_parent = match (&output, cache.as_ref()) {
        (Some(output), _) => output.directory()?,
        (None, Some(cache)) => cache.temporary_directory(),
        (None, None) => std::env::temp_dir(),
    };
    let scratch = scratch_directory(&scratch_parent)?;
    let layer_cache = cache.clone().map(LayerCache::new);
    // The layers depend on nothing else: they are made from now on, beside the registry's
    // connection and the base's resolution (and cancelled if those fail). Not before a base
    // the cache cannot give offline is refused: that leaves the cache as it was.
    let layers = LayerJobs::start(
        &architectures,
        &contents,
        plan.timestamp.seconds,
        scratch.path(),
        layer_cache.as_ref(),
    );
    let session = base::open_session(plan, &targets)?;
    let destinations = match &session {
        Some(session) if !targets.is_empty() => targets::destinations(session, &targets),
        _ => Vec::new(),
    };
    let pushing = session
        .as_ref()
        .map(|session| &session.progress)
        .filter(|_| !destinations.is_empty());
    // The new layers go up from now, while the base is resolved.
    let layer_pushes = pushing.map(|progress| LayerPushes::start(&destinations, &layers, progress));
    let base = match cached_base {
        Some(base) => base,
        None => open_image(
            &plan.base,
            &architectures,
            session.as_ref(),
            ImageRole::Base,
        )?,
    };
    if layers_are_local(&base) {
        findings = check_programs(
            &bootstraps,
            &contents,
            &facts,
            Some(&base),
            &plan.skip_checks,
        )?;
        enforce(&findings)?;
    }
    // Every architecture's layer (a `--layer ARCH=` zip is in one only), each finding once: the
    // includes and shared layers are in all of them.
    let mut execute_bit_findings: Vec<Finding> = Vec::new();
    for layer in &contents {
        for finding in execute_bits::findings(layer.entries(), "/", "image")? {
            if !execute_bit_findings
                .iter()
                .any(|seen| seen.message == finding.message)
            {
                execute_bit_findings.push(finding);
            }
        }
    }
    findings.extend(execute_bit_findings);
    findings.extend(lambda_layers.notes.iter().cloned());
    on_findings(&findings);
    let format = image_format(plan, &base)?;

    let settings = ImageSettings {
        format,
        cmd: vec![plan.handler.clone()],
        env: &plan.env,
        labels: &plan.labels,
        annotations: &plan.annotations,
        created: plan.timestamp.rfc3339(),
        created_by: layers::created_by(&plan.includes, &lambda_layers),
    };
    let settings = match plan.base {
        BaseReference::Scratch => ImageSettings {
            created_by: format!("{}{}", settings.created_by, crate::scratch_base::CREATED_BY),
            ..settings
        },
        _ => settings,
    };
    let (layers, assembled) = make_images(MakeImages {
        layers,
        layer_pushes,
        base: &base,
        settings: &settings,
        push_to: pushing.map(|progress| (destinations.as_slice(), progress.as_ref())),
    })?;

    let mut report = BuildReport {
        images: Vec::new(),
        index: None,
        references: Vec::new(),
        base: ReportedBase {
            reference: base.reference.clone(),
            // The built-in scratch has no manifest or index to name.
            digest: (plan.base != BaseReference::Scratch).then(|| base.digest.to_string()),
        },
        checks: findings,
        lambda_layers: lambda_layers.reported(),
    };
    let written = output
        .as_ref()
        .map(|output| write_output(output, &assembled, &base))
        .transpose()?;
    // A push's references come first: `reference` is then `HOST/REPO@sha256:...`, what a
    // function's ImageUri takes, whatever else was written.
    if let Some(progress) = pushing {
        let pushed = push_manifests(&destinations, &assembled, plan.arch_tags, progress)?;
        report::add_to_report(&mut report, pushed.images, pushed.index);
    }
    if let Some(written) = written {
        report::add_to_report(
            &mut report,
            written.images,
            written
                .index
                .map(|(digest, reference)| (digest, vec![reference])),
        );
    }
    report::add_layers(&mut report, &layers);
    if let (BaseReference::Registry(reference), false, Some(cache)) =
        (&plan.base, plan.offline, &cache)
    {
        record_base_tag(cache, reference, &base);
    }
    report.references = report.all_references();
    Ok(report)
}

/// What the bootstrap checks know of the base before it is opened: the catalog's facts (or
/// `--base-glibc`), the new layers' files, and the `PATH` / `LD_LIBRARY_PATH` the plan sets (the
/// last of each wins).
fn base_facts(plan: &Plan, contents: &[LayerContents]) -> BaseFacts {
    let env_path = plan.env.iter().rev().find(|set| set.key == "PATH");
    BaseFacts::without_layers(&plan.base, plan.base_glibc)
        .adding_entries("/", contents.iter().flat_map(|layer| layer.entries()))
        .with_path(env_path.map(|set| set.value.clone()))
        .with_library_path(
            plan.env
                .iter()
                .rev()
                .find(|set| set.key == "LD_LIBRARY_PATH")
                .map(|set| set.value.clone()),
        )
}

/// The checks of what Lambda runs from the new layers: each bootstrap, and the extensions under
/// `/opt/extensions/` in its architecture's layer ([`check_extensions`]), against what is known
/// of the base: `facts`, and the base's files when its layers are on this machine (`local_base`;
/// read only when a dynamic bootstrap or extension, or a script, needs them).
fn check_programs(
    bootstraps: &[Bootstrap],
    contents: &[LayerContents],
    facts: &BaseFacts,
    local_base: Option<&ImageSet>,
    skip: &[CheckName],
) -> Result<Vec<Finding>> {
    let mut findings = check_bootstraps(bootstraps, facts, local_base, skip)?;
    for (bootstrap, contents) in bootstraps.iter().zip(contents) {
        findings.extend(check_extensions(
            contents,
            bootstrap.architecture,
            facts,
            local_base,
            skip,
        )?);
    }
    Ok(findings)
}

/// The media types to write: `--format`, else the base's; annotations need OCI.
fn image_format(plan: &Plan, base: &ImageSet) -> Result<ImageFormat> {
    let format = plan.format.unwrap_or(base.format);
    if format == ImageFormat::Docker && !plan.annotations.is_empty() {
        return Err(Error::usage(
            "--annotation needs OCI manifests, and this build writes Docker v2 schema 2 manifests \
             (from --format docker, or a Docker-format base), which have no annotations",
        )
        .hint("add --format oci, or drop the annotations"));
    }
    Ok(format)
}

/// The build's scratch directory (its new layers), remembered for removal if the build is
/// interrupted ([`crate::temporary`]).
fn scratch_directory(parent: &Path) -> Result<tempfile::TempDir> {
    let scratch = tempfile::Builder::new()
        .prefix(".lambda-image-")
        .tempdir_in(parent)
        .map_err(|error| {
            Error::output(format!(
                "cannot create a temporary directory in {}: {error}",
                parent.display()
            ))
        })?;
    crate::temporary::remember(scratch.path());
    Ok(scratch)
}
