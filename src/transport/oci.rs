//! OCI image layouts, as a directory (`oci:`) or a tar file (`oci-archive:`): resolving a base
//! from one, and writing the built images into one.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use super::source::{
    BaseImage, BlobSource, CONFIG_LIMIT, LayerBlob, MANIFEST_LIMIT, ResolvedBase,
    missing_architecture,
};
use super::tree::{TreeReader, TreeWriter};
use crate::digest::{Sha256Digest, read_verified};
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::config::read_base_config;
use crate::image::json::to_canonical_vec;
use crate::image::media_types::OCI_INDEX;
use crate::platform::Architecture;

/// The annotation that names an entry of a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Resolves the image named by `tag` in a layout for the wanted architectures.
pub fn resolve(
    tree: Box<dyn TreeReader>,
    tag: Option<&str>,
    wanted: &[Architecture],
) -> Result<ResolvedBase> {
    let index = read_layout_index(tree.as_ref())?;
    let top = select_tagged(&index, tag)?;
    let top_digest = descriptor_digest(&top)?;
    let top_bytes = read_document(tree.as_ref(), &top, MANIFEST_LIMIT)?;
    let media_type = document_media_type(&top, &top_bytes);

    let mut images = BTreeMap::new();
    let format;
    if let Some(index_format) = ImageFormat::of_index(&media_type) {
        format = index_format;
        let index = serde_json::from_slice::<ImageIndex>(&top_bytes)
            .map_err(|error| Error::base(format!("index {top_digest} is malformed: {error}")))?;
        let available = available_platforms(index.manifests());
        for &architecture in wanted {
            let entry = choose_platform(index.manifests(), architecture)
                .ok_or_else(|| missing_architecture(architecture, &available))?;
            let bytes = read_document(tree.as_ref(), entry, MANIFEST_LIMIT)?;
            let digest = descriptor_digest(entry)?;
            let image = resolve_manifest(tree.as_ref(), digest.clone(), &bytes)?;
            if image_architecture(&image) != Some(architecture) {
                return Err(Error::base(format!(
                    "manifest {digest} is listed as linux/{architecture}, but its config says {}/{}",
                    image.config.os, image.config.architecture
                )));
            }
            images.insert(architecture, image);
        }
    } else if let Some(manifest_format) = ImageFormat::of_manifest(&media_type) {
        format = manifest_format;
        let image = resolve_manifest(tree.as_ref(), top_digest.clone(), &top_bytes)?;
        let image_arch = image_architecture(&image);
        if let Some(&architecture) = wanted.iter().find(|&&a| Some(a) != image_arch) {
            let available = vec![format!("{}/{}", image.config.os, image.config.architecture)];
            return Err(missing_architecture(architecture, &available));
        }
        if let Some(architecture) = image_arch {
            images.insert(architecture, image);
        }
    } else {
        return Err(Error::base(format!(
            "{top_digest} has media type {media_type}, which is not an image or an index"
        )));
    }
    Ok(ResolvedBase {
        reference: String::new(),
        digest: top_digest,
        format,
        images,
        tree,
        _scratch: None,
    })
}

fn read_layout_index(tree: &dyn TreeReader) -> Result<ImageIndex> {
    let (reader, size) = tree.open("index.json").map_err(|error| {
        Error::base(format!(
            "is not an OCI image layout (no readable index.json: {error})"
        ))
    })?;
    if size > MANIFEST_LIMIT {
        return Err(Error::base(format!(
            "index.json is {size} bytes, over the {MANIFEST_LIMIT}-byte limit"
        )));
    }
    serde_json::from_reader::<_, ImageIndex>(reader.take(MANIFEST_LIMIT))
        .map_err(|error| Error::base(format!("index.json is malformed: {error}")))
}

fn select_tagged(index: &ImageIndex, tag: Option<&str>) -> Result<Descriptor> {
    let tag_of = |entry: &Descriptor| {
        entry
            .annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .cloned()
    };
    let tags: Vec<String> = index.manifests().iter().filter_map(tag_of).collect();
    match tag {
        Some(tag) => index
            .manifests()
            .iter()
            .find(|entry| tag_of(entry).as_deref() == Some(tag))
            .cloned()
            .ok_or_else(|| {
                Error::base(format!(
                    "has no image tagged `{tag}`; its tags: {}",
                    list_or_none(&tags)
                ))
            }),
        None => match index.manifests().as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(Error::base("holds no images (index.json lists none)")),
            _ => Err(Error::base(format!(
                "holds several images; name one with :TAG (its tags: {})",
                list_or_none(&tags)
            ))),
        },
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn available_platforms(entries: &[Descriptor]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|entry| entry.platform().as_ref())
        .map(|platform| format!("{}/{}", platform.os(), platform.architecture()))
        .collect()
}

/// The entry for `linux/<architecture>`; for arm64, `v8` or no variant.
fn choose_platform(entries: &[Descriptor], architecture: Architecture) -> Option<&Descriptor> {
    entries.iter().find(|entry| {
        entry.platform().as_ref().is_some_and(|platform| {
            platform.os().to_string() == "linux"
                && platform.architecture().to_string() == architecture.oci_name()
                && platform
                    .variant()
                    .as_deref()
                    .is_none_or(|variant| Some(variant) == architecture.oci_variant())
        })
    })
}

/// The Lambda architecture an image's config describes, if it is one.
fn image_architecture(image: &BaseImage) -> Option<Architecture> {
    (image.config.os == "linux")
        .then(|| Architecture::parse(&image.config.architecture))
        .flatten()
}

fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest> {
    serde_json::from_slice::<ImageManifest>(bytes)
        .map_err(|error| Error::base(format!("manifest is malformed: {error}")))
}

