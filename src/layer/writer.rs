//! Writes [`LayerContents`] as a deterministic tar, hashing it for the `diff_id`, gzipping it and
//! hashing again for the `digest`, in one streaming pass. The layer is never held in memory.
//!
//! Determinism: entries sorted, ustar headers, uid/gid 0 named root, one fixed mtime, fixed modes,
//! no hard links, no per-machine extended headers, and a gzip header with mtime 0 and OS 255.
//! The gzip bytes also depend on the deflate implementation (zlib-rs, see Cargo.toml) and
//! [`COMPRESSION_LEVEL`]: changing either changes every new layer digest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use super::contents::{LayerContents, LayerEntry};
use super::growing::GrowingFile;
use crate::digest::{HashingReader, HashingWriter, Sha256Digest};
use crate::error::{Error, ErrorKind, IoContext, Result};

/// The gzip level for new layers. Part of the digest: keep it fixed.
///
/// Measured on a 16 MB Go binary (skopeo) with zlib-rs: level 1 (deflate_quick) 50.8% at 138 MB/s,
/// level 2 42.0% at 112 MB/s, level 6 39.2% at 60 MB/s; `gzip -1` gives 42.7% at 65 MB/s. Level 2
/// is smaller than `gzip -1` and nearly twice as fast; the few percent level 6 saves cost more time
/// than they save in upload on any link faster than about 4 MB/s.
pub const COMPRESSION_LEVEL: u32 = 2;

/// The digests and sizes of a written layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar: goes in the config's `rootfs.diff_ids`.
    pub diff_id: Sha256Digest,
    /// sha256 of the gzipped tar: the blob digest in the manifest.
    pub digest: Sha256Digest,
    /// Size of the gzipped tar in bytes.
    pub size: u64,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
}

/// The sha256 of each source file's content as it was read into a layer, by source path: what
/// the layer holds, whatever the file holds by the time anyone looks again.
pub type ContentDigests = BTreeMap<PathBuf, Sha256Digest>;

/// Writes the layer to `output`, returning it with the layer's digests.
pub fn write_layer<W: Write>(
    contents: &LayerContents,
    mtime: u64,
    output: W,
) -> Result<(W, LayerDigests)> {
    write_layer_reading(contents, mtime, output).map(|(output, digests, _)| (output, digests))
}

/// [`write_layer`], also giving the digest of every file's content as read, from the same read
/// that wrote it into the layer.
pub fn write_layer_reading<W: Write>(
    contents: &LayerContents,
    mtime: u64,
    output: W,
) -> Result<(W, LayerDigests, ContentDigests)> {
    let gzip = gzip_encoder(HashingWriter::new(output));
    let mut tar = HashingWriter::new(gzip);
    let mut read = ContentDigests::new();
    for (path, entry) in contents.entries() {
        if let Some((source, digest)) = write_entry(&mut tar, path, entry, mtime)? {
            read.insert(source, digest);
        }
    }
    // The end-of-archive marker: two zero blocks.
    tar.write_all(&[0; 1024])
        .context(ErrorKind::Failure, || "cannot write the layer".into())?;
    let (gzip, diff_id, uncompressed_size) = tar.finish();
    let compressed = gzip
        .finish()
        .context(ErrorKind::Failure, || "cannot write the layer".into())?;
    let (output, digest, size) = compressed.finish();
    Ok((
        output,
        LayerDigests {
            diff_id,
            digest,
            size,
            uncompressed_size,
        },
        read,
    ))
}

/// The gzip encoder for every layer this tool makes: fixed header (mtime 0, OS unknown), fixed level.
pub fn gzip_encoder<W: Write>(output: W) -> GzEncoder<W> {
    GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(output, Compression::new(COMPRESSION_LEVEL))
}

