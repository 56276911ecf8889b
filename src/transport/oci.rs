//! OCI image layouts, as a directory (`oci:`) or a tar file (`oci-archive:`): choosing the entry
//! a location names and resolving it. Writing a layout's `index.json` is in
//! [`super::layout_index`].

use std::collections::HashMap;
use std::io::Read;

use oci_spec::image::{Descriptor, ImageIndex};

use super::tree::{TreeBlobs, TreeReader};
use crate::digest::read_verified;
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::manifest::Document;
use crate::image::resolve::{DocumentStore, MANIFEST_LIMIT, descriptor_digest, resolve_images};
use crate::image::set::ImageSet;
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;

/// The annotation that names an entry of a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd (`ctr images export`, BuildKit's OCI exporter) gives a layout's
/// `index.json` entry: the image's fully-qualified registry name. `base pull` writes it on a
/// kit's tagged entry, and a base read from a layout takes its `base.name` from it.
pub const IMAGE_NAME: &str = "io.containerd.image.name";
pub(super) const LAYOUT_FILE: &str = "oci-layout";
pub(super) const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Which entry of a layout's `index.json` a location names.
pub enum LayoutChoice {
    /// The entry to read.
    Entry(Box<Descriptor>),
    /// No tag was named and the layout holds several images (see [`LayoutImages`]).
    Ambiguous(LayoutImages),
    /// No entry has the tag named: the tags it has (in `index.json` order), and its images, so
    /// that the hint can name one that exists.
    NoSuchTag {
        tag: String,
        tags: Vec<String>,
        images: LayoutImages,
    },
}

/// One image of a layout: a document that no index of the layout lists, with every tag that
/// names it, and, for an index, the tags that name the manifests it lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutImage {
    /// The first `index.json` entry that names it.
    pub entry: Descriptor,
    /// Every tag naming it, in `index.json` order (empty when it has none).
    pub tags: Vec<String>,
    /// For an index: the tags of each manifest it lists that the layout tags, one group per
    /// manifest (tags naming the same manifest together).
    pub part_tags: Vec<Vec<String>>,
}

impl LayoutImage {
    /// How a message lists it: `v3 (= v3-arm64)`, `v1 (its manifests: v1-amd64, v1-arm64 = v2)`;
    /// `None` when it has no tag.
    pub fn describe(&self) -> Option<String> {
        let (first, others) = self.tags.split_first()?;
        let mut notes = Vec::new();
        if !others.is_empty() {
            notes.push(format!("= {}", others.join(", ")));
        }
        if !self.part_tags.is_empty() {
            let parts: Vec<String> = self.part_tags.iter().map(|tags| tags.join(" = ")).collect();
            notes.push(format!("its manifests: {}", parts.join(", ")));
        }
        Some(if notes.is_empty() {
            first.clone()
        } else {
            format!("{first} ({})", notes.join("; "))
        })
    }
}

/// The images of a layout: one per distinct document no index of the layout lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayoutImages(pub Vec<LayoutImage>);

impl LayoutImages {
    /// The images that have a tag.
    pub fn tagged(&self) -> impl Iterator<Item = &LayoutImage> {
        self.0.iter().filter(|image| !image.tags.is_empty())
    }

    /// How many images have no tag.
    pub fn untagged(&self) -> usize {
        self.0.iter().filter(|image| image.tags.is_empty()).count()
    }
}

/// Chooses the entry `tag` names in a layout. Without a tag the layout must hold one image:
/// its entries all name the same document (one image under several tags), or one of them is an
/// index and every other names that index or a manifest it lists (a kit from `base pull`:
/// `TAG`, `TAG-amd64`, `TAG-arm64`); the index is chosen. Anything else is ambiguous.
pub fn choose_entry(tree: &dyn TreeReader, tag: Option<&str>) -> Result<LayoutChoice> {
    let index = read_layout_index(tree)?;
    if let Some(tag) = tag {
        if let Some(entry) = index
            .manifests()
            .iter()
            .find(|entry| tag_of(entry).as_deref() == Some(tag))
        {
            return Ok(LayoutChoice::Entry(Box::new(entry.clone())));
        }
        // Only for the hint: a layout whose indexes cannot be read still gets its tags listed.
        let images = layout_images(tree, &index).unwrap_or_default();
        return Ok(LayoutChoice::NoSuchTag {
            tag: tag.to_owned(),
            tags: index.manifests().iter().filter_map(tag_of).collect(),
            images,
        });
    }
    if index.manifests().is_empty() {
        return Err(Error::base("holds no images (index.json lists none)"));
    }
    let images = layout_images(tree, &index)?;
    match images.0.as_slice() {
        [] => Err(Error::base(
            "holds no image that is not part of another: its indexes list each other",
        )),
        [only] => Ok(LayoutChoice::Entry(Box::new(only.entry.clone()))),
        _ => Ok(LayoutChoice::Ambiguous(images)),
    }
}

