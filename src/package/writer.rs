//! Writes [`PackageContents`] as a `.zip` whose bytes depend only on the inputs' contents, modes
//! and `SOURCE_DATE_EPOCH`: entries in sorted order, one fixed timestamp, fixed Unix modes
//! ("version made by" Unix, so `zipinfo` shows `-rwxr-xr-x`), deflate through flate2 + zlib-rs
//! at the layers' level, and no extra fields (no extended timestamps, no uid/gid, no Zip64 while
//! under 4 GiB), no comments, no data descriptors.
//!
//! The zip goes to a temporary file beside the output, is hashed, and is renamed into place only
//! when complete: a failed run leaves nothing. Files stream from disk; none is held in memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::PackageContents;
use crate::digest::{HashingWriter, Sha256Digest};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::layer::contents::LayerEntry;
use crate::layer::writer::COMPRESSION_LEVEL;
use crate::temporary::{output_temporary_file, parent_directory};

/// The digest and size of a written `.zip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenZip {
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// Writes `contents` to `output` (replacing it), every entry dated `timestamp`.
pub fn write_zip(
    contents: &PackageContents,
    timestamp: DateTime,
    output: &Path,
) -> Result<WrittenZip> {
    if output.is_dir() {
        return Err(Error::output(format!(
            "cannot write {}: it is a directory",
            output.display()
        ))
        .hint("give the path of the .zip to write, e.g. -o function.zip"));
    }
    let directory = parent_directory(output)?;
    let mut temporary = output_temporary_file(&directory).path_context(
        ErrorKind::Output,
        "create a temporary file beside",
        output,
    )?;
    let failed = |error: &dyn std::fmt::Display| {
        Error::output(format!("cannot write {}: {error}", output.display()))
    };

    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, temporary.as_file_mut()));
    for (name, entry) in contents.entries() {
        write_entry(&mut zip, name, entry, timestamp)?;
    }
    zip.finish()
        .map_err(|error| failed(&error))?
        .flush()
        .map_err(|error| failed(&error))?;

    // The writer went back to fill in sizes and checksums, so hash the finished file.
    let file = temporary.as_file_mut();
    let mut hashing = HashingWriter::new(io::sink());
    file.seek(SeekFrom::Start(0))
        .and_then(|_| io::copy(file, &mut hashing))
        .map_err(|error| failed(&error))?;
    let (_, sha256, size) = hashing.finish();
    temporary
        .persist(output)
        .map_err(|error| error.error)
        .path_context(ErrorKind::Output, "write", output)?;
    Ok(WrittenZip { sha256, size })
}

/// The settings of every entry: only the mode differs.
fn entry_options(timestamp: DateTime, mode: u32) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(i64::from(COMPRESSION_LEVEL)))
        .last_modified_time(timestamp)
        .large_file(false)
        .unix_permissions(mode)
}

fn write_entry<W: Write + Seek>(
    zip: &mut ZipWriter<W>,
    name: &str,
    entry: &LayerEntry,
    timestamp: DateTime,
) -> Result<()> {
    let failed = |error: &dyn std::fmt::Display| {
        Error::output(format!("cannot write {name} into the .zip: {error}"))
    };
    let options = entry_options(timestamp, entry.mode());
    match entry {
        LayerEntry::Directory | LayerEntry::SharedDirectory => zip
            .add_directory(name, options)
            .map_err(|error| failed(&error)),
        LayerEntry::Generated { content } => {
            zip.start_file(name, options)
                .map_err(|error| failed(&error))?;
            zip.write_all(content.0).map_err(|error| failed(&error))
        }
        LayerEntry::Symlink { target } => zip
            .add_symlink(name, target, options)
            .map_err(|error| failed(&error)),
        LayerEntry::File { source, size, .. } => {
            zip.start_file(name, options)
                .map_err(|error| failed(&error))?;
            let file = File::open(source).path_context(ErrorKind::Failure, "open", source)?;
            let mut reader = BufReader::with_capacity(1 << 20, file.take(*size));
            let copied = io::copy(&mut reader, zip).map_err(|error| failed(&error))?;
            if copied != *size {
                return Err(Error::failure(format!(
                    "{} changed size while it was being zipped ({size} bytes expected, {copied} read)",
                    source.display()
                ))
                .hint("run it again once the file is no longer being written"));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::IncludeSpec;

    #[test]
    fn the_same_contents_give_the_same_bytes_and_the_timestamp_changes_them() {
        let directory = tempfile::tempdir().unwrap();
        let bootstrap = directory.path().join("bootstrap");
        std::fs::write(&bootstrap, b"#!/bin/sh\necho hi\n").unwrap();
        let include = IncludeSpec {
            source: bootstrap.clone(),
            destination: "/var/task/lib/copy".into(),
        };
        let contents = PackageContents::new(&bootstrap, 18, &[include]).unwrap();
        let write = |name: &str, seconds: u64| {
            let path = directory.path().join(name);
            let timestamp = super::super::dos_time::zip_timestamp(seconds).unwrap();
            let written = write_zip(&contents, timestamp, &path).unwrap();
            assert_eq!(
                Sha256Digest::of(&std::fs::read(&path).unwrap()),
                written.sha256
            );
            written
        };
        let first = write("a.zip", 0);
        assert_eq!(first, write("b.zip", 0));
        assert_ne!(first.sha256, write("c.zip", 1_700_000_000).sha256);

        let archive = zip::ZipArchive::new(File::open(directory.path().join("a.zip")).unwrap());
        let mut archive = archive.unwrap();
        let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
        assert_eq!(names, ["bootstrap", "lib/", "lib/copy"]);
        let bootstrap_entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(bootstrap_entry.unix_mode(), Some(0o100755));
        assert_eq!(bootstrap_entry.extra_data().map(<[u8]>::len), Some(0));
    }
}
