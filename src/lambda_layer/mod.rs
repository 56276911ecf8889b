//! Lambda layers in an image: `build --layer [ARCH=]FILE.zip|ARN` ([`LayerSpec`]), each
//! unpacked under `/opt` in the new (OCI) layer, in the order given, as Lambda extracts a
//! function's layers into `/opt` (a later one overwrites files of an earlier one). "Layer" alone
//! means the OCI layer in this code base ([`crate::layer`] writes it); this module is about the
//! `.zip` that Lambda calls a layer.
//!
//! [`prepare`] turns the specs into [`PreparedLayer`]s: a local zip is hashed; an ARN comes
//! from the cache when an earlier build fetched it ([`record`]), else from Lambda ([`fetch`],
//! the `deploy` feature), its `CompatibleArchitectures` checked against the images it goes
//! into (exit 3) before anything is downloaded; then each zip is unpacked ([`unpack`]) into a
//! temporary directory (in the cache's `tmp/`, else the system's), which lives as long as the
//! [`LambdaLayers`] value, until the new layers are written. The entries join each
//! architecture's [`crate::layer::LayerContents`] through
//! [`crate::layer::LayerContents::add_lambda_layer`], which remembers the `--layer` each came
//! from. Not here: the tar writer, the checks of `/opt/extensions/` executables.

pub mod arn;
#[cfg(feature = "deploy")]
pub mod fetch;
pub mod record;
pub mod unpack;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

pub use arn::LayerArn;

use crate::cache::blobs::BlobCache;
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::findings::{Finding, Level};
use crate::layer::contents::LayerEntry;
use crate::package::code_sha256;
use crate::platform::Architecture;

/// One `--layer [ARCH=]SOURCE` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// `ARCH=`: only that architecture's image gets the layer; None: every image.
    pub architecture: Option<Architecture>,
    pub source: LayerSource,
    /// The value as written (for messages, the report and [`crate::layer::LayerContents::origin`]).
    written: String,
}

/// Where a layer's zip comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerSource {
    /// A `.zip` on disk.
    Zip(PathBuf),
    /// A layer version in Lambda.
    Arn(LayerArn),
}

impl fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl FromStr for LayerSpec {
    type Err = String;

    /// `FILE.zip`, `arn:...`, or either after `amd64=`/`arm64=` (also `x86_64=`, `aarch64=`).
    /// A prefix before `=` that names no architecture is part of a path (as for `--bootstrap`).
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let (architecture, rest) = match text.split_once('=') {
            Some((prefix, rest)) if !prefix.contains('/') && !prefix.starts_with("arn:") => {
                match Architecture::parse(prefix) {
                    Some(architecture) => (Some(architecture), rest),
                    None if rest.starts_with("arn:") || !Path::new(text).exists() => {
                        return Err(format!(
                            "unknown architecture `{prefix}` in `{text}`; use amd64 (x86_64) or \
                             arm64 (aarch64), e.g. arm64=layer.zip"
                        ));
                    }
                    None => (None, text),
                }
            }
            _ => (None, text),
        };
        if rest.is_empty() {
            return Err(format!(
                "`{text}` names no layer: give a .zip or a layer version ARN ({})",
                "arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION"
            ));
        }
        let source = if rest.starts_with("arn:") {
            LayerSource::Arn(LayerArn::parse(rest)?)
        } else {
            LayerSource::Zip(PathBuf::from(rest))
        };
        Ok(LayerSpec {
            architecture,
            source,
            written: text.to_owned(),
        })
    }
}

/// What the report says of one `--layer` (JSON: an item of `lambda_layers`).
#[derive(Clone, Debug, Serialize)]
pub struct ReportedLambdaLayer {
    /// The `--layer` value as written (the user's path or ARN, with any `ARCH=`).
    pub source: String,
    /// The images it went into (`amd64`, `arm64`).
    pub architectures: Vec<Architecture>,
    /// `sha256:<hex>` of the zip.
    pub sha256: String,
    /// base64 of the zip's sha256, as Lambda shows a layer's `CodeSha256`.
    pub code_sha256: String,
    /// The zip's size in bytes.
    pub size: u64,
    /// For an ARN: Lambda's `CompatibleArchitectures` (`x86_64`, `arm64`; may be empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compatible_architectures: Option<Vec<String>>,
    /// For an ARN: whether the zip came from the cache (no AWS call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached: Option<bool>,
}

