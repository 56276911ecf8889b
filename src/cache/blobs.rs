//! The content-addressed cache of pulled blobs (manifests, configs, layers):
//! `$XDG_CACHE_HOME/lambda-image` or `~/.cache/lambda-image`, or `--cache-dir`.
//!
//! Files are `blobs/sha256/<hex>`, written under `tmp/` and renamed into place only once their
//! digest has been checked, so a cached file is whole. It is still checked again every time it is
//! used: a layer is hashed whole before it is handed out, and a file that no longer matches its
//! digest is deleted and treated as not cached (so it is fetched again); while it is read it is
//! verified once more, and a change under the reader fails the read. Temporary files are
//! remembered by [`crate::temporary`], so a run stopped by SIGINT or SIGTERM removes its own;
//! those a killed run (SIGKILL, a crash, a power cut) left in `tmp/` are never read, and are
//! deleted by a later run once unchanged for an hour ([`STALE_TEMPORARY_AGE`]).
//!
//! Opening the cache creates nothing: its directories are made when something is first written
//! ([`BlobCache::temporary_directory`]), so a run that fails before writing (an `--offline`
//! build whose base is not cached) leaves no empty cache tree behind.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::digest::{Sha256Digest, VerifyingReader, read_verified};
use crate::error::{Error, Result};

/// The cache directory's name under the XDG cache home.
const CACHE_NAME: &str = "lambda-image";
/// Temporary files in `tmp/` not modified for this long were left behind by a run that ended
/// without cleaning up: a live run writes its temporaries continuously (a layer being
/// compressed, a blob being downloaded, flushed every MiB) and renames them into place at once.
pub const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// A blob cache rooted at a directory.
#[derive(Clone, Debug)]
pub struct BlobCache {
    root: PathBuf,
    /// Whether the directory was named with `--cache-dir` (hints then repeat the flag).
    explicit: bool,
}

