//! The image model every source produces, `assemble` maps and every sink consumes: an
//! [`ImageSet`] is one [`Image`] per architecture (manifest, config, layers), an optional index,
//! and the [`BlobStore`] that opens the layers, whatever holds them.
//!
//! Resolving a set reads and verifies only the small documents; layer blobs stream, verified,
//! from the store straight into an output when a sink copies them. Not here: how a set is read
//! (`transport::source`, `registry::pull`) or written (`transport::sink`, `registry::push`).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use oci_spec::image::{Descriptor, Platform};

use super::ImageFormat;
use super::config::BaseConfigFacts;
use super::manifest::Document;
use super::resolve::descriptor_digest;
use super::store::{BlobError, BlobStore};
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::platform::Architecture;

/// A layer: its descriptor as it appears in the manifest. Its bytes are in the set's store.
#[derive(Clone, Debug)]
pub struct Layer {
    pub descriptor: Descriptor,
}

impl Layer {
    pub fn digest(&self) -> Sha256Digest {
        descriptor_digest(&self.descriptor)
            .expect("layer descriptors are checked to hold sha256 digests")
    }
}

/// One architecture's image.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest as the source holds it (byte for byte), or as this run made it; a
    /// docker-archive has none.
    pub manifest: Option<Document>,
    /// The config, byte for byte, with the media type the manifest gives it.
    pub config: Document,
    /// What this tool reads from the config.
    pub facts: BaseConfigFacts,
    /// The platform an index lists the image under (the config's os, architecture, variant).
    pub platform: Platform,
    pub layers: Vec<Layer>,
}

impl Image {
    /// The manifest's digest; a docker-archive has no manifests.
    pub fn manifest_digest(&self) -> Option<&Sha256Digest> {
        self.manifest.as_ref().map(|manifest| &manifest.digest)
    }
}

/// An image with its manifest, as sinks that write manifests take it ([`ImageSet::manifests`]).
pub struct ManifestImage<'a> {
    pub architecture: Architecture,
    pub image: &'a Image,
    pub manifest: &'a Document,
}

/// Images for one or more architectures, as read from a source or made by a build.
pub struct ImageSet {
    /// The location as the user wrote it; empty for a set this run made.
    pub reference: String,
    /// The set as a fully-qualified registry reference (`public.ecr.aws/lambda/provided:al2023`):
    /// for a base, written as the `org.opencontainers.image.base.name` annotation: the reference
    /// itself for a registry base; for an OCI layout, the `io.containerd.image.name` of the entry
    /// read (a kit from `base pull` records it); else none, since a local path is no image
    /// reference. A sink writing an OCI layout records it as `io.containerd.image.name` on the
    /// tagged entry (a kit keeps its base's; a built function has none).
    pub name: Option<String>,
    /// Digest of the top-level document (index or manifest; for a docker-archive, which has no
    /// manifest, the image ID).
    pub digest: Sha256Digest,
    /// The media-type family of the manifests; for a base, the default for the output.
    pub format: ImageFormat,
    pub images: BTreeMap<Architecture, Image>,
    /// The top document, byte for byte, when it is an index (a docker-archive has none).
    pub index: Option<Document>,
    /// Opens the layers of every image.
    pub blobs: Arc<dyn BlobStore>,
}

impl ImageSet {
    /// Whether the top document is an index (Lambda deploys only single manifests).
    pub fn is_index(&self) -> bool {
        self.index.is_some()
    }

    /// Opens a layer for copying; bytes from a source are verified against the descriptor.
    pub fn open_layer(&self, layer: &Layer) -> Result<Box<dyn Read + Send>, BlobError> {
        self.blobs.open(&layer.descriptor)
    }

    /// The registry and repository the layers are read from, if a registry holds them.
    pub fn registry_origin(&self) -> Option<(&str, &str)> {
        self.blobs.origin()
    }

    /// Each image with its manifest, in architecture order, for a sink that writes manifests.
    /// A set read from a docker-archive has none, so it cannot be written so.
    pub fn manifests(&self) -> Result<Vec<ManifestImage<'_>>> {
        self.images
            .iter()
            .map(|(&architecture, image)| {
                let manifest = image.manifest.as_ref().ok_or_else(|| {
                    Error::usage(format!(
                        "{} is a docker-archive, which has no manifests to keep; pull the base \
                         from a registry or an OCI layout",
                        self.reference
                    ))
                })?;
                Ok(ManifestImage {
                    architecture,
                    image,
                    manifest,
                })
            })
            .collect()
    }
}
