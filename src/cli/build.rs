//! `lambda-image build`: bootstraps + base → one image per architecture (+ index) → output.

use std::path::Path;

use clap::{Args, ValueEnum};

use super::make_images::{MakeImages, make_images};
use crate::assemble::ImageSettings;
use crate::bootstrap::base_knowledge::{BaseFacts, check_bootstraps, layers_are_local};
use crate::bootstrap::checks::enforce;
use crate::bootstrap::glibc::GlibcVersion;
use crate::bootstrap::{self, Bootstrap, BootstrapSpec};
use crate::cached_base::{open_cached_base, record_base_tag};
use crate::catalog::BaseReference;
use crate::catalog::DEFAULT_BASE;
use crate::error::{Error, Result};
use crate::findings::report_findings;
use crate::image::ImageFormat;
use crate::image::config::KeyValue;
use crate::layer::cache::LayerCache;
use crate::layer::contents::BOOTSTRAP_PATH;
use crate::layer::execute_bits;
use crate::layer::{IncludeSpec, LayerContents};
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;
use crate::reference::{ImageLocation, is_valid_tag};
use crate::registry::cache::BlobCache;
use crate::registry::credentials::{Credential, parse_creds};
use crate::registry::push::{Destination, push_manifests};
use crate::registry::{Session, SessionOptions};
use crate::report::{BuildReport, ReportedBase, ReportedImage, ReportedIndex, ReportedLayer};
use crate::timestamp::BuildTimestamp;
use crate::transport::sink::{plan_output, write_output};
use crate::transport::source::{ImageRole, ResolvedBase};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A compiled bootstrap; its architecture is read from the ELF header. Repeat for each
    /// architecture. Use ARCH=PATH (amd64= or arm64=) to state it, e.g. for a #! script.
    #[arg(long = "bootstrap", value_name = "[ARCH=]PATH", required = true)]
    pub bootstraps: Vec<BootstrapSpec>,

    /// The base image: a registry reference (HOST/REPO:TAG, @sha256:..., docker://...), a short
    /// name (provided.al2023, provided.al2), oci:DIR[:TAG], oci-archive:FILE[:TAG] or
    /// docker-archive:FILE[:NAME:TAG].
    #[arg(long, value_name = "REF", default_value = DEFAULT_BASE)]
    pub base: BaseReference,

    #[command(flatten)]
    pub checks: super::SkipChecks,

    /// The glibc version of the base, for bases not in the catalog (e.g. 2.34); a dynamically
    /// linked bootstrap needing a newer one fails the build.
    #[arg(long, value_name = "VERSION")]
    pub base_glibc: Option<GlibcVersion>,

    /// The handler name, passed to the entrypoint as CMD ["NAME"].
    #[arg(long, value_name = "NAME", default_value = "bootstrap")]
    pub handler: String,

    /// An environment variable for the function (repeatable); overrides the base's value.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<KeyValue>,

    /// An image config label (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<KeyValue>,

    /// A manifest annotation (repeatable; OCI format only).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<KeyValue>,

    /// Extra files or a directory to add, e.g. ./config:/var/task/config (repeatable).
    #[arg(long = "include", value_name = "SRC:DEST")]
    pub includes: Vec<IncludeSpec>,

    /// Manifest media types to write; default: the base's.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// Push to this registry reference, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fn:v1
    /// (repeatable). With several architectures the tag names the index, and TAG-amd64 /
    /// TAG-arm64 each architecture.
    #[arg(long = "tag", short = 't', value_name = "REF")]
    pub tags: Vec<RegistryReference>,

    /// Write locally: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG].
    #[arg(long, short = 'o', value_name = "REF")]
    pub output: Option<ImageLocation>,

    /// With several architectures, do not also tag each one TAG-amd64 / TAG-arm64.
    #[arg(long)]
    pub no_arch_tags: bool,

    /// Contact no registry but the --tag ones: the base is a local kit (from `lambda-image base
    /// pull`), or a registry base taken from the cache, where an online build or `base pull` left it.
    #[arg(long)]
    pub offline: bool,

    /// Credentials for the registries pushed to (and the base's, when it is one of them).
    // Parsed in `run`, not by clap: clap would quote the whole value, password included, in
    // its error message.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,

    #[command(flatten)]
    pub password_stdin: super::PasswordStdin,

    /// Credentials for the base's registry (never contacted with --offline, so not allowed
    /// with it).
    #[arg(long, value_name = "USER:PASS", conflicts_with = "offline")]
    pub base_creds: Option<String>,

    #[command(flatten)]
    pub registry: super::RegistryFlags,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Oci,
    Docker,
}

