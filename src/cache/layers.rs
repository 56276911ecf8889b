//! The cache of compressed function layers: a rebuild of unchanged inputs takes the gzipped layer
//! from the cache instead of compressing it again.
//!
//! The key is the sha256 of everything the layer's bytes depend on: every entry's path, kind,
//! mode and size, the sha256 of every file's content, symlink targets, the timestamp, and the
//! writer's settings ([`WRITER_IDENTITY`]). Hashing the inputs reads them once, which costs
//! far less than compressing them, and a file the cache has seen unchanged is not read at all
//! ([`super::file_digests`]). The entry (`layers/<key>`) names the blob's digests; the blob
//! itself lives in the blob cache (`blobs/sha256/<hex>`), written there only once complete and
//! verified again by every reader, so a damaged cache costs a recompression, never a bad image.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cache::blobs::BlobCache;
use crate::cache::file_digests::{FileDigests, file_sha256};
use crate::digest::Sha256Digest;
use crate::layer::contents::{LayerContents, LayerEntry};
use crate::layer::writer::{COMPRESSION_LEVEL, LayerDigests};

/// What the writer's output depends on besides its inputs. Change it whenever the bytes a given
/// input produces change (tar format, gzip backend or version, level).
const WRITER_IDENTITY: &str =
    "lambda-image layer writer 1; ustar+pax; gzip by flate2 1.1 zlib-rs 0.6";

/// A key naming one layer's exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerKey(String);

/// Computes the key of the layer `contents` make with timestamp `mtime`, reading every file.
pub fn layer_key(contents: &LayerContents, mtime: u64) -> io::Result<LayerKey> {
    key_with(contents, mtime, &mut |path| file_sha256(path))
}

/// The key, with `file_sha256` giving each file's content digest (hex).
fn key_with(
    contents: &LayerContents,
    mtime: u64,
    file_sha256: &mut dyn FnMut(&Path) -> io::Result<String>,
) -> io::Result<LayerKey> {
    let mut key = Sha256::new();
    key.update(format!(
        "{WRITER_IDENTITY}; level {COMPRESSION_LEVEL}; mtime {mtime}\n"
    ));
    for (path, entry) in contents.entries() {
        let line = match entry {
            LayerEntry::Directory | LayerEntry::SharedDirectory => {
                format!("dir {} {path}\n", entry.mode())
            }
            LayerEntry::Generated { content } => format!(
                "generated {} {} {} {path}\n",
                entry.mode(),
                content.0.len(),
                Sha256Digest::of(content.0).hex()
            ),
            LayerEntry::Symlink { target } => format!("symlink {path} {target}\n"),
            LayerEntry::File { source, size, .. } => {
                format!(
                    "file {} {size} {} {path}\n",
                    entry.mode(),
                    file_sha256(source)?
                )
            }
        };
        // Length-prefixed, so no two different entry lists hash the same text.
        key.update((line.len() as u64).to_le_bytes());
        key.update(line);
    }
    Ok(LayerKey(hex::encode(key.finalize())))
}

/// Compressed layers, by key, inside a [`BlobCache`].
#[derive(Clone)]
pub struct LayerCache {
    blobs: BlobCache,
    files: FileDigests,
}

impl LayerCache {
    pub fn new(blobs: BlobCache) -> Self {
        Self {
            files: FileDigests::new(&blobs),
            blobs,
        }
    }

    /// [`layer_key`], reading only the files the cache has not seen as they are now
    /// ([`FileDigests`]): the key of an unchanged bootstrap costs no read of it. With it, the
    /// content digest (hex) each file was taken to have, by path.
    pub fn key(
        &self,
        contents: &LayerContents,
        mtime: u64,
    ) -> io::Result<(LayerKey, BTreeMap<PathBuf, String>)> {
        let mut seen = BTreeMap::new();
        let key = key_with(contents, mtime, &mut |path| {
            let digest = self.files.sha256(path)?;
            seen.insert(path.to_owned(), digest.clone());
            Ok(digest)
        })?;
        Ok((key, seen))
    }

