//! `lambda-image base`: the catalog of Lambda bases (`list`), and kits for networks without
//! internet: `pull` copies a base, verified, into an OCI layout or oci-archive on a connected
//! machine; `verify` checks every digest of a kit again where it arrives.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::base_kit::{Verified, kit_of, verify_layers};
use crate::cached_base::record_base_tag;
use crate::catalog::{self, CatalogBase};
use crate::error::{Error, Result};
use crate::platform::Architecture;
use crate::reference::{BaseReference, ImageLocation};
use crate::registry::{Session, SessionOptions};
use crate::transport::sink::{plan_output, write_output};
use crate::transport::source::{ImageRole, layout_tags, open_local};

#[derive(Debug, Args)]
pub struct BaseArgs {
    #[command(subcommand)]
    pub command: BaseCommand,
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
    /// Print the catalog as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The base: a catalog name (provided.al2023, provided.al2) or any image reference.
    #[arg(value_name = "BASE", default_value = "provided.al2023")]
    pub base: BaseReference,

    /// The architectures to keep (comma-separated or repeated): amd64, arm64.
    #[arg(long = "arch", value_name = "ARCH", value_delimiter = ',', value_parser = parse_architecture, default_values = ["amd64", "arm64"])]
    pub architectures: Vec<Architecture>,

    /// Where to write the kit: oci:DIR[:TAG] or oci-archive:FILE[:TAG] (TAG defaults to the
    /// base's tag). Without it, a registry base is only put in the cache, whole, for
    /// `build --offline --base REF` on this machine.
    #[arg(long, short = 'o', value_name = "REF")]
    pub output: Option<ImageLocation>,

    /// Credentials for the base's registry.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,

    #[command(flatten)]
    pub password_stdin: super::PasswordStdin,

    #[command(flatten)]
    pub registry: super::RegistryFlags,
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

fn parse_architecture(text: &str) -> Result<Architecture, String> {
    Architecture::parse(text)
        .ok_or_else(|| format!("unknown architecture `{text}`; use amd64 or arm64"))
}

/// Runs a `base` subcommand; returns the text for stdout.
pub fn run(args: &BaseArgs) -> Result<String> {
    match &args.command {
        BaseCommand::List(list) => list_catalog(list.json),
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

fn list_catalog(json: bool) -> Result<String> {
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
    if json {
        return Ok(serde_json::to_string(&bases).expect("the catalog serializes") + "\n");
    }
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
        text.push_str(&format!(
            "{name:<16} {reference:<40} {:<12} glibc {glibc:<5} entrypoint {} workdir {}\n",
            architectures.join(","),
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
    Ok(text)
}

fn pull_kit(args: &PullArgs) -> Result<String> {
    catalog::mirror()?;
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
        BaseReference::Local(_) => None,
    };
    let cache = session.as_ref().and_then(|session| session.cache.as_ref());
    if output.is_none() && cache.is_none() {
        return Err(Error::usage(
            "base pull without --output fills the cache, and no cache directory is known \
             (neither XDG_CACHE_HOME nor HOME is set)",
        )
        .hint("give --cache-dir DIR, or --output oci:DIR for a kit"));
    }
    let base = super::open_image(
        &args.base,
        &architectures,
        session.as_ref(),
        ImageRole::Base,
    )?;
    // Every blob read here goes through the cache (the documents when resolving, the layers
    // below), so afterwards the cache alone can serve the base to `build --offline` as well.
    let record_tag = || {
        if let (BaseReference::Registry(reference), Some(cache)) = (&args.base, cache) {
            record_base_tag(cache, reference, &base);
        }
    };
    let (Some(output), Some(plan)) = (output, plan) else {
        // No kit: reading every layer (verified) is what puts it in the cache.
        verify_layers(&base, &mut Verified::default())?;
        record_tag();
        let (root, flag) = cache
            .map(|cache| (cache.root().display().to_string(), cache.flag()))
            .unwrap_or_default();
        return Ok(format!(
            "{} ({}) cached in {root}; without network on this machine: lambda-image build \
             --offline{flag} --base {} ...\n",
            base.reference, base.digest, args.base
        ));
    };
    let kit = kit_of(&base)?;
    let written = write_output(&plan, &kit, &base)?;
    record_tag();
    let mut text = String::new();
    for (architecture, digest, reference) in &written.images {
        text.push_str(&format!(
            "{:<6} {digest}  {reference}\n",
            architecture.oci_name()
        ));
    }
    if let Some((digest, reference)) = &written.index {
        text.push_str(&format!("{:<6} {digest}  {reference}\n", "index"));
    }
    text.push_str(&format!(
        "kit of {} written; on the machine without internet: lambda-image base verify {output} && \
         lambda-image build --offline --base {output} ...\n",
        base.reference
    ));
    Ok(text)
}

/// `oci:DIR` gets the base's tag (e.g. `al2023`), so builds can name it the same way.
fn with_default_tag(output: &ImageLocation, base: &BaseReference) -> Result<ImageLocation> {
    let base_tag = match base {
        BaseReference::Registry(reference) => reference.tag.clone(),
        BaseReference::Local(_) => None,
    };
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

fn verify_kit(args: &VerifyArgs) -> Result<String> {
    let location = if args.kit.contains(':') {
        args.kit
            .parse::<ImageLocation>()
            .map_err(|error| Error::usage(format!("{}: {error}", args.kit)))?
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
    Ok(if args.json {
        serde_json::to_string(&report).expect("the report serializes") + "\n"
    } else {
        format!(
            "{}: every digest verifies ({} tags, {} images, {} blobs, {} bytes of layers)\n",
            report.kit,
            report.tags.len(),
            report.verified.images,
            report.verified.blobs,
            report.verified.bytes
        )
    })
}

#[derive(Serialize)]
struct VerifyReport {
    kit: String,
    tags: Vec<String>,
    verified: Verified,
}
