//! `check IMAGE`: linting any image, ours or not, for what Lambda would reject. Per architecture:
//! the manifest and layer media types, every layer streamed once through [`Filesystem`] (hard
//! links, missing parent directories, unsafe paths; nothing is extracted to disk), what the
//! entrypoint execs (followed through symlinks, `PATH`, `#!` interpreters and the ELF program
//! interpreter; executable by a non-root user; the right ELF architecture), the same for each
//! extension in `/opt/extensions` ([`extensions`]), and the uncompressed
//! size against Lambda's 10 GB limit. An image index is reported with the per-architecture
//! references to deploy: a warning by tag, an error when checked as an ImageUri.
//!
//! The rules about the entrypoint are in [`entrypoint`]; this file walks the image.

mod entrypoint;
mod executable;
mod extensions;

use serde::Serialize;

use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::findings::{Finding, Level};
use crate::image::filesystem::{Capture, Filesystem, LayerCompression, LayerProblems};
use crate::image::media_types::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD};
use crate::image::set::{Image, ImageSet, Layer};
use crate::platform::Architecture;

/// Lambda's limit on an image's uncompressed size (10 GB, as Lambda counts it: GiB).
pub const IMAGE_SIZE_LIMIT: u64 = 10 << 30;

/// How many offending paths a finding names before it says "and N more".
const PATHS_SHOWN: usize = 5;

/// One architecture of the checked image.
#[derive(Debug, Serialize)]
pub struct CheckedImage {
    pub architecture: Architecture,
    /// The manifest digest: what Lambda deploys. A docker-archive has none.
    pub digest: Option<String>,
    /// The image ID: the config's digest (what `docker images` shows), which identifies each
    /// image of a docker-archive.
    pub image_id: String,
    /// What to give a function as its `ImageUri` for this architecture: `HOST/REPO@sha256:...`
    /// for a registry image, the manifest digest for a local one.
    pub deploy: Option<String>,
    /// The manifest's media type; `None` for a docker-archive, which holds no manifest (`docker
    /// save`'s `manifest.json`, a config and layer tars: the registry it is pushed to gets one).
    pub media_type: Option<String>,
    pub layers: usize,
    pub uncompressed_size: u64,
}

/// Everything `check` found in an image.
#[derive(Debug, Serialize)]
pub struct LintReport {
    pub reference: String,
    /// The digest of what the reference names: an index or a manifest; for a docker-archive
    /// (no manifests) of one image, its image ID (the config's digest). `None` for a
    /// docker-archive of several images: no one digest names them all (no index), so each image
    /// has its own `image_id`.
    pub digest: Option<String>,
    pub index: bool,
    pub images: Vec<CheckedImage>,
    pub findings: Vec<Finding>,
}

/// How `check` was asked to judge the reference.
#[derive(Clone, Copy, Debug, Default)]
pub struct LintOptions {
    /// The reference is what a function will be given as its `ImageUri` (`check --image-uri`,
    /// or a reference pinned by digest, which is what one pastes there): an index is then an
    /// error, as Lambda rejects it. Otherwise (a tag, which CI checks after `build --tag`) an
    /// index is a warning that lists the per-architecture references to deploy.
    pub as_image_uri: bool,
}

/// Lints every architecture of `image`. `deploy_reference` turns a manifest digest into what the
/// user would deploy (e.g. `HOST/REPO@sha256:...`).
pub fn lint(
    image: &ImageSet,
    deploy_reference: &dyn Fn(&Sha256Digest) -> String,
    options: LintOptions,
) -> Result<LintReport> {
    let mut findings = Vec::new();
    if image.images.is_empty() {
        findings.push(Finding::new(
            "platform",
            None,
            Level::Error,
            format!(
                "{} has no linux/amd64 or linux/arm64 image; Lambda runs only those",
                image.reference
            ),
        ));
    }
    if image.is_index() {
        findings.push(index_finding(image, deploy_reference, options));
    }
    let mut images = Vec::new();
    for (&architecture, each) in &image.images {
        let (mut checked, image_findings) = lint_architecture(image, architecture, each)?;
        checked.deploy = each.manifest_digest().map(deploy_reference);
        images.push(checked);
        findings.extend(image_findings);
    }
    // A docker-archive of several images has no index, nor any other one digest naming them.
    let several_without_index = !image.is_index()
        && image.images.len() > 1
        && image
            .images
            .values()
            .all(|each| each.manifest_digest().is_none());
    Ok(LintReport {
        reference: image.reference.clone(),
        digest: (!several_without_index).then(|| image.digest.to_string()),
        index: image.is_index(),
        images,
        findings,
    })
}

