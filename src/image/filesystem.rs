//! The file tree an image's layers make, built by streaming each layer's tar once, never
//! extracting it: which paths exist (after whiteouts), what they are, and the few things
//! Lambda's layer unpacker rejects (hard links, entries whose parent directory is missing,
//! paths that are absolute or climb out with `..`).
//!
//! Used by `check` (to lint an image) and by `build` (to see whether a local base has a
//! bootstrap's interpreter and which glibc it ships). Only metadata is kept, plus the first bytes
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
        let layer = self.layers_applied;
        self.layers_applied += 1;
        let mut opaque_directories = BTreeSet::new();
        {
            let mut archive = tar::Archive::new(&mut counted);
            for entry in archive.entries()? {
                let mut entry = entry?;
                let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let Some(path) = normalize(&raw_path) else {
                    problems.unsafe_paths.push(raw_path);
                    continue;
                };
                if path.is_empty() {
                    continue; // "./" itself
                }
                if let Some(parent) = parent_of(&path)
                    && !self.is_directory(parent)
                {
                    problems.missing_parents.push(path.clone());
                }
                if self.apply_whiteout(&path, layer, &mut opaque_directories) {
                    continue;
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
                        problems.hard_links.push((path.clone(), target.clone()));
                        Node::HardLink { target }
                    }
                    kind if kind.is_file() => {
                        let mode = header.mode().unwrap_or(0);
                        let size = entry.size();
                        let head = match (capture.read)(&path, mode) {
                            Some(limit) => {
                                let mut bytes = Vec::new();
                                (&mut entry).take(limit as u64).read_to_end(&mut bytes)?;
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
                self.nodes.insert(path, (layer, node));
            }
        }
        // Read to the end so the whole blob is counted (and, for gzip, checked).
        io::copy(&mut counted, &mut io::sink())?;
        problems.uncompressed_size = counted.count;
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
mod tests {
    use super::*;

    enum Item<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
    }

    fn layer(items: &[Item]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            let (path, data): (&str, &[u8]) = match item {
                Item::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    (path, &[])
                }
                Item::File(path, data) => {
                    header.set_mode(0o755);
                    (path, data)
                }
                Item::Symlink(path, target) | Item::HardLink(path, target) => {
                    header.set_entry_type(if matches!(item, Item::Symlink(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    header.set_link_name(target).unwrap();
                    (path, &[])
                }
            };
            header.set_size(data.len() as u64);
            // Written raw: `set_path` refuses the `..` this test needs.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn capture_nothing(_: &str) -> Option<usize> {
        None
    }

    #[test]
    fn finds_hard_links_missing_parents_and_follows_symlinks() {
        let mut filesystem = Filesystem::default();
        let base = layer(&[
            Item::Dir("usr"),
            Item::Dir("usr/lib64"),
            Item::File("usr/lib64/ld-linux-x86-64.so.2", b"\x7fELF"),
            Item::Symlink("lib64", "usr/lib64"),
            Item::Dir("bin"),
            Item::File("bin/sh", b"x"),
        ]);
        let problems = filesystem
            .apply_layer(base.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        assert_eq!(
            problems,
            LayerProblems {
                uncompressed_size: base.len() as u64,
                ..Default::default()
            }
        );
        assert!(filesystem.exists("/lib64/ld-linux-x86-64.so.2"));
        // `..` after a symlink climbs from where the link points, as the kernel does.
        assert!(filesystem.exists("/lib64/../lib64/ld-linux-x86-64.so.2"));
        assert!(!filesystem.exists("/lib64/../bin/sh"));
        assert!(matches!(
            filesystem.node("lib64"),
            Some(Node::Symlink { .. })
        ));

        let bad = layer(&[
            Item::File("var/runtime/bootstrap", b"#!/bin/sh\n"),
            Item::HardLink("bin/sh2", "bin/sh"),
            Item::File("../escape", b""),
        ]);
        let problems = filesystem
            .apply_layer(bad.as_slice(), LayerCompression::None, &|path| {
                (path == "var/runtime/bootstrap").then_some(2)
            })
            .unwrap();
        assert_eq!(
            problems.missing_parents,
            vec!["var/runtime/bootstrap".to_owned()]
        );
        assert_eq!(
            problems.hard_links,
            vec![("bin/sh2".to_owned(), "bin/sh".to_owned())]
        );
        assert_eq!(problems.unsafe_paths, vec!["../escape".to_owned()]);
        assert_eq!(
            filesystem.node("/var/runtime/bootstrap"),
            Some(&Node::File {
                mode: 0o755,
                size: 10,
                head: Some(b"#!".to_vec())
            })
        );
    }

    #[test]
    fn lookup_says_why_a_path_names_nothing() {
        let mut filesystem = Filesystem::default();
        let items = layer(&[
            Item::Dir("var"),
            Item::File("var/file", b"x"),
            Item::Symlink("var/dangling", "/var/gone"),
            Item::Symlink("var/a", "b"),
            Item::Symlink("var/b", "a"),
            Item::Symlink("var/up", "../var/file"),
        ]);
        filesystem
            .apply_layer(items.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        let error = |path| filesystem.lookup(path).map(|(found, _)| found).unwrap_err();
        assert_eq!(
            error("/var/dangling"),
            LookupError::Missing("/var/gone".into())
        );
        assert_eq!(error("/opt/x"), LookupError::Missing("/opt".into()));
        assert_eq!(
            error("/var/file/x"),
            LookupError::NotADirectory("/var/file".into())
        );
        assert_eq!(error("/var/a"), LookupError::TooManyLinks);
        assert_eq!(filesystem.lookup("/var/up").unwrap().0, "var/file");
        assert_eq!(filesystem.resolve("/var/a"), None);
    }

    #[test]
    fn whiteouts_delete_and_opaque_directories_hide_lower_layers() {
        let mut filesystem = Filesystem::default();
        let lower = layer(&[
            Item::Dir("a"),
            Item::File("a/one", b""),
            Item::File("a/two", b""),
            Item::Dir("b"),
            Item::File("b/x", b""),
        ]);
        filesystem
            .apply_layer(lower.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        let upper = layer(&[
            Item::File("a/.wh.one", b""),
            Item::File("b/.wh..wh..opq", b""),
            Item::File("b/y", b""),
        ]);
        filesystem
            .apply_layer(upper.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        assert!(!filesystem.exists("a/one"));
        assert!(filesystem.exists("a/two"));
        assert!(!filesystem.exists("b/x"));
        assert!(filesystem.exists("b/y"));
    }

    #[test]
    fn an_opaque_marker_at_the_root_hides_every_lower_entry() {
        let mut filesystem = Filesystem::default();
        let lower = layer(&[
            Item::Dir("a"),
            Item::File("a/one", b""),
            Item::File("top", b""),
        ]);
        filesystem
            .apply_layer(lower.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        let upper = layer(&[Item::File(".wh..wh..opq", b""), Item::File("new", b"")]);
        filesystem
            .apply_layer(upper.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        assert!(!filesystem.exists("a/one"));
        assert!(!filesystem.exists("top"));
        assert!(filesystem.exists("new"));
    }

    /// Each opaque marker used to scan the whole tree: 20,000 directories with a marker each (a
    /// 30 MB tar, well under 1 MB gzipped) took 32 s in a debug build, and five times as many would
    /// take minutes more. Now a marker looks only below its own directory, once per layer.
    #[test]
    fn many_opaque_markers_cost_time_in_proportion() {
        let mut items = Vec::new();
        let names: Vec<[String; 3]> = (0..20_000)
            .map(|i| {
                [
                    format!("d{i}"),
                    format!("d{i}/f"),
                    format!("d{i}/.wh..wh..opq"),
                ]
            })
            .collect();
        for [directory, file, marker] in &names {
            items.push(Item::Dir(directory));
            items.push(Item::File(file, b""));
            items.push(Item::File(marker, b""));
            items.push(Item::File(marker, b""));
        }
        let bytes = layer(&items);
        let start = std::time::Instant::now();
        let mut filesystem = Filesystem::default();
        filesystem
            .apply_layer(bytes.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        // Entries of the marker's own layer stay, whatever their order.
        assert!(filesystem.exists("d0/f") && filesystem.exists("d19999/f"));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
    }

    /// A symlink to a 2,000-component chain of itself with 2,000 entries below it (a 2 MB tar)
    /// took 19 s in a debug build, each entry's parent lookup queueing 40 hops of 2,000 components.
    #[test]
    fn a_self_referencing_symlink_chain_is_given_up_on_quickly() {
        // Written with GNU long-name entries: the link target is over 100 bytes.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        let chain = vec!["l"; 2000].join("/");
        builder.append_link(&mut header, "l", &chain).unwrap();
        for i in 0..2000 {
            let mut header = tar::Header::new_gnu();
            header.set_size(0);
            builder
                .append_data(&mut header, format!("l/f{i}"), &[][..])
                .unwrap();
        }
        let bytes = builder.into_inner().unwrap();
        let start = std::time::Instant::now();
        let mut filesystem = Filesystem::default();
        let problems = filesystem
            .apply_layer(bytes.as_slice(), LayerCompression::None, &capture_nothing)
            .unwrap();
        assert_eq!(problems.missing_parents.len(), 2000);
        assert!(!filesystem.exists("l/f0"));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }
}