/// Runs the build and returns what to report.
pub fn run(args: &BuildArgs) -> Result<BuildReport> {
    // A base mirror named badly is refused before anything is read or pulled.
    crate::catalog::mirror()?;
    let timestamp = BuildTimestamp::from_environment()?;
    let creds = args
        .password_stdin
        .credential("--creds", args.creds.as_deref())?;
    let base_creds = credential_flag("--base-creds", args.base_creds.as_deref())?
        .map(|credential| (credential, "--base-creds"));
    if args.handler.trim().is_empty() {
        return Err(Error::usage("--handler must not be empty"));
    }

    let bootstraps = inspect_bootstraps(&args.bootstraps)?;
    // What can be checked before anything is opened or downloaded fails fast.
    let contents = layer_contents(args, &bootstraps)?;
    let env_path = args.env.iter().rev().find(|set| set.key == "PATH");
    let facts = BaseFacts::without_layers(&args.base, args.base_glibc)
        .adding_entries("/", contents.iter().flat_map(|layer| layer.entries()))
        .with_path(env_path.map(|set| set.value.clone()))
        .with_library_path(
            args.env
                .iter()
                .rev()
                .find(|set| set.key == "LD_LIBRARY_PATH")
                .map(|set| set.value.clone()),
        );
    let mut findings = check_bootstraps(&bootstraps, &facts, None, &args.checks.skip_checks)?;
    enforce(&findings)?;
    let architectures: Vec<Architecture> = bootstraps.iter().map(|b| b.architecture).collect();

    let targets = check_targets(args, &architectures)?;
    let output = args
        .output
        .as_ref()
        .map(|output| plan_output(output, &architectures))
        .transpose()?;
    let cache = BlobCache::open(args.registry.cache_dir.as_deref())?;
    // Offline, a registry base comes from the cache, resolved and verified whole before any
    // registry is contacted or anything written.
    let cached_base = match (&args.base, args.offline) {
        (BaseReference::Registry(reference), true) => {
            Some(open_cached_base(cache.as_ref(), reference, &architectures)?)
        }
        _ => None,
    };
    let session = open_session(args, &targets, creds, base_creds)?;
    let base = match cached_base {
        Some(base) => base,
        None => super::open_image(
            &args.base,
            &architectures,
            session.as_ref(),
            ImageRole::Base,
        )?,
    };
    if layers_are_local(&base) && !bootstraps.iter().all(Bootstrap::is_static) {
        findings = check_bootstraps(&bootstraps, &facts, Some(&base), &args.checks.skip_checks)?;
        enforce(&findings)?;
    }
    // The includes are the same in every architecture's layer: look at them once.
    if let Some(first) = contents.first() {
        findings.extend(execute_bits::findings(first.entries(), "/", "image")?);
    }
    report_findings(&findings);
    let format = image_format(args, &base)?;

    // New layers are written beside the output (or in the cache), not in /tmp (often a small
    // tmpfs), and removed when the build ends.
    let scratch_parent = match (&output, cache.as_ref()) {
        (Some(output), _) => output.directory()?,
        (None, Some(cache)) => cache.temporary_directory(),
        (None, None) => std::env::temp_dir(),
    };
    let scratch = scratch_directory(&scratch_parent)?;
    let layer_cache = cache.clone().map(LayerCache::new);
    let destinations = match &session {
        Some(session) if !targets.is_empty() => destinations(session, &targets),
        _ => Vec::new(),
    };
    let settings = ImageSettings {
        format,
        cmd: vec![args.handler.clone()],
        env: &args.env,
        labels: &args.labels,
        annotations: &args.annotations,
        created: timestamp.rfc3339(),
        created_by: created_by(&args.includes),
    };
    let pushing = session
        .as_ref()
        .map(|session| &session.progress)
        .filter(|_| !destinations.is_empty());
    let (layers, assembled) = make_images(MakeImages {
        architectures: &architectures,
        contents: &contents,
        mtime: timestamp.seconds,
        scratch: scratch.path(),
        layer_cache: layer_cache.as_ref(),
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
            digest: base.digest.to_string(),
        },
        checks: findings,
    };
    let written = output
        .as_ref()
        .map(|output| write_output(output, &assembled, &base))
        .transpose()?;
    // A push's references come first: `reference` is then `HOST/REPO@sha256:...`, what a
    // function's ImageUri takes, whatever else was written.
    if let Some(progress) = pushing {
        let pushed = push_manifests(&destinations, &assembled, !args.no_arch_tags, progress)?;
        add_to_report(&mut report, pushed.images, pushed.index);
    }
    if let Some(written) = written {
        add_to_report(
            &mut report,
            written.images,
            written
                .index
                .map(|(digest, reference)| (digest, vec![reference])),
        );
    }
    for image in &mut report.images {
        image.layer = layers
            .iter()
            .find(|layer| layer.architecture == image.architecture)
            .map(|layer| ReportedLayer {
                digest: layer.digests.digest.to_string(),
                size: layer.digests.size,
                cached: layer.cached,
            });
    }
    if let (BaseReference::Registry(reference), false, Some(cache)) =
        (&args.base, args.offline, &cache)
    {
        record_base_tag(cache, reference, &base);
    }
    report.references = report.all_references();
    // Stdout holds only the report; advice for people goes with the other messages.
    if let Some(advice) = report.advice().filter(|_| !args.json) {
        eprintln!("{advice}");
    }
    Ok(report)
}