    /// Forgets the remembered digests of `paths` (a file that did not hold what was remembered).
    pub fn forget_files<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) {
        for path in paths {
            self.files.forget(path);
        }
    }

    fn entry_path(&self, key: &LayerKey) -> PathBuf {
        self.blobs.root().join("layers").join(&key.0)
    }

    /// Where new layers are written before they are stored.
    pub fn temporary_directory(&self) -> PathBuf {
        self.blobs.temporary_directory()
    }

    /// The cached layer for `key`: its digests and the blob's path. The blob is checked for its
    /// size here and for its digest whenever it is read.
    pub fn lookup(&self, key: &LayerKey) -> Option<(LayerDigests, PathBuf)> {
        let text = fs::read_to_string(self.entry_path(key)).ok()?;
        let [digest, diff_id, size, uncompressed_size] =
            <[&str; 4]>::try_from(text.split_whitespace().collect::<Vec<_>>()).ok()?;
        let (digest, diff_id) = (digest.parse::<Sha256Digest>().ok()?, diff_id.parse().ok()?);
        let (size, uncompressed_size) = (size.parse().ok()?, uncompressed_size.parse().ok()?);
        let blob = self.blobs.blob_path(&digest);
        (fs::metadata(&blob).ok()?.len() == size).then_some((
            LayerDigests {
                diff_id,
                digest,
                size,
                uncompressed_size,
            },
            blob,
        ))
    }

    /// Moves a layer just written (in [`Self::temporary_directory`]) into the cache and records
    /// it under `key`; returns where the blob now is, or gives the file back if it cannot be moved.
    pub fn store(
        &self,
        key: &LayerKey,
        file: tempfile::NamedTempFile,
        digests: &LayerDigests,
    ) -> Result<PathBuf, tempfile::NamedTempFile> {
        let blob = self.blobs.blob_path(&digests.digest);
        crate::temporary::persist(file, &blob).map_err(|error| error.file)?;
        // Without its entry the blob is only unused: the cache is an optimisation.
        let _ = self.write_entry(key, digests);
        Ok(blob)
    }

    fn write_entry(&self, key: &LayerKey, digests: &LayerDigests) -> io::Result<()> {
        let path = self.entry_path(key);
        if let Some(directory) = path.parent() {
            fs::create_dir_all(directory)?;
        }
        let mut temporary = crate::temporary::file_in(&self.temporary_directory())?;
        let entry = format!(
            "{} {} {} {}\n",
            digests.digest, digests.diff_id, digests.size, digests.uncompressed_size
        );
        io::Write::write_all(&mut temporary, entry.as_bytes())?;
        crate::temporary::persist(temporary, &path).map_err(|error| error.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::writer::write_growing_layer;

    #[test]
    fn the_key_follows_content_and_settings_and_a_stored_layer_is_found() {
        let directory = tempfile::tempdir().unwrap();
        let bootstrap = directory.path().join("bootstrap");
        fs::write(&bootstrap, b"#!/bin/sh\necho one\n").unwrap();
        let contents = LayerContents::with_bootstrap(&bootstrap, 19).unwrap();
        let first = layer_key(&contents, 0).unwrap();
        assert_eq!(first, layer_key(&contents, 0).unwrap());
        assert_ne!(
            first,
            layer_key(&contents, 1).unwrap(),
            "the timestamp is part of the key"
        );
        fs::write(&bootstrap, b"#!/bin/sh\necho two\n").unwrap();
        assert_ne!(
            first,
            layer_key(&contents, 0).unwrap(),
            "so is the content, same size"
        );

        let cache = LayerCache::new(
            BlobCache::open(Some(&directory.path().join("cache")))
                .unwrap()
                .unwrap(),
        );
        let key = layer_key(&contents, 0).unwrap();
        assert!(cache.lookup(&key).is_none());
        let (file, digests, _) =
            write_growing_layer(&contents, 0, &cache.temporary_directory(), |_| {}).unwrap();
        let stored = cache.store(&key, file, &digests).unwrap();
        let (found, path) = cache.lookup(&key).unwrap();
        assert_eq!((found, path.clone()), (digests.clone(), stored));
        assert_eq!(Sha256Digest::of(&fs::read(&path).unwrap()), digests.digest);

        // A damaged blob (wrong size) is not used.
        fs::write(&path, b"short").unwrap();
        assert!(cache.lookup(&key).is_none());
    }

    /// A directory's mode and a generated file's bytes are part of the key.
    #[test]
    fn the_key_follows_directory_modes_and_generated_content() {
        use crate::layer::contents::GeneratedContent;
        let directory = tempfile::tempdir().unwrap();
        let bootstrap = directory.path().join("bootstrap");
        fs::write(&bootstrap, b"#!/bin/sh\n").unwrap();
        let with = |tmp: LayerEntry, content: &'static [u8]| {
            let mut contents = LayerContents::with_bootstrap(&bootstrap, 10).unwrap();
            contents.add_generated("/tmp", tmp, "tmp").unwrap();
            let generated = LayerEntry::Generated {
                content: GeneratedContent(content),
            };
            contents.add_generated("/etc/a", generated, "a").unwrap();
            layer_key(&contents, 0).unwrap()
        };
        let shared = with(LayerEntry::SharedDirectory, b"one");
        assert_eq!(shared, with(LayerEntry::SharedDirectory, b"one"));
        assert_ne!(shared, with(LayerEntry::Directory, b"one"));
        assert_ne!(shared, with(LayerEntry::SharedDirectory, b"two"));
    }
}