/// The images of a layout: its entries grouped by the document they name, leaving out those an
/// index of the layout lists (they are part of that index's image).
fn layout_images(tree: &dyn TreeReader, index: &ImageIndex) -> Result<LayoutImages> {
    let entries = index.manifests();
    let tags_of = |digest: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|entry| entry.digest().to_string() == digest)
            .filter_map(tag_of)
            .collect()
    };
    // The digests each index entry lists: an entry they list is part of that image.
    let mut children: HashMap<String, Vec<String>> = HashMap::new();
    for entry in entries {
        let digest = entry.digest().to_string();
        if ImageFormat::of_index(entry.media_type().as_ref()).is_some()
            && !children.contains_key(&digest)
        {
            let bytes = read_document(tree, entry, MANIFEST_LIMIT)?;
            let listed = serde_json::from_slice::<ImageIndex>(&bytes).map_err(|error| {
                Error::base(format!("index {} is malformed: {error}", entry.digest()))
            })?;
            let listed = listed
                .manifests()
                .iter()
                .map(|child| child.digest().to_string())
                .collect();
            children.insert(digest, listed);
        }
    }
    let listed: std::collections::HashSet<&String> = children.values().flatten().collect();
    let mut images: Vec<LayoutImage> = Vec::new();
    for entry in entries {
        let digest = entry.digest().to_string();
        if listed.contains(&digest)
            || images
                .iter()
                .any(|image| image.entry.digest() == entry.digest())
        {
            continue;
        }
        let part_tags = children
            .get(&digest)
            .into_iter()
            .flatten()
            .map(|child| tags_of(child))
            .filter(|tags| !tags.is_empty())
            .collect();
        images.push(LayoutImage {
            entry: entry.clone(),
            tags: tags_of(&digest),
            part_tags,
        });
    }
    Ok(LayoutImages(images))
}

/// Resolves the image of the layout entry `top` for the wanted architectures.
pub fn resolve(
    tree: Box<dyn TreeReader>,
    top: Descriptor,
    wanted: &[Architecture],
) -> Result<ImageSet> {
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
    Ok(ImageSet {
        reference: String::new(),
        name: registry_name(&top),
        digest: top_digest,
        format,
        images,
        index: is_index.then(|| Document::new(top.media_type().as_ref(), top_bytes.clone())),
        blobs: std::sync::Arc::new(TreeBlobs::layout(tree)),
    })
}

/// The entry's `io.containerd.image.name`, when it is a fully-qualified registry reference
/// written as lambda-image would write it (`docker.io/library/alpine:3.20`, not `alpine:3.20`).
fn registry_name(entry: &Descriptor) -> Option<String> {
    let name = entry.annotations().as_ref()?.get(IMAGE_NAME)?;
    let parsed = name.parse::<RegistryReference>().ok()?;
    (parsed.to_string() == *name).then(|| name.clone())
}

/// A layout's documents, under `blobs/sha256/`.
struct LayoutDocuments<'a>(&'a dyn TreeReader);

impl DocumentStore for LayoutDocuments<'_> {
    fn read_document(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        read_document(self.0, descriptor, limit)
    }
}

/// Reads a layout's `index.json`, after checking its `oci-layout` file: the OCI image layout
/// specification (image-layout.md) says it MUST exist and hold `imageLayoutVersion`; skopeo
/// and umoci refuse a layout without it, and so does every command here that reads one.
pub(super) fn read_layout_index(tree: &dyn TreeReader) -> Result<ImageIndex> {
    check_layout_file(tree)?;
    let (reader, size) = tree.open("index.json").map_err(|error| {
        if error.kind() == std::io::ErrorKind::PermissionDenied {
            Error::base(format!("cannot read its index.json: {error}"))
                .hint("this user needs read permission on the layout's files")
        } else {
            Error::base(format!(
                "is not an OCI image layout (no readable index.json: {error})"
            ))
        }
    })?;
    if size > MANIFEST_LIMIT {
        return Err(Error::base(format!(
            "index.json is {size} bytes, over the {MANIFEST_LIMIT}-byte limit"
        )));
    }
    serde_json::from_reader::<_, ImageIndex>(reader.take(MANIFEST_LIMIT))
        .map_err(|error| Error::base(format!("index.json is malformed: {error}")))
}

/// Checks the `oci-layout` file: present, a JSON object whose `imageLayoutVersion` is a 1.x
/// version (the only major version there is).
fn check_layout_file(tree: &dyn TreeReader) -> Result<()> {
    const LIMIT: u64 = 4096;
    let (reader, _) = tree.open(LAYOUT_FILE).map_err(|error| {
        Error::base(format!(
            "is not an OCI image layout: it has no `{LAYOUT_FILE}` file, which the OCI image \
             layout specification requires beside index.json ({error})"
        ))
    })?;
    let mut bytes = Vec::new();
    reader
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| Error::base(format!("`{LAYOUT_FILE}` cannot be read: {error}")))?;
    let version = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| value.get("imageLayoutVersion")?.as_str().map(str::to_owned));
    match version {
        Some(version) if version.starts_with("1.") => Ok(()),
        Some(version) => Err(Error::base(format!(
            "`{LAYOUT_FILE}` says imageLayoutVersion {version}; only 1.x layouts are read"
        ))),
        None => Err(Error::base(format!(
            "`{LAYOUT_FILE}` is not a JSON object with an imageLayoutVersion, as the OCI image \
             layout specification requires"
        ))),
    }
}

