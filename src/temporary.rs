//! The temporary files and directories a run makes beside its outputs (`.lambda-image-*`) and in
//! the cache's `tmp/` (layers being written, blobs being downloaded, records), remembered so that
//! a run stopped by SIGINT or SIGTERM removes them ([`remove_all`]) before it exits. A run that
//! ends otherwise needs no list: they are `tempfile` values, deleted when dropped or renamed into
//! place. A path renamed into place is forgotten ([`persist`]); one renamed otherwise no longer
//! exists under its temporary name, so removing the list never touches an output.
//!
//! A writer that makes many entries in a remembered directory (an image's root filesystem)
//! does each step holding [`writing`]: on a signal, [`remove_all`] first waits for the step
//! under way to end and stops every later one, so nothing is made in a directory while it is
//! being removed (which would leave part of it behind), and a directory is made and remembered,
//! or renamed into place and forgotten, as one step.
//!
//! Also the pieces every writer of an output shares: the directory an output goes in
//! ([`parent_directory`], which must exist) and the temporary file or directory beside it that
//! becomes the output once renamed ([`output_temporary_file`], [`output_temporary_directory`]).
//! Not here: what is written (the sinks, the `.zip` writer).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use crate::error::Error;

/// Every temporary path made by this run, in the order made.
static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Read-held by each [`writing`] step; write-held, for good, by [`remove_all`].
static WRITERS: RwLock<()> = RwLock::new(());
/// Set by [`remove_all`]: no [`writing`] step starts any more.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// How long [`remove_all`] waits for the [`writing`] steps under way to end (each is one
/// entry or one 64 KiB write, far shorter) before removing anyway.
const STEP_WAIT: Duration = Duration::from_secs(10);

/// A step of writing into a remembered directory; see [`writing`].
#[must_use]
pub struct Writing(#[allow(dead_code)] RwLockReadGuard<'static, ()>);

/// Starts a step of writing into a remembered temporary directory (making an entry, writing a
/// buffer, renaming the result into place and forgetting it), ended when the value is dropped.
/// Once [`remove_all`] has begun, never returns: the thread waits for the process to exit.
/// Steps must not nest on one thread, and must not wait on anything slow (hold it around the
/// write, not around the read from a network).
pub fn writing() -> Writing {
    loop {
        if !STOPPING.load(Ordering::SeqCst) {
            // Held for good once removal began: this thread then waits here until the exit.
            let guard = WRITERS.read().unwrap_or_else(|poison| poison.into_inner());
            if !STOPPING.load(Ordering::SeqCst) {
                return Writing(guard);
            }
        }
        std::thread::park();
    }
}

/// Remembers `path` (a temporary file or directory with a random `.lambda-image-` name) for
/// [`remove_all`].
pub fn remember(path: &Path) {
    PATHS
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .push(path.to_owned());
}

/// Forgets `path` (renamed into place: it is no longer a temporary).
pub fn forget(path: &Path) {
    let mut paths = PATHS.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(index) = paths.iter().rposition(|remembered| remembered == path) {
        paths.remove(index);
    }
}

/// A new temporary file in `directory` (`tempfile`'s `.tmp*` name), remembered for
/// [`remove_all`]; [`persist`] renames it into place.
pub fn file_in(directory: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let file = tempfile::NamedTempFile::new_in(directory)?;
    remember(file.path());
    Ok(file)
}

/// Renames the temporary `file` to `path` and forgets it; on failure it stays remembered (and
/// is deleted when the value returned in the error is dropped).
pub fn persist(
    file: tempfile::NamedTempFile,
    path: &Path,
) -> Result<std::fs::File, tempfile::PersistError> {
    let temporary = file.path().to_owned();
    let persisted = file.persist(path)?;
    forget(&temporary);
    Ok(persisted)
}

/// A temporary file beside an output, created readable by all (0644 less the umask) rather than
/// tempfile's private 0600, because it becomes the output once renamed.
/// Remembered for removal if the run is interrupted ([`remove_all`]).
pub fn output_temporary_file(directory: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let file = tempfile::Builder::new()
        .prefix(".lambda-image-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(directory)?;
    remember(file.path());
    Ok(file)
}

/// A temporary directory beside an output, 0755 less the umask, for the same reason.
/// Remembered for removal if the run is interrupted ([`remove_all`]).
pub fn output_temporary_directory(directory: &Path) -> std::io::Result<tempfile::TempDir> {
    let temporary = tempfile::Builder::new()
        .prefix(".lambda-image-")
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir_in(directory)?;
    remember(temporary.path());
    Ok(temporary)
}

/// The directory `path` is (or will be) in; it must exist, else a clear output error.
pub fn parent_directory(path: &Path) -> crate::error::Result<PathBuf> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        let problem = if parent.exists() {
            format!("{} is not a directory", parent.display())
        } else {
            format!("directory {} does not exist", parent.display())
        };
        return Err(
            Error::output(format!("cannot write {}: {problem}", path.display()))
                .hint("create the directory first, or choose another output path"),
        );
    }
    Ok(parent)
}

