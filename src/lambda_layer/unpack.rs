//! Unpacking a Lambda layer `.zip` for the new layer, by the rules Lambda's own extraction into
//! `/opt` follows and the image needs: every entry goes under `/opt/<path in the zip>`; a file's
//! mode comes from the zip's Unix attributes (0755 when any execute bit is set, else 0644), and
//! for an entry without them (a zip made on Windows, or by a library that sets none) from its
//! content (0755 for an ELF or a `#!` script, 0644 otherwise); symlinks (Unix mode `S_IFLNK`,
//! the content is the target) stay symlinks; and nothing may land outside `/opt`: an absolute
//! path, a `..` that climbs out, or a symlink whose relative target climbs out is refused
//! (exit 2) naming the entry and the zip. Absolute symlink targets are kept as they are (they
//! resolve inside the running image, like any other absolute link).
//!
//! Each file's content is written to a flat file (`<directory>/<entry index>`), never to a path
//! taken from the zip: no entry can write outside the directory, and two entries whose paths
//! clash on disk cannot fail the unpacking (the clash is the layer tree's to judge). The layer
//! writer then reads the files like any `--include`d file.
//!
//! The Unix attributes are read from the central directory record itself (the high 16 bits of
//! the external attributes), because the `zip` crate makes up a mode (0664) for entries made on
//! DOS/Windows that have only DOS attributes: those must count as having none.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};
use crate::layer::contents::LayerEntry;
use crate::lint::IMAGE_SIZE_LIMIT;

/// `S_IFMT` and the file types of a Unix mode.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;
/// The longest symlink target taken (Linux's PATH_MAX).
const MAX_LINK_TARGET: u64 = 4096;

