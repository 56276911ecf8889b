//! Which of the cache's trees stay: each run holds a lock on the tree it uses, marks it used,
//! and afterwards removes all but the [`TREES_KEPT`] most recently used trees of its ownership
//! directory that no live run holds ([`prune`]).
//!
//! Beside each tree `<chain id hex>` (in `<cache>/rootfs/<preserved|user>/sha256/`) is
//! `<chain id hex>.lock`, an empty file: a run holds a shared flock(2) on it ([`TreeLock`]) from
//! before it looks for the tree until its [`super::RootFilesystem`] is dropped (a `serve` holds
//! it for as long as it serves), and sets its mtime to now, which is when the tree was last
//! used. [`prune`] removes a tree only once it holds the exclusive lock (never blocking for
//! it): it renames the tree into the cache's `tmp/`, in a directory [`super::scratch`] makes (so
//! that a prune stopped half way is finished by the next run's sweep), removes it there, then
//! removes the record and the lock file, the lock still held. A run whose lock file was removed
//! so between its open and its flock sees the file gone or replaced and takes the new one.
//! Where flock(2) does not work (some network filesystems), runs use trees unlocked and nothing
//! is removed. Not here: making trees (`super`).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::scratch::Scratch;

/// Trees kept per ownership directory. A tree is a whole image unpacked (about 100 MB for one
/// on provided.al2023), and every build of a function changes its top layer, so its ChainID:
/// without a bound, each edit-build-invoke cycle would leave one more. Four keep the function
/// being worked on, the build before it, and a couple of other functions or bases warm, for
/// about four images' worth of disk.
pub const TREES_KEPT: usize = 4;

/// Times a run tries to lock a lock file that a prune removes under it, before giving up.
const LOCK_ATTEMPTS: usize = 20;

/// The lock file of the tree at `place` (`<chain id hex>.lock`).
pub fn lock_path(place: &Path) -> PathBuf {
    place.with_extension("lock")
}

/// The record of the tree at `place` (`<chain id hex>.json`, [`super::unsupported`]).
pub fn record_path(place: &Path) -> PathBuf {
    place.with_extension("json")
}

/// A shared flock(2) on a tree's lock file, held while this value lives: no [`prune`] removes
/// the tree meanwhile.
#[derive(Debug)]
pub struct TreeLock {
    _file: File,
}

impl TreeLock {
    /// Takes the shared lock of the tree at `place` (waiting while a prune holds it, which is
    /// only for a rename), making the lock file when missing, and sets the file's mtime to now
    /// (best effort). `Ok(None)` where flock(2) does not work here. Errors: the lock file can
    /// be neither made nor opened (a cache this user cannot write), or kept being removed
    /// under this run.
    pub fn shared(place: &Path) -> io::Result<Option<TreeLock>> {
        let path = lock_path(place);
        for _ in 0..LOCK_ATTEMPTS {
            let file = open_lock(&path)?;
            if let Err(error) = flock(&file, libc::LOCK_SH) {
                return if unsupported(&error) {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
            if still_at(&file, &path) {
                touch(&file);
                return Ok(Some(TreeLock { _file: file }));
            }
        }
        Err(io::Error::other(format!(
            "{} kept being removed while this run locked it",
            path.display()
        )))
    }
}

/// Opens (making it when missing) a lock file, for writing where this user may, else only for
/// reading (flock works on either).
fn open_lock(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .or_else(|_| File::open(path))
}

/// Sets `file`'s atime and mtime to now, through futimens(2) with no times, which takes only
/// write access (an explicit time would take ownership). Best effort: a lock file of another
/// user's that this one cannot write keeps its times.
fn touch(file: &File) {
    // SAFETY: futimens(2) on a descriptor `file` owns; a null `times` means now.
    unsafe {
        libc::futimens(file.as_raw_fd(), std::ptr::null());
    }
}

/// flock(2) with `operation`, retried when a signal interrupts it.
fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock(2) on a descriptor `file` owns, for as long as the call.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Whether flock(2) failed because the filesystem does not do it.
fn unsupported(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS)
    )
}

/// Whether `file` is still the file at `path` (a prune removes a lock file once it holds it).
fn still_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

/// A tree of the ownership directory.
struct Candidate {
    /// The chain ID's hex, the tree's name.
    name: String,
    /// When it was last used: its lock file's mtime, else the tree's own (an older version
    /// made no lock files).
    used: SystemTime,
}

