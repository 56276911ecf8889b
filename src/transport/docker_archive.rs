//! docker-archive files (what `docker save` writes and `docker load` reads): resolving a base from
//! one, and writing the built images into one, one image per architecture with its `RepoTags`.
//!
//! A docker-archive has no manifests and no compressed digests, only `manifest.json`, configs and
//! layer files. On reading, each layer is hashed (and checked against the config's `diff_ids`);
//! uncompressed layers are gzipped once, because Lambda rejects uncompressed Docker layers.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};

use super::tree::{TreeBlobs, TreeReader, TreeWriter};
use crate::digest::{HashingReader, HashingWriter, Sha256Digest};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::image::ImageFormat;
use crate::image::config::read_base_config;
use crate::image::manifest::{Document, config_document, descriptor, platform};
use crate::image::media_types::DOCKER_LAYER_GZIP;
use crate::image::resolve::{CONFIG_LIMIT, MANIFEST_LIMIT, missing_architecture};
use crate::image::set::{Image, ImageSet, Layer};
use crate::image::store::{BlobStore, LocalBlobs};
use crate::layer::writer::gzip_encoder;
use crate::platform::Architecture;
use crate::reference::DockerArchiveSelector;
use crate::reference::registry::RegistryReference;

/// The name given to images in a docker-archive when the output names none.
pub const DEFAULT_NAME: &str = "lambda-function:latest";

/// One entry of `manifest.json`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// Whether the `RepoTags` entry `repo_tag` names the image `wanted` (`NAME:TAG`), as Docker
/// and skopeo read image names: `docker save` writes the short form (`my/fn:v1`, `alpine:3`),
/// skopeo the fully qualified one (`docker.io/my/fn:v1`, `docker.io/library/alpine:3`), and
/// both mean the same image (Docker Hub's `docker.io` and `library/` defaults, as
/// [`RegistryReference`] applies them).
fn names_match(repo_tag: &str, wanted: &str) -> bool {
    if repo_tag == wanted {
        return true;
    }
    match (
        repo_tag.parse::<RegistryReference>(),
        wanted.parse::<RegistryReference>(),
    ) {
        (Ok(stored), Ok(wanted)) => {
            stored.registry == wanted.registry
                && stored.repository == wanted.repository
                && stored.tag == wanted.tag
        }
        _ => false,
    }
}

