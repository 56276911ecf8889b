//! An image's root filesystem on disk: its layers unpacked, in order, into a directory that a
//! sandbox (`crate::sandbox`) mounts read-only as `/`, as Lambda runs a container image.
//!
//! [`prepare`] streams each layer once (gzip or uncompressed tar), checks the sha256 of its
//! uncompressed tar against the config's `rootfs.diff_ids` (OCI image spec config.md), applies
//! its whiteouts, and keeps modes, owners ([`Ownership`]) and mtimes (`unpack`). Meanwhile it
//! notes the entries Lambda's unpacker refuses (hard links, missing parent directories), as
//! `check` finds them ([`unsupported`]). With a cache the tree is kept as
//! `<cache>/rootfs/<preserved|user>/sha256/<chain id hex>`, keyed by the layers' ChainID
//! (config.md "Layer ChainID"), beside its record (`<chain id hex>.json`, what Lambda refuses
//! in it) and its lock (`<chain id hex>.lock`), and reused by later runs; written as
//! `<cache>/tmp/.lambda-image-rootfs-XXXXXX/tree` and renamed into place whole (the record
//! first), so an interrupted or concurrent run never leaves half a tree there. Only the
//! [`TREES_KEPT`] most recently used trees stay (`retention`). Without a cache, as
//! `$TMPDIR/lambda-image-rootfs-XXXXXX/tree`, removed when the [`RootFilesystem`] is dropped.
//! Either is removed whole by a run stopped by SIGINT or SIGTERM, and a killed run's is removed
//! by the next run (`scratch`).
//!
//! The tree is not exactly the image: the mount points the sandbox needs
//! ([`MOUNT_POINT_DIRECTORIES`]: `/proc`, `/dev`, `/tmp`; [`MOUNT_POINT_FILES`]:
//! `/etc/resolv.conf`, `/etc/hosts`, so that `localhost` and DNS names resolve) are made when
//! missing, `/etc` too (0755) when the image has none; an `/etc` that is a symlink or a file is
//! the image's choice and is kept, with no mount point files (a symlink is never followed, as it
//! may lead out of the tree), and devices and FIFOs are left out (the sandbox mounts its own
//! `/dev`). Not here: running anything in the tree (`crate::sandbox`), opening the image
//! (`crate::transport`, `crate::registry`).

mod attributes;
mod retention;
mod scratch;
mod tree_path;
mod unpack;
pub mod unsupported;

#[cfg(test)]
mod tests;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use oci_spec::image::ImageConfiguration;

use crate::cache::blobs::BlobCache;
use crate::digest::{HashingReader, Sha256Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::image::filesystem::{Filesystem, LayerCompression};
use crate::image::media_types::{
    DOCKER_LAYER_GZIP, DOCKER_LAYER_TAR, OCI_LAYER_GZIP, OCI_LAYER_TAR,
};
use crate::image::set::{Image, ImageSet, Layer};
use crate::image::store::{BlobError, blob_failure};
use crate::registry::progress::{BlobProgress, Progress};
pub use retention::TREES_KEPT;
use retention::{TreeLock, lock_path, record_path};
use scratch::{Scratch, remove_dead};
use unpack::{LayerFault, Unpacker};
use unsupported::{RefusedEntries, UnsupportedLayer, read_record, write_record};

/// Directories the tree holds besides the image's own entries, for the sandbox to mount onto
/// (`/tmp` with mode 1777, the others 0755), relative to the root.
pub const MOUNT_POINT_DIRECTORIES: [(&str, u32); 3] =
    [("proc", 0o755), ("dev", 0o755), ("tmp", 0o1777)];
/// Files (empty, 0644) the tree holds, for the sandbox to bind the host's onto, relative to
/// the root; `etc` is made (0755) when missing, and they are not made when it is a symlink or
/// a file.
pub const MOUNT_POINT_FILES: [&str; 2] = ["etc/resolv.conf", "etc/hosts"];

/// The prefix of a tree being written in the cache's `tmp/`.
const TEMPORARY_PREFIX: &str = ".lambda-image-rootfs-";
/// The prefix of a tree in the system's temporary directory (no cache).
const UNCACHED_PREFIX: &str = "lambda-image-rootfs-";

/// Whose files the tree holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Unpacked by root: every entry keeps the tar header's uid/gid (and so Lambda's root-owned
    /// files stay unreadable to uid 993 when their mode says so). Needs root (chown(2)).
    Preserved,
    /// Unpacked by an ordinary user: everything belongs to that user (the sandbox maps it to
    /// 993).
    CurrentUser,
}

