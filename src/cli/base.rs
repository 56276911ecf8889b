//! `lambda-image base`: the catalog of Lambda bases (`list`), and kits for networks without
//! internet: `pull` copies a base, verified, into an OCI layout or oci-archive on a connected
//! machine; `verify` checks every digest of a kit again where it arrives.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::outcome::Finished;
use crate::base_kit::{Verified, kit_of, verify_layers};
use crate::build::record_base_tag;
use crate::catalog::BaseReference;
use crate::catalog::{self, CatalogBase};
use crate::error::{Error, Result};
use crate::platform::Architecture;
use crate::reference::{ImageLocation, parse_kit_location};
use crate::registry::{Session, SessionOptions};
use crate::transport::sink::{plan_output, write_output};
use crate::transport::source::{ImageRole, layout_tags, local_base_tag, open_local};

#[derive(Debug, Args)]
pub struct BaseArgs {
    #[command(subcommand)]
    pub command: BaseCommand,
}

impl BaseArgs {
    /// Whether the subcommand was given `--json`.
    pub fn json(&self) -> bool {
        match &self.command {
            BaseCommand::List(list) => list.json,
            BaseCommand::Pull(pull) => pull.json,
            BaseCommand::Verify(verify) => verify.json,
        }
    }
}

// Parsed once per run: the size difference between subcommands costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum BaseCommand {
    /// Show the Lambda bases lambda-image knows by name.
    List(ListArgs),
    /// Copy a base, verified, into an OCI layout or oci-archive (a kit for offline builds).
    Pull(PullArgs),
    /// Check every digest of a kit (an OCI layout or oci-archive) again.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print the catalog as one JSON object, {"bases": [...]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The base: a catalog name (provided.al2023, provided.al2) or any image reference.
    #[arg(value_name = "BASE", default_value = "provided.al2023")]
    pub base: BaseReference,

    /// The architectures to keep (comma-separated or repeated; x86_64 and aarch64 are taken too).
    #[arg(long = "arch", value_name = "ARCH", value_delimiter = ',', value_enum, ignore_case = true, default_values = ["amd64", "arm64"])]
    pub architectures: Vec<Architecture>,

    /// Where to write the kit: oci:DIR[:TAG] or oci-archive:FILE[:TAG] (TAG defaults to the
    /// base's tag). Without it, a registry base is only put in the cache, whole, for
    /// `build --offline --base REF` on this machine.
    #[arg(long, short = 'o', value_name = "REF", value_parser = parse_kit_output)]
    pub output: Option<ImageLocation>,

    /// Credentials for the base's registry.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,

    #[command(flatten)]
    pub password_stdin: super::PasswordStdin,

    #[command(flatten)]
    pub registry: super::RegistryFlags,

    /// Print what was written as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The kit: a directory (an OCI layout), oci:DIR[:TAG] or oci-archive:FILE[:TAG]. Without a
    /// tag, every tag in it is checked.
    #[arg(value_name = "KIT")]
    pub kit: String,

    /// Print the counts as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `base pull --output`: a kit location only.
fn parse_kit_output(text: &str) -> Result<ImageLocation, String> {
    parse_kit_location(
        text,
        "base pull writes kits; to copy an image between registries, use `skopeo copy --all`",
    )
}

/// Runs a `base` subcommand; returns its report.
pub fn run(args: &BaseArgs) -> Result<Finished> {
    match &args.command {
        BaseCommand::List(_) => list_catalog(),
        BaseCommand::Pull(pull) => pull_kit(pull),
        BaseCommand::Verify(verify) => verify_kit(verify),
    }
}

/// A catalog entry as `base list` shows it: with `pulled_from` (the mirror's copy of the
/// reference) when `LAMBDA_IMAGE_BASE_MIRROR` is set.
#[derive(Serialize)]
struct ListedBase {
    #[serde(flatten)]
    base: CatalogBase,
    #[serde(skip_serializing_if = "Option::is_none")]
    pulled_from: Option<String>,
}

