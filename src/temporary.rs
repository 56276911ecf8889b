//! The temporary files and directories a run makes beside its outputs (`.lambda-image-*`),
//! remembered so that a run stopped by SIGINT or SIGTERM removes them ([`remove_all`]) before it
//! exits. A run that ends otherwise needs no list: they are `tempfile` values, deleted when
//! dropped or renamed into place as the output. A path already renamed into place no longer
//! exists under its temporary name, so removing the list never touches an output.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// Removes every remembered path that still exists, directories with their contents, the
/// newest first (files inside a directory before it). Best effort: the command may still be
/// writing into one, so a directory is tried a few times; what cannot be removed stays (named
/// `.lambda-image-*`, as the documentation says a killed run may leave).
pub fn remove_all() {
    let paths = std::mem::take(&mut *PATHS.lock().unwrap_or_else(|poison| poison.into_inner()));
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
        remove_all();
        assert!(!directory.exists() && !file.exists());
        assert!(output.exists(), "an output renamed into place stays");
    }
}
