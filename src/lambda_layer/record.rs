//! What the cache keeps of a Lambda layer version fetched by ARN, so that a second build, and an
//! `--offline` one, needs no AWS call and no credentials (a layer version is immutable): the zip
//! itself in the blob cache by its sha256 (`blobs/sha256/<hex>`), and a record
//! `lambda-layers/<PARTITION>/<REGION>/<ACCOUNT>/<NAME>/<VERSION>.json` holding
//! `{"arn", "sha256": "sha256:<hex>", "code_sha256": "<base64, as Lambda shows it>", "size",
//! "compatible_architectures": ["x86_64", ...]}`. The record is written only after the zip is
//! in place and verified, each through a temporary file renamed into place; a zip read back is
//! hashed whole before it is used, and one that does not match is deleted and fetched again.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::arn::LayerArn;
use crate::cache::blobs::BlobCache;
use crate::digest::Sha256Digest;

/// The record of one layer version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    pub arn: String,
    /// `sha256:<hex>` of the zip.
    pub sha256: String,
    /// Lambda's `Content.CodeSha256`: base64 of the zip's sha256.
    pub code_sha256: String,
    /// The zip's size in bytes.
    pub size: u64,
    /// Lambda's `CompatibleArchitectures` (`x86_64`, `arm64`); empty when the layer names none.
    pub compatible_architectures: Vec<String>,
}

fn record_path(cache: &BlobCache, arn: &LayerArn) -> PathBuf {
    cache
        .root()
        .join("lambda-layers")
        .join(&arn.partition)
        .join(&arn.region)
        .join(&arn.account)
        .join(&arn.name)
        .join(format!("{}.json", arn.version))
}

/// The record of `arn` and the path of its zip, when both are in the cache and the zip matches
/// the record (size and sha256, read whole). A zip that does not match is deleted.
pub fn lookup(cache: &BlobCache, arn: &LayerArn) -> Option<(LayerRecord, PathBuf)> {
    let text = fs::read(record_path(cache, arn)).ok()?;
    let record: LayerRecord = serde_json::from_slice(&text).ok()?;
    if record.arn != arn.to_string() {
        return None;
    }
    let digest: Sha256Digest = record.sha256.parse().ok()?;
    let path = cache.blob_path(&digest);
    let metadata = fs::metadata(&path).ok()?;
    let matches = metadata.len() == record.size
        && crate::cache::file_digests::file_sha256(&path).ok()? == digest.hex();
    if !matches {
        let _ = fs::remove_file(&path);
        return None;
    }
    Some((record, path))
}

/// Writes the record of a zip already stored at its blob path. A failure leaves the cache
/// without the record (an optimisation lost, nothing wrong kept).
pub fn store(cache: &BlobCache, arn: &LayerArn, record: &LayerRecord) -> io::Result<()> {
    let path = record_path(cache, arn);
    if let Some(directory) = path.parent() {
        fs::create_dir_all(directory)?;
    }
    let mut temporary = crate::temporary::file_in(&cache.temporary_directory())?;
    let text = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    io::Write::write_all(&mut temporary, &text)?;
    crate::temporary::persist(temporary, &path).map_err(|error| error.error)?;
    Ok(())
}
