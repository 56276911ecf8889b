//! Where an image's blobs are: one trait, [`BlobStore`], for "open this blob by its descriptor",
//! whatever holds it (an OCI layout or archive, a registry repository, files this run made, or
//! those files over another store); [`BlobError`], why a blob could not be opened; and
//! [`BlobFailure`], the typed error a store's reader carries through `io::Error` when a read
//! fails mid-stream (the `Read` trait has no other way).
//!
//! Not here: reading the small documents while resolving ([`super::resolve::DocumentStore`]),
//! and the stores themselves, which live with what they read (`transport::tree::TreeBlobs`,
//! `registry::pull::RemoteRepository`), except [`LocalBlobs`], which needs nothing but files.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use oci_spec::image::Descriptor;

use super::resolve::descriptor_digest;
use crate::digest::Sha256Digest;
use crate::error::Error;

/// Holds the blobs (layers) of an image set and opens them by descriptor.
pub trait BlobStore: Send + Sync {
    /// Opens a blob for reading. Bytes from a source this run did not make are verified against
    /// the descriptor's digest and size as they are read (a mismatch is an `InvalidData` read
    /// error); a failure that has a kind of its own (a registry's) is [`BlobError::Failed`] when
    /// opening, and travels as a [`BlobFailure`] when reading.
    fn open(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + Send>, BlobError>;

    /// The registry (`host[:port]`) and repository the blobs are read from, when a registry
    /// holds them, so a push to another repository of that registry can mount them instead of
    /// uploading. `None` for local stores.
    fn origin(&self) -> Option<(&str, &str)> {
        None
    }
}

/// Blobs in files this run made (a new layer, a base layer that had to be compressed), read as
/// they are, over the store of the image they were added to, which holds every other blob.
pub struct LocalBlobs {
    files: BTreeMap<Sha256Digest, PathBuf>,
    under: Option<Arc<dyn BlobStore>>,
    /// Keeps the directory of the files alive, when the store owns it.
    _scratch: Option<tempfile::TempDir>,
}

impl LocalBlobs {
    /// `files` (by digest) over `under`, which opens every blob not among them.
    pub fn new(files: BTreeMap<Sha256Digest, PathBuf>, under: Option<Arc<dyn BlobStore>>) -> Self {
        Self {
            files,
            under,
            _scratch: None,
        }
    }

    /// Deletes `scratch` (where the files are) only when the store is dropped.
    pub fn keeping(mut self, scratch: tempfile::TempDir) -> Self {
        self._scratch = Some(scratch);
        self
    }
}

impl BlobStore for LocalBlobs {
    fn open(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + Send>, BlobError> {
        let digest = descriptor_digest(descriptor)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.message()))?;
        match (self.files.get(&digest), &self.under) {
            (Some(path), _) => Ok(Box::new(std::fs::File::open(path)?)),
            (None, Some(under)) => under.open(descriptor),
            (None, None) => Err(BlobError::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("blob {digest} is not among the files made"),
            ))),
        }
    }

    fn origin(&self) -> Option<(&str, &str)> {
        self.under.as_ref()?.origin()
    }
}

/// Why a blob could not be opened (or, converted from the `io::Error` of a read, read).
#[derive(Debug)]
pub enum BlobError {
    /// A failure with a kind and message of its own (a registry's refusal, or a blob the base's
    /// registry does not have): reported as it is.
    Failed(Error),
    /// The bytes could not be read: missing or corrupt (`InvalidData`), or unreadable.
    Io(io::Error),
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::Failed(error) => write!(f, "{}", error.message()),
            BlobError::Io(error) => write!(f, "{error}"),
        }
    }
}

/// A read error: the typed failure it carries ([`blob_failure`]), else the error itself.
impl From<io::Error> for BlobError {
    fn from(error: io::Error) -> Self {
        match blob_failure(&error) {
            Some(typed) => BlobError::Failed(typed),
            None => BlobError::Io(error),
        }
    }
}

/// For code that copies blobs through `io` (tree writers): a typed failure rides as a
/// [`BlobFailure`], which [`blob_failure`] gets back.
impl From<BlobError> for io::Error {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::Failed(typed) => io::Error::other(BlobFailure(typed)),
            BlobError::Io(error) => error,
        }
    }
}

/// A typed failure that had to travel as an `io::Error` (through a reader): [`blob_failure`]
/// gets it back, with its kind: a registry's fault (exit 6), or, for a base blob the base's
/// registry does not have, the base's (exit 4).
#[derive(Debug)]
pub struct BlobFailure(pub Error);

impl std::fmt::Display for BlobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.message())
    }
}

impl std::error::Error for BlobFailure {}

/// The typed error an `io::Error` carries, if it carries one (its kind and hint kept).
pub fn blob_failure(error: &io::Error) -> Option<Error> {
    let failure = error.get_ref()?.downcast_ref::<BlobFailure>()?;
    let copy = Error::new(failure.0.kind(), failure.0.message().to_owned());
    Some(match failure.0.hint_text() {
        Some(hint) => copy.hint(hint.to_owned()),
        None => copy,
    })
}