/// Writes one entry; for a file, its source path and the digest of the content it read.
fn write_entry(
    out: &mut impl Write,
    path: &str,
    entry: &LayerEntry,
    mtime: u64,
) -> Result<Option<(PathBuf, Sha256Digest)>> {
    let failed =
        |error: io::Error| Error::failure(format!("cannot write /{path} into the layer: {error}"));
    let mut header = Header::new_ustar();
    header.set_mode(entry.mode());
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("root").map_err(failed)?;
    header.set_groupname("root").map_err(failed)?;
    header.set_mtime(mtime);
    let name = if entry.is_directory() {
        format!("{path}/")
    } else {
        path.to_owned()
    };
    let mut pax_records = Vec::new();
    set_bytes_or_pax(
        &mut header.as_old_mut().name,
        &name,
        "path",
        &mut pax_records,
    );
    match entry {
        LayerEntry::Directory | LayerEntry::SharedDirectory => {
            header.set_entry_type(EntryType::Directory);
            header.set_size(0);
        }
        LayerEntry::Generated { content } => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(content.0.len() as u64);
        }
        LayerEntry::Symlink { target } => {
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            set_bytes_or_pax(
                &mut header.as_old_mut().linkname,
                target,
                "linkpath",
                &mut pax_records,
            );
        }
        LayerEntry::File { size, .. } => {
            header.set_entry_type(EntryType::Regular);
            header.set_size(*size);
        }
    }
    if !pax_records.is_empty() {
        write_pax_header(out, &pax_records, mtime).map_err(failed)?;
    }
    header.set_cksum();
    out.write_all(header.as_bytes()).map_err(failed)?;
    if let LayerEntry::Generated { content } = entry {
        out.write_all(content.0).map_err(failed)?;
        write_padding(out, content.0.len() as u64).map_err(failed)?;
        return Ok(None);
    }
    if let LayerEntry::File { source, size, .. } = entry {
        let file = File::open(source).path_context(ErrorKind::Failure, "open", source)?;
        let mut reading = HashingReader::new(file.take(*size));
        let copied = io::copy(&mut reading, out).map_err(failed)?;
        if copied != *size {
            return Err(Error::failure(format!(
                "{} changed size while it was being added to the layer ({size} bytes expected, {copied} read)",
                source.display()
            ))
            .hint("run the build again once the file is no longer being written"));
        }
        write_padding(out, *size).map_err(failed)?;
        return Ok(Some((source.clone(), reading.finish())));
    }
    Ok(None)
}

/// Puts `value` in a fixed-size header field, or into a PAX record when it does not fit.
fn set_bytes_or_pax(field: &mut [u8], value: &str, pax_key: &str, pax_records: &mut Vec<u8>) {
    field.fill(0);
    if value.len() <= field.len() {
        field[..value.len()].copy_from_slice(value.as_bytes());
    } else {
        // A truncated name for old readers; PAX-aware readers use the record.
        let mut cut = field.len();
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        field[..cut].copy_from_slice(&value.as_bytes()[..cut]);
        pax_records.extend(pax_record(pax_key, value));
    }
}

/// One PAX record: `<length> <key>=<value>\n`, where the length counts itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut length = body + 1;
    while length != body + length.to_string().len() {
        length = body + length.to_string().len();
    }
    format!("{length} {key}={value}\n").into_bytes()
}

fn write_pax_header(out: &mut impl Write, records: &[u8], mtime: u64) -> io::Result<()> {
    let mut header = Header::new_ustar();
    header.as_old_mut().name[..14].copy_from_slice(b"PaxHeaders/ext");
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(EntryType::XHeader);
    header.set_size(records.len() as u64);
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    out.write_all(records)?;
    write_padding(out, records.len() as u64)
}

fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let remainder = (size % 512) as usize;
    if remainder != 0 {
        out.write_all(&[0; 512][..512 - remainder])?;
    }
    Ok(())
}