impl Ownership {
    /// The cache directory of trees unpacked so (`preserved`, `user`).
    fn directory_name(self) -> &'static str {
        match self {
            Ownership::Preserved => "preserved",
            Ownership::CurrentUser => "user",
        }
    }
}

/// An unpacked root filesystem.
#[derive(Debug)]
pub struct RootFilesystem {
    /// The tree's root directory.
    pub path: PathBuf,
    /// The layers' ChainID (OCI image spec config.md "Layer ChainID"), from the config's
    /// diff_ids; for an image without layers, the sha256 of nothing.
    pub chain_id: Sha256Digest,
    /// Found in the cache: no layer was unpacked this run.
    pub reused: bool,
    /// The layers holding entries that Lambda refuses when the function is created (hard
    /// links, missing parent directories), in the image's order; empty for an image Lambda
    /// takes. The tree holds them unpacked all the same; [`unsupported::refusal`] makes the
    /// error that refuses to run it.
    pub unsupported_layers: Vec<UnsupportedLayer>,
    /// Holds and removes the tree when there is no cache.
    _temporary: Option<Scratch>,
    /// Keeps a cached tree from being pruned while this value lives.
    _lock: Option<TreeLock>,
}

/// Unpacks `image`'s layers (opened through [`ImageSet::open_layer`], which verifies each
/// blob's digest) in order into a tree, as the module doc says: with `cache`, as
/// `<cache root>/rootfs/<preserved|user>/sha256/<chain id hex>`, reused when already there (if
/// another run renames its tree into place first, that one is used); without (`None`), in a
/// temporary directory removed when the value is dropped. Each layer's progress is shown
/// through `progress` (`unpacked`, or `checked` when a cached tree without its record is
/// scanned again). Entries Lambda refuses are unpacked, and listed in
/// [`RootFilesystem::unsupported_layers`]. With a cache, the trees of this ownership beyond
/// the [`TREES_KEPT`] most recently used that no live run holds are removed afterwards
/// (`retention`).
///
/// Errors: a layer media type other than gzip (OCI, Docker) or uncompressed tar (OCI, Docker),
/// a diff_id that does not match the layer's uncompressed tar, a layer that cannot be read, or
/// an entry that would write outside the tree (`..` climbing out, a hard link to nothing): kind
/// `Base` (exit 4), naming the layer, and nothing is left in the cache; a blob store's own
/// failure keeps its kind (a registry's: exit 6); a tree that cannot be written (disk full,
/// `Preserved` without root) or a cache whose tree lock cannot be made: kind `Output` (exit 5).
pub fn prepare(
    set: &ImageSet,
    image: &Image,
    cache: Option<&BlobCache>,
    ownership: Ownership,
    progress: &Progress,
) -> Result<RootFilesystem> {
    let diff_ids = diff_ids(set, image)?;
    let chain_id = chain_id(&diff_ids);
    for (index, layer) in image.layers.iter().enumerate() {
        compression(set, image, index, layer)?;
    }
    let Some(cache) = cache else {
        remove_dead(&std::env::temp_dir(), UNCACHED_PREFIX, false);
        let scratch = Scratch::make(None, UNCACHED_PREFIX).map_err(|error| {
            Error::output(format!(
                "cannot make a temporary directory for the image's root filesystem: {error}"
            ))
            .hint("set TMPDIR to a writable directory with room for the unpacked image")
        })?;
        let unsupported_layers =
            unpack_layers(set, image, &diff_ids, &scratch.tree, ownership, progress)?;
        return Ok(RootFilesystem {
            path: scratch.tree.clone(),
            chain_id,
            reused: false,
            unsupported_layers,
            _temporary: Some(scratch),
            _lock: None,
        });
    };

    let directory = cache
        .root()
        .join("rootfs")
        .join(ownership.directory_name())
        .join("sha256");
    // The sandbox takes only an absolute root (`--cache-dir` may be relative).
    let directory = std::path::absolute(&directory).unwrap_or(directory);
    let place = directory.join(chain_id.hex());
    let cached = CachedTree {
        record: record_path(&place),
        temporary: cache.temporary_directory(),
        tree: place,
        cache,
    };
    fs::create_dir_all(&directory)
        .map_err(|error| cached.error(format!("cannot make {}", directory.display()), error))?;
    let lock = TreeLock::shared(&cached.tree).map_err(|error| {
        cached.error(
            format!("cannot lock {}", lock_path(&cached.tree).display()),
            error,
        )
    })?;
    let (reused, unsupported_layers) =
        match cached.find_or_make(set, image, &diff_ids, ownership, progress) {
            Ok(found) => found,
            Err(error) => {
                // Nothing of a failed run stays: neither its record nor its lock, unless
                // another run holds that.
                drop(lock);
                retention::remove_leftovers(&directory, chain_id.hex());
                return Err(error);
            }
        };
    retention::prune(&directory, &cached.temporary, TREES_KEPT);
    Ok(RootFilesystem {
        path: cached.tree,
        chain_id,
        reused,
        unsupported_layers,
        _temporary: None,
        _lock: lock,
    })
}