/// An index cannot be a function's `ImageUri`: "The image you build for your function must target
/// only one of the architectures. Lambda does not support functions that use multi-architecture
/// container images" (AWS Lambda Developer Guide, images-create.html); a function given one fails
/// with "The image manifest, config or layer media type for the source image ... is not supported"
/// (boto/boto3#3255, docker/buildx#1533). Checked by tag (what CI does after `build --tag`), it is
/// a warning naming what to deploy; as an ImageUri (by digest, or `--image-uri`), an error.
fn index_finding(
    image: &ImageSet,
    deploy_reference: &dyn Fn(&Sha256Digest) -> String,
    options: LintOptions,
) -> Finding {
    let choices: Vec<String> = image
        .images
        .iter()
        .filter_map(|(architecture, each)| {
            each.manifest_digest()
                .as_ref()
                .map(|digest| format!("{architecture}: {}", deploy_reference(digest)))
        })
        .collect();
    let (level, how) = if options.as_image_uri {
        (
            Level::Error,
            "given as a function's ImageUri, it is rejected",
        )
    } else {
        (
            Level::Warning,
            "each architecture's image is checked below, but Lambda rejects an index as a function's ImageUri, so \
             deploy one architecture's manifest",
        )
    };
    Finding::new(
        "index",
        None,
        level,
        format!(
            "{} is an image index (a multi-architecture image); {how} (\"The image manifest, config or layer media \
             type for the source image ... is not supported\"). Per architecture: {}",
            image.reference,
            choices.join(", ")
        ),
    )
    .hint(format!(
        "deploy one architecture's manifest instead: {}",
        choices.join(", ")
    ))
}

fn lint_architecture(
    image: &ImageSet,
    architecture: Architecture,
    each: &Image,
) -> Result<(CheckedImage, Vec<Finding>)> {
    let arch = Some(architecture);
    let mut findings = Vec::new();
    // Only what the source holds is reported: a docker-archive has no manifest, so no media
    // type (the one a build would write for it is a choice, not a fact of the archive).
    let media_type = each
        .manifest_digest()
        .as_ref()
        .map(|_| image.format.manifest().to_owned());
    findings.push(Finding::new(
        "manifest",
        arch,
        Level::Info,
        match &media_type {
            Some(media_type) => format!("manifest media type {media_type}"),
            None => "no manifest: a docker-archive holds a config and layer tars (docker save's \
                     form); the registry it is pushed to gets a manifest"
                .to_owned(),
        },
    ));

    let config: serde_json::Value =
        serde_json::from_slice(&each.config.bytes).map_err(|error| {
            Error::base(format!(
                "{}: the {architecture} config is not JSON: {error}",
                image.reference
            ))
        })?;
    let command = entrypoint::Command::from_config(&config);
    // The head of every file with an execute bit is kept, trimmed to what the checks read (an
    // ELF's headers, a #! line), because a symlink (the bootstrap, the entrypoint, /bin/sh) may
    // name any of them, and the layer that has it is often the biggest: a second pass would read
    // (for a registry image, download) it again. A few hundred bytes per executable is what that
    // costs; 10,000 executables hold under 10 MB. A file without an execute bit cannot be
    // exec'd whatever it holds, so its head is not needed.
    let read = |_: &str, mode: u32| (mode & 0o111 != 0).then_some(executable::HEAD_BYTES);
    let capture = Capture {
        read: &read,
        keep: &executable::head_to_keep,
    };

    let mut filesystem = Filesystem::default();
    let mut uncompressed_size = 0;
    for layer in &each.layers {
        let Some(compression) = layer_compression(layer, arch, &mut findings) else {
            continue;
        };
        let reader = image
            .open_layer(layer)
            .map_err(|error| layer_error(image, layer, error))?;
        let problems = filesystem
            .apply_layer_capturing(reader, compression, &capture)
            .map_err(|error| layer_error(image, layer, error))?;
        uncompressed_size += problems.uncompressed_size;
        findings.extend(layer_findings(layer, arch, &problems));
    }

    if uncompressed_size > IMAGE_SIZE_LIMIT {
        findings.push(
            Finding::new(
                "size",
                arch,
                Level::Error,
                format!(
                    "the image is {uncompressed_size} bytes uncompressed, over Lambda's 10 GB limit ({IMAGE_SIZE_LIMIT} bytes)"
                ),
            )
            .hint("move data out of the image (S3, EFS) or use a smaller base"),
        );
    }
    findings.extend(entrypoint::check(
        &command,
        &filesystem,
        architecture,
        &config,
    ));
    findings.extend(extensions::check(&filesystem, architecture, &config));

    let checked = CheckedImage {
        architecture,
        digest: each.manifest_digest().map(ToString::to_string),
        image_id: Sha256Digest::of(&each.config.bytes).to_string(),
        deploy: None,
        media_type,
        layers: each.layers.len(),
        uncompressed_size,
    };
    Ok((checked, findings))
}

