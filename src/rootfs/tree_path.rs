//! Paths inside the root filesystem being unpacked: an entry's path as a tar holds it, made
//! relative to the tree ([`entry_components`]), and a directory of the tree found by following
//! its symlinks as the running image would, with the tree as `/` ([`TreePaths::directory`]).
//!
//! This is what keeps every write inside the tree: an absolute path or symlink target starts
//! again at the tree's root, `..` stops at it (as it does at `/`), and what is returned is a
//! path made only of real directories. Not here: what is written there (`super::unpack`).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Symlinks one lookup follows before giving up, as Linux does (`ELOOP`, path_resolution(7)).
const MAX_SYMLINK_HOPS: usize = 40;

/// Mode of a directory the tree needs but no entry made (the parent of an entry whose own
/// directory entry is missing), as Docker and containerd make them.
pub const IMPLICIT_DIRECTORY_MODE: u32 = 0o755;

/// Why a path cannot be placed in the tree.
#[derive(Debug)]
pub enum PathFault {
    /// The layer's fault: the reason, in words.
    Refused(String),
    /// The file system's: what was being done, and the error.
    Io(String, io::Error),
}

/// The components of a path as written in a tar entry (or a hard link's target), relative to
/// the tree: a leading `/` is dropped (OCI image spec layer.md: paths are relative to the root),
/// empty and `.` components are skipped, and `..` removes the component before it. A `..` that
/// would climb above the tree's root is refused.
pub fn entry_components(raw: &[u8]) -> Result<Vec<OsString>, PathFault> {
    let mut components: Vec<OsString> = Vec::new();
    for component in raw.split(|&byte| byte == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                if components.pop().is_none() {
                    return Err(PathFault::Refused(
                        "its `..` climbs out of the root filesystem".to_owned(),
                    ));
                }
            }
            name => components.push(OsStr::from_bytes(name).to_owned()),
        }
    }
    Ok(components)
}

/// Looks paths up in the tree at `root`.
pub struct TreePaths<'a> {
    pub root: &'a Path,
}

impl TreePaths<'_> {
    /// The directory that `components` name in the tree, relative to the root, made only of
    /// real directories: a symlink among them is followed inside the tree (an absolute target
    /// starts again at the tree's root, a `..` stops at it), up to 40 times. A missing directory
    /// is made ([`IMPLICIT_DIRECTORY_MODE`], its path passed to `made`) when `create` is set;
    /// else `Ok(None)`. A component that is a file or other non-directory is refused.
    pub fn directory(
        &self,
        components: &[OsString],
        create: bool,
        made: &mut dyn FnMut(&Path),
    ) -> Result<Option<PathBuf>, PathFault> {
        let mut pending: Vec<OsString> = components.iter().rev().cloned().collect();
        let mut current = PathBuf::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    current.pop();
                    continue;
                }
                _ => {}
            }
            let candidate = current.join(&component);
            let full = self.root.join(&candidate);
            match fs::symlink_metadata(&full) {
                Ok(metadata) if metadata.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(PathFault::Refused(format!(
                            "its symbolic links loop or chain more than {MAX_SYMLINK_HOPS} times \
                             (at /{})",
                            candidate.display()
                        )));
                    }
                    let target = fs::read_link(&full).map_err(|error| {
                        PathFault::Io(format!("cannot read the link {}", full.display()), error)
                    })?;
                    let target = target.as_os_str().as_bytes();
                    if target.starts_with(b"/") {
                        current = PathBuf::new();
                    }
                    pending.extend(
                        target
                            .split(|&byte| byte == b'/')
                            .rev()
                            .map(|part| OsStr::from_bytes(part).to_owned()),
                    );
                }
                Ok(metadata) if metadata.is_dir() => current = candidate,
                Ok(_) => {
                    return Err(PathFault::Refused(format!(
                        "/{} is not a directory",
                        candidate.display()
                    )));
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    make_directory(&full, IMPLICIT_DIRECTORY_MODE)?;
                    made(&candidate);
                    current = candidate;
                }
                Err(error) => {
                    return Err(PathFault::Io(
                        format!("cannot look at {}", full.display()),
                        error,
                    ));
                }
            }
        }
        Ok(Some(current))
    }
}

/// Makes the directory `path` with exactly `mode` (the umask left out).
pub fn make_directory(path: &Path, mode: u32) -> Result<(), PathFault> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|error| PathFault::Io(format!("cannot make {}", path.display()), error))
}
