//! The content digests of files the cache has seen, remembered by what `stat(2)` says of them,
//! so that the layer cache's key for an unchanged bootstrap needs no read of it: a rebuild of the
//! same file reads it at most once (to compress it, when the layer is not cached).
//!
//! An entry (`files/<device>-<inode>`) holds the file's size, modification and change times (to
//! the nanosecond) and the sha256 of its content; it is used only while all of them are the
//! same. A rewritten file gets a new modification time, a replaced one (the way `go build` and
//! most linkers write) a new inode, `chmod` or `touch` a new change time. As git does for its
//! index, an entry is written only for a file whose times are at least [`SETTLED`] in the past
//! when hashing ends, and only if nothing changed while it was read: a file written again within
//! one tick of a coarse file-system clock could otherwise keep its times.

use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::blobs::BlobCache;

/// How old a file's times must be before its digest is remembered: more than the coarsest
/// common file-system timestamp granularity (2 s, FAT).
const SETTLED: Duration = Duration::from_secs(3);

/// The remembered digests, inside a [`BlobCache`].
#[derive(Clone, Debug)]
pub struct FileDigests {
    root: PathBuf,
    /// The cache's temporary directory, whose files (a `--layer` zip's unpacked entries) are
    /// gone when the build ends: remembering them would only leave entries that nothing uses.
    temporary: PathBuf,
}

impl FileDigests {
    pub fn new(blobs: &BlobCache) -> FileDigests {
        FileDigests {
            root: blobs.root().join("files"),
            temporary: blobs.temporary_path(),
        }
    }

    /// The sha256 (hex) of the content of the file at `path`: remembered when the file is as it
    /// was, else read (and then remembered when it is settled). Errors: the file cannot be read.
    pub fn sha256(&self, path: &Path) -> io::Result<String> {
        self.sha256_at(path, SystemTime::now())
    }

    /// [`FileDigests::sha256`], with `now` the time hashing ends (for the settled rule).
    fn sha256_at(&self, path: &Path, now: SystemTime) -> io::Result<String> {
        if path.starts_with(&self.temporary) {
            return file_sha256(path);
        }
        let before = fs::metadata(path)?;
        let entry = self.entry(&before);
        let recorded_as = identity(&before);
        if let Ok(text) = fs::read_to_string(&entry)
            && let Some((recorded, digest)) = text.trim_end().rsplit_once(' ')
            && recorded == recorded_as
            && digest.len() == 64
            && digest.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            return Ok(digest.to_owned());
        }
        let digest = file_sha256(path)?;
        let unchanged = fs::metadata(path).is_ok_and(|after| identity(&after) == recorded_as);
        if unchanged && is_settled(&before, now) {
            // The memory is an optimisation: one that cannot be written is only not there.
            let _ = self.remember(&entry, &format!("{recorded_as} {digest}\n"));
        }
        Ok(digest)
    }

    /// Drops what is remembered of the file at `path`, if anything.
    pub fn forget(&self, path: &Path) {
        if let Ok(metadata) = fs::metadata(path) {
            let _ = fs::remove_file(self.entry(&metadata));
        }
    }

    fn entry(&self, metadata: &Metadata) -> PathBuf {
        self.root
            .join(format!("{}-{}", metadata.dev(), metadata.ino()))
    }

    fn remember(&self, entry: &Path, line: &str) -> io::Result<()> {
        fs::create_dir_all(&self.root)?;
        let mut temporary = tempfile::NamedTempFile::new_in(&self.root)?;
        io::Write::write_all(&mut temporary, line.as_bytes())?;
        temporary.persist(entry).map_err(|error| error.error)?;
        Ok(())
    }
}

/// The sha256 (hex) of a file's content.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    Ok(crate::digest::file_digest(path)?.0.hex().to_owned())
}