/// Whether a directory could be made (or written) at `root`: the nearest of it and its parents
/// that exists must be a directory this process may write to (`access(2)`, `W_OK`).
fn writable(root: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut existing = root;
    while !existing.exists() {
        existing = match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
    }
    if !existing.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{} is not a directory", existing.display()),
        ));
    }
    let path = std::ffi::CString::new(existing.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl BlobCache {
    /// The cache at `explicit` (`--cache-dir`), else `$XDG_CACHE_HOME/lambda-image`, else
    /// `$HOME/.cache/lambda-image`. None when no location is known. Nothing is created here
    /// (see [`BlobCache::temporary_directory`]); a path that exists and is not a directory is an
    /// error (output).
    pub fn open(explicit: Option<&Path>) -> Result<Option<BlobCache>> {
        let (root, is_explicit) = match explicit {
            Some(path) => (path.to_owned(), true),
            None => match default_root() {
                Some(root) => (root, false),
                None => return Ok(None),
            },
        };
        if root.exists() && !root.is_dir() {
            return Err(Error::output(format!(
                "the cache directory {} exists and is not a directory",
                root.display()
            ))
            .hint("choose a directory with --cache-dir"));
        }
        // A cache that cannot be written is found now (nothing is made yet), not halfway through a build: the
        // default one (under a HOME that does not exist, as for `nobody` in CI containers) is
        // then no cache, which every command works without; one named with --cache-dir is an
        // error.
        if let Err(error) = writable(&root) {
            if !is_explicit {
                return Ok(None);
            }
            return Err(Error::output(format!(
                "cannot use the cache directory {}: {error}",
                root.display()
            ))
            .hint("choose a writable directory with --cache-dir"));
        }
        let cache = BlobCache {
            root,
            explicit: is_explicit,
        };
        cache.remove_stale_temporary_files();
        Ok(Some(cache))
    }

    /// The `--cache-dir DIR` flag that names this cache, for commands in hints: empty when the
    /// cache is the default one (the same command finds it without the flag).
    pub fn flag(&self) -> String {
        if self.explicit {
            format!(" --cache-dir {}", self.root.display())
        } else {
            String::new()
        }
    }

    /// Deletes temporary files left by runs that were killed or gave a transfer up (never
    /// trusted, only in the way). Only old ones: a run going on now may be writing the others.
    fn remove_stale_temporary_files(&self) {
        let Ok(listing) = fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for entry in listing.flatten() {
            let stale = entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMPORARY_AGE);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// The directory of [`Self::temporary_directory`], without creating anything.
    pub fn temporary_path(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where temporary files of this run can go (same filesystem as the cache). Callers are
    /// about to write, so this creates the directory and the blob directory files are renamed
    /// into, if missing; a failure to create them shows when the caller writes.
    pub fn temporary_directory(&self) -> PathBuf {
        let temporary = self.temporary_path();
        if !temporary.is_dir() || !self.blob_directory().is_dir() {
            let _ = fs::create_dir_all(&temporary);
            let _ = fs::create_dir_all(self.blob_directory());
        }
        temporary
    }

    fn blob_directory(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn path(&self, digest: &Sha256Digest) -> PathBuf {
        self.blob_directory().join(digest.hex())
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` is (or would be) kept.
    pub fn blob_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.path(digest)
    }

    /// Opens a cached blob, checked whole before it is used and verified again as it is read.
    /// None if it is not cached; a copy that does not match its size and digest (cut short by
    /// a full disk, changed on disk) is deleted and None returned, so the caller fetches it anew.
    pub fn open_blob(&self, digest: &Sha256Digest, size: u64) -> Option<Box<dyn Read + Send>> {
        let path = self.path(digest);
        let mut file = File::open(&path).ok()?;
        if file.metadata().ok()?.len() != size {
            let _ = fs::remove_file(&path);
            return None;
        }
        let mut whole = VerifyingReader::new(&mut file, digest.clone(), size);
        if io::copy(&mut whole, &mut io::sink()).is_err() {
            let _ = fs::remove_file(&path);
            return None;
        }
        file.seek(io::SeekFrom::Start(0)).ok()?;
        Some(Box::new(RemoveOnCorruption {
            inner: VerifyingReader::new(file, digest.clone(), size),
            path,
        }))
    }

    /// Reads a small cached blob whole, verified; a corrupt one is deleted and None returned.
    pub fn read_small(&self, digest: &Sha256Digest, size: u64, limit: u64) -> Option<Vec<u8>> {
        let path = self.path(digest);
        let file = File::open(&path).ok()?;
        match read_verified(file, digest, size, limit) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a small blob already verified by the caller, replacing a copy that does not
    /// verify. Failures are ignored: the cache is an optimisation.
    pub fn store_small(&self, digest: &Sha256Digest, bytes: &[u8]) {
        let size = bytes.len() as u64;
        if self.read_small(digest, size, size).is_some() {
            return;
        }
        let path = self.path(digest);
        let _ = crate::temporary::file_in(&self.temporary_directory()).and_then(|mut file| {
            file.write_all(bytes)?;
            crate::temporary::persist(file, &path).map_err(|error| error.error)
        });
    }

    /// Wraps a reader of verified content (it must fail rather than deliver the last byte of a
    /// blob with a bad digest, as [`VerifyingReader`] does) so that everything read is also
    /// written to the cache, and kept there once all `size` bytes have been read.
    pub fn fill_while_reading(
        &self,
        digest: &Sha256Digest,
        size: u64,
        inner: Box<dyn Read + Send>,
    ) -> Box<dyn Read + Send> {
        let path = self.path(digest);
        match crate::temporary::file_in(&self.temporary_directory()) {
            Ok(file) => Box::new(CacheFill {
                inner,
                file: Some(io::BufWriter::with_capacity(1 << 20, file)),
                path,
                remaining: size,
            }),
            Err(_) => inner,
        }
    }
}

fn default_root() -> Option<PathBuf> {
    let from = |variable: &str| {
        std::env::var_os(variable)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".cache")))
        .map(|cache_home| cache_home.join(CACHE_NAME))
}

/// Deletes the cached file when its content turns out not to match its digest.
struct RemoveOnCorruption<R> {
    inner: R,
    path: PathBuf,
}

impl<R: Read> Read for RemoveOnCorruption<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|error| {
            if error.kind() == io::ErrorKind::InvalidData {
                let _ = fs::remove_file(&self.path);
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the cached copy {} was corrupt and has been deleted; run again to fetch it anew ({error})",
                        self.path.display()
                    ),
                )
            } else {
                error
            }
        })
    }
}

/// Copies what passes through into a temporary file, renamed into the cache once the last byte
/// has been read (the inner reader has verified the whole blob by then).
struct CacheFill {
    inner: Box<dyn Read + Send>,
    /// Buffered: HTTP bodies arrive in small reads, and a write per read costs a system call.
    file: Option<io::BufWriter<NamedTempFile>>,
    path: PathBuf,
    remaining: u64,
}

impl Read for CacheFill {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(file) = &mut self.file {
            if file.write_all(&buf[..n]).is_err() {
                // A full disk must not fail the build: stop caching this blob.
                self.file = None;
                return Ok(n);
            }
            self.remaining = self.remaining.saturating_sub(n as u64);
            if self.remaining == 0 {
                let file = self.file.take().expect("checked above");
                if let Ok(file) = file.into_inner() {
                    let _ = crate::temporary::persist(file, &self.path);
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, BlobCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(Some(&dir.path().join("cache")))
            .unwrap()
            .unwrap();
        (dir, cache)
    }

    #[test]
    fn filling_keeps_verified_content_only() {
        let (_dir, cache) = cache();
        let good = b"layer bytes".to_vec();
        let digest = Sha256Digest::of(&good);
        let reader = VerifyingReader::new(io::Cursor::new(good.clone()), digest.clone(), 11);
        let mut filled = vec![0; 11];
        // Read exactly the blob's size, as an HTTP body of known length does, never to EOF.
        cache
            .fill_while_reading(&digest, 11, Box::new(reader))
            .read_exact(&mut filled)
            .unwrap();
        assert_eq!(filled, good);
        let mut cached = Vec::new();
        cache
            .open_blob(&digest, 11)
            .expect("cached")
            .read_to_end(&mut cached)
            .unwrap();
        assert_eq!(cached, good);

        let other = Sha256Digest::of(b"other");
        let bad = VerifyingReader::new(io::Cursor::new(b"not other".to_vec()), other.clone(), 9);
        let mut sink = Vec::new();
        assert!(
            cache
                .fill_while_reading(&other, 9, Box::new(bad))
                .read_to_end(&mut sink)
                .is_err()
        );
        assert!(cache.open_blob(&other, 9).is_none());
    }

    #[test]
    fn a_corrupted_cache_entry_is_deleted_when_read() {
        let (_dir, cache) = cache();
        let digest = Sha256Digest::of(b"config");
        cache.store_small(&digest, b"config");
        assert_eq!(cache.read_small(&digest, 6, 100).unwrap(), b"config");
        // Changed on disk, same size: found before use, deleted, reported as not cached.
        fs::write(cache.path(&digest), b"CONFIG").unwrap();
        assert!(cache.open_blob(&digest, 6).is_none());
        assert!(!cache.path(&digest).exists());
        // Cut short: the same.
        cache.store_small(&digest, b"config");
        fs::write(cache.path(&digest), b"conf").unwrap();
        assert!(cache.open_blob(&digest, 6).is_none());
        assert!(!cache.path(&digest).exists());
        // Changed while being read: the read fails and the copy is deleted.
        cache.store_small(&digest, b"config");
        let mut reader = cache.open_blob(&digest, 6).unwrap();
        fs::write(cache.path(&digest), b"CONFIG").unwrap();
        let mut sink = Vec::new();
        let error = reader.read_to_end(&mut sink).unwrap_err();
        assert!(error.to_string().contains("was corrupt"), "{error}");
        assert!(!cache.path(&digest).exists());
        fs::write(cache.path(&digest), b"CONFIG").unwrap();
        assert!(cache.read_small(&digest, 6, 100).is_none());
        assert!(!cache.path(&digest).exists());
    }

    #[test]
    fn opening_creates_nothing_and_storing_replaces_a_damaged_small_blob() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let cache = BlobCache::open(Some(&root)).unwrap().unwrap();
        assert!(!root.exists(), "opening the cache made {}", root.display());
        assert_eq!(cache.flag(), format!(" --cache-dir {}", root.display()));
        let digest = Sha256Digest::of(b"index");
        cache.store_small(&digest, b"index");
        assert_eq!(fs::read(cache.path(&digest)).unwrap(), b"index");
        fs::write(cache.path(&digest), b"INDEX").unwrap();
        cache.store_small(&digest, b"index");
        assert_eq!(fs::read(cache.path(&digest)).unwrap(), b"index");
        fs::write(dir.path().join("file"), b"").unwrap();
        let error = BlobCache::open(Some(&dir.path().join("file"))).unwrap_err();
        assert_eq!(error.kind(), crate::error::ErrorKind::Output);
    }

    #[test]
    fn old_temporary_files_are_removed_when_the_cache_is_opened() {
        let (dir, cache) = cache();
        let old = cache.temporary_directory().join(".tmp-old");
        let old_layer = cache.temporary_directory().join(".lambda-image-layer-old");
        let recent = cache.temporary_directory().join(".tmp-recent");
        let fresh = cache.temporary_directory().join(".tmp-fresh");
        let now = std::time::SystemTime::now();
        for (path, age) in [
            (
                &old,
                STALE_TEMPORARY_AGE + std::time::Duration::from_secs(60),
            ),
            (&old_layer, 2 * STALE_TEMPORARY_AGE),
            (
                &recent,
                STALE_TEMPORARY_AGE - std::time::Duration::from_secs(600),
            ),
            (&fresh, std::time::Duration::ZERO),
        ] {
            fs::write(path, b"partial").unwrap();
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(now - age)
                .unwrap();
        }
        BlobCache::open(Some(&dir.path().join("cache"))).unwrap();
        assert!(
            !old.exists() && !old_layer.exists(),
            "unchanged for over an hour"
        );
        assert!(
            recent.exists() && fresh.exists(),
            "may be written by a live run"
        );
    }
}