/// Writes a layer into a new temporary file in `directory` (for sinks to copy or rename),
/// handing `publish` the [`GrowingFile`] that lets others read it while it is written (before the
/// first byte). The growing file is finished with the digests, or with the error. Also gives
/// the digests of the files' contents as read ([`write_layer_reading`]).
pub fn write_growing_layer(
    contents: &LayerContents,
    mtime: u64,
    directory: &std::path::Path,
    publish: impl FnOnce(&GrowingFile),
) -> Result<(tempfile::NamedTempFile, LayerDigests, ContentDigests)> {
    let file = tempfile::Builder::new()
        .prefix(".lambda-image-layer-")
        .tempfile_in(directory)
        .path_context(ErrorKind::Output, "create a temporary file in", directory)?;
    crate::temporary::remember(file.path());
    let growing =
        GrowingFile::new(file.as_file()).path_context(ErrorKind::Output, "open", file.path())?;
    publish(&growing);
    let written = write_layer_reading(
        contents,
        mtime,
        io::BufWriter::with_capacity(GROWTH_STEP, growing.writer(file.as_file())),
    )
    .and_then(|(writer, digests, read)| {
        writer
            .into_inner()
            .map_err(|error| Error::output(format!("cannot write the layer: {}", error.error())))?;
        Ok((digests, read))
    });
    growing.finish(match &written {
        Ok((digests, _)) => Ok(digests.clone()),
        Err(error) => Err(error.to_string()),
    });
    let (digests, read) = written?;
    Ok((file, digests, read))
}

/// How much of a growing layer is written at a time, in bytes: what a follower (an upload) can
/// read as soon as it is written.
const GROWTH_STEP: usize = 256 << 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let record = pax_record("path", "x");
        assert_eq!(record, b"9 path=x\n");
        let long = "y".repeat(95);
        let record = String::from_utf8(pax_record("path", &long)).unwrap();
        let (length, _) = record.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), record.len());
    }

    #[test]
    fn same_contents_give_same_digests_and_mtime_changes_them() {
        let directory = tempfile::tempdir().unwrap();
        let bootstrap = directory.path().join("bootstrap");
        std::fs::write(&bootstrap, b"#!/bin/sh\necho hi\n").unwrap();
        let contents = LayerContents::with_bootstrap(&bootstrap, 18).unwrap();
        let (_, first) = write_layer(&contents, 0, Vec::new()).unwrap();
        let (bytes, second) = write_layer(&contents, 0, Vec::new()).unwrap();
        let (_, later) = write_layer(&contents, 1, Vec::new()).unwrap();
        assert_eq!(first, second);
        assert_ne!(first.digest, later.digest);
        assert_eq!(Sha256Digest::of(&bytes), first.digest);

        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| String::from_utf8(entry.unwrap().path_bytes().into_owned()).unwrap())
            .collect();
        assert_eq!(names, ["var/", "var/runtime/", "var/runtime/bootstrap"]);
    }

    /// A shared directory is written with mode 1777 (sticky bit kept), a generated file with
    /// its bytes and mode 0644.
    #[test]
    fn shared_directories_keep_the_sticky_bit_and_generated_files_their_bytes() {
        use crate::layer::contents::GeneratedContent;
        let directory = tempfile::tempdir().unwrap();
        let bootstrap = directory.path().join("bootstrap");
        std::fs::write(&bootstrap, b"#!/bin/sh\n").unwrap();
        let mut contents = LayerContents::with_bootstrap(&bootstrap, 10).unwrap();
        contents
            .add_generated("/tmp", LayerEntry::SharedDirectory, "tmp")
            .unwrap();
        let generated = LayerEntry::Generated {
            content: GeneratedContent(b"generated\n"),
        };
        contents
            .add_generated("/etc/note", generated, "note")
            .unwrap();
        let (bytes, _) = write_layer(&contents, 0, Vec::new()).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let mode = entry.header().mode().unwrap();
            let mut content = String::new();
            std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
            seen.push((path, mode, content));
        }
        let find = |path: &str| seen.iter().find(|(p, ..)| p == path).unwrap();
        assert_eq!(find("tmp/").1, 0o1777);
        assert_eq!(find("etc/note").1, 0o644);
        assert_eq!(find("etc/note").2, "generated\n");
    }
}