/// One `--layer`, ready to go into the images: its entries (image paths such as
/// `opt/extensions/agent`, files in a temporary directory) and what to report.
pub struct PreparedLayer {
    pub spec: LayerSpec,
    pub entries: Vec<(String, LayerEntry)>,
    pub reported: ReportedLambdaLayer,
}

/// Every `--layer` of a build, unpacked; the files live as long as this value.
#[derive(Default)]
pub struct LambdaLayers {
    pub layers: Vec<PreparedLayer>,
    /// What the build should say of the layers without failing: a layer for an architecture
    /// the build does not make (left out), an empty zip, a zip whose files are all in one
    /// folder (zipped from outside the layer's directory).
    pub notes: Vec<Finding>,
    _directories: Vec<tempfile::TempDir>,
    _downloads: Vec<tempfile::NamedTempFile>,
}

impl LambdaLayers {
    /// The layers that go into `architecture`'s image, in the order given.
    pub fn for_architecture(
        &self,
        architecture: Architecture,
    ) -> impl Iterator<Item = &PreparedLayer> {
        self.layers
            .iter()
            .filter(move |layer| layer.reported.architectures.contains(&architecture))
    }

    /// What the report lists.
    pub fn reported(&self) -> Vec<ReportedLambdaLayer> {
        self.layers
            .iter()
            .map(|layer| layer.reported.clone())
            .collect()
    }
}

/// A zip ready to unpack.
struct Zip {
    path: PathBuf,
    digest: Sha256Digest,
    size: u64,
    code_sha256: String,
    compatible_architectures: Option<Vec<String>>,
    cached: Option<bool>,
    temporary: Option<tempfile::NamedTempFile>,
}

/// Gets and unpacks every layer of `specs` for a build of `architectures`. A spec with `ARCH=`
/// for an architecture the build does not make is left out (scripts give both vendor ARNs to
/// builds of one architecture). `cache` is the build's (`--cache-dir` or the default; none);
/// `offline`: an ARN must come from the cache. Errors: a zip that cannot be read or unpacked,
/// or whose entries leave `/opt` (usage, 2); a layer whose `CompatibleArchitectures` leave out
/// an image's architecture (bootstrap, 3); an ARN the cache lacks offline, or that Lambda does
/// not know (base, 4); Lambda or the download failing (registry, 6); this tool built without
/// the `deploy` feature and an ARN not in the cache (usage, 2).
pub fn prepare(
    specs: &[LayerSpec],
    architectures: &[Architecture],
    cache: Option<&BlobCache>,
    offline: bool,
) -> Result<LambdaLayers> {
    let mut prepared = LambdaLayers::default();
    let mut images: Vec<Architecture> = architectures.to_vec();
    images.sort();
    images.dedup();
    for spec in specs {
        let targets: Vec<Architecture> = match spec.architecture {
            Some(architecture) if images.contains(&architecture) => vec![architecture],
            Some(architecture) => {
                prepared.notes.push(Finding::new(
                    "layer",
                    None,
                    Level::Info,
                    format!(
                        "--layer {spec} is for {architecture}, which this build does not make: left out"
                    ),
                ));
                continue;
            }
            None => images.clone(),
        };
        let zip = match &spec.source {
            LayerSource::Zip(path) => local_zip(spec, path)?,
            LayerSource::Arn(arn) => arn_zip(spec, arn, cache, offline, &targets)?,
        };
        let parent = match cache {
            Some(cache) => cache.temporary_directory(),
            None => std::env::temp_dir(),
        };
        let directory = tempfile::Builder::new()
            .prefix(".lambda-image-")
            .tempdir_in(&parent)
            .map_err(|error| {
                Error::failure(format!(
                    "--layer {spec}: cannot create a temporary directory in {}: {error}",
                    parent.display()
                ))
            })?;
        crate::temporary::remember(directory.path());
        let entries = unpack::unpack(&zip.path, &spec.written, directory.path())?;
        prepared.notes.extend(layout_note(spec, &entries));
        prepared._directories.push(directory);
        prepared._downloads.extend(zip.temporary);
        prepared.layers.push(PreparedLayer {
            spec: spec.clone(),
            entries,
            reported: ReportedLambdaLayer {
                source: spec.written.clone(),
                architectures: targets,
                sha256: zip.digest.to_string(),
                code_sha256: zip.code_sha256,
                size: zip.size,
                compatible_architectures: zip.compatible_architectures,
                cached: zip.cached,
            },
        });
    }
    Ok(prepared)
}

