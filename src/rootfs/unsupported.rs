//! The entries of an image's layers that Lambda's unpacker refuses when a function is created,
//! with `InvalidImage(ImageLayerFailure: UnsupportedImageLayerDetected - Layer Digest sha256:…)`
//! (bazel-contrib/rules_oci#777, #645): a hard-link entry, and an entry whose parent directory
//! exists neither in an earlier layer nor earlier in the same layer. Docker and this crate's
//! unpacker take both (a hard link is made, a missing parent is made 0755), so an image holding
//! one runs locally and fails on AWS; `invoke --image` and `serve --image` refuse it instead
//! ([`refusal`]).
//!
//! The definitions are `check`'s own: every entry goes through
//! [`crate::image::filesystem::Filesystem::scan_entry`], whiteouts included. What a tree's layers
//! hold is kept beside the tree in the cache as `<chain id hex>.json` ([`write_record`],
//! [`read_record`]), so that a run that finds the tree there refuses exactly as the run that
//! unpacked it did. Not here: unpacking (`super::unpack`), the cache's trees (`super`).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::image::filesystem::{EntryProblems, LayerProblems};
use crate::image::set::Image;

/// Entries of each kind kept per layer for the message (as many as `check` shows); the rest
/// are counted.
pub const ENTRIES_KEPT: usize = 5;

/// The version of the record's format; a record of another is not trusted (the tree's layers
/// are scanned again).
const RECORD_FORMAT: u32 = 1;

/// A hard-link entry: its path and its link target, relative to the root, as the tar has them
/// (`var/runtime/bootstrap.link`, `var/runtime/bootstrap`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardLink {
    pub path: String,
    pub target: String,
}

/// One layer's entries that Lambda refuses: the first [`ENTRIES_KEPT`] of each kind, in the
/// tar's order, and how many there are in all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEntries {
    pub hard_links: Vec<HardLink>,
    pub hard_link_count: usize,
    /// Paths (relative) of entries whose parent directory is missing.
    pub missing_parents: Vec<String>,
    pub missing_parent_count: usize,
}

impl RefusedEntries {
    /// Adds what one entry was found to have (its unsafe path, if any, is not Lambda's rule
    /// here: the unpacker refuses a path that climbs out on its own).
    pub fn note(&mut self, entry: EntryProblems) {
        if let Some((path, target)) = entry.hard_link {
            self.hard_link_count += 1;
            if self.hard_links.len() < ENTRIES_KEPT {
                self.hard_links.push(HardLink { path, target });
            }
        }
        if let Some(path) = entry.missing_parent {
            self.missing_parent_count += 1;
            if self.missing_parents.len() < ENTRIES_KEPT {
                self.missing_parents.push(path);
            }
        }
    }

    /// What a whole layer's scan found, as [`RefusedEntries::note`] keeps it.
    pub fn of_layer(problems: &LayerProblems) -> Self {
        let mut entries = Self::default();
        for (path, target) in &problems.hard_links {
            entries.note(EntryProblems {
                hard_link: Some((path.clone(), target.clone())),
                ..EntryProblems::default()
            });
        }
        for path in &problems.missing_parents {
            entries.note(EntryProblems {
                missing_parent: Some(path.clone()),
                ..EntryProblems::default()
            });
        }
        entries
    }

    pub fn is_empty(&self) -> bool {
        self.hard_link_count == 0 && self.missing_parent_count == 0
    }
}

/// A layer holding entries Lambda refuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsupportedLayer {
    /// The layer's index in the image's manifest, from 0. Its digest is taken from the image
    /// being run (two images may share a tree, their layers compressed differently).
    pub index: usize,
    #[serde(flatten)]
    pub entries: RefusedEntries,
}

/// The record kept beside a cached tree.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    format: u32,
    unsupported_layers: Vec<UnsupportedLayer>,
}

/// Reads the record at `path`: `None` when it is missing, unreadable, not this format, or says
/// nothing of layers the image does not have (`layers`, the image's layer count), so that the
/// tree is treated as unknown.
pub fn read_record(path: &Path, layers: usize) -> Option<Vec<UnsupportedLayer>> {
    let bytes = fs::read(path).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    let fits = record.format == RECORD_FORMAT
        && record
            .unsupported_layers
            .iter()
            .all(|layer| layer.index < layers && !layer.entries.is_empty());
    fits.then_some(record.unsupported_layers)
}

