//! Writing an OCI image layout's `oci-layout` marker and `index.json` (keeping the entries of an
//! existing layout that are not replaced), and reading the index of an existing layout directory
//! an output is added to. Reading a layout as a source is in [`super::oci`].

use std::collections::HashMap;

use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use super::oci::{IMAGE_NAME, LAYOUT_CONTENT, LAYOUT_FILE, REF_NAME, read_layout_index};
use super::tree::TreeWriter;
use crate::error::{Error, Result};
use crate::image::json::to_canonical_vec;
use crate::image::media_types::OCI_INDEX;

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
        let has_index = directory.join("index.json").is_file();
        let error = Error::output(format!(
            "{} exists, is not empty and is not an OCI image layout: it has no `{LAYOUT_FILE}` \
             file{}; refusing to write into it",
            directory.display(),
            if has_index {
                " (it has index.json)"
            } else {
                ""
            }
        ));
        return Err(if has_index {
            error.hint(format!(
                "if it is a layout, write its `{LAYOUT_FILE}` file ({{\"imageLayoutVersion\":\
                 \"1.0.0\"}}), as the OCI image layout specification requires; or choose a new \
                 directory"
            ))
        } else {
            error.hint("choose a new directory, or an existing OCI layout to add the image to")
        });
    }
    let tree = super::tree::DirectoryTree::new(directory.to_owned());
    read_layout_index(&tree)
        .map(Some)
        .map_err(|error| Error::output(format!("{}: {}", directory.display(), error.message())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_directory_without_oci_layout_names_the_missing_file() {
        let parent = tempfile::tempdir().unwrap();
        let directory = parent.path().join("nol");
        std::fs::create_dir_all(directory.join("blobs/sha256")).unwrap();
        std::fs::write(
            directory.join("index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        let error = existing_layout_index(&directory).unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::Output);
        assert_eq!(
            error.message(),
            format!(
                "{} exists, is not empty and is not an OCI image layout: it has no `oci-layout` \
                 file (it has index.json); refusing to write into it",
                directory.display()
            )
        );
        assert!(
            error
                .hint_text()
                .is_some_and(|hint| hint.contains(r#"{"imageLayoutVersion":"1.0.0"}"#)),
            "{error:?}"
        );
        std::fs::remove_file(directory.join("index.json")).unwrap();
        let error = existing_layout_index(&directory).unwrap_err();
        assert!(error.message().ends_with(
            "is not an OCI image layout: it has no `oci-layout` file; refusing to write into it"
        ));
    }
}