fn list_catalog() -> Result<Finished> {
    let mirror = catalog::mirror()?;
    let bases: Vec<ListedBase> = catalog::all()
        .into_iter()
        .map(|base| {
            let pulled_from = mirror.as_ref().and_then(|mirror| {
                let reference = base.reference.parse().ok()?;
                Some(mirror.mirrored(&reference)?.to_string())
            });
            ListedBase { base, pulled_from }
        })
        .collect();
    /// One JSON object, as every command's `--json` prints: `{"bases": [...]}`.
    #[derive(Serialize)]
    struct Listed<'a> {
        bases: &'a [ListedBase],
    }
    let json = serde_json::to_string(&Listed { bases: &bases }).expect("the catalog serializes");
    let mut text = String::new();
    for ListedBase { base, pulled_from } in &bases {
        let CatalogBase {
            name,
            reference,
            architectures,
            glibc,
            config,
            ..
        } = base;
        let architectures: Vec<&str> = architectures.keys().map(String::as_str).collect();
        let reference = if base.is_built_in() {
            "(built in, no download)"
        } else {
            reference.as_str()
        };
        text.push_str(&format!(
            "{name:<16} {reference:<40} {:<12} glibc {:<5} entrypoint {} workdir {}\n",
            architectures.join(","),
            glibc.as_deref().unwrap_or("none"),
            config["Entrypoint"],
            config["WorkingDir"],
        ));
        if let Some(pulled_from) = pulled_from {
            text.push_str(&format!(
                "{:<16} pulled from {pulled_from} ({})\n",
                "",
                catalog::MIRROR_VARIABLE
            ));
        }
    }
    Ok(Finished::success(text, json))
}

/// What `base pull --json` prints.
#[derive(Debug, Serialize)]
pub struct PullReport {
    /// The base as given (e.g. `provided.al2023`).
    pub base: String,
    /// The digest of what it names (an index, or a manifest).
    pub digest: String,
    /// The kit written (`oci:DIR:TAG`, `oci-archive:FILE:TAG`); `null` when only the cache was
    /// filled.
    pub output: Option<String>,
    /// The blob cache a registry base went through (the whole base is in it afterwards, for
    /// `build --offline --base BASE`); `null` for a local base.
    pub cache: Option<String>,
    /// One per architecture kept: in the kit, its tag; without a kit, `REPOSITORY@DIGEST`.
    pub images: Vec<PulledImage>,
    /// The index over them, when there is one (written to the kit, or the base's own).
    pub index: Option<PulledIndex>,
}

/// One architecture of a pulled base.
#[derive(Debug, Serialize)]
pub struct PulledImage {
    /// `amd64` or `arm64`.
    pub architecture: Architecture,
    /// Lambda's name for it (`x86_64`, `arm64`).
    pub lambda_architecture: &'static str,
    /// The manifest digest.
    pub digest: String,
    /// Its main reference: in the kit (`oci:DIR:TAG-ARCH`, or `oci:DIR:TAG` for a one-architecture
    /// kit), or `REPO@sha256:…` when only cached.
    pub reference: String,
    /// Every name the kit gives it, `reference` first (a one-architecture kit is tagged both
    /// `TAG` and `TAG-ARCH`); `[reference]` when only cached.
    pub references: Vec<String>,
}

/// The index of a pulled base.
#[derive(Debug, Serialize)]
pub struct PulledIndex {
    pub digest: String,
    pub reference: String,
}

impl PullReport {
    fn to_text(&self) -> String {
        let mut text = String::new();
        for image in &self.images {
            text.push_str(&format!(
                "{:<6} {}  {}\n",
                image.architecture.oci_name(),
                image.digest,
                image.reference
            ));
        }
        if let Some(index) = &self.index {
            text.push_str(&format!(
                "{:<6} {}  {}\n",
                "index", index.digest, index.reference
            ));
        }
        text
    }
}

