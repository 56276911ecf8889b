//! Which image a registry base's tag named when it was last resolved online: the tag records
//! under the cache root, for `build --offline`.
//!
//! An online build (or `base pull`) that resolves a registry base by tag records which digest
//! the tag named, under the cache root in `refs/<registry>/<repository>/_tags/<tag>` (JSON:
//! `digest` and `mediaType`; `_tags` cannot be a repository component, so a tag file never
//! clashes with a nested repository's directory). The record is written under `tmp/` and renamed
//! into place, like the blobs. The index, manifests and configs the build read are already in the
//! cache byte for byte as the registry served them, and so is every layer the build read. A
//! layer a push mounted from the base's repository, or found already in the target, was never
//! read, so it is not cached: the build does not download it only to cache it (that would undo
//! what the mount saved, on every build). `lambda-image base pull REF` (no `--output`) is the
//! command that puts a whole base in the cache; the hints ([`super::offline_hints`]) name it,
//! with the build's `--cache-dir`.
//!
//! Not here: resolving the base from the cache offline (the build's `offline_base`, which
//! reads these records and verifies every blob).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::blobs::BlobCache;
use super::offline_hints::{elsewhere_hint, offline_base_error, offline_hint};
use crate::digest::Sha256Digest;
use crate::error::Result;
use crate::reference::registry::RegistryReference;

/// The directory of tag records under the cache root.
pub(crate) const RECORDS_DIRECTORY: &str = "refs";
/// The directory, under a repository's records, that holds one file per tag.
const TAGS_DIRECTORY: &str = "_tags";
/// Largest record read; a real one is about 150 bytes.
const RECORD_LIMIT: u64 = 4096;

/// What a tag named when it was last resolved online.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TagRecord {
    /// `sha256:<hex>`; parsed (and checked) when read.
    pub(crate) digest: String,
    /// The media type the registry gave the top document (index or manifest).
    #[serde(rename = "mediaType")]
    pub(crate) media_type: String,
}

/// Records that the tag of `reference` resolved to `digest` (the top document, an index or a
/// manifest of media type `media_type`), for later offline builds. Only a reference by tag alone
/// is recorded (with a digest, the digest is what names the base). Like the cache, this is an
/// optimisation: a record that cannot be written is left out.
pub fn record_tag(
    cache: &BlobCache,
    reference: &RegistryReference,
    digest: &Sha256Digest,
    media_type: String,
) {
    let (Some(tag), None) = (&reference.tag, &reference.digest) else {
        return;
    };
    let record = TagRecord {
        digest: digest.to_string(),
        media_type,
    };
    let path = record_path(cache, reference, tag);
    let bytes = serde_json::to_vec(&record).expect("a tag record serializes");
    let _ = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| crate::temporary::file_in(&cache.temporary_directory()))
        .and_then(|mut file| {
            file.write_all(&bytes)?;
            crate::temporary::persist(file, &path).map_err(|error| error.error)
        });
}

/// `refs/<registry>/<repository>/_tags/<tag>` under the cache root. Every part was checked when
/// the reference was parsed (no `..`, no empty component), so the path stays under `refs/`.
pub(crate) fn record_path(cache: &BlobCache, reference: &RegistryReference, tag: &str) -> PathBuf {
    let mut path = cache
        .root()
        .join(RECORDS_DIRECTORY)
        .join(&reference.registry);
    path.extend(reference.repository.split('/'));
    path.join(TAGS_DIRECTORY).join(tag)
}