/// Removes from `directory` (`<cache>/rootfs/<preserved|user>/sha256`) every tree but the
/// `keep` most recently used, except those a live run holds (their lock is busy), and what is
/// left of trees already gone (a record or lock file no run holds). A tree goes through
/// `temporary` (the cache's `tmp/`, on the same filesystem). Trees of another user are left to
/// them (unless this run is root's). Best effort: nothing is reported, and what cannot be
/// removed stays.
pub fn prune(directory: &Path, temporary: &Path, keep: usize) {
    let Ok(listing) = fs::read_dir(directory) else {
        return;
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut leftovers: Vec<String> = Vec::new();
    for entry in listing.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let (name, is_tree) = match file_name.split_once('.') {
            None => (file_name, true),
            Some((name, "json" | "lock")) => (name, false),
            Some(_) => continue,
        };
        if !is_chain_id_hex(name) {
            continue;
        }
        if is_tree {
            let Ok(metadata) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if !metadata.is_dir() {
                continue;
            }
            let used = fs::metadata(lock_path(&entry.path()))
                .and_then(|lock| lock.modified())
                .or_else(|_| metadata.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            candidates.push(Candidate {
                name: name.to_owned(),
                used,
            });
        } else if !directory.join(name).exists() {
            leftovers.push(name.to_owned());
        }
    }
    candidates.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.name.cmp(&b.name)));
    leftovers.sort();
    leftovers.dedup();
    let stale = candidates.into_iter().skip(keep).map(|tree| tree.name);
    for name in stale {
        remove(directory, Some(temporary), &name);
    }
    for name in leftovers {
        remove(directory, None, &name);
    }
}

/// Removes the record and lock file of the tree `name` in `directory` when there is no tree
/// and no run holds its lock (after a run that failed to make the tree). Best effort.
pub fn remove_leftovers(directory: &Path, name: &str) {
    remove(directory, None, name);
}

/// Whether `name` is a chain ID's hex (64 lowercase hex digits), as trees are named.
fn is_chain_id_hex(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Removes the tree `name` in `directory` (through `temporary`; with `None`, a tree there is
/// kept and so are its files), its record and its lock file, if its lock can be taken at once
/// (exclusive): else a run uses it, and it stays.
fn remove(directory: &Path, temporary: Option<&Path>, name: &str) {
    let place = directory.join(name);
    let lock = lock_path(&place);
    let Ok(file) = open_lock(&lock) else {
        return;
    };
    if flock(&file, libc::LOCK_EX | libc::LOCK_NB).is_err() || !still_at(&file, &lock) {
        return;
    }
    let mut moved = None;
    if let Ok(metadata) = fs::symlink_metadata(&place) {
        // SAFETY: geteuid(2) cannot fail.
        let me = unsafe { libc::geteuid() };
        let Some(temporary) = temporary else {
            return;
        };
        if !metadata.is_dir() || (me != 0 && metadata.uid() != me) {
            return;
        }
        let Ok(scratch) = Scratch::make(Some(temporary), super::TEMPORARY_PREFIX) else {
            return;
        };
        // Over the scratch's empty `tree`.
        if fs::rename(&place, &scratch.tree).is_err() {
            return;
        }
        moved = Some(scratch);
    }
    let _ = fs::remove_file(record_path(&place));
    let _ = fs::remove_file(&lock);
    // Unlocked before the tree is removed, so that a run waiting for the lock waits only for
    // the rename.
    drop(file);
    drop(moved);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that opened a lock file a prune then removed (or replaced) must not trust it.
    #[test]
    fn a_lock_file_removed_or_replaced_after_it_was_opened_is_not_still_there() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("tree.lock");
        let held = open_lock(&path).unwrap();
        assert!(still_at(&held, &path));
        fs::remove_file(&path).unwrap();
        assert!(!still_at(&held, &path), "removed");
        let _replacement = open_lock(&path).unwrap();
        assert!(!still_at(&held, &path), "replaced by another file");
        assert!(still_at(&open_lock(&path).unwrap(), &path));
    }

    /// Only a ChainID's hex names a tree: what else is in the directory is never pruned.
    #[test]
    fn only_64_lowercase_hex_digits_name_a_tree() {
        assert!(is_chain_id_hex(&"0123456789abcdef".repeat(4)));
        for name in [
            "abc".to_owned(),
            "a".repeat(63),
            "a".repeat(65),
            "A".repeat(64),
            "g".repeat(64),
            format!("{}.", "a".repeat(63)),
            String::new(),
        ] {
            assert!(!is_chain_id_hex(&name), "{name}");
        }
    }
}
