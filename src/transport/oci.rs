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
use crate::image::ImageFormat;
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

/// Which entry of a layout's `index.json` a location names.
pub enum LayoutChoice {
    /// The entry to read.
    Entry(Box<Descriptor>),
    /// No tag was named and the layout holds several unrelated images: the tags that name them
    /// (those of the entries no index of the layout lists; empty when none has a tag).
    Ambiguous(Vec<String>),
}

/// Chooses the entry `tag` names in a layout. Without a tag the layout must hold one image:
/// its entries all name the same document (one image under several tags), or one of them is an
/// index and every other names that index or a manifest it lists (a kit from `base pull`:
/// `TAG`, `TAG-amd64`, `TAG-arm64`); the index is chosen. Anything else is ambiguous.
pub fn choose_entry(tree: &dyn TreeReader, tag: Option<&str>) -> Result<LayoutChoice> {
    let index = read_layout_index(tree)?;
    if let Some(tag) = tag {
        return select_tagged(&index, tag).map(|entry| LayoutChoice::Entry(Box::new(entry)));
    }
    let entries = index.manifests();
    let Some(first) = entries.first() else {
        return Err(Error::base("holds no images (index.json lists none)"));
    };
    if entries.iter().all(|entry| entry.digest() == first.digest()) {
        return Ok(LayoutChoice::Entry(Box::new(first.clone())));
    }
    // The digests each index entry lists: an entry they list is part of that image.
    let mut listed: Vec<String> = Vec::new();
    for entry in entries {
        if ImageFormat::of_index(entry.media_type().as_ref()).is_some() {
            let bytes = read_document(tree, entry, MANIFEST_LIMIT)?;
            let children = serde_json::from_slice::<ImageIndex>(&bytes).map_err(|error| {
                Error::base(format!("index {} is malformed: {error}", entry.digest()))
            })?;
            listed.extend(
                children
                    .manifests()
                    .iter()
                    .map(|child| child.digest().to_string()),
            );
        }
    }
    let tops: Vec<&Descriptor> = entries
        .iter()
        .filter(|entry| !listed.contains(&entry.digest().to_string()))
        .collect();
    let distinct = tops
        .iter()
        .map(|entry| entry.digest().to_string())
        .collect::<std::collections::BTreeSet<_>>();
    if distinct.len() == 1 {
        return Ok(LayoutChoice::Entry(Box::new(tops[0].clone())));
    }
    let named = |candidates: &[&Descriptor]| -> Vec<String> {
        candidates
            .iter()
            .filter_map(|entry| tag_of(entry))
            .collect()
    };
    let mut tags = named(&tops);
    if tags.is_empty() {
        tags = named(&entries.iter().collect::<Vec<_>>());
    }
    Ok(LayoutChoice::Ambiguous(tags))
}

/// Resolves the image of the layout entry `top` for the wanted architectures.
pub fn resolve(
    tree: Box<dyn TreeReader>,
    top: Descriptor,
    wanted: &[Architecture],
) -> Result<ResolvedBase> {
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

/// The entry's tag (`org.opencontainers.image.ref.name`), if it has one.
fn tag_of(entry: &Descriptor) -> Option<String> {
    entry.annotations().as_ref()?.get(REF_NAME).cloned()
}

fn select_tagged(index: &ImageIndex, tag: &str) -> Result<Descriptor> {
    index
        .manifests()
        .iter()
        .find(|entry| tag_of(entry).as_deref() == Some(tag))
        .cloned()
        .ok_or_else(|| {
            let tags: Vec<String> = index.manifests().iter().filter_map(tag_of).collect();
            Error::base(format!(
                "has no image tagged `{tag}`; its tags: {}",
                list_or_none(&tags)
            ))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::descriptor;
    use crate::image::media_types::OCI_MANIFEST;
    use crate::transport::tree::{DirectoryTree, DirectoryWriter};

    /// Writes `bytes` as a blob and returns its descriptor of `media_type`.
    fn blob(writer: &mut DirectoryWriter, media_type: &str, bytes: &[u8]) -> Descriptor {
        let digest = Sha256Digest::of(bytes);
        writer
            .write(&digest.layout_path(), bytes.len() as u64, &mut &bytes[..])
            .unwrap();
        descriptor(media_type, &digest, bytes.len() as u64)
    }

    fn entry(descriptor: &Descriptor, tag: &str) -> LayoutEntry {
        LayoutEntry {
            descriptor: descriptor.clone(),
            name: tag.to_owned(),
            image_name: None,
        }
    }

    fn chosen(tree: &DirectoryTree) -> std::result::Result<String, Vec<String>> {
        match choose_entry(tree, None).unwrap() {
            LayoutChoice::Entry(entry) => Ok(entry.digest().to_string()),
            LayoutChoice::Ambiguous(tags) => Err(tags),
        }
    }

    #[test]
    fn an_index_with_its_own_manifests_is_one_image_and_unrelated_images_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = DirectoryWriter::new(dir.path().to_owned());
        let amd64 = blob(&mut writer, OCI_MANIFEST, br#"{"schemaVersion":2,"n":1}"#);
        let arm64 = blob(&mut writer, OCI_MANIFEST, br#"{"schemaVersion":2,"n":2}"#);
        let index_bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}}]}}"#,
            amd64.digest(),
            amd64.size(),
            arm64.digest(),
            arm64.size()
        );
        let index = blob(&mut writer, OCI_INDEX, index_bytes.as_bytes());
        let other = blob(&mut writer, OCI_MANIFEST, br#"{"schemaVersion":2,"n":3}"#);
        let tree = DirectoryTree::new(dir.path().to_owned());
        // A kit as `base pull` writes it: the index and its manifests, however tagged.
        let kit = vec![
            entry(&index, "al2023"),
            entry(&amd64, "al2023-amd64"),
            entry(&arm64, "al2023-arm64"),
        ];
        write_layout_index(&mut writer, None, kit).unwrap();
        assert_eq!(chosen(&tree), Ok(index.digest().to_string()));
        // One image under two tags.
        let single = vec![entry(&arm64, "al2023"), entry(&arm64, "al2023-arm64")];
        write_layout_index(&mut writer, None, single).unwrap();
        assert_eq!(chosen(&tree), Ok(arm64.digest().to_string()));
        // A kit plus an unrelated image: the tags of the two images, not the kit's children.
        let two = vec![
            entry(&index, "al2023"),
            entry(&amd64, "al2023-amd64"),
            entry(&other, "mine"),
        ];
        write_layout_index(&mut writer, None, two).unwrap();
        assert_eq!(chosen(&tree), Err(vec!["al2023".into(), "mine".into()]));
        // Two manifests of one index without the index: unrelated as far as the layout says.
        let children = vec![entry(&amd64, "a"), entry(&arm64, "b")];
        write_layout_index(&mut writer, None, children).unwrap();
        assert_eq!(chosen(&tree), Err(vec!["a".into(), "b".into()]));
        // A tag still picks its entry.
        let LayoutChoice::Entry(picked) = choose_entry(&tree, Some("b")).unwrap() else {
            panic!("a tag is never ambiguous");
        };
        assert_eq!(picked.digest(), arm64.digest());
        assert!(choose_entry(&tree, Some("c")).is_err());
    }
}
