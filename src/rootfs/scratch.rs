//! Where a tree is written before it is whole: a temporary directory `<prefix>XXXXXX` (in the
//! cache's `tmp/`, or in `$TMPDIR` without a cache) holding `tree`, the tree itself, and
//! `lock`, an empty file the run writing the tree holds an exclusive flock(2) on while the
//! directory is its own.
//!
//! The directory is made and remembered for [`crate::temporary`]'s removal on SIGINT/SIGTERM as
//! one [`crate::temporary::writing`] step, and the tree is renamed into place and the directory
//! forgotten as another, so a signal never leaves one behind. A run killed otherwise (SIGKILL, a
//! crash) leaves its directory; [`remove_dead`] removes it in a later run as soon as its lock
//! can be taken (its owner is gone: the kernel releases a flock with the process), and never
//! while its owner lives. Where flock(2) does not work (some network filesystems), or for a
//! directory without `lock` (being made this instant, or left by an older version), the age
//! rule of the cache's `tmp/` applies instead ([`STALE_TEMPORARY_AGE`]), when asked for.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::cache::blobs::STALE_TEMPORARY_AGE;
use crate::temporary::{remove_tree, writing};

/// The name of the tree inside the temporary directory.
const TREE: &str = "tree";
/// The name of the lock file inside the temporary directory.
const LOCK: &str = "lock";
/// The lock file's name before it is locked (never taken for `LOCK` by a sweeper).
const LOCK_BEING_MADE: &str = "lock.new";

/// A temporary directory holding a tree being written (or, without a cache, the tree a run
/// uses), removed with it when dropped unless renamed into place ([`Scratch::into_place`]).
#[derive(Debug)]
pub struct Scratch {
    /// The temporary directory; `None` once renamed into place.
    directory: Option<PathBuf>,
    /// Its `tree`, which exists and is empty at first.
    pub tree: PathBuf,
    /// `lock`, held (flock `LOCK_EX`) while this value lives; `None` where flock failed.
    _lock: Option<File>,
}

impl Scratch {
    /// Makes `<prefix>XXXXXX` in `parent` (`None`: the system's temporary directory,
    /// `$TMPDIR`), its `tree` and its held `lock`. Errors: the directory or the tree cannot be
    /// made (nothing is left then); a lock that cannot be taken is no error.
    pub fn make(parent: Option<&Path>, prefix: &str) -> io::Result<Scratch> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(prefix);
        let directory = {
            let _step = writing();
            let made = match parent {
                Some(parent) => builder.tempdir_in(parent),
                None => builder.tempdir(),
            }?;
            let directory = made.keep();
            // The sandbox takes only an absolute root ($TMPDIR may be relative).
            let directory = std::path::absolute(&directory).unwrap_or(directory);
            crate::temporary::remember(&directory);
            directory
        };
        let mut scratch = Scratch {
            tree: directory.join(TREE),
            directory: Some(directory.clone()),
            _lock: None,
        };
        scratch._lock = lock(&directory);
        fs::create_dir(&scratch.tree)?;
        Ok(scratch)
    }

    /// Renames the tree to `place` and removes the rest of the temporary directory, which is
    /// forgotten. On failure the value is returned with the error (and removes everything
    /// when dropped).
    pub fn into_place(mut self, place: &Path) -> Result<(), (Scratch, io::Error)> {
        let _step = writing();
        if let Err(error) = fs::rename(&self.tree, place) {
            return Err((self, error));
        }
        if let Some(directory) = self.directory.take() {
            let _ = fs::remove_file(directory.join(LOCK));
            let _ = fs::remove_dir(&directory);
            crate::temporary::forget(&directory);
        }
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(directory) = self.directory.take() {
            let _step = writing();
            remove_tree(&directory);
            crate::temporary::forget(&directory);
        }
    }
}

/// `directory`'s lock file, made under another name, locked, then renamed, so that a sweeper
/// never finds `lock` unlocked while its owner lives. `None` where it cannot be made or locked.
fn lock(directory: &Path) -> Option<File> {
    let being_made = directory.join(LOCK_BEING_MADE);
    let file = File::create(&being_made).ok()?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let _ = fs::remove_file(&being_made);
        return None;
    }
    fs::rename(&being_made, directory.join(LOCK)).ok()?;
    Some(file)
}

/// Whether a scratch directory's owner is gone, by its lock: `Some(true)` when the lock could
/// be taken (it is then held until `held` is dropped), `Some(false)` when another process holds
/// it, `None` when there is no lock or flock(2) does not work here.
fn owner_gone(directory: &Path, held: &mut Option<File>) -> Option<bool> {
    let file = File::open(directory.join(LOCK)).ok()?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        *held = Some(file);
        return Some(true);
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EWOULDBLOCK) => Some(false),
        _ => None,
    }
}

/// Removes the `<prefix>*` directories in `parent` that runs now gone left behind: those whose
/// lock can be taken, and, with `by_age`, those without a working lock unchanged for
/// [`STALE_TEMPORARY_AGE`]. A directory whose lock another process holds is kept, as is
/// anything this user cannot open. Best effort: nothing is reported.
pub fn remove_dead(parent: &Path, prefix: &str, by_age: bool) {
    let Ok(listing) = fs::read_dir(parent) else {
        return;
    };
    for entry in listing.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let Ok(metadata) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if !metadata.is_dir() {
            continue;
        }
        let mut held = None;
        let dead = match owner_gone(&entry.path(), &mut held) {
            Some(gone) => gone,
            None => {
                by_age
                    && metadata
                        .modified()
                        .ok()
                        .and_then(|modified| modified.elapsed().ok())
                        .is_some_and(|age| age > STALE_TEMPORARY_AGE)
            }
        };
        if dead {
            remove_tree(&entry.path());
        }
    }
}