fn pull_kit(args: &PullArgs) -> Result<Finished> {
    catalog::mirror()?;
    if args.base == BaseReference::Scratch {
        return Err(Error::usage(
            "base pull scratch: scratch is built into lambda-image (no registry, no layers), so \
             there is nothing to pull; build --base scratch works offline as it is",
        ));
    }
    let creds = args
        .password_stdin
        .credential("--creds", args.creds.as_deref())?;
    let mut architectures = args.architectures.clone();
    architectures.sort();
    architectures.dedup();
    let output = match &args.output {
        Some(output) => Some(with_default_tag(output, &args.base)?),
        None if matches!(args.base, BaseReference::Local(_)) => {
            return Err(Error::usage(format!(
                "base pull {}: a local base needs --output (only registry bases are cached)",
                args.base
            ))
            .hint("give --output oci:DIR or --output oci-archive:FILE"));
        }
        None => None,
    };
    let plan = output
        .as_ref()
        .map(|output| plan_output(output, &architectures))
        .transpose()?;
    let session = match &args.base {
        BaseReference::Registry(reference) => Some(Session::connect(
            Some(reference),
            &[],
            SessionOptions {
                creds: None,
                base_creds: creds,
                ..args.registry.session_options()
            },
        )?),
        BaseReference::Local(_) | BaseReference::Scratch => None,
    };
    let cache = session.as_ref().and_then(|session| session.cache.as_ref());
    if output.is_none() && cache.is_none() {
        return Err(Error::usage(
            "base pull without --output fills the cache, and no cache directory is known \
             (neither XDG_CACHE_HOME nor HOME is set)",
        )
        .hint("give --cache-dir DIR, or --output oci:DIR for a kit"));
    }
    let base = crate::build::open_image(
        &args.base,
        &architectures,
        session.as_ref(),
        ImageRole::PullSource,
    )?;
    // Every blob read here goes through the cache (the documents when resolving, the layers
    // below), so afterwards the cache alone can serve the base to `build --offline` as well.
    let record_tag = || {
        if let (BaseReference::Registry(reference), Some(cache)) = (&args.base, cache) {
            record_base_tag(cache, reference, &base);
        }
    };
    let cache_root = cache.map(|cache| cache.root().display().to_string());
    let mut report = PullReport {
        base: args.base.to_string(),
        digest: base.digest.to_string(),
        output: None,
        cache: cache_root.clone(),
        images: Vec::new(),
        index: None,
    };
    let (Some(output), Some(plan)) = (output, plan) else {
        // No kit: reading every layer (verified) is what puts it in the cache.
        verify_layers(&base, &mut Verified::default())?;
        record_tag();
        let in_repository = |digest: &dyn std::fmt::Display| match &args.base {
            BaseReference::Registry(reference) => {
                format!("{}/{}@{digest}", reference.registry, reference.repository)
            }
            BaseReference::Local(_) | BaseReference::Scratch => digest.to_string(),
        };
        for (architecture, image) in &base.images {
            let digest = image.manifest_digest().unwrap_or(&base.digest);
            report.images.push(PulledImage {
                architecture: *architecture,
                lambda_architecture: architecture.lambda_name(),
                digest: digest.to_string(),
                reference: in_repository(digest),
                references: vec![in_repository(digest)],
            });
        }
        if base.is_index() {
            report.index = Some(PulledIndex {
                digest: base.digest.to_string(),
                reference: in_repository(&base.digest),
            });
        }
        advise(
            args,
            &format!(
                "{} ({}) cached in {}; without network on this machine: lambda-image build \
                 --offline{} --base {} ...",
                base.reference,
                base.digest,
                cache_root.unwrap_or_default(),
                cache.map(|cache| cache.flag()).unwrap_or_default(),
                args.base
            ),
        );
        return Ok(Finished::report(
            &report,
            report.to_text().into_bytes(),
            None,
        ));
    };
    let kit = kit_of(&base)?;
    let written = write_output(&plan, &kit, &base)?;
    record_tag();
    report.output = Some(output.to_string());
    for (architecture, digest, references) in &written.images {
        report.images.push(PulledImage {
            architecture: *architecture,
            lambda_architecture: architecture.lambda_name(),
            digest: digest.to_string(),
            reference: references[0].clone(),
            references: references.clone(),
        });
    }
    report.index = written
        .index
        .as_ref()
        .map(|(digest, reference)| PulledIndex {
            digest: digest.to_string(),
            reference: reference.clone(),
        });
    advise(
        args,
        &format!(
            "kit of {} written; on the machine without internet: lambda-image base verify \
             {output} && lambda-image build --offline --base {output} ...",
            base.reference
        ),
    );
    Ok(Finished::report(
        &report,
        report.to_text().into_bytes(),
        None,
    ))
}