/// How a layer can be read, or `None` (with a finding) when Lambda would not accept it.
fn layer_compression(
    layer: &Layer,
    architecture: Option<Architecture>,
    findings: &mut Vec<Finding>,
) -> Option<LayerCompression> {
    let media_type = layer.descriptor.media_type().to_string();
    let refuse = |why: &str| {
        Finding::new(
            "layer-media-type",
            architecture,
            Level::Error,
            format!(
                "layer {} has media type {media_type}: {why}",
                layer.digest()
            ),
        )
        .hint("recompress the layer with gzip (lambda-image writes only gzip layers)")
    };
    match media_type.as_str() {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(LayerCompression::Gzip),
        OCI_LAYER_TAR => {
            findings.push(refuse(
                "an uncompressed layer, which Lambda rejects (UnsupportedImageLayerDetected)",
            ));
            Some(LayerCompression::None)
        }
        OCI_LAYER_ZSTD => {
            findings.push(refuse(
                "zstd, which Lambda is not known to accept; use gzip",
            ));
            None
        }
        _ => {
            findings.push(refuse("not a gzip tar layer"));
            None
        }
    }
}

fn layer_findings(
    layer: &Layer,
    architecture: Option<Architecture>,
    problems: &LayerProblems,
) -> Vec<Finding> {
    let digest = layer.digest();
    let mut findings = Vec::new();
    if !problems.hard_links.is_empty() {
        let links: Vec<String> = problems
            .hard_links
            .iter()
            .map(|(path, target)| format!("/{path} -> /{target}"))
            .collect();
        findings.push(
            Finding::new(
                "hard-links",
                architecture,
                Level::Error,
                format!(
                    "layer {digest} has hard links, which Lambda rejects (UnsupportedImageLayerDetected): {}",
                    list(&links)
                ),
            )
            .hint("rebuild the layer with the files copied instead of hard-linked"),
        );
    }
    if !problems.missing_parents.is_empty() {
        let paths: Vec<String> = problems
            .missing_parents
            .iter()
            .map(|path| format!("/{path}"))
            .collect();
        findings.push(
            Finding::new(
                "missing-parents",
                architecture,
                Level::Error,
                format!(
                    "layer {digest} has entries whose parent directory is in no layer, which Lambda's unpacker \
                     does not create: {}",
                    list(&paths)
                ),
            )
            .hint("rebuild the layer with an entry for every parent directory"),
        );
    }
    if !problems.unsafe_paths.is_empty() {
        findings.push(Finding::new(
            "unsafe-paths",
            architecture,
            Level::Error,
            format!(
                "layer {digest} has absolute paths or paths with `..`, which escape the image root: {}",
                list(&problems.unsafe_paths)
            ),
        ));
    }
    findings
}

/// The first few items, then how many more there are.
fn list(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(PATHS_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > PATHS_SHOWN {
        text.push_str(&format!(" and {} more", items.len() - PATHS_SHOWN));
    }
    text
}

fn layer_error(image: &ImageSet, layer: &Layer, error: impl std::fmt::Display) -> Error {
    Error::base(format!(
        "{}: cannot read layer {}: {error}",
        image.reference,
        layer.digest()
    ))
}

impl LintReport {
    pub fn has_errors(&self) -> bool {
        crate::findings::has_errors(&self.findings)
    }

    /// One line per image, then every finding that is not a pass, then a count.
    pub fn to_text(&self) -> String {
        let docker_archive = self.images.iter().any(|image| image.media_type.is_none());
        let mut text = match &self.digest {
            Some(digest) => format!(
                "{}  {digest}{}\n",
                self.reference,
                if self.index {
                    "  (index)"
                } else if docker_archive {
                    "  (image ID: a docker-archive has no manifest)"
                } else {
                    ""
                }
            ),
            None => format!(
                "{}  ({} images, no index: a docker-archive has no manifests; each image's ID below)\n",
                self.reference,
                self.images.len()
            ),
        };
        for image in &self.images {
            // A docker-archive's image has no manifest digest: its image ID stands there.
            let digest = match &image.digest {
                Some(digest) => digest.clone(),
                None => format!("{} (image ID)", image.image_id),
            };
            text.push_str(&format!(
                "{:<6} {}  {}  {} layers, {} bytes uncompressed\n",
                image.architecture.oci_name(),
                digest,
                image
                    .media_type
                    .as_deref()
                    .unwrap_or("docker-archive (no manifest)"),
                image.layers,
                image.uncompressed_size
            ));
            if let Some(deploy) = image
                .deploy
                .as_ref()
                .filter(|deploy| image.digest.as_ref() != Some(*deploy))
            {
                text.push_str(&format!("       deploy: {deploy}\n"));
            }
        }
        let count = |level| self.findings.iter().filter(|f| f.level == level).count();
        for finding in self.findings.iter().filter(|f| f.level != Level::Info) {
            text.push_str(&finding.to_text());
            text.push('\n');
        }
        let (errors, warnings) = (count(Level::Error), count(Level::Warning));
        if errors == 0 && warnings == 0 {
            text.push_str("no problems found: Lambda can run this image\n");
        } else {
            text.push_str(&format!("{errors} error(s), {warnings} warning(s)\n"));
        }
        text
    }
}