/// The directories Lambda's runtimes and extensions look for at the top of `/opt` (AWS Lambda
/// Developer Guide, "Layer paths for each Lambda runtime"; `extensions` for extensions).
const KNOWN_TOP_DIRECTORIES: [&str; 7] = [
    "extensions",
    "bin",
    "lib",
    "python",
    "nodejs",
    "java",
    "ruby",
];

/// A warning for a layer zip that is empty, or whose files all sit in one folder that holds one
/// of [`KNOWN_TOP_DIRECTORIES`] while the zip's top has none: made with `zip -r layer.zip
/// layer/` from outside the directory, so `/opt/layer/extensions/agent` is never started.
fn layout_note(spec: &LayerSpec, entries: &[(String, LayerEntry)]) -> Option<Finding> {
    let files: Vec<&str> = entries
        .iter()
        .filter(|(_, entry)| !entry.is_directory())
        .filter_map(|(path, _)| path.strip_prefix("opt/"))
        .collect();
    if files.is_empty() {
        return Some(
            Finding::new(
                "layer",
                None,
                Level::Warning,
                format!("--layer {spec} holds no files: it adds nothing under /opt"),
            )
            .hint("check that the zip was made from the layer's files"),
        );
    }
    let top = |path: &str| path.split('/').next().unwrap_or_default().to_owned();
    let first = top(files[0]);
    let one_folder = files
        .iter()
        .all(|path| path.contains('/') && top(path) == first);
    let known_inside = KNOWN_TOP_DIRECTORIES.iter().find(|known| {
        files
            .iter()
            .any(|path| path.split('/').nth(1) == Some(**known) && path.matches('/').count() >= 2)
    });
    if !one_folder || KNOWN_TOP_DIRECTORIES.contains(&first.as_str()) {
        return None;
    }
    let known = known_inside?;
    Some(
        Finding::new(
            "layer",
            None,
            Level::Warning,
            format!(
                "--layer {spec}: every file is under {first}/, so it lands in /opt/{first}/{known},                  not /opt/{known}, where Lambda looks"
            ),
        )
        .hint(format!(
            "zip the layer from inside its directory: cd {first} && zip -r ../layer.zip ."
        )),
    )
}

fn local_zip(spec: &LayerSpec, path: &Path) -> Result<Zip> {
    let metadata = std::fs::metadata(path).map_err(|error| {
        Error::usage(format!(
            "--layer {spec}: cannot read {}: {error}",
            path.display()
        ))
        .hint("give the path of a layer .zip, or a layer version ARN")
    })?;
    if !metadata.is_file() {
        return Err(Error::usage(format!(
            "--layer {spec}: {} is not a file",
            path.display()
        ))
        .hint("a layer is a .zip of what goes under /opt: zip the directory first (`cd layer && zip -r ../layer.zip .`)"));
    }
    let (digest, size) = crate::digest::file_digest(path).map_err(|error| {
        Error::usage(format!(
            "--layer {spec}: cannot read {}: {error}",
            path.display()
        ))
    })?;
    Ok(Zip {
        path: path.to_owned(),
        code_sha256: code_sha256(&digest),
        digest,
        size,
        compatible_architectures: None,
        cached: None,
        temporary: None,
    })
}

fn arn_zip(
    spec: &LayerSpec,
    arn: &LayerArn,
    cache: Option<&BlobCache>,
    offline: bool,
    targets: &[Architecture],
) -> Result<Zip> {
    if let Some((record, path)) = cache.and_then(|cache| record::lookup(cache, arn)) {
        check_architectures(spec, arn, &record.compatible_architectures, targets)?;
        let digest = record
            .sha256
            .parse()
            .map_err(|_| Error::failure("a damaged layer record in the cache"))?;
        return Ok(Zip {
            path,
            digest,
            size: record.size,
            code_sha256: record.code_sha256,
            compatible_architectures: Some(record.compatible_architectures),
            cached: Some(true),
            temporary: None,
        });
    }
    if offline {
        let (place, flag) = match cache {
            Some(cache) => (
                format!("the cache {}", cache.root().display()),
                cache.flag(),
            ),
            None => (
                "the cache (none: give --cache-dir, or set XDG_CACHE_HOME or HOME)".to_owned(),
                " --cache-dir DIR".to_owned(),
            ),
        };
        let flag = if flag.is_empty() {
            flag
        } else {
            format!(" (with{flag})")
        };
        return Err(Error::base(format!(
            "--layer {spec} (--offline): {place} has no usable copy of layer version {arn} (it was \
             never fetched, or its copy was damaged and has been removed)"
        ))
        .hint(format!(
            "run this build once with network and AWS credentials{flag}: it fetches the layer \
             version and keeps it in the cache, where --offline finds it; or download the zip \
             (`aws lambda get-layer-version-by-arn --arn {arn}` gives its Content.Location) and \
             give --layer FILE.zip"
        )));
    }
    fetch_zip(spec, arn, cache, targets)
}

