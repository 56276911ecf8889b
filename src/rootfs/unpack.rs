//! Applying layer tars, one after another, to a directory on disk: what each entry becomes
//! (file, directory, symlink, hard link), OCI whiteouts, a later entry replacing an earlier one,
//! modes, owners and mtimes (read by `super::attributes`), and the mount points the sandbox
//! needs once the last layer is in. Each entry is also shown to `check`'s model of the tree
//! ([`crate::image::filesystem::Filesystem::scan_entry`]), and what Lambda's unpacker refuses
//! (hard links, missing parent directories) is noted per layer, never refused here.
//!
//! Rules are those of the OCI image spec, layer.md ("Changesets", "Whiteouts"). Every path is
//! placed through [`super::tree_path`], so nothing is written outside the tree. Every write is
//! done in a [`crate::temporary::writing`] step (an entry, a buffer of a file's content, the
//! finishing), so that a run stopped by a signal removes the tree only once no write is under
//! way. Not here: where the tree lives, the cache, decompression and the diff_id check
//! (`super`).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::attributes::{AttributeFault, Attributes, attributes, set_mtime, system_time};
use super::tree_path::{
    IMPLICIT_DIRECTORY_MODE, PathFault, TreePaths, entry_components, make_directory,
};
use super::unsupported::RefusedEntries;
use super::{MOUNT_POINT_DIRECTORIES, MOUNT_POINT_FILES, Ownership};
use crate::image::filesystem::{Capture, Filesystem};

/// The directory entry an opaque whiteout is (layer.md "Opaque Whiteout").
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The prefix of a whiteout file's name (layer.md "Whiteouts").
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The mode of an `/etc` made for the mount point files (as distributions have it).
const ETC_MODE: u32 = 0o755;

/// Why a layer could not be applied.
#[derive(Debug)]
pub enum LayerFault {
    /// The layer's bytes could not be read (a bad compressed digest, corrupt gzip or tar).
    Read(io::Error),
    /// An entry of the layer is refused: its path (as the tar has it) and why.
    Refused { entry: String, reason: String },
    /// The tree could not be written: what was being done, and the error.
    Write(String, io::Error),
}

/// An entry's fault, before the entry's name is added.
enum EntryFault {
    Read(io::Error),
    Refused(String),
    Write(String, io::Error),
}

impl From<AttributeFault> for EntryFault {
    fn from(fault: AttributeFault) -> Self {
        match fault {
            AttributeFault::Read(error) => EntryFault::Read(error),
            AttributeFault::Refused(reason) => EntryFault::Refused(reason),
        }
    }
}

impl From<PathFault> for EntryFault {
    fn from(fault: PathFault) -> Self {
        match fault {
            PathFault::Refused(reason) => EntryFault::Refused(reason),
            PathFault::Io(doing, error) => EntryFault::Write(doing, error),
        }
    }
}

pub struct Unpacker {
    root: PathBuf,
    ownership: Ownership,
    /// Every directory an entry made or named, with what is applied to it after the last
    /// layer ([`Unpacker::finish`]): until then each stays writable by its owner (this process).
    directories: BTreeMap<PathBuf, Attributes>,
    /// The layers' entries as `check` sees them, to find what Lambda refuses.
    scan: Filesystem,
    buffer: Vec<u8>,
}

impl Unpacker {
    pub fn new(root: &Path, ownership: Ownership) -> Self {
        let mut directories = BTreeMap::new();
        directories.insert(
            PathBuf::new(),
            Attributes {
                mode: IMPLICIT_DIRECTORY_MODE,
                uid: 0,
                gid: 0,
                mtime: None,
            },
        );
        Self {
            root: root.to_owned(),
            ownership,
            directories,
            scan: Filesystem::default(),
            buffer: vec![0; 1 << 16],
        }
    }