/// The entries of the layer zip at `zip_path`, as image paths (`opt/extensions/agent`) and
/// layer entries, in the zip's order (a later entry of the same path replaces an earlier one,
/// as unzip does); files are written into `directory`. `shown` is the `--layer` value as
/// written, for messages. Errors (usage, exit 2): not a zip, a damaged or encrypted zip, an
/// entry that would land outside `/opt`, an entry that is neither file, directory nor symlink;
/// (failure) the files cannot be written.
pub fn unpack(zip_path: &Path, shown: &str, directory: &Path) -> Result<Vec<(String, LayerEntry)>> {
    // The `--layer` value names the zip (the user's path, or the ARN whose copy this is).
    let place = || format!("--layer {shown}");
    // Twice: the archive reads through a buffer, the central directory records are read raw
    // ([`unix_mode`]), each at its own offset.
    let open = || {
        File::open(zip_path).map_err(|error| {
            Error::usage(format!(
                "{}: cannot read {}: {error}",
                place(),
                zip_path.display()
            ))
        })
    };
    let file = open()?;
    let mut raw = open()?;
    let mut archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|error| {
        Error::usage(format!("{}: not a readable zip file ({error})", place())).hint(
            "a Lambda layer is a .zip of the files that go under /opt (e.g. `cd layer && zip -r \
             ../layer.zip .`); check the path, or make or download the zip again",
        )
    })?;
    let damaged = |name: &str, error: &dyn std::fmt::Display| {
        Error::usage(format!(
            "{}: entry `{name}` cannot be read: {error}",
            place()
        ))
        .hint("the zip is damaged or cut short: make or download it again")
    };
    // The pass over the zip keeps nothing allocated per entry ([`Unpacked`]): its paths and
    // symlink targets go into one growing text, and the entries' own strings are made after it.
    // Each entry's reader allocates and frees blocks of tens of KiB (the zip crate's inflater;
    // the copy buffer too, were it not made once here); small strings kept between those split
    // the freed blocks (glibc carves small requests from the last block it split), so none fits
    // the next entry's and the heap grew by tens of KiB per entry: ~1 GB of RSS for a zip of
    // 20,000 small files, with ~30 MB in use. Whether it happened depended on the sizes of
    // those strings, so on the length of the cache's path.
    // A zip bomb (a few MB that inflate to terabytes) is refused before anything is written,
    // by the sizes the zip declares, and, should an entry inflate past what it declares, as the
    // bytes come.
    let too_big = |bytes: u64| {
        Error::usage(format!(
            "{}: the zip unpacks to {bytes} bytes or more, over Lambda's limit of {IMAGE_SIZE_LIMIT} \
             bytes (10 GB) for a whole image",
            place()
        ))
        .hint("check the zip (a few MB that unpack to gigabytes is a zip bomb), or leave large data out of the image")
    };
    let mut declared = 0u64;
    for index in 0..archive.len() {
        if let Ok(entry) = archive.by_index_raw(index) {
            declared = declared.saturating_add(entry.size());
        }
    }
    if declared > IMAGE_SIZE_LIMIT {
        return Err(too_big(declared));
    }
    let mut written = 0u64;
    let mut unpacked: Vec<(usize, Range<usize>, Unpacked)> = Vec::new();
    let mut text = String::new();
    let mut buffer = vec![0; COPY_BUFFER];
    for index in 0..archive.len() {
        // The raw entry first: opening an encrypted one to read it fails before its name is
        // known, and it is named.
        let (name, encrypted) = archive
            .by_index_raw(index)
            .map(|entry| (entry.name().to_owned(), entry.encrypted()))
            .map_err(|error| damaged(&format!("number {}", index + 1), &error))?;
        if encrypted {
            return Err(Error::usage(format!(
                "{}: entry `{name}` is encrypted, which Lambda cannot unpack",
                place()
            ))
            .hint("make the zip again without a password"));
        }
        let mut entry = archive
            .by_index(index)
            .map_err(|error| damaged(&name, &error))?;
        let path = match layer_path(&name) {
            Ok(Some(path)) => path,
            Ok(None) => continue,
            Err(why) => {
                return Err(
                    Error::usage(format!("{}: entry `{name}` {why}", place())).hint(
                        "Lambda unpacks a layer under /opt and nothing may land outside it: make \
                     the zip from inside the layer's directory (`cd layer && zip -r \
                     ../layer.zip .`)",
                    ),
                );
            }
        };
        let unix_mode = unix_mode(&mut raw, entry.central_header_start())
            .map_err(|error| damaged(&name, &error))?;
        let kind = entry_kind(unix_mode, name.ends_with('/'));
        let kept = match kind {
            EntryKind::Directory => Unpacked::Directory,
            EntryKind::Symlink => {
                let mut target = String::new();
                (&mut entry)
                    .take(MAX_LINK_TARGET + 1)
                    .read_to_string(&mut target)
                    .map_err(|error| damaged(&name, &error))?;
                if target.is_empty()
                    || target.len() as u64 > MAX_LINK_TARGET
                    || target.contains('\0')
                {
                    return Err(damaged(&name, &"not a symlink target"));
                }
                if link_escapes(&path, &target) {
                    return Err(Error::usage(format!(
                        "{}: symlink `{name}` -> `{target}` points out of /opt",
                        place()
                    ))
                    .hint(
                        "a relative symlink in a layer must stay under /opt (Lambda unpacks \
                         layers there); point it at an absolute path, or inside the layer",
                    ));
                }
                Unpacked::Symlink(keep(&mut text, &target))
            }
            EntryKind::File => {
                let source = directory.join(index.to_string());
                let (size, head) =
                    copy_file(&mut entry, &source, &mut buffer).map_err(|error| match error {
                        Copy::Read(error) => damaged(&name, &error),
                        Copy::Write(error) => Error::failure(format!(
                            "{}: cannot write entry `{name}` to {}: {error}",
                            place(),
                            source.display()
                        )),
                    })?;
                written = written.saturating_add(size);
                if written > IMAGE_SIZE_LIMIT {
                    return Err(too_big(written));
                }
                Unpacked::File {
                    size,
                    executable: is_executable(unix_mode, &head),
                }
            }
            EntryKind::Other(mode) => {
                return Err(Error::usage(format!(
                    "{}: entry `{name}` is a device, socket or pipe (mode {mode:o}), which \
                     cannot go in a layer",
                    place()
                ))
                .hint("leave it out of the zip"));
            }
        };
        unpacked.push((index, keep(&mut text, &path), kept));
    }
    Ok(unpacked
        .into_iter()
        .map(|(index, path, kept)| {
            let entry = match kept {
                Unpacked::Directory => LayerEntry::Directory,
                Unpacked::File { size, executable } => LayerEntry::File {
                    source: directory.join(index.to_string()),
                    size,
                    executable,
                },
                Unpacked::Symlink(target) => LayerEntry::Symlink {
                    target: text[target].to_owned(),
                },
            };
            (format!("opt/{}", &text[path]), entry)
        })
        .collect())
}