/// What to do next, for people: on stderr, so that stdout holds only the report; also with
/// `-q` (which silences progress, not advice); not with `--json`, whose report has the same
/// facts (`cache`, `output`, each image's reference).
fn advise(args: &PullArgs, advice: &str) {
    if !args.json {
        eprintln!("{advice}");
    }
}

/// `oci:DIR` gets the base's tag, so builds can name it the same way: a registry base's tag
/// (e.g. `al2023`); a local base's tag as it was named, or, named without one, the tag of the
/// one image it holds (a kit's `al2023`); else `latest`, as the sink would write it. The result
/// always has its tag, so that the report names what was written.
fn with_default_tag(output: &ImageLocation, base: &BaseReference) -> Result<ImageLocation> {
    let base_tag = match base {
        BaseReference::Registry(reference) => reference.tag.clone(),
        BaseReference::Local(location) => local_base_tag(location),
        BaseReference::Scratch => None,
    }
    .unwrap_or_else(|| "latest".to_owned());
    let base_tag = Some(base_tag);
    Ok(match output {
        ImageLocation::OciLayout {
            directory,
            tag: None,
        } => ImageLocation::OciLayout {
            directory: directory.clone(),
            tag: base_tag,
        },
        ImageLocation::OciArchive { file, tag: None } => ImageLocation::OciArchive {
            file: file.clone(),
            tag: base_tag,
        },
        ImageLocation::DockerArchive { .. } => {
            return Err(Error::usage(format!(
                "--output {output}: a kit keeps the base's manifests, which a docker-archive cannot hold"
            ))
            .hint("write oci:DIR or oci-archive:FILE"));
        }
        other => other.clone(),
    })
}

fn verify_kit(args: &VerifyArgs) -> Result<Finished> {
    let location = if args.kit.contains(':') {
        parse_kit_location(
            &args.kit,
            "base verify checks a kit; a registry base is verified as it is pulled \
             (`lambda-image base pull REF` reads every blob through its digest check)",
        )
        .map_err(Error::usage)?
    } else {
        ImageLocation::OciLayout {
            directory: PathBuf::from(&args.kit),
            tag: None,
        }
    };
    let tags = match &location {
        ImageLocation::OciLayout { tag: Some(tag), .. }
        | ImageLocation::OciArchive { tag: Some(tag), .. } => {
            vec![tag.clone()]
        }
        _ => layout_tags(&location)?,
    };
    if tags.is_empty() {
        return Err(
            Error::base(format!("{location} has no tagged images to verify"))
                .hint("make the kit with `lambda-image base pull`"),
        );
    }
    let mut counted = Verified::default();
    for tag in &tags {
        let tagged = match &location {
            ImageLocation::OciLayout { directory, .. } => ImageLocation::OciLayout {
                directory: directory.clone(),
                tag: Some(tag.clone()),
            },
            ImageLocation::OciArchive { file, .. } => ImageLocation::OciArchive {
                file: file.clone(),
                tag: Some(tag.clone()),
            },
            ImageLocation::DockerArchive { .. } => {
                unreachable!("layout_tags refuses docker-archives")
            }
        };
        let base = open_local(&tagged, &[], ImageRole::Kit)?;
        verify_layers(&base, &mut counted)?;
    }
    let report = VerifyReport {
        kit: location.to_string(),
        tags,
        verified: counted,
    };
    let text = format!(
        "{}: every digest verifies ({} tags, {} images, {} blobs, {} bytes of layers)\n",
        report.kit,
        report.tags.len(),
        report.verified.images,
        report.verified.blobs,
        report.verified.bytes
    );
    Ok(Finished::report(&report, text.into_bytes(), None))
}

#[derive(Serialize)]
struct VerifyReport {
    kit: String,
    tags: Vec<String>,
    verified: Verified,
}
