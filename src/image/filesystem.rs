//! The file tree an image's layers make, built by streaming each layer's tar once, never
//! extracting it: which paths exist (after whiteouts), what they are, and the few things
//! Lambda's layer unpacker rejects (hard links, entries whose parent directory is missing,
//! paths that are absolute or climb out with `..`).
//!
//! Used by `check` (to lint an image), by `build` (to see whether a local base has a
//! bootstrap's interpreter and which glibc it ships), and, entry by entry
//! ([`Filesystem::scan_entry`]), by the unpacker of `invoke --image` (`crate::rootfs`), so that
//! both refuse the same entries. Only metadata is kept, plus the first bytes
//! of the files a caller asks for (by path, or by path and mode: `check` keeps a trimmed head of
//! every executable, so that a symlink can be followed to whatever file it names).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use flate2::read::GzDecoder;

/// Symlinks one lookup follows before giving up, as Linux (`ELOOP`).
const MAX_SYMLINK_HOPS: usize = 40;
/// Path components one lookup walks, those of symlink targets included (Linux's own bound, 40
/// links of up to 4 KiB, is far beyond any real image). Without it a hostile layer, a link to a
/// long chain of itself with thousands of entries below it, made each entry's parent lookup walk
/// tens of thousands of components.
const MAX_LOOKUP_COMPONENTS: usize = 1024;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    None,
}

/// One path of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Directory,
    File {
        mode: u32,
        size: u64,
        /// The first bytes, when the caller asked for this path.
        head: Option<Vec<u8>>,
    },
    Symlink {
        target: String,
    },
    /// A hard link; Lambda rejects layers holding one.
    HardLink {
        target: String,
    },
    /// A device, FIFO or other special file.
    Special,
}

/// What one layer's scan found that Lambda would reject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerProblems {
    /// `(path, link target)` of each hard-link entry.
    pub hard_links: Vec<(String, String)>,
    /// Entries whose parent directory exists neither in an earlier layer nor earlier in this one.
    pub missing_parents: Vec<String>,
    /// Absolute paths, or paths with `..` components.
    pub unsafe_paths: Vec<String>,
    /// Bytes of the layer once uncompressed.
    pub uncompressed_size: u64,
}

impl LayerProblems {
    /// Adds what one entry was found to have.
    pub fn add(&mut self, entry: EntryProblems) {
        self.hard_links.extend(entry.hard_link);
        self.missing_parents.extend(entry.missing_parent);
        self.unsafe_paths.extend(entry.unsafe_path);
    }
}

/// What one entry has that Lambda's unpacker rejects ([`Filesystem::scan_entry`]); paths are
/// relative (`var/runtime/bootstrap`), as [`LayerProblems`] holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryProblems {
    /// `(path, link target)` when the entry is a hard link.
    pub hard_link: Option<(String, String)>,
    /// The entry's path, when its parent directory exists neither in an earlier layer nor
    /// earlier in this one (a symlink to a directory counts as one).
    pub missing_parent: Option<String>,
    /// The path as written, when it is absolute or has a `..` component (the entry is then
    /// left out of the tree).
    pub unsafe_path: Option<String>,
}

/// A layer being scanned entry by entry ([`Filesystem::start_layer`]).
#[derive(Debug)]
pub struct LayerScan {
    /// The layer's index, from 0.
    layer: usize,
    /// The directories this layer has already made opaque.
    opaque_directories: BTreeSet<String>,
}

/// Which files to keep the first bytes of, and how many.
pub type CaptureRule<'a> = &'a dyn Fn(&str) -> Option<usize>;

/// Which files to keep the first bytes of, by path (relative, `var/runtime/bootstrap`) and tar
/// mode (permission bits, e.g. `0o755`); and, of the bytes read, how many to keep (e.g. an ELF's
/// headers only), so that heads of every executable in a large image stay small.
pub struct Capture<'a> {
    /// Bytes to read of the file at this path with this mode, or `None`.
    pub read: &'a dyn Fn(&str, u32) -> Option<usize>,
    /// How many of the bytes read to keep (at most their length).
    pub keep: &'a dyn Fn(&[u8]) -> usize,
}

/// Why a path names nothing after following symlinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// This path (absolute, links resolved up to it) is in no layer: for a link, its target.
    Missing(String),
    /// This path is a file or other non-directory, but the lookup needs a directory there.
    NotADirectory(String),
    /// More than 40 symlinks (Linux's `ELOOP`), or a chain of links too long to follow.
    TooManyLinks,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::Missing(path) => write!(f, "{path} is not in the image"),
            LookupError::NotADirectory(path) => write!(f, "{path} is not a directory"),
            LookupError::TooManyLinks => write!(
                f,
                "its symbolic links loop, or chain more than {MAX_SYMLINK_HOPS} times \
                 (the kernel fails with ELOOP)"
            ),
        }
    }
}