/// Each bootstrap's layer: the bootstrap at /var/runtime/bootstrap plus every `--include`.
fn layer_contents(args: &BuildArgs, bootstraps: &[Bootstrap]) -> Result<Vec<LayerContents>> {
    bootstraps
        .iter()
        .map(|bootstrap| {
            let mut contents = LayerContents::with_bootstrap(&bootstrap.path, bootstrap.size)?;
            args.includes
                .iter()
                .try_for_each(|include| contents.include(include))?;
            Ok(contents)
        })
        .collect()
}

/// A registry session, when the base is in a registry (and the build is online) or the build
/// pushes.
fn open_session(
    args: &BuildArgs,
    targets: &[RegistryReference],
    creds: Option<(Credential, &'static str)>,
    base_creds: Option<(Credential, &'static str)>,
) -> Result<Option<Session>> {
    let registry_base = match &args.base {
        BaseReference::Registry(reference) if !args.offline => Some(reference),
        _ => None,
    };
    if registry_base.is_none() && targets.is_empty() {
        return Ok(None);
    }
    Session::connect(
        registry_base,
        targets,
        SessionOptions {
            creds,
            base_creds,
            read_credential_flag: crate::registry::advice::CredentialFlag::BaseCreds,
            ..args.registry.session_options()
        },
    )
    .map(Some)
}

/// The media types to write: `--format`, else the base's; annotations need OCI.
fn image_format(args: &BuildArgs, base: &ResolvedBase) -> Result<ImageFormat> {
    let format = match args.format {
        Some(FormatArg::Oci) => ImageFormat::Oci,
        Some(FormatArg::Docker) => ImageFormat::Docker,
        None => base.format,
    };
    if format == ImageFormat::Docker && !args.annotations.is_empty() {
        return Err(Error::usage(
            "--annotation needs OCI manifests, and this build writes Docker v2 schema 2 manifests \
             (from --format docker, or a Docker-format base), which have no annotations",
        )
        .hint("add --format oci, or drop the annotations"));
    }
    Ok(format)
}

/// Adds where the images were written (each list non-empty, its main reference first); the first
/// list added gives the main `reference`.
fn add_to_report(
    report: &mut BuildReport,
    images: Vec<(Architecture, crate::digest::Sha256Digest, Vec<String>)>,
    index: Option<(crate::digest::Sha256Digest, Vec<String>)>,
) {
    for (architecture, digest, references) in images {
        match report
            .images
            .iter_mut()
            .find(|image| image.architecture == architecture)
        {
            Some(image) => image.references.extend(references),
            None => report.images.push(ReportedImage {
                architecture,
                lambda_architecture: architecture.lambda_name(),
                digest: digest.to_string(),
                reference: references[0].clone(),
                references,
                layer: None,
            }),
        }
    }
    if let Some((digest, references)) = index {
        match &mut report.index {
            Some(existing) => existing.references.extend(references),
            None => {
                report.index = Some(ReportedIndex {
                    digest: digest.to_string(),
                    reference: references[0].clone(),
                    references,
                })
            }
        }
    }
}

/// Checks the `--tag`s (no digests; per-architecture tags short enough) and that the build
/// writes somewhere.
fn check_targets(
    args: &BuildArgs,
    architectures: &[Architecture],
) -> Result<Vec<RegistryReference>> {
    if args.tags.is_empty() && args.output.is_none() {
        return Err(Error::usage("nothing to write: give --tag to push or --output to write locally")
            .hint("e.g. --tag 123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-function:v1, or --output oci:./out"));
    }
    let mut targets = Vec::new();
    for tag in &args.tags {
        if tag.digest.is_some() {
            return Err(Error::usage(format!(
                "--tag {tag}: a pushed image gets its digest from its content; give a tag, not @sha256:..."
            )));
        }
        let name = tag.tag.clone().unwrap_or_else(|| "latest".to_owned());
        if architectures.len() > 1 && !args.no_arch_tags {
            for architecture in architectures {
                if !is_valid_tag(&format!("{name}-{architecture}")) {
                    return Err(Error::usage(format!(
                        "--tag {tag}: the per-architecture tag {name}-{architecture} would be over 128 characters"
                    ))
                    .hint("use a shorter tag, or --no-arch-tags"));
                }
            }
        }
        targets.push(tag.clone());
    }
    Ok(targets)
}

/// The repositories to push to, each with its tags, in the order first named.
fn destinations(session: &Session, targets: &[RegistryReference]) -> Vec<Destination> {
    let mut destinations: Vec<Destination> = Vec::new();
    for target in targets {
        let tag = target.tag.clone().unwrap_or_else(|| "latest".to_owned());
        match destinations.iter_mut().find(|destination| {
            destination.registry.host() == target.registry
                && destination.repository == target.repository
        }) {
            Some(destination) => {
                if !destination.tags.contains(&tag) {
                    destination.tags.push(tag);
                }
            }
            None => destinations.push(Destination {
                registry: session.registry(&target.registry),
                repository: target.repository.clone(),
                tags: vec![tag],
            }),
        }
    }
    destinations
}

/// Parses a `USER:PASS` flag; the error never quotes the value.
pub(super) fn credential_flag(flag: &str, value: Option<&str>) -> Result<Option<Credential>> {
    value
        .map(|text| parse_creds(text).map_err(|error| Error::usage(format!("{flag}: {error}"))))
        .transpose()
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

/// Inspects every bootstrap, refusing two for one architecture.
pub(super) fn inspect_bootstraps(specs: &[BootstrapSpec]) -> Result<Vec<Bootstrap>> {
    let mut bootstraps: Vec<Bootstrap> = Vec::new();
    for spec in specs {
        let bootstrap = bootstrap::inspect(spec)?;
        if let Some(other) = bootstraps
            .iter()
            .find(|b| b.architecture == bootstrap.architecture)
        {
            return Err(Error::bootstrap(format!(
                "two bootstraps for {}: {} and {}",
                bootstrap.architecture,
                other.path.display(),
                bootstrap.path.display()
            ))
            .hint("give one bootstrap per architecture (one amd64, one arm64)"));
        }
        bootstraps.push(bootstrap);
    }
    bootstraps.sort_by_key(|b| b.architecture);
    Ok(bootstraps)
}

/// The history entry's `created_by`: what went into the layer, with no machine-specific paths.
fn created_by(includes: &[IncludeSpec]) -> String {
    let mut text = format!("lambda-image build: bootstrap at {BOOTSTRAP_PATH}");
    for include in includes {
        text.push_str(&format!(", include {}", include.destination));
    }
    text
}
