//! The blobs of an OCI image layout (OCI image-spec `image-layout.md`), found by walking from
//! its `index.json` through image indexes and manifests to configs and layers: what the link
//! benchmark counts as the bytes an image consists of, and where it takes the finished layers
//! for the curl floor from.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One blob of a layout.
#[derive(Clone, Debug)]
pub struct Blob {
    /// The hex part of its sha256 digest.
    pub hex: String,
    /// Its size in bytes (the descriptor's `size`).
    pub size: u64,
    /// The descriptor's `mediaType`.
    pub media_type: String,
    /// `DIR/blobs/sha256/HEX`.
    pub path: PathBuf,
}

impl Blob {
    /// Whether it is a layer (`…image.layer…` or `…image.rootfs…`), not a config or manifest.
    pub fn is_layer(&self) -> bool {
        self.media_type.contains("layer") || self.media_type.contains("rootfs")
    }
}

/// Every blob reachable from `layout`'s `index.json` (indexes, manifests, configs, layers),
/// each once, by digest. Panics on a layout it cannot read.
pub fn reachable(layout: &Path) -> BTreeMap<String, Blob> {
    let mut blobs = BTreeMap::new();
    let top: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    for descriptor in top["manifests"].as_array().unwrap() {
        walk(layout, descriptor, &mut blobs);
    }
    blobs
}

fn walk(layout: &Path, descriptor: &serde_json::Value, blobs: &mut BTreeMap<String, Blob>) {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap().to_owned();
    let media_type = descriptor["mediaType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = layout.join("blobs/sha256").join(&hex);
    let blob = Blob {
        hex: hex.clone(),
        size: descriptor["size"].as_u64().unwrap(),
        media_type: media_type.clone(),
        path: path.clone(),
    };
    if blobs.insert(hex, blob).is_some() {
        return;
    }
    if media_type.contains("manifest") || media_type.contains("index") {
        let document: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for child in document["manifests"].as_array().into_iter().flatten() {
            walk(layout, child, blobs);
        }
        if document["config"].is_object() {
            walk(layout, &document["config"], blobs);
        }
        for layer in document["layers"].as_array().into_iter().flatten() {
            walk(layout, layer, blobs);
        }
    }
}

/// The sum of the blobs' sizes.
pub fn total<'a>(blobs: impl IntoIterator<Item = &'a Blob>) -> u64 {
    blobs.into_iter().map(|blob| blob.size).sum()
}

/// The bytes of every blob a registry stores (`…/docker/registry/v2/blobs/**/data`), manifests
/// included: after a push into an empty registry, what crossed the link.
pub fn stored_bytes(storage: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|entry| {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path)
                } else if entry.file_name() == "data" {
                    entry.metadata().map_or(0, |m| m.len())
                } else {
                    0
                }
            })
            .sum()
    }
    walk(&storage.join("docker/registry/v2/blobs"))
}
