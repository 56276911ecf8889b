//! A registry base kept in the blob cache, as a base source for `build --offline`.
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
//! command that puts a whole base in the cache; the hints here name it, with the build's
//! `--cache-dir`.
//!
//! Offline, [`open_cached_base`] resolves the base from the cache alone: a tag through its record,
//! a digest directly. Nothing is trusted blindly: every document is verified against its digest
//! (the record's digest against the cached top document), and every layer of the wanted
//! architectures is hashed whole before the build starts, so a missing or damaged blob fails the
//! build before anything is written, naming the blob and saying how to get it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use serde::{Deserialize, Serialize};

use crate::cache::blobs::BlobCache;
use crate::digest::{Sha256Digest, VerifyingReader, read_verified};
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::manifest::Document;
use crate::image::media_types::{OCI_INDEX, OCI_MANIFEST};
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;
use crate::transport::oci::descriptor_digest;
use crate::transport::resolve::{DocumentStore, resolve_images};
use crate::transport::source::{BaseBlobs, BlobSource, MANIFEST_LIMIT, ResolvedBase};
use crate::transport::tree::DirectoryTree;

/// The directory of tag records under the cache root.
const RECORDS_DIRECTORY: &str = "refs";
/// The directory, under a repository's records, that holds one file per tag.
const TAGS_DIRECTORY: &str = "_tags";
/// Largest record read; a real one is about 150 bytes.
const RECORD_LIMIT: u64 = 4096;

/// What a tag named when it was last resolved online.
#[derive(Debug, Serialize, Deserialize)]
struct TagRecord {
    /// `sha256:<hex>`; parsed (and checked) when read.
    digest: String,
    /// The media type the registry gave the top document (index or manifest).
    #[serde(rename = "mediaType")]
    media_type: String,
}