/// A tree's place in the cache.
struct CachedTree<'a> {
    /// `<cache>/rootfs/<preserved|user>/sha256/<chain id hex>`, absolute.
    tree: PathBuf,
    /// Its record, `<chain id hex>.json`.
    record: PathBuf,
    /// The cache's `tmp/`.
    temporary: PathBuf,
    cache: &'a BlobCache,
}

impl CachedTree<'_> {
    /// The tree when it is there (with what its record says, or what a scan of its layers
    /// finds when it has none), else unpacked into place; `true` for one found there.
    fn find_or_make(
        &self,
        set: &ImageSet,
        image: &Image,
        diff_ids: &[Sha256Digest],
        ownership: Ownership,
        progress: &Progress,
    ) -> Result<(bool, Vec<UnsupportedLayer>)> {
        if is_tree(&self.tree) {
            if let Some(layers) = read_record(&self.record, image.layers.len()) {
                return Ok((true, layers));
            }
            // A tree without its record (an older version's): what its layers hold is found
            // again, never assumed. A record that cannot be written is found again next time.
            let layers = scan_layers(set, image, progress)?;
            let _ = write_record(&self.record, &self.temporary, &layers);
            return Ok((true, layers));
        }
        remove_dead(&self.temporary, TEMPORARY_PREFIX, true);
        let scratch = Scratch::make(Some(&self.temporary), TEMPORARY_PREFIX).map_err(|error| {
            self.error(
                format!("cannot make a directory in {}", self.temporary.display()),
                error,
            )
        })?;
        let layers = unpack_layers(set, image, diff_ids, &scratch.tree, ownership, progress)?;
        // Before the tree, so that a tree in place always has its record (one that cannot be
        // written leaves the tree to be scanned again by the next run).
        let _ = write_record(&self.record, &self.temporary, &layers);
        let unpacked = scratch.tree.clone();
        match scratch.into_place(&self.tree) {
            Ok(()) => Ok((false, layers)),
            // Another run put the same tree there first: it is whole, as this one is, and its
            // record says what this one's does.
            Err(_) if is_tree(&self.tree) => Ok((false, layers)),
            Err((_, error)) => Err(self.error(
                format!(
                    "cannot rename {} to {}",
                    unpacked.display(),
                    self.tree.display()
                ),
                error,
            )),
        }
    }

    /// The cache cannot be written: what was being done, and the error.
    fn error(&self, doing: String, error: io::Error) -> Error {
        Error::output(format!("{doing}: {error}")).hint(format!(
            "free some space or fix the permissions of the cache {}, or choose another \
             with --cache-dir",
            self.cache.root().display()
        ))
    }
}