/// Resolves the wanted architectures from the images in a docker-archive.
pub fn resolve(
    tree: Box<dyn TreeReader>,
    selector: Option<&DockerArchiveSelector>,
    wanted: &[Architecture],
) -> Result<ImageSet> {
    let entries = read_archive_manifest(tree.as_ref())?;
    let candidates: Vec<&ArchiveEntry> = match selector {
        None => entries.iter().collect(),
        Some(DockerArchiveSelector::Index(index)) => {
            vec![entries.get(*index).ok_or_else(|| {
                Error::base(format!(
                    "has {} images, so there is no @{index}",
                    entries.len()
                ))
            })?]
        }
        Some(DockerArchiveSelector::Name(name)) => {
            let found: Vec<_> = entries
                .iter()
                .filter(|entry| {
                    entry
                        .repo_tags
                        .iter()
                        .flatten()
                        .any(|tag| names_match(tag, name))
                })
                .collect();
            if found.is_empty() {
                let tags: Vec<_> = entries
                    .iter()
                    .flat_map(|e| e.repo_tags.iter().flatten().cloned())
                    .collect();
                return Err(Error::base(format!(
                    "has no image named {name}; it has: {}",
                    tags.join(", ")
                ))
                .hint(
                    "name one it has after the file (docker-archive:FILE:NAME:TAG), or the \
                     N-th image with docker-archive:FILE:@N",
                ));
            }
            found
        }
    };

    let scratch = tempfile::tempdir().context(ErrorKind::Failure, || {
        "cannot create a temporary directory".into()
    })?;
    let mut by_architecture = BTreeMap::new();
    let mut available = Vec::new();
    for entry in candidates {
        let (config_raw, config_digest) = read_config(tree.as_ref(), &entry.config)?;
        let facts = read_base_config(&config_raw)
            .map_err(|error| Error::base(format!("{}: {error}", entry.config)))?;
        available.push(format!("{}/{}", facts.os, facts.architecture));
        if let Some(architecture) =
            Architecture::parse(&facts.architecture).filter(|_| facts.os == "linux")
        {
            by_architecture.entry(architecture).or_insert((
                entry,
                config_raw,
                config_digest,
                facts,
            ));
        }
    }

    let every_architecture: Vec<Architecture> = by_architecture.keys().copied().collect();
    let wanted = if wanted.is_empty() {
        &every_architecture
    } else {
        wanted
    };
    let mut images = BTreeMap::new();
    let mut top_digest = None;
    // Where each layer's bytes are: a gzipped file of the archive, or the file it was gzipped to.
    let mut in_archive = BTreeMap::new();
    let mut compressed = BTreeMap::new();
    for &architecture in wanted {
        let Some((entry, config_raw, config_digest, facts)) = by_architecture.remove(&architecture)
        else {
            return Err(missing_architecture(architecture, &available));
        };
        if facts.diff_id_count != entry.layers.len() {
            return Err(Error::base(format!(
                "image {} has {} layer files but its config lists {} diff_ids",
                entry.config,
                entry.layers.len(),
                facts.diff_id_count
            )));
        }
        let diff_ids = config_diff_ids(&config_raw);
        let mut layers = Vec::with_capacity(entry.layers.len());
        for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
            let (layer, held) = prepare_layer(tree.as_ref(), path, diff_id, scratch.path())?;
            match held {
                Held::InArchive => {
                    in_archive.insert(layer.digest(), path.clone());
                }
                Held::Compressed(file) => {
                    compressed.insert(layer.digest(), file);
                }
            }
            layers.push(layer);
        }
        top_digest.get_or_insert(config_digest);
        images.insert(
            architecture,
            Image {
                manifest: None,
                // A docker-archive holds no manifests, so it has no format of its own: OCI.
                config: config_document(ImageFormat::Oci, config_raw),
                platform: platform(&facts.architecture, &facts.os, facts.variant.as_deref()),
                facts,
                layers,
            },
        );
    }
    let archive: Arc<dyn BlobStore> = Arc::new(TreeBlobs::at_paths(tree, in_archive));
    Ok(ImageSet {
        reference: String::new(),
        name: None,
        digest: top_digest.ok_or_else(|| {
            Error::base(format!(
                "has no linux/amd64 or linux/arm64 image; it has: {}",
                available.join(", ")
            ))
        })?,
        // A docker-archive holds no manifests, so it has no format of its own to keep: default to OCI.
        format: ImageFormat::Oci,
        images,
        index: None,
        blobs: Arc::new(LocalBlobs::new(compressed, Some(archive)).keeping(scratch)),
    })
}

fn read_archive_manifest(tree: &dyn TreeReader) -> Result<Vec<ArchiveEntry>> {
    let (reader, size) = tree.open("manifest.json").map_err(|error| {
        Error::base(format!(
            "is not a docker-archive (no manifest.json: {error})"
        ))
    })?;
    if size > MANIFEST_LIMIT {
        return Err(Error::base("manifest.json is over the 4 MiB limit"));
    }
    serde_json::from_reader(reader)
        .map_err(|error| Error::base(format!("manifest.json is malformed: {error}")))
}