    /// Applies one uncompressed layer tar over the tree, reading `tar` to the end of the
    /// archive (not past it: the caller reads what follows the end blocks). Returns the
    /// layer's entries that Lambda refuses (hard links, missing parent directories), which
    /// are unpacked all the same.
    pub fn apply_layer(&mut self, tar: &mut dyn Read) -> Result<RefusedEntries, LayerFault> {
        // Paths (relative) this layer wrote, with their ancestors: whiteouts hide only what
        // lower layers made.
        let mut touched = HashSet::new();
        let mut refused = RefusedEntries::default();
        let mut scan = self.scan.start_layer();
        let metadata_only = Capture {
            read: &|_, _| None,
            keep: &|_| 0,
        };
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().map_err(LayerFault::Read)? {
            let mut entry = entry.map_err(LayerFault::Read)?;
            let found = self
                .scan
                .scan_entry(&mut scan, &mut entry, &metadata_only)
                .map_err(LayerFault::Read)?;
            refused.note(found);
            let raw = entry.path_bytes().into_owned();
            self.apply_entry(&mut entry, &raw, &mut touched)
                .map_err(|fault| match fault {
                    EntryFault::Read(error) => LayerFault::Read(error),
                    EntryFault::Refused(reason) => LayerFault::Refused {
                        entry: String::from_utf8_lossy(&raw).into_owned(),
                        reason,
                    },
                    EntryFault::Write(doing, error) => LayerFault::Write(doing, error),
                })?;
        }
        Ok(refused)
    }

    fn apply_entry(
        &mut self,
        entry: &mut tar::Entry<'_, &mut dyn Read>,
        raw: &[u8],
        touched: &mut HashSet<PathBuf>,
    ) -> Result<(), EntryFault> {
        // One step for everything but a file's content, which takes a step per buffer.
        let step = crate::temporary::writing();
        let components = entry_components(raw)?;
        let kind = entry.header().entry_type();
        let paths = TreePaths { root: &self.root };
        let Some((name, parents)) = components.split_last() else {
            // The root itself (`./`): only a directory entry means anything there.
            if kind == tar::EntryType::Directory {
                let attributes = attributes(entry)?;
                self.directories.insert(PathBuf::new(), attributes);
            }
            return Ok(());
        };

        if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX) {
            let Some(directory) = paths.directory(parents, false, &mut |_| {})? else {
                return Ok(()); // nothing below a directory that does not exist
            };
            if name.as_bytes() == OPAQUE_MARKER {
                self.remove_lower_children(&directory, touched)?;
            } else if !matches!(hidden, b"" | b"." | b"..") {
                let path = directory.join(OsStr::from_bytes(hidden));
                if !touched.contains(&path) {
                    self.remove(&path)?;
                }
            }
            return Ok(());
        }