/// An entry as the pass over the zip records it, without an allocation of its own: its file
/// is `<directory>/<entry index>`, a symlink's target a range of the pass's text.
enum Unpacked {
    Directory,
    File { size: u64, executable: bool },
    Symlink(Range<usize>),
}

/// Appends `part` to `text`; where it is.
fn keep(text: &mut String, part: &str) -> Range<usize> {
    let start = text.len();
    text.push_str(part);
    start..text.len()
}

/// A failed copy: reading the entry (a damaged zip) or writing the file.
enum Copy {
    Read(io::Error),
    Write(io::Error),
}

/// The size of the buffer entries are copied through.
const COPY_BUFFER: usize = 64 * 1024;

/// Copies an entry's content to a new file at `destination` through `buffer`; its size and
/// first bytes.
fn copy_file(
    entry: &mut impl Read,
    destination: &Path,
    buffer: &mut [u8],
) -> std::result::Result<(u64, Vec<u8>), Copy> {
    let mut output = io::BufWriter::new(File::create(destination).map_err(Copy::Write)?);
    let mut head = Vec::new();
    let mut size = 0u64;
    loop {
        let read = match entry.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            // A damaged entry (bad deflate data, a CRC that does not match) shows here.
            Err(error) => return Err(Copy::Read(error)),
        };
        if head.len() < 4 {
            head.extend_from_slice(&buffer[..read.min(4 - head.len())]);
        }
        output.write_all(&buffer[..read]).map_err(Copy::Write)?;
        size += read as u64;
    }
    output.flush().map_err(Copy::Write)?;
    Ok((size, head))
}

/// Hosts ("version made by", high byte; PKWARE APPNOTE 4.4.2.2) whose zips keep a Unix mode in
/// the high 16 bits of the external attributes: 3 (UNIX) and 19 (OS X). Others (0, MS-DOS and
/// OS/2 FAT, which Python's `zipfile` writes on Windows; 10, Windows NTFS; 14, VFAT) may leave
/// any bits there (Python on Windows writes 0o600 or 0o100666), which are not modes: Info-ZIP
/// and Go's `archive/zip` ignore them too.
const UNIX_HOSTS: [u8; 2] = [3, 19];

/// The Unix mode of the entry whose central directory record starts at `offset`: the high 16
/// bits of its external attributes when a Unix host ([`UNIX_HOSTS`]) made it; None when another
/// host did or the bits are 0 (no Unix attributes).
fn unix_mode(raw: &mut File, offset: u64) -> io::Result<Option<u32>> {
    let mut record = [0u8; 46];
    raw.seek(SeekFrom::Start(offset))?;
    raw.read_exact(&mut record)?;
    if record[..4] != [b'P', b'K', 1, 2] {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no central directory record where the zip says",
        ));
    }
    if !UNIX_HOSTS.contains(&record[5]) {
        return Ok(None);
    }
    let external = u32::from_le_bytes([record[38], record[39], record[40], record[41]]);
    Ok(Some(external >> 16).filter(|&mode| mode != 0))
}

