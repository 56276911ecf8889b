//! OCI image layouts, as a directory (`oci:`) or a tar file (`oci-archive:`): resolving a base
//! from one, and writing the built images into one.

use std::collections::HashMap;
use std::io::Read;

use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use super::resolve::{DocumentStore, resolve_images};
use super::source::{BaseBlobs, BlobSource, MANIFEST_LIMIT, ResolvedBase};
use super::tree::{TreeReader, TreeWriter};
use crate::digest::{Sha256Digest, read_verified};
use crate::error::{Error, Result};
use crate::image::json::to_canonical_vec;
use crate::image::manifest::Document;
use crate::image::media_types::OCI_INDEX;
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;

/// The annotation that names an entry of a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd (`ctr images export`, BuildKit's OCI exporter) gives a layout's
/// `index.json` entry: the image's fully-qualified registry name. `base pull` writes it on a
/// kit's tagged entry, and a base read from a layout takes its `base.name` from it.
pub const IMAGE_NAME: &str = "io.containerd.image.name";
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
    let store = LayoutDocuments(tree.as_ref());
    let top_bytes = store.read_document(&top, MANIFEST_LIMIT)?;
    let (format, images, is_index) = resolve_images(
        &store,
        &top_digest,
        &top_bytes,
        top.media_type().as_ref(),
        wanted,
    )?;
    Ok(ResolvedBase {
        reference: String::new(),
        name: registry_name(&top),
        digest: top_digest,
        format,
        images,
        is_index,
        index: is_index.then(|| Document::new(top.media_type().as_ref(), top_bytes.clone())),
        blobs: BaseBlobs::Tree(tree),
        _scratch: None,
    })
}

/// The entry's `io.containerd.image.name`, when it is a fully-qualified registry reference
/// written as lambda-image would write it (`docker.io/library/alpine:3.20`, not `alpine:3.20`).
fn registry_name(entry: &Descriptor) -> Option<String> {
    let name = entry.annotations().as_ref()?.get(IMAGE_NAME)?;
    let parsed = name.parse::<RegistryReference>().ok()?;
    (parsed.to_string() == *name).then(|| name.clone())
}

/// A layout's documents and layers, under `blobs/sha256/`.
struct LayoutDocuments<'a>(&'a dyn TreeReader);

impl DocumentStore for LayoutDocuments<'_> {
    fn read_document(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        read_document(self.0, descriptor, limit)
    }

    fn layer_source(&self, digest: &Sha256Digest) -> BlobSource {
        BlobSource::Tree(digest.layout_path())
    }
}

pub(super) fn read_layout_index(tree: &dyn TreeReader) -> Result<ImageIndex> {
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

/// A document this run wrote: its descriptor plus the name (`ref.name`) and platform to record,
/// and the registry name of the image (`io.containerd.image.name`) when it has one.
pub struct LayoutEntry {
    pub descriptor: Descriptor,
    pub name: String,
    pub image_name: Option<String>,
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
        image_name,
    } in entries
    {
        let mut annotations = HashMap::from([(REF_NAME.to_owned(), name)]);
        if let Some(image_name) = image_name {
            annotations.insert(IMAGE_NAME.to_owned(), image_name);
        }
        descriptor.set_annotations(Some(annotations));
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
