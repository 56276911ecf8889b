//! Building image manifests and indexes (OCI, or Docker v2 schema 2 and manifest lists) as
//! canonical JSON with the top-level `mediaType` always set (ECR rejects OCI manifests without it).

use std::collections::HashMap;
use std::str::FromStr;

use oci_spec::image::{
    Arch, Descriptor, Digest, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, Platform,
};

use super::ImageFormat;
use super::json::to_canonical_vec;
use crate::digest::Sha256Digest;

/// A serialized document with its digest and media type, ready to be written anywhere.
#[derive(Clone, Debug)]
pub struct Document {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: Sha256Digest,
}

impl Document {
    /// A document of these bytes, whose digest is computed here.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest: Sha256Digest::of(&bytes),
            bytes,
        }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// A descriptor pointing at this document.
    pub fn descriptor(&self) -> Descriptor {
        descriptor(&self.media_type, &self.digest, self.size())
    }
}

/// A config document (its media type follows the format).
pub fn config_document(format: ImageFormat, bytes: Vec<u8>) -> Document {
    Document::new(format.config(), bytes)
}

/// A descriptor for a blob.
pub fn descriptor(media_type: &str, digest: &Sha256Digest, size: u64) -> Descriptor {
    let digest =
        Digest::from_str(&digest.to_string()).expect("a Sha256Digest is always a valid digest");
    Descriptor::new(MediaType::from(media_type), size, digest)
}

/// A manifest for one image: config plus layers in order.
pub fn manifest_document(
    format: ImageFormat,
    config: &Document,
    layers: Vec<Descriptor>,
    annotations: &HashMap<String, String>,
) -> Document {
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(format.manifest()))
        .config(config.descriptor())
        .layers(layers);
    if !annotations.is_empty() {
        builder = builder.annotations(annotations.clone());
    }
    let manifest = builder
        .build()
        .expect("all required manifest fields are set");
    Document::new(format.manifest(), to_canonical_vec(&manifest))
}

/// The platform of one architecture's manifest, as written in an index.
pub fn platform(architecture: &str, os: &str, variant: Option<&str>) -> Platform {
    let mut platform = Platform::default();
    platform.set_architecture(Arch::from(architecture));
    platform.set_os(Os::from(os));
    platform.set_variant(variant.map(str::to_owned));
    platform
}

/// An index (manifest list) over per-architecture manifests.
pub fn index_document(
    format: ImageFormat,
    manifests: Vec<(Document, Platform)>,
    annotations: &HashMap<String, String>,
) -> Document {
    let entries = manifests
        .into_iter()
        .map(|(manifest, platform)| {
            let mut entry = manifest.descriptor();
            entry.set_platform(Some(platform));
            entry
        })
        .collect::<Vec<_>>();
    let mut builder = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::from(format.index()))
        .manifests(entries);
    if !annotations.is_empty() {
        builder = builder.annotations(annotations.clone());
    }
    let index = builder.build().expect("all required index fields are set");
    Document::new(format.index(), to_canonical_vec(&index))
}
