//! Unit tests of `rootfs`: layers made in memory (tar, gzip), in a small image set whose store
//! verifies digests as a real one does, unpacked into temporary directories and a cache. The
//! helpers are here; the tests are in `entries` (what each entry becomes: modes, links,
//! whiteouts, refusals, mount points), `images` (chain IDs, the cache, refused images),
//! `scratch` (temporary trees and their sweep), `unsupported` (the entries Lambda refuses) and
//! `retention` (which cached trees stay).

mod entries;
mod images;
mod retention;
mod scratch;
mod unsupported;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use oci_spec::image::Descriptor;

use super::*;
use crate::digest::VerifyingReader;
use crate::image::ImageFormat;
use crate::image::config::read_base_config;
use crate::image::manifest::{Document, descriptor, platform};
use crate::image::media_types::{OCI_CONFIG, OCI_LAYER_ZSTD};
use crate::image::resolve::descriptor_digest;
use crate::image::store::BlobStore;
use crate::platform::Architecture;

/// The mtime of every test entry.
const MTIME: u64 = 1_600_000_000;

/// Blobs in memory, verified against their descriptors as they are read.
struct MemoryBlobs(BTreeMap<Sha256Digest, Vec<u8>>);

impl BlobStore for MemoryBlobs {
    fn open(
        &self,
        descriptor: &Descriptor,
    ) -> std::result::Result<Box<dyn Read + Send>, BlobError> {
        let digest = descriptor_digest(descriptor).map_err(BlobError::Failed)?;
        let bytes = self.0.get(&digest).ok_or_else(|| {
            BlobError::Io(io::Error::new(io::ErrorKind::NotFound, "no such blob"))
        })?;
        Ok(Box::new(VerifyingReader::new(
            Cursor::new(bytes.clone()),
            digest,
            descriptor.size(),
        )))
    }
}

/// A layer tar, entries written as given: paths are not checked, so hostile ones can be made.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn entry(
        mut self,
        kind: tar::EntryType,
        path: &str,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
        (uid, gid): (u64, u64),
    ) -> Self {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_uid(uid);
        header.set_gid(gid);
        header.set_mtime(MTIME);
        if let Some(link) = link {
            header.set_link_name_literal(link).unwrap();
        }
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn dir(self, path: &str, mode: u32) -> Self {
        self.entry(tar::EntryType::Directory, path, mode, b"", None, (0, 0))
    }

    fn file(self, path: &str, mode: u32, data: &[u8]) -> Self {
        self.entry(tar::EntryType::Regular, path, mode, data, None, (0, 0))
    }

    fn symlink(self, path: &str, target: &str) -> Self {
        let kind = tar::EntryType::Symlink;
        self.entry(kind, path, 0o777, b"", Some(target), (0, 0))
    }

    fn hard_link(self, path: &str, target: &str) -> Self {
        self.entry(tar::EntryType::Link, path, 0o644, b"", Some(target), (0, 0))
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An image of these layers (uncompressed tar, media type), gzipped when the type says so,
/// whose config lists `diff_ids` (the tars' own when `None`).
fn image_with(layers: &[(Vec<u8>, &str)], diff_ids: Option<Vec<Sha256Digest>>) -> ImageSet {
    let diff_ids = diff_ids.unwrap_or_else(|| {
        layers
            .iter()
            .map(|(tar, _)| Sha256Digest::of(tar))
            .collect()
    });
    let mut blobs = BTreeMap::new();
    let mut descriptors = Vec::new();
    for (tar, media_type) in layers {
        let blob = if media_type.contains("gzip") {
            gzip(tar)
        } else {
            tar.clone()
        };
        let digest = Sha256Digest::of(&blob);
        descriptors.push(Layer {
            descriptor: descriptor(media_type, &digest, blob.len() as u64),
        });
        blobs.insert(digest, blob);
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": diff_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        },
    });
    let config = Document::new(OCI_CONFIG, serde_json::to_vec(&config).unwrap());
    let image = Image {
        manifest: None,
        facts: read_base_config(&config.bytes).unwrap(),
        platform: platform("amd64", "linux", None),
        config,
        layers: descriptors,
    };
    ImageSet {
        reference: "test-image".to_owned(),
        name: None,
        digest: image.config.digest.clone(),
        format: ImageFormat::Oci,
        images: BTreeMap::from([(Architecture::Amd64, image)]),
        index: None,
        blobs: Arc::new(MemoryBlobs(blobs)),
    }
}

fn image(layers: Vec<Tar>) -> ImageSet {
    let layers: Vec<(Vec<u8>, &str)> = layers
        .into_iter()
        .map(|tar| (tar.bytes(), OCI_LAYER_GZIP))
        .collect();
    image_with(&layers, None)
}

fn unpack_as(
    set: &ImageSet,
    cache: Option<&BlobCache>,
    ownership: Ownership,
) -> Result<RootFilesystem> {
    let image = set.images.values().next().unwrap();
    prepare(set, image, cache, ownership, &Progress::Quiet)
}

fn unpack(set: &ImageSet, cache: Option<&BlobCache>) -> Result<RootFilesystem> {
    unpack_as(set, cache, Ownership::CurrentUser)
}

fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn mode(root: &Path, path: &str) -> u32 {
    fs::symlink_metadata(root.join(path)).unwrap().mode() & 0o7777
}

fn exists(root: &Path, path: &str) -> bool {
    fs::symlink_metadata(root.join(path)).is_ok()
}

/// Every path in the tree, relative, sorted.
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, directory: &Path, paths: &mut Vec<String>) {
        for entry in fs::read_dir(directory).unwrap().flatten() {
            let path = entry.path();
            paths.push(path.strip_prefix(root).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, paths);
            }
        }
    }
    let mut paths = Vec::new();
    walk(root, root, &mut paths);
    paths.sort();
    paths
}

fn cache() -> (tempfile::TempDir, BlobCache) {
    let directory = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(Some(&directory.path().join("cache")))
        .unwrap()
        .unwrap();
    (directory, cache)
}