        let Some(directory) = paths.directory(parents, true, &mut |made| {
            touched.insert(made.to_owned());
        })?
        else {
            return Ok(());
        };
        let path = directory.join(name);
        for ancestor in path.ancestors() {
            touched.insert(ancestor.to_owned());
        }
        let full = self.root.join(&path);
        let existing = fs::symlink_metadata(&full).ok();
        match kind {
            tar::EntryType::Directory => {
                let attributes = attributes(entry)?;
                if !existing.as_ref().is_some_and(fs::Metadata::is_dir) {
                    if existing.is_some() {
                        self.remove(&path)?;
                    }
                    make_directory(&full, IMPLICIT_DIRECTORY_MODE)?;
                }
                self.directories.insert(path, attributes);
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let attributes = attributes(entry)?;
                if existing.is_some() {
                    self.remove(&path)?;
                }
                self.write_file(entry, &full, attributes, step)?;
            }
            tar::EntryType::Symlink => {
                let attributes = attributes(entry)?;
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| EntryFault::Refused("a symlink without a target".to_owned()))?
                    .into_owned();
                if existing.is_some() {
                    self.remove(&path)?;
                }
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &full)
                    .map_err(|error| writing("make the symlink", &full, error))?;
                if self.ownership == Ownership::Preserved {
                    std::os::unix::fs::lchown(&full, Some(attributes.uid), Some(attributes.gid))
                        .map_err(|error| writing("change the owner of", &full, error))?;
                }
                if let Some(mtime) = attributes.mtime {
                    set_mtime(&full, mtime)
                        .map_err(|error| writing("set the mtime of", &full, error))?;
                }
            }
            tar::EntryType::Link => {
                let target = self.hard_link_target(entry, &path)?;
                if target == path {
                    return Ok(());
                }
                if existing.is_some() {
                    self.remove(&path)?;
                }
                fs::hard_link(self.root.join(&target), &full)
                    .map_err(|error| writing("make the hard link", &full, error))?;
            }
            _ => {
                // Devices (the sandbox mounts its own /dev), FIFOs and anything else are not
                // made; as non-directories they still replace what was there.
                if existing.is_some() {
                    self.remove(&path)?;
                }
            }
        }
        Ok(())
    }

    /// The path (relative) a hard-link entry at `path` links to: already in the tree, not a
    /// directory, and not below `path` (which the link replaces).
    fn hard_link_target(
        &self,
        entry: &tar::Entry<'_, &mut dyn Read>,
        path: &Path,
    ) -> Result<PathBuf, EntryFault> {
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| EntryFault::Refused("a hard link without a target".to_owned()))?;
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let components = entry_components(&raw).map_err(|fault| match fault {
            PathFault::Refused(reason) => {
                EntryFault::Refused(format!("the hard link's target {shown}: {reason}"))
            }
            other => other.into(),
        })?;
        let missing = || {
            EntryFault::Refused(format!(
                "the hard link's target {shown} is not among the entries unpacked before it"
            ))
        };
        let (name, parents) = components.split_last().ok_or_else(missing)?;
        let paths = TreePaths { root: &self.root };
        let directory = paths
            .directory(parents, false, &mut |_| {})?
            .ok_or_else(missing)?;
        let target = directory.join(name);
        match fs::symlink_metadata(self.root.join(&target)) {
            Ok(metadata) if metadata.is_dir() => Err(EntryFault::Refused(format!(
                "the hard link's target {shown} is a directory"
            ))),
            Ok(_) if target != path && target.starts_with(path) => Err(EntryFault::Refused(
                format!("the hard link's target {shown} is inside the entry it replaces"),
            )),
            Ok(_) => Ok(target),
            Err(_) => Err(missing()),
        }
    }

    /// Writes a regular file's content to `full` (which does not exist), then its owner, mode
    /// and mtime: chown first, since it clears setuid and setgid. `step`, the entry's
    /// [`crate::temporary::writing`] step, ends once the file is made; each buffer written takes
    /// a step of its own.
    fn write_file(
        &mut self,
        entry: &mut tar::Entry<'_, &mut dyn Read>,
        full: &Path,
        attributes: Attributes,
        step: crate::temporary::Writing,
    ) -> Result<(), EntryFault> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(full)
            .map_err(|error| writing("create", full, error))?;
        // Not while reading: the layer may come slowly from a registry.
        drop(step);
        loop {
            let read = entry.read(&mut self.buffer).map_err(EntryFault::Read)?;
            if read == 0 {
                break;
            }
            let _step = crate::temporary::writing();
            file.write_all(&self.buffer[..read])
                .map_err(|error| writing("write", full, error))?;
        }
        let _step = crate::temporary::writing();
        self.set_attributes(&file, full, attributes)
    }

    fn set_attributes(
        &self,
        file: &File,
        full: &Path,
        attributes: Attributes,
    ) -> Result<(), EntryFault> {
        if self.ownership == Ownership::Preserved {
            std::os::unix::fs::fchown(file, Some(attributes.uid), Some(attributes.gid))
                .map_err(|error| writing("change the owner of", full, error))?;
        }
        file.set_permissions(fs::Permissions::from_mode(attributes.mode))
            .map_err(|error| writing("set the mode of", full, error))?;
        if let Some((seconds, nanoseconds)) = attributes.mtime {
            file.set_modified(system_time(seconds, nanoseconds))
                .map_err(|error| writing("set the mtime of", full, error))?;
        }
        Ok(())
    }

    /// Removes `path` (relative) and everything below it, if it exists; directories below it
    /// are forgotten.
    fn remove(&mut self, path: &Path) -> Result<(), EntryFault> {
        let full = self.root.join(path);
        let removed = match fs::symlink_metadata(&full) {
            Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(&full),
            Ok(_) => fs::remove_file(&full),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        };
        removed.map_err(|error| writing("remove", &full, error))?;
        let below: Vec<PathBuf> = self
            .directories
            .range(path.to_owned()..)
            .map(|(directory, _)| directory)
            .take_while(|directory| directory.starts_with(path))
            .cloned()
            .collect();
        for directory in below {
            self.directories.remove(&directory);
        }
        Ok(())
    }

    /// An opaque whiteout in `directory`: removes what is below it that this layer did not
    /// write (a directory this layer wrote into is kept, and looked into in turn).
    fn remove_lower_children(
        &mut self,
        directory: &Path,
        touched: &HashSet<PathBuf>,
    ) -> Result<(), EntryFault> {
        let full = self.root.join(directory);
        let listing =
            fs::read_dir(&full).map_err(|error| writing("list the directory", &full, error))?;
        let mut children = Vec::new();
        for child in listing {
            let child = child.map_err(|error| writing("list the directory", &full, error))?;
            children.push((directory.join(child.file_name()), child.file_type().ok()));
        }
        for (child, file_type) in children {
            if !touched.contains(&child) {
                self.remove(&child)?;
            } else if file_type.is_some_and(|kind| kind.is_dir()) {
                self.remove_lower_children(&child, touched)?;
            }
        }
        Ok(())
    }

    /// After the last layer: makes the mount points the sandbox needs ([`MOUNT_POINT_DIRECTORIES`],
    /// [`MOUNT_POINT_FILES`]),
    /// then gives every directory its owner, mode and mtime, the deepest first (making an entry
    /// in a directory changes its mtime; a mode such as 0555 would stop this process from
    /// writing into it).
    pub fn finish(mut self) -> Result<(), LayerFault> {
        let _step = crate::temporary::writing();
        self.make_mount_points().map_err(|fault| match fault {
            EntryFault::Read(error) => LayerFault::Read(error),
            EntryFault::Refused(reason) => LayerFault::Refused {
                entry: "/".to_owned(),
                reason,
            },
            EntryFault::Write(doing, error) => LayerFault::Write(doing, error),
        })?;
        for (path, attributes) in self.directories.iter().rev() {
            let full = self.root.join(path);
            if self.ownership == Ownership::Preserved {
                std::os::unix::fs::lchown(&full, Some(attributes.uid), Some(attributes.gid))
                    .map_err(|error| {
                        LayerFault::Write(
                            format!("cannot change the owner of {}", full.display()),
                            error,
                        )
                    })?;
            }
            if let Some(mtime) = attributes.mtime {
                set_mtime(&full, mtime).map_err(|error| {
                    LayerFault::Write(format!("cannot set the mtime of {}", full.display()), error)
                })?;
            }
            fs::set_permissions(&full, fs::Permissions::from_mode(attributes.mode)).map_err(
                |error| {
                    LayerFault::Write(format!("cannot set the mode of {}", full.display()), error)
                },
            )?;
        }
        Ok(())
    }

    /// `/proc`, `/dev` and `/tmp` (1777) as directories, and `/etc/resolv.conf` and
    /// `/etc/hosts` as regular files: made empty when missing, and replaced when something else
    /// (a symlink) is there, since a mount onto a symlink would follow it out of the tree.
    /// `/etc` itself is made (0755) when the image has none; one that is a symlink or a file is
    /// the image's own and is kept, with nothing made in or through it (a symlink may lead out
    /// of the tree), so such an image gets no mount points there.
    fn make_mount_points(&mut self) -> Result<(), EntryFault> {
        for (name, mode) in MOUNT_POINT_DIRECTORIES {
            let path = Path::new(name);
            let full = self.root.join(path);
            match fs::symlink_metadata(&full) {
                Ok(metadata) if metadata.is_dir() => continue,
                Ok(_) => self.remove(path)?,
                Err(_) => {}
            }
            make_directory(&full, mode)?;
        }
        let etc = self.root.join("etc");
        match fs::symlink_metadata(&etc) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                make_directory(&etc, ETC_MODE)?;
            }
            Err(error) => return Err(writing("look at", &etc, error)),
        }
        for name in MOUNT_POINT_FILES {
            let path = Path::new(name);
            let full = self.root.join(path);
            match fs::symlink_metadata(&full) {
                Ok(metadata) if metadata.is_file() => continue,
                Ok(_) => self.remove(path)?,
                Err(_) => {}
            }
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&full)
                .and_then(|file| file.set_permissions(fs::Permissions::from_mode(0o644)))
                .map_err(|error| writing("create", &full, error))?;
        }
        Ok(())
    }
}

fn writing(what: &str, path: &Path, error: io::Error) -> EntryFault {
    EntryFault::Write(format!("cannot {what} {}", path.display()), error)
}