/// Whether `place` is a directory (not a symlink to one).
fn is_tree(place: &Path) -> bool {
    fs::symlink_metadata(place).is_ok_and(|metadata| metadata.is_dir())
}

/// The config's `rootfs.diff_ids`, one per layer.
fn diff_ids(set: &ImageSet, image: &Image) -> Result<Vec<Sha256Digest>> {
    let config: ImageConfiguration =
        serde_json::from_slice(&image.config.bytes).map_err(|error| {
            Error::base(format!(
                "{}: the image config is not a valid OCI image config: {error}",
                set.reference
            ))
        })?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|diff_id| {
            diff_id.parse::<Sha256Digest>().map_err(|error| {
                Error::base(format!(
                    "{}: the config's rootfs.diff_ids holds {error}",
                    set.reference
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if diff_ids.len() != image.layers.len() {
        return Err(Error::base(format!(
            "{}: the config lists {} diff_ids for {} layers",
            set.reference,
            diff_ids.len(),
            image.layers.len()
        ))
        .hint("the image is malformed; rebuild it or choose another"));
    }
    Ok(diff_ids)
}

/// The ChainID of layers with these diff_ids (OCI image spec config.md "Layer ChainID"):
/// `ChainID(L0) = DiffID(L0)`, `ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " +
/// DiffID(Ln))`, digests written `sha256:<hex>`. For no layers, the sha256 of nothing.
pub fn chain_id(diff_ids: &[Sha256Digest]) -> Sha256Digest {
    let mut layers = diff_ids.iter();
    let Some(first) = layers.next() else {
        return Sha256Digest::of(b"");
    };
    layers.fold(first.clone(), |chain, diff_id| {
        Sha256Digest::of(format!("{chain} {diff_id}").as_bytes())
    })
}

/// Whether a layer is gzipped: gzip (OCI, Docker) or uncompressed tar (OCI, Docker); anything
/// else (zstd among them) is refused.
fn compression(set: &ImageSet, image: &Image, index: usize, layer: &Layer) -> Result<bool> {
    let media_type = layer.descriptor.media_type().to_string();
    match media_type.as_str() {
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Ok(true),
        OCI_LAYER_TAR | DOCKER_LAYER_TAR => Ok(false),
        _ => Err(Error::base(format!(
            "{}: {} has media type {media_type}, which cannot be unpacked here (gzip or \
             uncompressed tar layers only)",
            set.reference,
            layer_name(image, index, layer)
        ))
        .hint("rebuild the image with gzip layers, as Lambda needs")),
    }
}

/// `layer 2 of 5 (sha256:…)`.
fn layer_name(image: &Image, index: usize, layer: &Layer) -> String {
    format!(
        "layer {} of {} ({})",
        index + 1,
        image.layers.len(),
        layer.digest()
    )
}

/// A layer's uncompressed tar, its blob's progress shown through `progress`.
fn layer_tar(
    set: &ImageSet,
    image: &Image,
    index: usize,
    layer: &Layer,
    progress: &Progress,
) -> Result<(Box<dyn Read>, BlobProgress)> {
    let gzip = compression(set, image, index, layer)?;
    let blob = set.open_layer(layer).map_err(|error| match error {
        BlobError::Failed(error) => error,
        BlobError::Io(error) => unreadable(set, image, index, layer, &error),
    })?;
    let tracker = progress.blob(&layer.digest(), layer.descriptor.size(), "root filesystem");
    let blob = tracker.track(blob);
    let tar: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(blob))
    } else {
        blob
    };
    Ok((tar, tracker))
}

fn unreadable(
    set: &ImageSet,
    image: &Image,
    index: usize,
    layer: &Layer,
    error: &dyn std::fmt::Display,
) -> Error {
    Error::base(format!(
        "{}: cannot read {}: {error}",
        set.reference,
        layer_name(image, index, layer)
    ))
}

/// Finds the entries Lambda refuses in every layer without unpacking anything (for a cached
/// tree whose record is missing), as [`unpack_layers`] finds them.
fn scan_layers(
    set: &ImageSet,
    image: &Image,
    progress: &Progress,
) -> Result<Vec<UnsupportedLayer>> {
    let mut filesystem = Filesystem::default();
    let mut found = Vec::new();
    for (index, layer) in image.layers.iter().enumerate() {
        let (tar, tracker) = layer_tar(set, image, index, layer, progress)?;
        let problems = filesystem
            .apply_layer(tar, LayerCompression::None, &|_| None)
            .map_err(|error| {
                blob_failure(&error).unwrap_or_else(|| unreadable(set, image, index, layer, &error))
            })?;
        tracker.finish("checked");
        let entries = RefusedEntries::of_layer(&problems);
        if !entries.is_empty() {
            found.push(UnsupportedLayer { index, entries });
        }
    }
    Ok(found)
}

/// Unpacks every layer into `root`, checking diff_ids, then finishes the tree. Returns the
/// layers holding entries Lambda refuses.
fn unpack_layers(
    set: &ImageSet,
    image: &Image,
    diff_ids: &[Sha256Digest],
    root: &Path,
    ownership: Ownership,
    progress: &Progress,
) -> Result<Vec<UnsupportedLayer>> {
    let mut unpacker = Unpacker::new(root, ownership);
    let mut found = Vec::new();
    for (index, (layer, diff_id)) in image.layers.iter().zip(diff_ids).enumerate() {
        let name = || layer_name(image, index, layer);
        let (tar, tracker) = layer_tar(set, image, index, layer, progress)?;
        let mut hashing = HashingReader::new(tar);
        let applied = unpacker.apply_layer(&mut hashing).and_then(|entries| {
            // The diff_id covers the whole stream, past the tar's end blocks.
            io::copy(&mut hashing, &mut io::sink())
                .map(|_| entries)
                .map_err(LayerFault::Read)
        });
        let entries = applied.map_err(|fault| match fault {
            LayerFault::Read(error) => blob_failure(&error)
                .unwrap_or_else(|| unreadable(set, image, index, layer, &error)),
            LayerFault::Refused { entry, reason } => Error::base(format!(
                "{}: {}: the entry {entry} is refused: {reason}",
                set.reference,
                name()
            ))
            .hint("the layer would write outside the image's root filesystem, or is malformed; rebuild the image"),
            LayerFault::Write(doing, error) => write_error(root, ownership, doing, error),
        })?;
        let unpacked = hashing.finish();
        if unpacked != *diff_id {
            return Err(Error::base(format!(
                "{}: {} unpacks to a tar of {unpacked}, but the config's diff_id for it is \
                 {diff_id}",
                set.reference,
                name()
            ))
            .hint("the image is corrupt or was assembled wrongly; rebuild or pull it again"));
        }
        tracker.finish("unpacked");
        if !entries.is_empty() {
            found.push(UnsupportedLayer { index, entries });
        }
    }
    unpacker.finish().map_err(|fault| match fault {
        LayerFault::Read(error) => Error::base(error.to_string()),
        LayerFault::Refused { entry, reason } => Error::base(format!(
            "{}: cannot make the sandbox's mount points at {entry}: {reason}",
            set.reference
        )),
        LayerFault::Write(doing, error) => write_error(root, ownership, doing, error),
    })?;
    Ok(found)
}

fn write_error(root: &Path, ownership: Ownership, doing: String, error: io::Error) -> Error {
    let hint =
        if ownership == Ownership::Preserved && error.kind() == io::ErrorKind::PermissionDenied {
            "keeping the image's owners needs root; run as root".to_owned()
        } else {
            format!(
                "free some space or fix the permissions where the image is unpacked ({})",
                root.display()
            )
        };
    Error::new(
        ErrorKind::Output,
        format!("cannot unpack the image's root filesystem: {doing}: {error}"),
    )
    .hint(hint)
}
