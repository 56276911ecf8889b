//! The temporary files and directories a run makes beside its outputs (`.lambda-image-*`) and in
//! the cache's `tmp/` (layers being written, blobs being downloaded, records), remembered so that
//! a run stopped by SIGINT or SIGTERM removes them ([`remove_all`]) before it exits. A run that
//! ends otherwise needs no list: they are `tempfile` values, deleted when dropped or renamed into
//! place. A path renamed into place is forgotten ([`persist`]); one renamed otherwise no longer
//! exists under its temporary name, so removing the list never touches an output.
//!
//! Also the pieces every writer of an output shares: the directory an output goes in
//! ([`parent_directory`], which must exist) and the temporary file or directory beside it that
//! becomes the output once renamed ([`output_temporary_file`], [`output_temporary_directory`]).
//! Not here: what is written (the sinks, the `.zip` writer).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Error;

/// Every temporary path made by this run, in the order made.
static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

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
/// newest first (files inside a directory before it). Best effort: the command may still be
/// writing into one, so a directory is tried a few times; what cannot be removed stays (named
/// `.lambda-image-*`, as the documentation says a killed run may leave).
pub fn remove_all() {
    remove_where(|_| true);
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
            let removed = match std::fs::symlink_metadata(path) {
                Err(_) => break,
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
                Ok(_) => std::fs::remove_file(path),
            };
            if removed.is_ok() {
                break;
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
