//! Base kits: a Lambda base copied, verified, into an OCI layout or oci-archive on a connected
//! machine, for builds where there is no internet (`lambda-image base pull`), and checked again
//! on arrival (`lambda-image base verify`).
//!
//! A kit keeps the base's manifests and configs byte for byte, so an image built from the kit has
//! the same digests as one built from the registry. Its index is the registry's own when the kit
//! holds every image of it; otherwise (some architectures only) a new index lists the images kept.

use std::collections::HashMap;
use std::sync::Arc;

use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::image::manifest::{Document, index_document};
use crate::image::set::{Image, ImageSet};
use crate::image::store::BlobError;
use crate::platform::Architecture;
use crate::transport::source::damaged_base_hint;

/// The images of `base` as they are, ready for a sink to write: the same images, manifests and
/// configs byte for byte, and the same blob store; only the index may differ ([`kit_index`]).
pub fn kit_of(base: &ImageSet) -> Result<ImageSet> {
    if base.images.values().any(|image| image.manifest.is_none()) {
        return Err(Error::usage(format!(
            "{} is a docker-archive, which has no manifests to keep; pull the base from a registry or an OCI layout",
            base.reference
        )));
    }
    let index = (base.images.len() > 1).then(|| kit_index(base));
    Ok(ImageSet {
        reference: base.reference.clone(),
        name: base.name.clone(),
        digest: match &index {
            Some(index) => index.digest.clone(),
            None => base.digest.clone(),
        },
        format: base.format,
        images: base.images.clone(),
        index,
        blobs: Arc::clone(&base.blobs),
    })
}

/// The base's own index when the kit keeps all of its images, else one listing those kept.
fn kit_index(base: &ImageSet) -> Document {
    let kept: Vec<&Sha256Digest> = base
        .images
        .values()
        .filter_map(Image::manifest_digest)
        .collect();
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
        base.images
            .values()
            .filter_map(|image| Some((image.manifest.clone()?, image.platform.clone())))
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
pub fn verify_layers(base: &ImageSet, counted: &mut Verified) -> Result<()> {
    for (architecture, image) in &base.images {
        if let Some(manifest) = image.manifest_digest()
            && counted.seen.insert(manifest.clone())
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
            let bytes = std::io::copy(&mut reader, &mut std::io::sink()).map_err(|error| {
                layer_failure(base, *architecture, layer.digest(), error.into())
            })?;
            counted.blobs += 1;
            counted.bytes += bytes;
        }
    }
    Ok(())
}

fn layer_failure(
    base: &ImageSet,
    architecture: Architecture,
    digest: Sha256Digest,
    error: BlobError,
) -> Error {
    // A download that failed is the registry's fault (exit 6), not a damaged base.
    let error = match error {
        BlobError::Failed(typed) => return typed,
        BlobError::Io(error) => error,
    };
    Error::base(format!(
        "{}: the {architecture} layer {digest} does not verify: {error}",
        base.reference
    ))
    .hint(damaged_base_hint(base))
}