/// `size mtime.nsec ctime.nsec`, what the entry is kept for.
fn identity(metadata: &Metadata) -> String {
    format!(
        "{} {}.{:09} {}.{:09}",
        metadata.size(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec()
    )
}

/// Whether both of the file's times are at least [`SETTLED`] before `now`.
fn is_settled(metadata: &Metadata, now: SystemTime) -> bool {
    let Ok(now) = now.duration_since(UNIX_EPOCH) else {
        return false;
    };
    let newest = metadata.mtime().max(metadata.ctime());
    u64::try_from(newest)
        .is_ok_and(|newest| Duration::from_secs(newest) + Duration::from_secs(1) + SETTLED <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn digests_in(directory: &Path) -> FileDigests {
        FileDigests::new(
            &BlobCache::open(Some(&directory.join("cache")))
                .unwrap()
                .unwrap(),
        )
    }

    #[test]
    fn a_settled_file_is_read_once_and_a_changed_one_again() {
        let directory = tempfile::tempdir().unwrap();
        let digests = digests_in(directory.path());
        let file = directory.path().join("bootstrap");
        fs::write(&file, b"first").unwrap();
        let first = hex::encode(Sha256::digest(b"first"));
        // Just written: read, not remembered.
        assert_eq!(digests.sha256(&file).unwrap(), first);
        assert!(!digests.root.exists() || fs::read_dir(&digests.root).unwrap().count() == 0);

        // Settled (hashing ends a minute later): remembered, and then believed without a read,
        // shown by a file that can no longer be read at all.
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(digests.sha256_at(&file, later).unwrap(), first);
        let metadata = fs::metadata(&file).unwrap();
        let entry = digests
            .root
            .join(format!("{}-{}", metadata.dev(), metadata.ino()));
        assert!(entry.is_file());
        let other = hex::encode(Sha256::digest(b"other"));
        fs::write(&entry, format!("{} {other}\n", identity(&metadata))).unwrap();
        assert_eq!(digests.sha256(&file).unwrap(), other, "the entry is used");

        // Same size, new content: the times moved, so it is read again.
        fs::write(&file, b"again").unwrap();
        assert_eq!(
            digests.sha256_at(&file, later).unwrap(),
            hex::encode(Sha256::digest(b"again"))
        );
        // A damaged entry is not believed.
        let metadata = fs::metadata(&file).unwrap();
        fs::write(&entry, format!("{} nothex\n", identity(&metadata))).unwrap();
        assert_eq!(
            digests.sha256(&file).unwrap(),
            hex::encode(Sha256::digest(b"again"))
        );
    }

    /// A file in the cache's own temporary directory lives for one build: nothing is
    /// remembered of it, however settled.
    #[test]
    fn files_in_the_caches_temporary_directory_are_not_remembered() {
        let directory = tempfile::tempdir().unwrap();
        let blobs = BlobCache::open(Some(&directory.path().join("cache")))
            .unwrap()
            .unwrap();
        let digests = FileDigests::new(&blobs);
        let unpacked = blobs.temporary_directory().join("0");
        fs::write(&unpacked, b"entry").unwrap();
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(
            digests.sha256_at(&unpacked, later).unwrap(),
            hex::encode(Sha256::digest(b"entry"))
        );
        assert!(!digests.root.exists() || fs::read_dir(&digests.root).unwrap().count() == 0);

        // The same file elsewhere is.
        let outside = directory.path().join("bootstrap");
        fs::write(&outside, b"entry").unwrap();
        digests.sha256_at(&outside, later).unwrap();
        assert_eq!(fs::read_dir(&digests.root).unwrap().count(), 1);
    }

    #[test]
    fn only_times_old_enough_count_as_settled() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("f");
        fs::write(&file, b"x").unwrap();
        let metadata = fs::metadata(&file).unwrap();
        let changed = UNIX_EPOCH + Duration::from_secs(metadata.ctime() as u64);
        assert!(!is_settled(&metadata, changed));
        assert!(!is_settled(&metadata, changed + SETTLED));
        assert!(is_settled(
            &metadata,
            changed + SETTLED + Duration::from_secs(1)
        ));
        assert!(!is_settled(&metadata, UNIX_EPOCH));
    }
}
