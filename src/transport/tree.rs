//! File trees that images are read from and written to: a directory, or a tar file.
//!
//! An OCI layout and an oci-archive hold the same files; only the container differs. Readers and
//! writers here hide that difference, so the layout and docker-archive code is written once.
//! Tar files are read in place through an index of entry offsets, never extracted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::Descriptor;

use crate::digest::{Sha256Digest, VerifyingReader};
use crate::image::resolve::descriptor_digest;
use crate::image::store::{BlobError, BlobStore};

/// Read access to the files of an image source.
pub trait TreeReader: Send + Sync {
    /// Opens the file at `path` (relative, `/`-separated) and returns it with its size.
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)>;
}

/// The blobs of a tree: under `blobs/sha256/` (an OCI layout), or at the paths a
/// docker-archive's `manifest.json` gives. Each is verified against its descriptor as it is read.
pub struct TreeBlobs {
    tree: Box<dyn TreeReader>,
    /// Blobs that are not at their layout path (`blobs/sha256/<hex>`).
    paths: BTreeMap<Sha256Digest, String>,
}

impl TreeBlobs {
    /// The blobs of an OCI layout (or of the blob cache, laid out the same way).
    pub fn layout(tree: Box<dyn TreeReader>) -> Self {
        Self::at_paths(tree, BTreeMap::new())
    }

    /// Blobs at the given paths; any other at its layout path.
    pub fn at_paths(tree: Box<dyn TreeReader>, paths: BTreeMap<Sha256Digest, String>) -> Self {
        Self { tree, paths }
    }
}

impl BlobStore for TreeBlobs {
    fn open(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + Send>, BlobError> {
        let digest = descriptor_digest(descriptor)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.message()))?;
        let path = self
            .paths
            .get(&digest)
            .cloned()
            .unwrap_or_else(|| digest.layout_path());
        let (reader, _) = self.tree.open(&path).map_err(|error| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("base blob {digest} cannot be read: {error}"),
            )
        })?;
        Ok(Box::new(VerifyingReader::new(
            reader,
            digest,
            descriptor.size(),
        )))
    }
}

/// A directory on disk.
pub struct DirectoryTree {
    root: PathBuf,
}

impl DirectoryTree {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
}

impl TreeReader for DirectoryTree {
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let full = self.root.join(safe_relative_path(path)?);
        let file = File::open(&full).map_err(|error| {
            io::Error::new(error.kind(), format!("{}: {error}", full.display()))
        })?;
        let size = file.metadata()?.len();
        Ok((Box::new(file), size))
    }
}

/// A tar file, read in place: each entry is found through an index of offsets built in one scan.
pub struct TarTree {
    file: PathBuf,
    entries: HashMap<String, (u64, u64)>,
}

impl TarTree {
    /// Scans the headers of `file` (contents are skipped, not read).
    pub fn open(file: &Path) -> io::Result<Self> {
        let mut archive = tar::Archive::new(File::open(file)?);
        let mut entries = HashMap::new();
        for entry in archive.entries()? {
            let entry = entry?;
            if entry.header().entry_type().is_file() {
                let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let path = path.trim_start_matches("./").to_owned();
                entries.insert(path, (entry.raw_file_position(), entry.size()));
            }
        }
        if entries.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a tar archive, or an empty one",
            ));
        }
        Ok(Self {
            file: file.to_owned(),
            entries,
        })
    }
}

impl TreeReader for TarTree {
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let &(offset, size) = self
            .entries
            .get(path.trim_start_matches("./"))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{path} is not in the archive"),
                )
            })?;
        let mut file = File::open(&self.file)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok((Box::new(file.take(size)), size))
    }
}

pub use crate::temporary::{output_temporary_directory, output_temporary_file};

/// Refuses absolute paths and `..`, which an untrusted manifest could use to escape the tree.
fn safe_relative_path(path: &str) -> io::Result<&Path> {
    let candidate = Path::new(path);
    if candidate
        .components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
    {
        Ok(candidate)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("refusing path `{path}`: it leaves the image directory"),
        ))
    }
}

/// Write access to the files of an image destination.
pub trait TreeWriter {
    /// Whether `path` is already present (so content-addressed blobs need not be written again).
    fn contains(&self, path: &str) -> bool;
    /// Writes exactly `size` bytes from `content` at `path`; a short or failing reader is an error.
    fn write(&mut self, path: &str, size: u64, content: &mut dyn Read) -> io::Result<()>;
}

/// Writes files into a directory, each through a temporary file renamed into place, so a file
/// that exists is always complete.
pub struct DirectoryWriter {
    root: PathBuf,
}

impl DirectoryWriter {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }
}

impl TreeWriter for DirectoryWriter {
    fn contains(&self, path: &str) -> bool {
        safe_relative_path(path).is_ok_and(|path| self.root.join(path).is_file())
    }

    fn write(&mut self, path: &str, size: u64, content: &mut dyn Read) -> io::Result<()> {
        let full = self.root.join(safe_relative_path(path)?);
        let parent = full.parent().expect("a joined path has a parent");
        std::fs::create_dir_all(parent)?;
        let mut temporary = output_temporary_file(parent)?;
        let copied = io::copy(
            content,
            &mut BufWriter::with_capacity(1 << 20, temporary.as_file_mut()),
        )?;
        check_size(path, size, copied)?;
        temporary.persist(&full).map_err(|error| error.error)?;
        Ok(())
    }
}

/// Writes files as entries of a tar stream with fixed metadata, so the same files give the same
/// archive bytes.
pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    written: HashSet<String>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(output: W) -> Self {
        Self {
            builder: tar::Builder::new(output),
            written: HashSet::new(),
        }
    }

    /// Ends the archive and returns the output.
    pub fn finish(self) -> io::Result<W> {
        self.builder.into_inner()
    }
}

impl<W: Write> TreeWriter for TarWriter<W> {
    fn contains(&self, path: &str) -> bool {
        self.written.contains(path)
    }

    fn write(&mut self, path: &str, size: u64, content: &mut dyn Read) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(size);
        let mut counted = CountingReader {
            inner: content,
            count: 0,
        };
        self.builder.append_data(&mut header, path, &mut counted)?;
        check_size(path, size, counted.count)?;
        self.written.insert(path.to_owned());
        Ok(())
    }
}

struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    count: u64,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn check_size(path: &str, expected: u64, actual: u64) -> io::Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: expected {expected} bytes, got {actual}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_tree_reads_what_tar_writer_wrote() {
        let directory = tempfile::tempdir().unwrap();
        let archive = directory.path().join("a.tar");
        let mut writer = TarWriter::new(File::create(&archive).unwrap());
        writer
            .write("blobs/sha256/x", 5, &mut &b"hello"[..])
            .unwrap();
        writer.write("index.json", 2, &mut &b"{}"[..]).unwrap();
        writer.finish().unwrap();
        assert!(
            TarWriter::new(Vec::new())
                .write("short", 9, &mut &b"abc"[..])
                .is_err()
        );
        let tree = TarTree::open(&archive).unwrap();
        let (mut reader, size) = tree.open("blobs/sha256/x").unwrap();
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!((text.as_str(), size), ("hello", 5));
        assert!(tree.open("missing").is_err());
    }

    #[test]
    fn directory_tree_refuses_escaping_paths() {
        let tree = DirectoryTree::new(PathBuf::from("/tmp"));
        assert!(tree.open("../etc/passwd").is_err());
        assert!(tree.open("/etc/passwd").is_err());
    }
}