/// Records which digest the tag of `reference` resolved to, for later offline builds. Only a
/// reference by tag alone is recorded (with a digest, the digest is what names the base). Like
/// the cache, this is an optimisation: a record that cannot be written is left out.
pub fn record_base_tag(cache: &BlobCache, reference: &RegistryReference, base: &ResolvedBase) {
    let (Some(tag), None) = (&reference.tag, &reference.digest) else {
        return;
    };
    let media_type = match &base.index {
        Some(index) => index.media_type.clone(),
        None => base
            .images
            .values()
            .next()
            .and_then(|image| image.manifest.as_ref())
            .map(|manifest| manifest.media_type.clone())
            .unwrap_or_default(),
    };
    let record = TagRecord {
        digest: base.digest.to_string(),
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

/// Resolves a registry base for the wanted architectures from the cache alone, contacting no
/// registry: a tag through its record, a digest directly. Every document and layer is verified
/// here, so the build that follows cannot fail on a missing or damaged base blob.
pub fn open_cached_base(
    cache: Option<&BlobCache>,
    reference: &RegistryReference,
    wanted: &[Architecture],
) -> Result<ResolvedBase> {
    let Some(cache) = cache else {
        return Err(offline_base_error(
            reference,
            None,
            "no cache directory is known (no --cache-dir, $XDG_CACHE_HOME or $HOME)",
        ));
    };
    let (top_digest, recorded_media_type) = match (&reference.digest, &reference.tag) {
        (Some(digest), _) => (digest.clone(), None),
        (None, tag) => {
            let (digest, record) =
                read_tag_record(cache, reference, tag.as_deref().unwrap_or("latest"))?;
            (digest, Some(record.media_type))
        }
    };
    let store = CachedDocuments { cache, reference };
    // The store's errors say what is missing or damaged; this names the base and the cache.
    let in_context = |error: Error| {
        let hint = error.hint_text().map(str::to_owned);
        let error = offline_base_error(reference, Some(cache), error.message());
        match hint {
            Some(hint) => error.hint(hint),
            None => error,
        }
    };
    let top_bytes = store
        .read_verified_blob("index or manifest", &top_digest, None, MANIFEST_LIMIT)
        .map_err(in_context)?;
    let media_type = recorded_media_type
        .filter(|media_type| !media_type.is_empty())
        .unwrap_or_else(|| sniff_media_type(&top_bytes).to_owned());
    let (format, images, is_index) =
        resolve_images(&store, &top_digest, &top_bytes, &media_type, wanted).map_err(in_context)?;
    let mut checked = std::collections::BTreeSet::new();
    for (architecture, image) in &images {
        for layer in &image.layers {
            let digest = layer.digest();
            if checked.insert(digest.clone()) {
                store
                    .verify_layer(*architecture, &digest, layer.descriptor.size())
                    .map_err(in_context)?;
            }
        }
    }
    Ok(ResolvedBase {
        reference: reference.to_string(),
        name: Some(reference.to_string()),
        digest: top_digest,
        format,
        images,
        is_index,
        index: is_index.then(|| Document::new(&media_type, top_bytes)),
        blobs: BaseBlobs::Tree(Box::new(DirectoryTree::new(cache.root().to_owned()))),
        _scratch: None,
    })
}

/// `refs/<registry>/<repository>/_tags/<tag>` under the cache root. Every part was checked when
/// the reference was parsed (no `..`, no empty component), so the path stays under `refs/`.
fn record_path(cache: &BlobCache, reference: &RegistryReference, tag: &str) -> PathBuf {
    let mut path = cache
        .root()
        .join(RECORDS_DIRECTORY)
        .join(&reference.registry);
    path.extend(reference.repository.split('/'));
    path.join(TAGS_DIRECTORY).join(tag)
}

fn read_tag_record(
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

/// What to do about a record of the same base under another registry (`found`): for a
/// `public.ecr.aws/lambda` base pulled through a mirror, set the mirror variable as it was; for
/// a mirrored base pulled from upstream, leave the variable unset; else name `found` as --base.
fn elsewhere_hint(reference: &RegistryReference, found: &RegistryReference) -> String {
    let variable = crate::catalog::MIRROR_VARIABLE;
    if let Some(rest) = crate::catalog::upstream_repository(reference)
        && let Some(path) = found.repository.strip_suffix(&format!("/{rest}"))
    {
        return format!(
            "it was pulled through a mirror: set {variable}={}/{path} as when it was pulled \
             (or build with --base {found})",
            found.registry
        );
    }
    if crate::catalog::upstream_repository(found).is_some() {
        return format!(
            "it was pulled from {} itself: unset {variable}, or build with --base {found}",
            crate::catalog::UPSTREAM
        );
    }
    format!("build with --base {found}")
}

/// An error about a base the cache cannot provide (what is missing or damaged), naming the base and
/// the cache, with the way to get the base.
fn offline_base_error(
    reference: &RegistryReference,
    cache: Option<&BlobCache>,
    why: &str,
) -> Error {
    let place = match cache {
        Some(cache) => format!("the cache {}", cache.root().display()),
        None => "the cache".to_owned(),
    };
    Error::base(format!("base {reference} (--offline, from {place}): {why}"))
        .hint(offline_hint(reference, cache))
}

/// How to make a registry base available offline, whatever is missing or damaged: `base pull
/// REF` (with the build's `--cache-dir`) reads every document and layer of the base through the
/// cache, fetching again any copy that does not verify, and records the tag; an online build
/// does not always do that (it caches only the layers it reads). Said once; the kit is the way
/// for a machine that never has network.
fn offline_hint(reference: &RegistryReference, cache: Option<&BlobCache>) -> String {
    let (cache_flag, build_flag) = match cache {
        Some(cache) => (cache.flag(), String::new()),
        None => (
            " --cache-dir DIR".to_owned(),
            " with --cache-dir DIR".to_owned(),
        ),
    };
    format!(
        "with network, run `lambda-image base pull {reference}{cache_flag}` once: it puts the \
         whole base in the cache (every layer, and which image the tag names), then run this \
         build again{build_flag}; for a machine that never has network, make a kit on a machine \
         with network (`lambda-image base pull {reference} --output oci:DIR`), carry DIR over and build \
         with --base oci:DIR"
    )
}

/// The hint for a layer the cache lacks: why an online build may have left it out, and how to
/// get it.
fn missing_layer_hint(reference: &RegistryReference, cache: &BlobCache) -> String {
    format!(
        "an online build caches only the base layers it reads, not those a push mounted or found \
         already in the registry; {}",
        offline_hint(reference, Some(cache))
    )
}

/// The media type of a top document whose record gave none (a reference by digest): its own
/// `mediaType` decides in [`resolve_images`]; without one, a `manifests` list makes it an index.
fn sniff_media_type(bytes: &[u8]) -> &'static str {
    let is_index = serde_json::from_slice::<serde_json::Value>(bytes)
        .is_ok_and(|document| document.get("manifests").is_some());
    if is_index { OCI_INDEX } else { OCI_MANIFEST }
}

/// The cache's blobs, as the documents of a base; each read is verified.
struct CachedDocuments<'a> {
    cache: &'a BlobCache,
    /// The base, for the hints.
    reference: &'a RegistryReference,
}

impl CachedDocuments<'_> {
    /// Reads a small blob whole, verified against `digest` (and `size`, when a descriptor gave
    /// one). `what` names it in messages.
    fn read_verified_blob(
        &self,
        what: &str,
        digest: &Sha256Digest,
        size: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>> {
        let path = self.cache.blob_path(digest);
        let file = self.open_blob(what, digest)?;
        let size = match size {
            Some(size) => size,
            None => file
                .metadata()
                .map_err(|error| self.damaged(what, digest, &path, &error))?
                .len(),
        };
        read_verified(file, digest, size, limit)
            .map_err(|error| self.damaged(what, digest, &path, &error))
    }

    /// Hashes a cached layer whole against its descriptor.
    fn verify_layer(
        &self,
        architecture: Architecture,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<()> {
        let what = format!("{architecture} layer");
        let path = self.cache.blob_path(digest);
        let file = self.open_blob(&what, digest).map_err(|error| {
            if path.exists() {
                error
            } else {
                error.hint(missing_layer_hint(self.reference, self.cache))
            }
        })?;
        io::copy(
            &mut VerifyingReader::new(file, digest.clone(), size),
            &mut io::sink(),
        )
        .map(|_| ())
        .map_err(|error| self.damaged(&what, digest, &path, &error))
    }

    fn open_blob(&self, what: &str, digest: &Sha256Digest) -> Result<File> {
        let path = self.cache.blob_path(digest);
        File::open(&path).map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                Error::base(format!("the {what} {digest} is not in the cache"))
            } else {
                self.damaged(what, digest, &path, &error)
            }
        })
    }

    /// The error for a cached blob that cannot be read or does not match its digest. `base pull`
    /// replaces such a copy (the cache checks every blob before use).
    fn damaged(&self, what: &str, digest: &Sha256Digest, path: &Path, error: &io::Error) -> Error {
        Error::base(format!(
            "the cached copy of the {what} {digest} ({}) is damaged: {error}",
            path.display()
        ))
        .hint(offline_hint(self.reference, Some(self.cache)))
    }
}