#[cfg(feature = "deploy")]
fn fetch_zip(
    spec: &LayerSpec,
    arn: &LayerArn,
    cache: Option<&BlobCache>,
    targets: &[Architecture],
) -> Result<Zip> {
    let facts = fetch::get_layer_version(arn, &spec.written)?;
    check_architectures(spec, arn, &facts.compatible_architectures, targets)?;
    let directory = match cache {
        Some(cache) => cache.temporary_directory(),
        None => std::env::temp_dir(),
    };
    let mut temporary = crate::temporary::file_in(&directory).map_err(|error| {
        Error::failure(format!(
            "--layer {spec}: cannot create a file in {}: {error}",
            directory.display()
        ))
    })?;
    // On failure the temporary file is deleted as it is dropped: nothing half-written is kept.
    let (digest, size) = fetch::download(&facts, arn, &spec.written, temporary.as_file_mut())?;
    let record = record::LayerRecord {
        arn: arn.to_string(),
        sha256: digest.to_string(),
        code_sha256: facts.code_sha256.clone(),
        size,
        compatible_architectures: facts.compatible_architectures.clone(),
    };
    let mut zip = Zip {
        path: temporary.path().to_owned(),
        digest,
        size,
        code_sha256: facts.code_sha256,
        compatible_architectures: Some(facts.compatible_architectures),
        cached: Some(false),
        temporary: None,
    };
    match cache {
        Some(cache) => {
            let blob = cache.blob_path(&zip.digest);
            match crate::temporary::persist(temporary, &blob) {
                Ok(_) => {
                    // Without its record the blob is only unused: the cache is an optimisation.
                    let _ = record::store(cache, arn, &record);
                    zip.path = blob;
                }
                Err(error) => zip.temporary = Some(error.file),
            }
        }
        None => zip.temporary = Some(temporary),
    }
    Ok(zip)
}

#[cfg(not(feature = "deploy"))]
fn fetch_zip(
    spec: &LayerSpec,
    arn: &LayerArn,
    _cache: Option<&BlobCache>,
    _targets: &[Architecture],
) -> Result<Zip> {
    Err(Error::usage(format!(
        "--layer {spec}: this lambda-image was built without the `deploy` feature, which \
         fetches layers from Lambda"
    ))
    .hint(format!(
        "download the zip (`aws lambda get-layer-version-by-arn --arn {arn}` gives its \
         Content.Location) and give --layer FILE.zip, or build the tool with its default features"
    )))
}

/// Refuses a layer whose `compatible` architectures (Lambda's names; none: any) leave out one
/// of `targets` (exit 3, as for a bootstrap of the wrong architecture).
fn check_architectures(
    spec: &LayerSpec,
    arn: &LayerArn,
    compatible: &[String],
    targets: &[Architecture],
) -> Result<()> {
    let Some(missing) = targets.iter().find(|target| {
        !compatible.is_empty() && !compatible.iter().any(|name| name == target.lambda_name())
    }) else {
        return Ok(());
    };
    let theirs: Vec<Architecture> = compatible
        .iter()
        .filter_map(|name| Architecture::parse(name))
        .collect();
    let mut hint = format!(
        "use the layer's ARN for {} (vendors publish one per architecture, often with an \
         -Arm64 or -x86 suffix)",
        missing.lambda_name()
    );
    if let [only] = theirs.as_slice()
        && spec.architecture.is_none()
    {
        hint.push_str(&format!(
            ", and give this one to its architecture's image only: --layer {}={arn}",
            only.oci_name()
        ));
    }
    Err(Error::bootstrap(format!(
        "--layer {spec}: layer version {arn} is for {} (its CompatibleArchitectures), and this \
         build puts it in the {} ({}) image",
        compatible.join(", "),
        missing.oci_name(),
        missing.lambda_name()
    ))
    .hint(hint))
}

#[cfg(test)]
mod tests;
