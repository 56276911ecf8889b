//! Base kits: a Lambda base copied, verified, into an OCI layout or oci-archive on a connected
//! machine, for builds where there is no internet (`lambda-image base pull`), and checked again
//! on arrival (`lambda-image base verify`).
//!
//! A kit keeps the base's manifests and configs byte for byte, so an image built from the kit has
//! the same digests as one built from the registry. Its index is the registry's own when the kit
//! holds every image of it; otherwise (some architectures only) a new index lists the images kept.

use std::collections::HashMap;

use oci_spec::image::ImageManifest;

use crate::assemble::{Assembled, AssembledImage};
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::image::manifest::{Document, index_document, platform};
use crate::platform::Architecture;
use crate::transport::source::ResolvedBase;

/// The images of `base` as they are, ready for a sink to write.
pub fn kit_of(base: &ResolvedBase) -> Result<Assembled> {
    let mut images = Vec::new();
    for (&architecture, image) in &base.images {
        let manifest = image.manifest.clone().ok_or_else(|| {
            Error::usage(format!(
                "{} is a docker-archive, which has no manifests to keep; pull the base from a registry or an OCI layout",
                base.reference
            ))
        })?;
        let config_media_type = serde_json::from_slice::<ImageManifest>(&manifest.bytes)
            .map(|parsed| parsed.config().media_type().to_string())
            .map_err(|error| {
                Error::base(format!(
                    "manifest {} is malformed: {error}",
                    manifest.digest
                ))
            })?;
        images.push(AssembledImage {
            architecture,
            platform: platform(
                &image.config.architecture,
                &image.config.os,
                image.config.variant.as_deref(),
            ),
            config: Document::new(&config_media_type, image.config_raw.clone()),
            manifest,
            layers: image.layers.clone(),
        });
    }
    let index = (images.len() > 1).then(|| kit_index(base, &images));
    Ok(Assembled {
        images,
        index,
        image_name: base.name.clone(),
    })
}

/// The base's own index when the kit keeps all of its images, else one listing those kept.
fn kit_index(base: &ResolvedBase, images: &[AssembledImage]) -> Document {
    let kept: Vec<&Sha256Digest> = images.iter().map(|image| &image.manifest.digest).collect();
    if let Some(original) = &base.index
        && let Ok(parsed) = serde_json::from_slice::<oci_spec::image::ImageIndex>(&original.bytes)
        && parsed.manifests().iter().all(|entry| {
            kept.iter()
                .any(|digest| entry.digest().to_string() == digest.to_string())
        })
    {
        return original.clone();
    }
    index_document(
        base.format,
        images
            .iter()
            .map(|image| (image.manifest.clone(), image.platform.clone()))
            .collect(),
        &HashMap::new(),
    )
}

/// What `base verify` counted: distinct images and blobs (several tags may share them).
#[derive(Debug, Default, serde::Serialize)]
pub struct Verified {
    pub images: usize,
    pub blobs: usize,
    pub bytes: u64,
    #[serde(skip)]
    seen: std::collections::BTreeSet<Sha256Digest>,
}

/// Reads every layer of `base` through its digest check (documents were checked when resolved).
/// For a registry base, that also puts every layer in the blob cache.
pub fn verify_layers(base: &ResolvedBase, counted: &mut Verified) -> Result<()> {
    for (architecture, image) in &base.images {
        if let Some(manifest) = &image.manifest
            && counted.seen.insert(manifest.digest.clone())
        {
            counted.images += 1;
            counted.blobs += 2; // the manifest and the config, verified when resolved
        }
        for layer in &image.layers {
            if !counted.seen.insert(layer.digest()) {
                continue;
            }
            let mut reader = base
                .open_layer(layer)
                .map_err(|error| layer_failure(base, *architecture, layer.digest(), error))?;
            let bytes = std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(|error| layer_failure(base, *architecture, layer.digest(), error))?;
            counted.blobs += 1;
            counted.bytes += bytes;
        }
    }
    Ok(())
}

fn layer_failure(
    base: &ResolvedBase,
    architecture: Architecture,
    digest: Sha256Digest,
    error: std::io::Error,
) -> Error {
    // A download that failed is the registry's fault (exit 6), not a damaged base.
    if let Some(registry_error) = crate::registry::transfer::registry_failure(&error) {
        return registry_error;
    }
    Error::base(format!(
        "{}: the {architecture} layer {digest} does not verify: {error}",
        base.reference
    ))
    .hint(damaged_base_hint(base))
}

/// What to do about a base with a blob missing or not matching its digest: from a registry,
/// that registry serves it damaged; a local base (a kit) is made again at the same place with
/// the registry reference it was pulled from, when the kit records it
/// (`io.containerd.image.name`).
pub fn damaged_base_hint(base: &ResolvedBase) -> String {
    if let Some((registry, repository)) = base.registry_origin() {
        return format!(
            "{registry}/{repository} serves the base's content damaged (it does not match its \
             digest): try again later, or copy the base into it again"
        );
    }
    let kit = match base.reference.parse::<crate::reference::ImageLocation>() {
        Ok(crate::reference::ImageLocation::DockerArchive { .. }) | Err(_) => {
            return format!(
                "the base {} is damaged: write it again from a complete copy",
                base.reference
            );
        }
        Ok(location) => location.with_tag(None).to_string(),
    };
    let name = base.name.as_deref().unwrap_or("BASE");
    format!(
        "the kit {} is damaged: make it again with `lambda-image base pull {name} --output {kit}` \
         on a machine with network",
        base.reference
    )
}