/// What an entry is, from its Unix mode (if any) and whether its name ends with `/`.
#[derive(Debug, PartialEq, Eq)]
enum EntryKind {
    Directory,
    File,
    Symlink,
    /// A device, socket or pipe: its mode.
    Other(u32),
}

fn entry_kind(unix_mode: Option<u32>, named_as_directory: bool) -> EntryKind {
    match unix_mode.map(|mode| mode & S_IFMT) {
        _ if named_as_directory => EntryKind::Directory,
        Some(S_IFDIR) => EntryKind::Directory,
        Some(S_IFLNK) => EntryKind::Symlink,
        // Type bits 0: some writers store only the permissions.
        None | Some(S_IFREG) | Some(0) => EntryKind::File,
        Some(_) => EntryKind::Other(unix_mode.unwrap_or_default()),
    }
}

/// Whether a file gets mode 0755: with Unix attributes, when any execute bit is set; without,
/// when its content starts as an ELF (`\x7fELF`) or a `#!` script does.
pub fn is_executable(unix_mode: Option<u32>, head: &[u8]) -> bool {
    match unix_mode {
        Some(mode) => mode & 0o111 != 0,
        None => head.starts_with(b"\x7fELF") || head.starts_with(b"#!"),
    }
}

/// The path under `/opt` of a zip entry named `name` (`extensions/agent`); None for an entry
/// that names `/opt` itself (`./`). The reason, when it would land outside `/opt`: an absolute
/// path, a `..` component, or a `\` (a Windows separator: Lambda would make a file whose name
/// holds it, not a directory).
pub fn layer_path(name: &str) -> std::result::Result<Option<String>, String> {
    if name.starts_with('/') {
        return Err("is an absolute path; Lambda puts a layer's entries under /opt".into());
    }
    if name.contains('\\') {
        return Err(
            "has a `\\` in its path: the zip was made on Windows with `\\` as the \
                    separator (older PowerShell Compress-Archive does this), so Lambda would \
                    not see its directories"
                .into(),
        );
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            // Refused wherever it is (`lib/../x` stays in /opt, but unzip tools disagree on it,
            // and no zip tool writes it), with a reason that fits both.
            ".." => return Err("has a `..` component, which could climb out of /opt".into()),
            part => parts.push(part),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Whether the symlink at `path` (under `/opt`, e.g. `lib/libz.so`) with `target` resolves
/// outside `/opt`. Absolute targets do not count (they are kept as they are).
pub fn link_escapes(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = path.split('/').count().saturating_sub(1);
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_come_from_unix_attributes_else_from_the_content() {
        assert!(is_executable(Some(0o100755), b"data"));
        assert!(is_executable(Some(0o100744), b"data"), "any x bit");
        assert!(is_executable(Some(0o100701), b"data"));
        assert!(
            !is_executable(Some(0o100644), b"\x7fELF"),
            "the zip's mode wins"
        );
        assert!(is_executable(None, b"\x7fELF\x02"));
        assert!(is_executable(None, b"#!/bin/sh"));
        assert!(!is_executable(None, b"{\"a\""));
        assert!(!is_executable(None, b""));
    }

    #[test]
    fn entry_kinds_follow_the_type_bits() {
        assert_eq!(entry_kind(Some(0o040755), false), EntryKind::Directory);
        assert_eq!(entry_kind(None, true), EntryKind::Directory);
        assert_eq!(entry_kind(Some(0o100644), true), EntryKind::Directory);
        assert_eq!(entry_kind(Some(0o120777), false), EntryKind::Symlink);
        assert_eq!(entry_kind(Some(0o100755), false), EntryKind::File);
        assert_eq!(entry_kind(Some(0o755), false), EntryKind::File);
        assert_eq!(entry_kind(None, false), EntryKind::File);
        assert_eq!(
            entry_kind(Some(0o010644), false),
            EntryKind::Other(0o010644)
        );
    }

    #[test]
    fn paths_stay_under_opt() {
        assert_eq!(
            layer_path("extensions/agent").unwrap().as_deref(),
            Some("extensions/agent")
        );
        assert_eq!(
            layer_path("./lib//x.so").unwrap().as_deref(),
            Some("lib/x.so")
        );
        assert_eq!(layer_path("bin/").unwrap().as_deref(), Some("bin"));
        assert_eq!(layer_path("./").unwrap(), None);
        assert_eq!(
            layer_path("a/b/../c").unwrap_err(),
            "has a `..` component, which could climb out of /opt"
        );
        assert!(layer_path("../etc/passwd").is_err());
        assert!(layer_path("/etc/passwd").unwrap_err().contains("absolute"));
        assert!(
            layer_path("extensions\\agent")
                .unwrap_err()
                .contains("Windows")
        );
    }

    #[test]
    fn relative_symlinks_must_resolve_under_opt() {
        assert!(!link_escapes("lib/libz.so", "libz.so.1"));
        assert!(!link_escapes("bin/node", "../nodejs/bin/node"));
        assert!(!link_escapes("a/b/c", "../../x"));
        assert!(link_escapes("a/b/c", "../../../x"));
        assert!(link_escapes("link", "../etc/passwd"));
        assert!(link_escapes("lib/x", "./../../y"));
        assert!(!link_escapes("lib/x", "sub/../../y"));
        assert!(link_escapes("lib/x", "sub/../../../y"));
        assert!(
            !link_escapes("link", "/etc/passwd"),
            "absolute targets are kept"
        );
    }

    fn zip_of(entries: &[(&str, Option<u32>, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut writer = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, mode, content) in entries {
            let mut options = zip::write::SimpleFileOptions::default();
            if let Some(mode) = mode {
                options = options.unix_permissions(*mode);
            }
            if mode.is_some_and(|mode| mode & S_IFMT == S_IFLNK) {
                writer
                    .add_symlink(*name, std::str::from_utf8(content).unwrap(), options)
                    .unwrap();
            } else if name.ends_with('/') {
                writer.add_directory(*name, options).unwrap();
            } else {
                writer.start_file(*name, options).unwrap();
                writer.write_all(content).unwrap();
            }
        }
        writer.finish().unwrap();
        file
    }

    #[test]
    fn a_zip_unpacks_with_modes_and_links_and_refuses_escapes() {
        let zip = zip_of(&[
            ("extensions/", Some(0o755), b""),
            ("extensions/agent", Some(0o755), b"\x7fELF"),
            ("lib/data.json", Some(0o644), b"{}"),
            ("lib/current", Some(S_IFLNK | 0o777), b"data.json"),
        ]);
        let directory = tempfile::tempdir().unwrap();
        let entries = unpack(zip.path(), "layer.zip", directory.path()).unwrap();
        let paths: Vec<&str> = entries.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "opt/extensions",
                "opt/extensions/agent",
                "opt/lib/data.json",
                "opt/lib/current"
            ]
        );
        assert_eq!(entries[1].1.mode(), 0o755);
        assert_eq!(entries[2].1.mode(), 0o644);
        assert_eq!(
            entries[3].1,
            LayerEntry::Symlink {
                target: "data.json".into()
            }
        );
        let LayerEntry::File { source, size, .. } = &entries[2].1 else {
            panic!("{entries:?}")
        };
        assert_eq!((std::fs::read(source).unwrap(), *size), (b"{}".to_vec(), 2));

        let escaping = zip_of(&[("lib/up", Some(S_IFLNK | 0o777), b"../../etc/shadow")]);
        let error = unpack(escaping.path(), "bad.zip", directory.path()).unwrap_err();
        assert!(error.message().contains("points out of /opt"), "{error:?}");

        let not_a_zip = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(not_a_zip.path(), b"not a zip").unwrap();
        let error = unpack(not_a_zip.path(), "x.zip", directory.path()).unwrap_err();
        assert!(error.message().contains("not a readable zip"), "{error:?}");
    }
}