/// Reads a config, checking it against the digest in its file name when it has one.
fn read_config(tree: &dyn TreeReader, path: &str) -> Result<(Vec<u8>, Sha256Digest)> {
    let (reader, size) = tree
        .open(path)
        .map_err(|error| Error::base(format!("config {path}: {error}")))?;
    if size > CONFIG_LIMIT {
        return Err(Error::base(format!(
            "config {path} is over the 8 MiB limit"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    reader
        .take(CONFIG_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|error| Error::base(format!("config {path}: {error}")))?;
    let digest = Sha256Digest::of(&bytes);
    let named = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".json");
    if named.len() == 64 && named.bytes().all(|b| b.is_ascii_hexdigit()) && named != digest.hex() {
        return Err(Error::base(format!(
            "config {path} does not match its name: its content is {digest}"
        )));
    }
    Ok((bytes, digest))
}

fn config_diff_ids(config_raw: &[u8]) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_slice(config_raw).unwrap_or_default();
    value["rootfs"]["diff_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Where a docker-archive layer's gzipped bytes are.
enum Held {
    /// The archive's own file (already gzipped).
    InArchive,
    /// A file in the scratch directory the uncompressed layer was gzipped to.
    Compressed(std::path::PathBuf),
}

/// Hashes one layer file, checks it against its diff_id, and gzips it when it is uncompressed.
fn prepare_layer(
    tree: &dyn TreeReader,
    path: &str,
    diff_id: &str,
    scratch: &std::path::Path,
) -> Result<(Layer, Held)> {
    let failed = |error: io::Error| Error::base(format!("layer {path}: {error}"));
    let (mut reader, size) = tree.open(path).map_err(failed)?;
    let mut magic = Vec::with_capacity(4);
    (&mut reader)
        .take(4)
        .read_to_end(&mut magic)
        .map_err(failed)?;
    // The magic bytes are put back in front of the stream, so the layer is read once.
    let mut hashed = HashingReader::new(io::Cursor::new(magic.clone()).chain(reader));
    let (uncompressed_digest, blob) = match magic.as_slice() {
        [0x1f, 0x8b, ..] => {
            let mut uncompressed = HashingWriter::new(io::sink());
            io::copy(&mut MultiGzDecoder::new(&mut hashed), &mut uncompressed).map_err(failed)?;
            io::copy(&mut hashed, &mut io::sink()).map_err(failed)?;
            let (_, diff, _) = uncompressed.finish();
            let digest = hashed.finish();
            (
                diff,
                (
                    Layer {
                        descriptor: descriptor(DOCKER_LAYER_GZIP, &digest, size),
                    },
                    Held::InArchive,
                ),
            )
        }
        [0x28, 0xb5, 0x2f, 0xfd] => {
            return Err(Error::base(format!(
                "layer {path} is zstd-compressed; Lambda needs gzip layers"
            )));
        }
        _ => {
            let file = tempfile::NamedTempFile::new_in(scratch).map_err(failed)?;
            let mut uncompressed =
                HashingWriter::new(gzip_encoder(HashingWriter::new(BufWriter::new(file))));
            io::copy(&mut hashed, &mut uncompressed).map_err(failed)?;
            let (gzip, diff, _) = uncompressed.finish();
            let (buffered, digest, compressed_size) = gzip.finish().map_err(failed)?.finish();
            let file = buffered
                .into_inner()
                .map_err(|error| failed(error.into_error()))?;
            let (_, kept) = file.keep().map_err(|error| failed(error.error))?;
            (
                diff,
                (
                    Layer {
                        descriptor: descriptor(DOCKER_LAYER_GZIP, &digest, compressed_size),
                    },
                    Held::Compressed(kept),
                ),
            )
        }
    };
    if uncompressed_digest.to_string() != diff_id {
        return Err(Error::base(format!(
            "layer {path} is corrupt: its content is {uncompressed_digest}, but the config says {diff_id}"
        )));
    }
    Ok(blob)
}

/// One image to write into a docker-archive.
pub struct ArchiveImage<'a> {
    pub config: &'a Document,
    pub layers: &'a [Layer],
    pub repo_tag: String,
}

/// Writes images (blobs under `blobs/sha256/`, as Docker 25+ does) and `manifest.json`;
/// `blobs` gives each layer's bytes.
pub fn write(
    writer: &mut dyn TreeWriter,
    images: &[ArchiveImage],
    blobs: &dyn BlobStore,
) -> io::Result<()> {
    let mut entries = Vec::new();
    for image in images {
        let config_path = image.config.digest.layout_path();
        if !writer.contains(&config_path) {
            writer.write(
                &config_path,
                image.config.size(),
                &mut &image.config.bytes[..],
            )?;
        }
        let mut layer_paths = Vec::new();
        for layer in image.layers {
            let path = layer.digest().layout_path();
            if !writer.contains(&path) {
                writer.write(
                    &path,
                    layer.descriptor.size(),
                    &mut blobs.open(&layer.descriptor)?,
                )?;
            }
            layer_paths.push(path);
        }
        entries.push(ArchiveEntry {
            config: config_path,
            repo_tags: Some(vec![image.repo_tag.clone()]),
            layers: layer_paths,
        });
    }
    let bytes = serde_json::to_vec(&entries).expect("manifest.json always serializes");
    writer.write("manifest.json", bytes.len() as u64, &mut &bytes[..])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::names_match;

    #[test]
    fn short_and_fully_qualified_names_are_one_image() {
        // skopeo writes `docker.io/my/fn:v1` where `docker save` writes `my/fn:v1`.
        assert!(names_match("docker.io/my/fn:v1", "my/fn:v1"));
        assert!(names_match("my/fn:v1", "docker.io/my/fn:v1"));
        assert!(names_match("docker.io/library/alpine:3", "alpine:3"));
        assert!(names_match("alpine:3", "index.docker.io/library/alpine:3"));
        assert!(names_match("localhost:5000/fn:v1", "localhost:5000/fn:v1"));
        assert!(!names_match("docker.io/my/fn:v1", "my/fn:v2"));
        assert!(!names_match("docker.io/my/fn:v1", "other/fn:v1"));
        assert!(
            !names_match("quay.io/my/fn:v1", "my/fn:v1"),
            "another registry"
        );
        assert!(!names_match("alpine:3", "my/alpine:3"));
    }
}