/// The tree made by the layers applied so far.
#[derive(Debug, Default)]
pub struct Filesystem {
    /// Relative paths (`var/runtime/bootstrap`), each with the index of the layer that wrote it.
    nodes: BTreeMap<String, (usize, Node)>,
    layers_applied: usize,
}

impl Filesystem {
    /// Streams one layer over the tree, applying whiteouts, and reports its problems.
    pub fn apply_layer(
        &mut self,
        blob: impl Read,
        compression: LayerCompression,
        capture: CaptureRule<'_>,
    ) -> io::Result<LayerProblems> {
        self.apply_layer_capturing(
            blob,
            compression,
            &Capture {
                read: &|path, _| capture(path),
                keep: &<[u8]>::len,
            },
        )
    }

    /// [`Filesystem::apply_layer`], choosing the heads to keep by path and mode.
    pub fn apply_layer_capturing(
        &mut self,
        blob: impl Read,
        compression: LayerCompression,
        capture: &Capture<'_>,
    ) -> io::Result<LayerProblems> {
        let reader: Box<dyn Read> = match compression {
            LayerCompression::Gzip => Box::new(GzDecoder::new(blob)),
            LayerCompression::None => Box::new(blob),
        };
        let mut counted = CountingReader {
            inner: reader,
            count: 0,
        };
        let mut problems = LayerProblems::default();
        let mut scan = self.start_layer();
        {
            let mut archive = tar::Archive::new(&mut counted);
            for entry in archive.entries()? {
                let found = self.scan_entry(&mut scan, &mut entry?, capture)?;
                problems.add(found);
            }
        }
        // Read to the end so the whole blob is counted (and, for gzip, checked).
        io::copy(&mut counted, &mut io::sink())?;
        problems.uncompressed_size = counted.count;
        Ok(problems)
    }

    /// Starts scanning the next layer entry by entry ([`Filesystem::scan_entry`]), for a
    /// caller that reads the layer's tar itself (the root filesystem's unpacker does, so that
    /// `check` and `invoke --image` find the same problems).
    pub fn start_layer(&mut self) -> LayerScan {
        let layer = self.layers_applied;
        self.layers_applied += 1;
        LayerScan {
            layer,
            opaque_directories: BTreeSet::new(),
        }
    }

    /// Applies one entry of the layer `scan` was started for, in the tar's order, and says what
    /// Lambda's unpacker would reject about it. Reads the entry's content only as far as
    /// `capture` asks (a caller that asks for nothing can read it afterwards). Errors: the
    /// entry's PAX records or content cannot be read.
    pub fn scan_entry<R: Read>(
        &mut self,
        scan: &mut LayerScan,
        entry: &mut tar::Entry<'_, R>,
        capture: &Capture<'_>,
    ) -> io::Result<EntryProblems> {
        let mut problems = EntryProblems::default();
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = normalize(&raw_path) else {
            problems.unsafe_path = Some(raw_path);
            return Ok(problems);
        };
        if path.is_empty() {
            return Ok(problems); // "./" itself
        }
        // Whiteouts count too: Lambda's unpacker meets them as entries like any other.
        if let Some(parent) = parent_of(&path)
            && !self.is_directory(parent)
        {
            problems.missing_parent = Some(path.clone());
        }
        if self.apply_whiteout(&path, scan.layer, &mut scan.opaque_directories) {
            return Ok(problems);
        }
        let header = entry.header();
        let link_target = || {
            entry
                .link_name_bytes()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default()
        };
        let node = match header.entry_type() {
            tar::EntryType::Directory => Node::Directory,
            tar::EntryType::Symlink => Node::Symlink {
                target: link_target(),
            },
            tar::EntryType::Link => {
                let target = link_target();
                problems.hard_link = Some((path.clone(), target.clone()));
                Node::HardLink { target }
            }
            kind if kind.is_file() => {
                let mode = header.mode().unwrap_or(0);
                let size = entry.size();
                let head = match (capture.read)(&path, mode) {
                    Some(limit) => {
                        let mut bytes = Vec::new();
                        (&mut *entry).take(limit as u64).read_to_end(&mut bytes)?;
                        bytes.truncate((capture.keep)(&bytes));
                        bytes.shrink_to_fit();
                        Some(bytes)
                    }
                    None => None,
                };
                Node::File { mode, size, head }
            }
            _ => Node::Special,
        };
        // A directory entry over an existing directory keeps what is below it.
        if node != Node::Directory {
            self.remove_below(&path);
        }
        self.nodes.insert(path, (scan.layer, node));
        Ok(problems)
    }

    /// The node at `path` itself: symlinks among its parent directories are followed, but a
    /// symlink at `path` is returned as one, as `lstat` does.
    pub fn node(&self, path: &str) -> Option<&Node> {
        let path = normalize(path.trim_start_matches('/'))?;
        let key = match path.rsplit_once('/') {
            Some((parent, name)) => match self.resolve(parent) {
                Some((parent, Node::Directory)) => join(&parent, name),
                Some(_) => return None,
                // A parent no layer made (a problem reported on its own): the entry as written.
                None => path,
            },
            None => path,
        };
        self.nodes.get(&key).map(|(_, node)| node)
    }