/// The record of `tag`: the digest it named, parsed, and the record. Errors (base): no record
/// (naming a record of the same base under another registry, if the cache holds one), or one
/// that cannot be read or parsed.
pub(crate) fn read_tag_record(
    cache: &BlobCache,
    reference: &RegistryReference,
    tag: &str,
) -> Result<(Sha256Digest, TagRecord)> {
    let path = record_path(cache, reference, tag);
    let bytes = match File::open(&path) {
        Ok(file) => {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut io::Read::take(file, RECORD_LIMIT), &mut bytes)
                .map(|_| bytes)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let elsewhere = records_elsewhere(cache, reference, tag);
            let Some(found) = elsewhere.first() else {
                return Err(offline_base_error(
                    reference,
                    Some(cache),
                    &format!(
                        "no record of which image the tag `{tag}` names: no online build or `base \
                         pull` of it used this cache, and --offline contacts no registry but the \
                         --tag ones"
                    ),
                ));
            };
            let error = offline_base_error(
                reference,
                Some(cache),
                &format!(
                    "no record of which image the tag `{tag}` names, but the cache holds one for \
                     {found} (the same repository name and tag, from another registry)"
                ),
            );
            return Err(error.hint(format!(
                "{}; otherwise, {}",
                elsewhere_hint(reference, found),
                offline_hint(reference, Some(cache))
            )));
        }
        Err(error) => Err(error),
    };
    bytes
        .map_err(|error| error.to_string())
        .and_then(|bytes| {
            serde_json::from_slice::<TagRecord>(&bytes).map_err(|error| error.to_string())
        })
        .and_then(|record| {
            let digest = record
                .digest
                .parse::<Sha256Digest>()
                .map_err(|error| error.to_string())?;
            Ok((digest, record))
        })
        .map_err(|error| {
            offline_base_error(
                reference,
                Some(cache),
                &format!(
                    "the record of the tag `{tag}` ({}) cannot be read: {error}",
                    path.display()
                ),
            )
        })
}

/// The most directories deep a tag record is looked for under `refs/` (a registry and a
/// repository path of that many components, then `_tags`).
const RECORD_SEARCH_DEPTH: usize = 12;

/// The references the cache holds a record of `tag` for, whose repository ends with the same
/// component as `reference`'s but which are not `reference`'s own repository: the same base
/// pulled through a mirror (`HOST/PATH/provided` for `public.ecr.aws/lambda/provided`), or
/// from upstream when a mirror names it now. Sorted, so the first is always the same one.
fn records_elsewhere(
    cache: &BlobCache,
    reference: &RegistryReference,
    tag: &str,
) -> Vec<RegistryReference> {
    fn walk(directory: &Path, components: &mut Vec<String>, tag: &str, found: &mut Vec<String>) {
        if components.len() > RECORD_SEARCH_DEPTH {
            return;
        }
        let Ok(listing) = fs::read_dir(directory) else {
            return;
        };
        for entry in listing.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            if name == TAGS_DIRECTORY {
                if components.len() >= 2 && entry.path().join(tag).is_file() {
                    found.push(format!(
                        "{}/{}:{tag}",
                        components[0],
                        components[1..].join("/")
                    ));
                }
                continue;
            }
            components.push(name);
            walk(&entry.path(), components, tag, found);
            components.pop();
        }
    }
    let mut found = Vec::new();
    walk(
        &cache.root().join(RECORDS_DIRECTORY),
        &mut Vec::new(),
        tag,
        &mut found,
    );
    let last = |repository: &str| repository.rsplit('/').next().map(str::to_owned);
    let mut references: Vec<RegistryReference> = found
        .iter()
        .filter_map(|text| text.parse::<RegistryReference>().ok())
        .filter(|other| {
            (other.registry != reference.registry || other.repository != reference.repository)
                && last(&other.repository) == last(&reference.repository)
        })
        .collect();
    references.sort_by_key(|other| other.to_string());
    references
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> RegistryReference {
        text.parse().unwrap()
    }

    #[test]
    fn a_tag_record_sits_beside_nested_repositories_without_clashing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(Some(dir.path())).unwrap().unwrap();
        let outer = record_path(&cache, &reference("127.0.0.1:5000/a/b:c"), "c");
        let nested = record_path(&cache, &reference("127.0.0.1:5000/a/b/c:v1"), "v1");
        assert_eq!(
            outer,
            dir.path().join("refs/127.0.0.1:5000/a/b/_tags/c"),
            "{outer:?}"
        );
        assert!(!nested.starts_with(&outer));
    }
}