/// Removes every remembered path that still exists, directories with their contents, the
/// newest first (files inside a directory before it), once the [`writing`] steps under way
/// have ended (no later one starts). Best effort: a writer that does not take [`writing`]
/// steps may still be writing into one, so a directory is tried a few times; what cannot be
/// removed stays (named `.lambda-image-*`, as the documentation says a killed run may leave).
pub fn remove_all() {
    stop_writing();
    remove_where(|_| true);
}

/// Stops every [`writing`] step from starting and waits (up to [`STEP_WAIT`]) for those under
/// way to end.
fn stop_writing() {
    STOPPING.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + STEP_WAIT;
    while Instant::now() < deadline {
        match WRITERS.try_write() {
            Ok(guard) => return std::mem::forget(guard),
            Err(std::sync::TryLockError::Poisoned(poison)) => {
                return std::mem::forget(poison.into_inner());
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// Removes the directory `path` with everything in it, even where a mode such as 0555 (an
/// image's read-only directories, unpacked by an ordinary user) stops the first attempt: the
/// directories below it are then made writable by their owner and it is tried again. Best
/// effort: what cannot be removed stays.
pub fn remove_tree(path: &Path) {
    if std::fs::remove_dir_all(path).is_ok() || std::fs::symlink_metadata(path).is_err() {
        return;
    }
    make_owner_writable(path);
    let _ = std::fs::remove_dir_all(path);
}

fn make_owner_writable(path: &Path) {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let mode = metadata.permissions().mode() | 0o700;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    if let Ok(listing) = std::fs::read_dir(path) {
        for child in listing.flatten() {
            make_owner_writable(&child.path());
        }
    }
}

/// [`remove_all`] for the remembered paths `chosen` picks (tests pick their own directory, as
/// tests running at the same time remember theirs).
fn remove_where(chosen: impl Fn(&Path) -> bool) {
    let paths: Vec<PathBuf> = {
        let mut remembered = PATHS.lock().unwrap_or_else(|poison| poison.into_inner());
        let (taken, kept) = std::mem::take(&mut *remembered)
            .into_iter()
            .partition(|path| chosen(path));
        *remembered = kept;
        taken
    };
    for path in paths.iter().rev() {
        for _ in 0..3 {
            match std::fs::symlink_metadata(path) {
                Err(_) => break,
                Ok(meta) if meta.is_dir() => remove_tree(path),
                Ok(_) => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_paths_are_removed_and_gone_ones_skipped() {
        let parent = tempfile::tempdir().unwrap();
        let directory = parent.path().join(".lambda-image-dir");
        std::fs::create_dir_all(directory.join("blobs/sha256")).unwrap();
        std::fs::write(directory.join("blobs/sha256/x"), b"x").unwrap();
        let file = parent.path().join(".lambda-image-file");
        std::fs::write(&file, b"y").unwrap();
        let renamed = parent.path().join(".lambda-image-renamed");
        let output = parent.path().join("output");
        std::fs::write(&renamed, b"z").unwrap();
        remember(&directory);
        remember(&file);
        remember(&renamed);
        std::fs::rename(&renamed, &output).unwrap();
        remove_where(|path| path.starts_with(parent.path()));
        assert!(!directory.exists() && !file.exists());
        assert!(output.exists(), "an output renamed into place stays");
    }

    #[test]
    fn a_persisted_file_is_forgotten_and_a_pending_one_removed() {
        let parent = tempfile::tempdir().unwrap();
        let kept = file_in(parent.path()).unwrap();
        let pending = file_in(parent.path()).unwrap();
        let pending_path = pending.path().to_owned();
        std::mem::forget(pending); // as a run stopped mid-write: never dropped
        let kept_path = kept.path().to_owned();
        let place = parent.path().join("blob");
        persist(kept, &place).unwrap();
        let remembered = PATHS.lock().unwrap().clone();
        assert!(remembered.contains(&pending_path));
        assert!(
            !remembered.contains(&kept_path),
            "a persisted file is forgotten"
        );
        remove_where(|path| path.starts_with(parent.path()));
        assert!(!pending_path.exists(), "the file being written is removed");
        assert!(place.exists(), "the persisted one stays");
    }
}