    /// Follows symlinks (in any component) to what `path` finally names, as the kernel would.
    pub fn resolve(&self, path: &str) -> Option<(String, &Node)> {
        self.lookup(path).ok()
    }

    /// [`Filesystem::resolve`], saying why when `path` names nothing: the first missing path, a
    /// file where a directory should be, or a link loop. The path returned is relative.
    pub fn lookup(&self, path: &str) -> Result<(String, &Node), LookupError> {
        let mut pending: Vec<&str> = components(path).rev().collect();
        let mut queued = pending.len();
        let mut current = String::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component {
                "." => continue,
                ".." => {
                    current = parent_of(&current).unwrap_or("").to_owned();
                    continue;
                }
                _ => {}
            }
            if !current.is_empty()
                && !matches!(self.nodes.get(&current), Some((_, Node::Directory)))
            {
                return Err(LookupError::NotADirectory(format!("/{current}")));
            }
            let candidate = join(&current, component);
            let Some((_, node)) = self.nodes.get(&candidate) else {
                return Err(LookupError::Missing(format!("/{candidate}")));
            };
            match node {
                Node::Symlink { target } => {
                    hops += 1;
                    queued += components(target).count();
                    if hops > MAX_SYMLINK_HOPS || queued > MAX_LOOKUP_COMPONENTS {
                        return Err(LookupError::TooManyLinks);
                    }
                    if target.starts_with('/') {
                        current.clear();
                    }
                    pending.extend(components(target).rev());
                }
                _ => current = candidate,
            }
        }
        match self.nodes.get(&current) {
            Some((_, node)) => Ok((current, node)),
            None => Err(LookupError::Missing(format!("/{current}"))),
        }
    }

    /// The names of the entries directly in the directory `path` leads to (links followed),
    /// sorted; empty when it is no directory.
    pub fn children(&self, path: &str) -> Vec<String> {
        let Some((directory, Node::Directory)) = self.resolve(path) else {
            return Vec::new();
        };
        let prefix = if directory.is_empty() {
            String::new()
        } else {
            format!("{directory}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter_map(|(key, _)| key[prefix.len()..].split('/').next())
            .filter(|name| !name.is_empty())
            .fold(Vec::<String>::new(), |mut names, name| {
                if names.last().map(String::as_str) != Some(name) {
                    names.push(name.to_owned());
                }
                names
            })
    }

    /// True when `path` exists after following symlinks.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some()
    }

    fn is_directory(&self, path: &str) -> bool {
        matches!(self.resolve(path), Some((_, Node::Directory)))
    }

    /// Handles `.wh.NAME` (delete NAME) and `.wh..wh..opq` (hide what lower layers put in the
    /// directory). Returns true when `path` was a whiteout.
    /// `opaque_directories` are those this layer has already made opaque.
    fn apply_whiteout(
        &mut self,
        path: &str,
        layer: usize,
        opaque_directories: &mut BTreeSet<String>,
    ) -> bool {
        let (directory, name) = match path.rsplit_once('/') {
            Some((directory, name)) => (directory, name),
            None => ("", path),
        };
        if name == ".wh..wh..opq" {
            // Once per directory and layer: a later marker finds no lower entry left to hide, and
            // scanning again for each repeated marker would make a hostile layer quadratic.
            if opaque_directories.insert(directory.to_owned()) {
                self.hide_lower_entries(directory, layer);
            }
            return true;
        }
        if let Some(deleted) = name.strip_prefix(".wh.") {
            let deleted = join(directory, deleted);
            self.nodes.remove(&deleted);
            self.remove_below(&deleted);
            return true;
        }
        false
    }

    /// Removes what layers before `layer` put below `directory` (`""`: the root).
    fn hide_lower_entries(&mut self, directory: &str, layer: usize) {
        let prefix = if directory.is_empty() {
            String::new()
        } else {
            format!("{directory}/")
        };
        let hidden: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .filter(|(_, (written_by, _))| *written_by != layer)
            .map(|(key, _)| key.clone())
            .collect();
        for key in hidden {
            self.nodes.remove(&key);
        }
    }

    fn remove_below(&mut self, path: &str) {
        let prefix = format!("{path}/");
        let below: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key.clone())
            .collect();
        for key in below {
            self.nodes.remove(&key);
        }
    }
}

/// `./var/runtime/` → `var/runtime`; `None` for absolute paths and `..` components.
fn normalize(path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|part| !part.is_empty())
}

fn parent_of(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(parent, _)| parent)
}

fn join(directory: &str, name: &str) -> String {
    if directory.is_empty() {
        name.to_owned()
    } else {
        format!("{directory}/{name}")
    }
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
#[path = "filesystem_tests.rs"]
mod tests;