impl DocumentStore for CachedDocuments<'_> {
    fn read_document(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        let digest = descriptor_digest(descriptor)?;
        let media_type = descriptor.media_type().to_string();
        let what = if ImageFormat::of_manifest(&media_type).is_some() {
            "manifest"
        } else if ImageFormat::of_index(&media_type).is_some() {
            "index"
        } else {
            "config"
        };
        self.read_verified_blob(what, &digest, Some(descriptor.size()), limit)
    }

    fn layer_source(&self, digest: &Sha256Digest) -> BlobSource {
        BlobSource::Tree(digest.layout_path())
    }
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

    #[test]
    fn without_a_record_or_a_cache_the_error_says_how_to_get_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(Some(dir.path())).unwrap().unwrap();
        let base = reference("public.ecr.aws/lambda/provided:al2023");
        for cache in [None, Some(&cache)] {
            let error = open_cached_base(cache, &base, &[Architecture::Amd64])
                .err()
                .expect("nothing is cached");
            assert_eq!(error.kind(), crate::error::ErrorKind::Base);
            assert!(
                error.message().starts_with(
                    "base public.ecr.aws/lambda/provided:al2023 (--offline, from the cache"
                ),
                "{error}"
            );
            let hint = error.hint_text().unwrap();
            // The command that fills the cache the build reads, said once; then the kit.
            let fill = match cache {
                Some(cache) => format!(
                    "`lambda-image base pull public.ecr.aws/lambda/provided:al2023 --cache-dir {}`",
                    cache.root().display()
                ),
                None => "`lambda-image base pull public.ecr.aws/lambda/provided:al2023 \
                         --cache-dir DIR`"
                    .to_owned(),
            };
            assert!(hint.contains(&fill), "{hint}");
            assert_eq!(hint.matches("base pull").count(), 2, "{hint}");
            assert_eq!(hint.matches("--output").count(), 1, "{hint}");
            assert!(hint.contains("--base oci:DIR"), "{hint}");
            assert!(!hint.contains("oci:DIR:"), "{hint}");
        }
    }

    /// A record of the same tag under a mirror's registry (or upstream's) is named, with the
    /// mirror variable that makes the build use it.
    #[test]
    fn a_record_under_another_registry_is_named_with_the_way_to_use_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(Some(dir.path())).unwrap().unwrap();
        let write_record = |text: &str| {
            let path = record_path(&cache, &reference(text), "al2023");
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, br#"{"digest":"sha256:00","mediaType":""}"#).unwrap();
        };
        let upstream = reference("public.ecr.aws/lambda/provided:al2023");
        let mirrored = reference("127.0.0.1:5055/mirror/lambda/provided:al2023");
        write_record("127.0.0.1:5055/mirror/lambda/provided:al2023");
        // Another repository name is not the same base.
        write_record("127.0.0.1:5055/mirror/lambda/other:al2023");
        let error = open_cached_base(Some(&cache), &upstream, &[])
            .err()
            .unwrap();
        assert_eq!(error.kind(), crate::error::ErrorKind::Base);
        assert!(
            error
                .message()
                .contains("the cache holds one for 127.0.0.1:5055/mirror/lambda/provided:al2023"),
            "{error}"
        );
        let hint = error.hint_text().unwrap();
        assert!(
            hint.starts_with(
                "it was pulled through a mirror: set LAMBDA_IMAGE_BASE_MIRROR=127.0.0.1:5055/mirror/lambda"
            ),
            "{hint}"
        );
        assert!(!hint.contains("lambda/other"), "{hint}");
        // The other way round: cached from upstream, asked for through a mirror.
        fs::remove_dir_all(dir.path().join(RECORDS_DIRECTORY)).unwrap();
        write_record("public.ecr.aws/lambda/provided:al2023");
        let error = open_cached_base(Some(&cache), &mirrored, &[])
            .err()
            .unwrap();
        let hint = error.hint_text().unwrap();
        assert!(
            hint.starts_with(
                "it was pulled from public.ecr.aws/lambda itself: unset LAMBDA_IMAGE_BASE_MIRROR"
            ),
            "{hint}"
        );
        // Nothing elsewhere: the plain message.
        let alone = reference("127.0.0.1:5055/elsewhere/base:al2023");
        let error = open_cached_base(Some(&cache), &alone, &[]).err().unwrap();
        assert!(error.message().contains("no online build"), "{error}");
    }

    #[test]
    fn a_record_pointing_at_a_damaged_document_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(Some(dir.path())).unwrap().unwrap();
        let base = reference("127.0.0.1:5000/lambda/base:v1");
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let digest = Sha256Digest::of(index);
        let path = record_path(&cache, &base, "v1");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let record = TagRecord {
            digest: digest.to_string(),
            media_type: OCI_INDEX.to_owned(),
        };
        fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        let missing = open_cached_base(Some(&cache), &base, &[]).err().unwrap();
        assert!(
            missing
                .message()
                .contains(&format!("index or manifest {digest} is not in the cache")),
            "{missing}"
        );
        fs::create_dir_all(cache.blob_path(&digest).parent().unwrap()).unwrap();
        fs::write(
            cache.blob_path(&digest),
            b"{\"schemaVersion\":2,\"manifests\":[1]}",
        )
        .unwrap();
        let damaged = open_cached_base(Some(&cache), &base, &[]).err().unwrap();
        assert!(damaged.message().contains("is damaged"), "{damaged}");
        assert_eq!(damaged.kind(), crate::error::ErrorKind::Base);
    }
}