/// Writes the record for `layers` to `path`, through a temporary file in `temporary` (on the
/// same filesystem) renamed into place, so that a reader never sees half of one. Errors: the
/// file cannot be written or renamed (nothing is left at `path` then).
pub fn write_record(path: &Path, temporary: &Path, layers: &[UnsupportedLayer]) -> io::Result<()> {
    let record = Record {
        format: RECORD_FORMAT,
        unsupported_layers: layers.to_vec(),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".lambda-image-rootfs-record-")
        .tempfile_in(temporary)?;
    serde_json::to_writer(&mut file, &record)?;
    file.write_all(b"\n")?;
    file.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// The error that refuses to run `image` (named `reference`) because of `layers`, or `None`
/// when there are none: kind `ImageRejected` (exit 7), naming the first such layer's digest,
/// a few of its entries and Lambda's error, with a hint saying how to rebuild the layer.
pub fn refusal(reference: &str, image: &Image, layers: &[UnsupportedLayer]) -> Option<Error> {
    let first = layers.first()?;
    let digest = |index: usize| {
        image
            .layers
            .get(index)
            .map_or_else(|| "sha256:?".to_owned(), |layer| layer.digest().to_string())
    };
    let entries = &first.entries;
    // A target as GNU tar writes it (`./var/task/data`) is shown from the root.
    let links: Vec<String> = entries
        .hard_links
        .iter()
        .map(|link| {
            let target = link.target.trim_start_matches("./").trim_start_matches('/');
            format!("/{} -> /{target}", link.path)
        })
        .collect();
    let paths: Vec<String> = entries
        .missing_parents
        .iter()
        .map(|path| format!("/{path}"))
        .collect();
    let holds: Vec<String> = [
        (entries.hard_link_count, &links, "a hard link", "hard links"),
        (
            entries.missing_parent_count,
            &paths,
            "an entry whose parent directory is in no layer before it",
            "entries whose parent directory is in no layer before them",
        ),
    ]
    .into_iter()
    .filter(|(count, ..)| *count > 0)
    .map(|(count, items, one, many)| {
        let noun = if count == 1 { one } else { many };
        format!("{noun} ({})", listed(items, count))
    })
    .collect();
    let mut message = format!(
        "image {reference}: layer {} of {} ({}) holds {}, which Lambda's unpacker refuses when \
         the function is created: InvalidImage(ImageLayerFailure: UnsupportedImageLayerDetected \
         - Layer Digest {})",
        first.index + 1,
        image.layers.len(),
        digest(first.index),
        holds.join(" and "),
        digest(first.index),
    );
    if layers.len() > 1 {
        let others: Vec<String> = layers[1..]
            .iter()
            .map(|layer| format!("{} ({})", layer.index + 1, digest(layer.index)))
            .collect();
        message.push_str(&format!(
            "; layer{} {} too",
            if others.len() == 1 { "" } else { "s" },
            others.join(", ")
        ));
    }
    let hard_links = layers.iter().any(|layer| layer.entries.hard_link_count > 0);
    let missing = layers
        .iter()
        .any(|layer| layer.entries.missing_parent_count > 0);
    let fix = match (hard_links, missing) {
        (true, true) => {
            "rebuild the layer with the files copied rather than hard-linked (GNU tar: \
             --hard-dereference) and with an entry for every parent directory (archive the \
             directories, not only the files)"
        }
        (true, false) => {
            "rebuild the layer with the files copied rather than hard-linked (GNU tar: \
             --hard-dereference)"
        }
        _ => {
            "rebuild the layer with an entry for every parent directory (archive the \
             directories, not only the files)"
        }
    };
    Some(Error::new(ErrorKind::ImageRejected, message).hint(format!(
        "{fix}; `lambda-image check {reference}` lists them all"
    )))
}

/// The first items, then how many more there are in all (`count`).
fn listed(items: &[String], count: usize) -> String {
    let mut text = items.join(", ");
    if count > items.len() {
        text.push_str(&format!(" and {} more", count - items.len()));
    }
    text
}