/// The entry's tag (`org.opencontainers.image.ref.name`), if it has one.
pub fn tag_of(entry: &Descriptor) -> Option<String> {
    entry.annotations().as_ref()?.get(REF_NAME).cloned()
}

/// `a, b, c`, or `none`.
pub fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Sha256Digest;
    use crate::image::manifest::descriptor;
    use crate::image::media_types::{OCI_INDEX, OCI_MANIFEST};
    use crate::transport::layout_index::{LayoutEntry, write_layout_index};
    use crate::transport::tree::{DirectoryTree, DirectoryWriter, TreeWriter};

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

    /// The digest chosen, or how the images of an ambiguous layout are listed and how many
    /// have no tag.
    /// Writes two manifests and an index listing them: `[amd64, arm64, index]`.
    fn index_of_two(writer: &mut DirectoryWriter) -> [Descriptor; 3] {
        let amd64 = blob(writer, OCI_MANIFEST, br#"{"schemaVersion":2,"n":1}"#);
        let arm64 = blob(writer, OCI_MANIFEST, br#"{"schemaVersion":2,"n":2}"#);
        let index_bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}},{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}}]}}"#,
            amd64.digest(),
            amd64.size(),
            arm64.digest(),
            arm64.size()
        );
        let index = blob(writer, OCI_INDEX, index_bytes.as_bytes());
        [amd64, arm64, index]
    }

    fn chosen(tree: &DirectoryTree) -> std::result::Result<String, (Vec<String>, usize)> {
        match choose_entry(tree, None).unwrap() {
            LayoutChoice::Entry(entry) => Ok(entry.digest().to_string()),
            LayoutChoice::Ambiguous(images) => Err((
                images.tagged().filter_map(LayoutImage::describe).collect(),
                images.untagged(),
            )),
            LayoutChoice::NoSuchTag { .. } => unreachable!("no tag was named"),
        }
    }

    #[test]
    fn an_index_with_its_own_manifests_is_one_image_and_unrelated_images_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = DirectoryWriter::new(dir.path().to_owned());
        let [amd64, arm64, index] = index_of_two(&mut writer);
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
        assert_eq!(
            chosen(&tree),
            Err((
                vec!["al2023 (its manifests: al2023-amd64)".into(), "mine".into()],
                0
            ))
        );
        // Two manifests of one index without the index: unrelated as far as the layout says.
        let children = vec![entry(&amd64, "a"), entry(&arm64, "b")];
        write_layout_index(&mut writer, None, children).unwrap();
        assert_eq!(chosen(&tree), Err((vec!["a".into(), "b".into()], 0)));
        // A tag still picks its entry.
        let LayoutChoice::Entry(picked) = choose_entry(&tree, Some("b")).unwrap() else {
            panic!("a tag is never ambiguous");
        };
        assert_eq!(picked.digest(), arm64.digest());
        let LayoutChoice::NoSuchTag { tags, images, .. } = choose_entry(&tree, Some("c")).unwrap()
        else {
            panic!("no entry is tagged c");
        };
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(images.0.len(), 2);
    }

    /// One entry per distinct image, every tag of it together; a manifest an index lists is
    /// part of the index's image, under all its tags; untagged images are counted.
    #[test]
    fn an_ambiguous_layout_lists_each_image_once_with_all_its_tags() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = DirectoryWriter::new(dir.path().to_owned());
        let [amd64, arm64, index] = index_of_two(&mut writer);
        let v3 = blob(&mut writer, OCI_MANIFEST, br#"{"schemaVersion":2,"n":3}"#);
        let other = blob(&mut writer, OCI_MANIFEST, br#"{"schemaVersion":2,"n":4}"#);
        let tree = DirectoryTree::new(dir.path().to_owned());
        let layout = vec![
            entry(&index, "v1"),
            entry(&amd64, "v1-amd64"),
            entry(&arm64, "v1-arm64"),
            entry(&arm64, "v2"),
            entry(&v3, "v3"),
            entry(&v3, "v3-arm64"),
        ];
        write_layout_index(&mut writer, None, layout).unwrap();
        assert_eq!(
            chosen(&tree),
            Err((
                vec![
                    "v1 (its manifests: v1-amd64, v1-arm64 = v2)".into(),
                    "v3 (= v3-arm64)".into()
                ],
                0
            ))
        );
        // An untagged second image is counted, not left out.
        let mut untagged = other.clone();
        untagged.set_annotations(None);
        let index_json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{}]}}"#,
            serde_json::to_string(&{
                let mut tagged = v3.clone();
                tagged.set_annotations(Some(HashMap::from([(
                    REF_NAME.to_owned(),
                    "v1".to_owned(),
                )])));
                tagged
            })
            .unwrap(),
            serde_json::to_string(&untagged).unwrap()
        );
        writer
            .write(
                "index.json",
                index_json.len() as u64,
                &mut index_json.as_bytes(),
            )
            .unwrap();
        assert_eq!(chosen(&tree), Err((vec!["v1".into()], 1)));
    }
}
