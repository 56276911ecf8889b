//! A registry base kept in the blob cache, as a base source for `build --offline`, and the
//! record an online build leaves for it.
//!
//! Offline, [`open_cached_base`] resolves the base from the cache alone: a tag through its record,
//! a digest directly. Nothing is trusted blindly: every document is verified against its digest
//! (the record's digest against the cached top document), and every layer of the wanted
//! architectures is hashed whole before the build starts, so a missing or damaged blob fails the
//! build before anything is written, naming the blob and saying how to get it.
//!
//! Not here: the records themselves ([`crate::cache::base`]) and the hints
//! ([`crate::cache::offline_hints`]); this part needs the sources' image model, which the cache
//! does not import.

use std::fs::File;
use std::io;
use std::path::Path;

use oci_spec::image::Descriptor;

use crate::cache::base::{read_tag_record, record_tag};
use crate::cache::blobs::BlobCache;
use crate::cache::offline_hints::{missing_layer_hint, offline_base_error, offline_hint};
use crate::digest::{Sha256Digest, VerifyingReader, read_verified};
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::manifest::Document;
use crate::image::media_types::{OCI_INDEX, OCI_MANIFEST};
use crate::image::resolve::{DocumentStore, MANIFEST_LIMIT, descriptor_digest, resolve_images};
use crate::image::set::ImageSet;
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;
use crate::transport::tree::{DirectoryTree, TreeBlobs};

/// Records which digest the tag of `reference` resolved to (`base`'s), for later offline builds
/// ([`record_tag`]): with the media type of its index, else of its first manifest. Only a
/// reference by tag alone is recorded; a record that cannot be written is left out.
pub fn record_base_tag(cache: &BlobCache, reference: &RegistryReference, base: &ImageSet) {
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
    record_tag(cache, reference, &base.digest, media_type);
}

/// Resolves a registry base for the wanted architectures from the cache alone, contacting no
/// registry: a tag through its record, a digest directly. Every document and layer is verified
/// here, so the build that follows cannot fail on a missing or damaged base blob.
pub fn open_cached_base(
    cache: Option<&BlobCache>,
    reference: &RegistryReference,
    wanted: &[Architecture],
) -> Result<ImageSet> {
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
    Ok(ImageSet {
        reference: reference.to_string(),
        name: Some(reference.to_string()),
        digest: top_digest,
        format,
        images,
        index: is_index.then(|| Document::new(&media_type, top_bytes)),
        blobs: std::sync::Arc::new(TreeBlobs::layout(Box::new(DirectoryTree::new(
            cache.root().to_owned(),
        )))),
    })
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::base::{RECORDS_DIRECTORY, TagRecord, record_path};
    use std::fs;

    fn reference(text: &str) -> RegistryReference {
        text.parse().unwrap()
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