/// Reads an image manifest and its config, checking they agree on the layers.
fn resolve_manifest(
    tree: &dyn TreeReader,
    manifest_digest: Sha256Digest,
    bytes: &[u8],
) -> Result<BaseImage> {
    let manifest = parse_manifest(bytes)?;
    let config_raw = read_document(tree, manifest.config(), CONFIG_LIMIT)?;
    let config = read_base_config(&config_raw)
        .map_err(|error| Error::base(format!("config of {manifest_digest}: {error}")))?;
    if config.diff_id_count != manifest.layers().len() {
        return Err(Error::base(format!(
            "manifest {manifest_digest} has {} layers but its config lists {} diff_ids",
            manifest.layers().len(),
            config.diff_id_count
        )));
    }
    let layers = manifest
        .layers()
        .iter()
        .map(|layer| {
            let digest = descriptor_digest(layer)?;
            Ok(LayerBlob {
                descriptor: layer.clone(),
                source: BlobSource::Tree(digest.layout_path()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(BaseImage {
        manifest_digest: Some(manifest_digest),
        config_raw,
        config,
        layers,
    })
}

/// A descriptor's digest, refusing algorithms other than sha256.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Sha256Digest> {
    descriptor
        .digest()
        .to_string()
        .parse()
        .map_err(|error| Error::base(format!("{error}; only sha256 content is supported")))
}

/// Reads a small document named by a descriptor, verified against its digest and size.
pub fn read_document(
    tree: &dyn TreeReader,
    descriptor: &Descriptor,
    limit: u64,
) -> Result<Vec<u8>> {
    let digest = descriptor_digest(descriptor)?;
    let (reader, _) = tree
        .open(&digest.layout_path())
        .map_err(|error| Error::base(format!("{digest} is missing: {error}")))?;
    read_verified(reader, &digest, descriptor.size(), limit)
        .map_err(|error| Error::base(format!("{digest} is corrupt: {error}")))
}

/// The media type of a document: its own `mediaType`, else the descriptor's.
fn document_media_type(descriptor: &Descriptor, bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|value| {
            value
                .get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| descriptor.media_type().to_string())
}

/// A document this run wrote: its descriptor plus the name (`ref.name`) and platform to record.
pub struct LayoutEntry {
    pub descriptor: Descriptor,
    pub name: String,
}

/// Writes the `oci-layout` marker and an `index.json` that keeps the `existing` entries whose names
/// are not being replaced, followed by `entries`. Blobs must already be written.
pub fn write_layout_index(
    writer: &mut dyn TreeWriter,
    existing: Option<ImageIndex>,
    entries: Vec<LayoutEntry>,
) -> std::io::Result<()> {
    let new_names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
    let mut manifests: Vec<Descriptor> = existing
        .map(|index| index.manifests().clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| {
            let name = entry.annotations().as_ref().and_then(|a| a.get(REF_NAME));
            name.is_none_or(|name| !new_names.contains(&name.as_str()))
        })
        .collect();
    for LayoutEntry {
        mut descriptor,
        name,
    } in entries
    {
        descriptor.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), name)])));
        manifests.push(descriptor);
    }
    let mut index = ImageIndex::default();
    index.set_media_type(Some(MediaType::from(OCI_INDEX)));
    index.set_manifests(manifests);
    let bytes = to_canonical_vec(&index);
    if !writer.contains(LAYOUT_FILE) {
        writer.write(
            LAYOUT_FILE,
            LAYOUT_CONTENT.len() as u64,
            &mut &LAYOUT_CONTENT[..],
        )?;
    }
    writer.write("index.json", bytes.len() as u64, &mut &bytes[..])
}

/// Reads the `index.json` of an existing layout directory that output is added to.
pub fn existing_layout_index(directory: &std::path::Path) -> Result<Option<ImageIndex>> {
    if !directory.exists() {
        return Ok(None);
    }
    if !directory.is_dir() {
        return Err(Error::output(format!(
            "{} exists and is not a directory",
            directory.display()
        )));
    }
    let is_empty = std::fs::read_dir(directory)
        .map(|mut listing| listing.next().is_none())
        .unwrap_or(false);
    if is_empty {
        return Ok(None);
    }
    if !directory.join(LAYOUT_FILE).is_file() {
        return Err(Error::output(format!(
            "{} exists, is not empty and is not an OCI image layout; refusing to write into it",
            directory.display()
        ))
        .hint("choose a new directory, or an existing OCI layout to add the image to"));
    }
    let tree = super::tree::DirectoryTree::new(directory.to_owned());
    read_layout_index(&tree)
        .map(Some)
        .map_err(|error| Error::output(format!("{}: {}", directory.display(), error.message())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::{descriptor, platform};

    #[test]
    fn chooses_linux_arm64_with_or_without_v8() {
        let digest = Sha256Digest::of(b"x");
        let mut amd = descriptor("m", &digest, 1);
        amd.set_platform(Some(platform("amd64", "linux", None)));
        let mut arm = descriptor("m", &digest, 2);
        arm.set_platform(Some(platform("arm64", "linux", Some("v8"))));
        let mut unknown = descriptor("m", &digest, 3);
        unknown.set_platform(Some(platform("unknown", "unknown", None)));
        let entries = [unknown, amd, arm];
        assert_eq!(
            choose_platform(&entries, Architecture::Arm64)
                .unwrap()
                .size(),
            2
        );
        assert_eq!(
            choose_platform(&entries, Architecture::Amd64)
                .unwrap()
                .size(),
            1
        );
        assert_eq!(
            available_platforms(&entries),
            ["unknown/unknown", "linux/amd64", "linux/arm64"]
        );
    }
}
