//! Pushing built images' blobs to registry repositories, the first step of the order that never
//! exposes a partial image: every blob first (skipped if present, mounted from the base's
//! repository when it is on the same registry, else uploaded in one streamed request), then
//! ([`super::manifests`]) each manifest by digest, the index by digest, and only when all
//! repositories have all of that, the tags.
//!
//! An upload is `POST /blobs/uploads/` then a single `PUT <location>?digest=` carrying the whole
//! blob, streamed from its source; never chunked `PATCH`es, which ECR mishandles.
//!
//! Each `PUT` runs on a thread of its own, watched ([`super::transfer`]): one that moves no byte
//! for the idle limit, or fails, or gets a retryable status, is given up and the blob uploaded
//! again from a new session, within the retry budget. The tags are never touched on a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use reqwest::blocking::Body;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use super::http::client::{Registry, SMALL_REQUEST_TIMEOUT};
use super::http::location::{authority, downgrades_to_plain_http, resolve_location};
use super::http::retry::{Retries, is_retryable_status, retry_after};
use super::progress::Progress;
use super::transfer::{Activity, IDLE_TIMEOUT_VARIABLE, blob_idle_timeout, run_watched};
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::image::manifest::Document;
use crate::image::set::{ImageSet, Layer};
use crate::image::store::{BlobError, BlobStore, blob_failure};

/// How many blobs go up at once.
const PARALLEL_UPLOADS: usize = 4;

/// One repository to push to, with the tags to set there.
#[derive(Clone)]
pub struct Destination {
    pub registry: Arc<Registry>,
    pub repository: String,
    pub tags: Vec<String>,
}

impl Destination {
    pub(super) fn name(&self) -> String {
        format!("{}/{}", self.registry.host(), self.repository)
    }
}

/// The digests of the base's layers (of the resolved architectures).
pub fn base_layer_digests(base: &ImageSet) -> BTreeSet<Sha256Digest> {
    base.images
        .values()
        .flat_map(|image| image.layers.iter().map(Layer::digest))
        .collect()
}

/// Pushes the base's layers to every destination. A build runs this while it compresses the
/// new layers and pushes them with [`push_new_blobs`], so all of it overlaps. A layer is mounted
/// rather than uploaded when the base comes from another repository of the same registry.
pub fn push_base_layers(
    destinations: &[Destination],
    base: &ImageSet,
    progress: &Progress,
) -> Result<()> {
    let mut blobs: BTreeMap<Sha256Digest, Blob> = BTreeMap::new();
    for image in base.images.values() {
        for layer in &image.layers {
            blobs.entry(layer.digest()).or_insert(Blob::Layer(layer));
        }
    }
    let source = Source {
        blobs: Some(base.blobs.as_ref()),
        mount_from: base.registry_origin(),
    };
    for destination in destinations {
        push_blobs(destination, blobs.values().collect(), &source, progress)?;
    }
    Ok(())
}

/// Pushes the configs of `assembled` (the new layers go up with [`super::stream::push_new_layer`]).
pub fn push_configs(
    destinations: &[Destination],
    assembled: &ImageSet,
    progress: &Progress,
) -> Result<()> {
    let mut blobs: BTreeMap<Sha256Digest, Blob> = BTreeMap::new();
    for image in assembled.images.values() {
        blobs
            .entry(image.config.digest.clone())
            .or_insert(Blob::Config(&image.config));
    }
    for destination in destinations {
        push_blobs(
            destination,
            blobs.values().collect(),
            &Source::NONE,
            progress,
        )?;
    }
    Ok(())
}

/// Where the blobs of one push come from: the store that opens them, and the registry and
/// repository they can be mounted from (the base's, when a registry holds it).
pub(super) struct Source<'a> {
    /// Opens [`Blob::Layer`]s; none is pushed without it.
    blobs: Option<&'a dyn BlobStore>,
    mount_from: Option<(&'a str, &'a str)>,
}

impl Source<'_> {
    /// For blobs that carry their bytes or their file: configs and this build's new layers.
    pub(super) const NONE: Source<'static> = Source {
        blobs: None,
        mount_from: None,
    };
}

/// A blob to push: a layer of an image, a config, or a file this build made (a new layer).
pub(super) enum Blob<'a> {
    Layer(&'a Layer),
    Config(&'a Document),
    File {
        digest: Sha256Digest,
        size: u64,
        path: &'a std::path::Path,
    },
}

impl Blob<'_> {
    fn digest(&self) -> Sha256Digest {
        match self {
            Blob::Layer(layer) => layer.digest(),
            Blob::Config(document) => document.digest.clone(),
            Blob::File { digest, .. } => digest.clone(),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Blob::Layer(layer) => layer.descriptor.size(),
            Blob::Config(document) => document.size(),
            Blob::File { size, .. } => *size,
        }
    }
}

/// Pushes blobs, several at once; the first failure stops the rest.
fn push_blobs(
    destination: &Destination,
    mut blobs: Vec<&Blob>,
    source: &Source,
    progress: &Progress,
) -> Result<()> {
    // Largest first, so the long uploads start at once.
    blobs.sort_by_key(|blob| std::cmp::Reverse(blob.size()));

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_UPLOADS.min(blobs.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(blob) = blobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(error) = push_blob(destination, blob, source, progress) {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().expect("error slot").get_or_insert(error);
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("error slot") {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// One blob: skip it if present, mount it if it can be, else upload it.
pub(super) fn push_blob(
    destination: &Destination,
    blob: &Blob,
    source: &Source,
    progress: &Progress,
) -> Result<()> {
    let registry = &destination.registry;
    let repository = &destination.repository;
    let digest = blob.digest();
    let size = blob.size();
    let tracker = progress.blob(&digest, size, &destination.name());

    let head_url = registry.url(&format!("/v2/{repository}/blobs/{digest}"));
    let operation = format!("check blob {digest} in {repository}");
    let response = registry.send(&operation, &|http| {
        http.head(&head_url).timeout(SMALL_REQUEST_TIMEOUT)
    })?;
    match response.status() {
        status if status.is_success() => {
            tracker.finish("exists");
            return Ok(());
        }
        StatusCode::NOT_FOUND => {}
        _ => return Err(registry.status_error(&operation, response)),
    }

    let mut mount_from = match (blob, source.mount_from) {
        (Blob::Layer(_), Some((host, from))) if host == registry.host() && from != repository => {
            Some(from.to_owned())
        }
        _ => None,
    };
    let mut retries = Retries::new();
    loop {
        let mounting = mount_from.is_some();
        let start = match start_upload(destination, Some(&digest), mount_from.take()) {
            // A refused mount (e.g. a token service that grants one repository per token, so
            // no token covers both) falls back to an upload, as docker does.
            Err(_) if mounting => start_upload(destination, Some(&digest), None),
            start => start,
        };
        let mut put_url = match start? {
            UploadStart::Mounted => {
                tracker.finish("mounted");
                return Ok(());
            }
            UploadStart::Session(put_url) => put_url,
        };
        put_url
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let operation = format!("upload blob {digest} to {repository}");
        let source_error: Arc<Mutex<Option<BlobError>>> = Arc::default();
        let activity = Activity::new();
        let body = activity.watch_source(Box::new(RecordErrors {
            inner: tracker.track(open_blob(blob, source.blobs)?),
            slot: source_error.clone(),
        }));
        let attempt = run_watched(&activity, blob_idle_timeout(), {
            let registry = Arc::clone(registry);
            let operation = operation.clone();
            move || upload_once(&registry, &operation, put_url, size, body)
        });
        if let Some(error) = source_error.lock().expect("source error slot").take() {
            return Err(source_failed(&digest, error));
        }
        let delay = match attempt {
            Some(UploadAttempt::Answered(response)) if response.status() == StatusCode::CREATED => {
                tracker.finish("pushed");
                return Ok(());
            }
            Some(UploadAttempt::Answered(response)) if is_retryable_status(response.status()) => {
                retries
                    .next_delay(retry_after(response.headers()))
                    .ok_or_else(|| {
                        registry
                            .status_error(&operation, response)
                            .with_message_suffix(&format!(" (after {} tries)", retries.failures()))
                    })?
            }
            Some(UploadAttempt::Answered(response)) => {
                return Err(registry.status_error(&operation, response));
            }
            // Authenticated again mid-upload: the body went with the first try, so start over.
            Some(UploadAttempt::BodySpent) => retries.next_delay(None).ok_or_else(|| {
                Error::registry(format!(
                    "registry {}: {operation} failed: it asked for credentials again on every try",
                    registry.host()
                ))
            })?,
            Some(UploadAttempt::Failed(error)) => retries.next_delay(None).ok_or_else(|| {
                error.with_message_suffix(&format!(" (after {} tries)", retries.failures()))
            })?,
            None => retries.next_delay(None).ok_or_else(|| {
                Error::registry(format!(
                    "registry {}: {operation} failed: no progress for {} s \
                     ({IDLE_TIMEOUT_VARIABLE} sets this limit) (after {} tries)",
                    registry.host(),
                    blob_idle_timeout().as_secs(),
                    retries.failures()
                ))
                .hint("check that the registry is up and reachable, then run the build again")
            })?,
        };
        std::thread::sleep(delay);
    }
}

/// How one upload request went.
pub(super) enum UploadAttempt {
    Answered(reqwest::blocking::Response),
    /// The registry wanted credentials again after the body had been sent.
    BodySpent,
    Failed(Error),
}

/// `PUT url` with `source` (`size` bytes) as the body, once; runs on a thread of its own
/// ([`run_watched`]), so that a stalled upload can be given up.
fn upload_once(
    registry: &Registry,
    operation: &str,
    url: reqwest::Url,
    size: u64,
    source: Box<dyn Read + Send>,
) -> UploadAttempt {
    send_body_once(
        registry,
        operation,
        &|http| {
            http.put(url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
        },
        source,
        Some(size),
    )
}

/// The request `request` builds, with `source` as its body (`size` bytes, else chunked), sent
/// once: a body is read only once, so a request that must be sent again (credentials asked for
/// again) is [`UploadAttempt::BodySpent`].
pub(super) fn send_body_once(
    registry: &Registry,
    operation: &str,
    request: &dyn Fn(&reqwest::blocking::Client) -> reqwest::blocking::RequestBuilder,
    source: Box<dyn Read + Send>,
    size: Option<u64>,
) -> UploadAttempt {
    let body = Mutex::new(Some(source));
    let spent = AtomicBool::new(false);
    let response = registry.send_once(operation, &|http| {
        let request = request(http);
        match (body.lock().expect("body slot").take(), size) {
            (Some(source), Some(size)) => request.body(Body::sized(source, size)),
            (Some(source), None) => request.body(Body::new(source)),
            (None, _) => {
                spent.store(true, Ordering::Relaxed);
                request.body(Body::from(Vec::new()))
            }
        }
    });
    match response {
        _ if spent.load(Ordering::Relaxed) => UploadAttempt::BodySpent,
        Ok(response) => UploadAttempt::Answered(response),
        Err(error) => UploadAttempt::Failed(error),
    }
}

pub(super) enum UploadStart {
    Mounted,
    /// The upload session's URL: its `Location`, resolved against the URL that answered.
    Session(reqwest::Url),
}

/// `POST /blobs/uploads/` for the blob `digest` (`None`: a new layer whose digest is not known
/// yet), as a mount from `mount_from` when given. A registry that cannot
/// mount answers 202 with an ordinary upload session. Its `Location` is resolved against the
/// URL that answered, which a redirect may have moved to an upload service on another host
/// ([`resolve_location`]).
pub(super) fn start_upload(
    destination: &Destination,
    digest: Option<&Sha256Digest>,
    mount_from: Option<String>,
) -> Result<UploadStart> {
    let registry = &destination.registry;
    let repository = &destination.repository;
    let mut url = reqwest::Url::parse(&registry.url(&format!("/v2/{repository}/blobs/uploads/")))
        .expect("registry URLs are valid");
    if let (Some(source), Some(digest)) = (&mount_from, digest) {
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", source);
    }
    let blob = match digest {
        Some(digest) => format!("blob {digest}"),
        None => "a new layer".to_owned(),
    };
    let operation = match &mount_from {
        Some(source) => format!("mount {blob} from {source} into {repository}"),
        None => format!("start upload of {blob} to {repository}"),
    };
    let response = registry.send(&operation, &|http| {
        http.post(url.clone())
            .header(CONTENT_LENGTH, 0)
            .timeout(SMALL_REQUEST_TIMEOUT)
    })?;
    match response.status() {
        StatusCode::CREATED if mount_from.is_some() => Ok(UploadStart::Mounted),
        StatusCode::ACCEPTED => {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::registry(format!(
                        "registry {}: {operation}: the answer has no Location for the upload",
                        registry.host()
                    ))
                })?;
            let url = resolve_location(response.url(), &location).map_err(|why| {
                Error::registry(format!(
                    "registry {}: {operation}: the upload location `{location}` is not usable: \
                     {why}",
                    registry.host()
                ))
            })?;
            if downgrades_to_plain_http(response.url(), &url) {
                return Err(Error::registry(format!(
                    "registry {}: {operation}: the upload location {} is plain HTTP, though the \
                     registry answered over HTTPS; the blob is not sent unencrypted",
                    registry.host(),
                    authority(&url)
                ))
                .hint(
                    "the registry does not know it is served over HTTPS: behind a reverse proxy \
                     that ends TLS, have the proxy pass X-Forwarded-Proto: https (or set the \
                     registry's http.host to its https:// URL)",
                ));
            }
            Ok(UploadStart::Session(url))
        }
        _ => Err(registry.status_error(&operation, response)),
    }
}

fn open_blob(blob: &Blob, blobs: Option<&dyn BlobStore>) -> Result<Box<dyn Read + Send>> {
    match (blob, blobs) {
        (Blob::Config(document), _) => Ok(Box::new(io::Cursor::new(document.bytes.clone()))),
        (Blob::Layer(layer), Some(blobs)) => blobs
            .open(&layer.descriptor)
            .map_err(|error| source_failed(&layer.digest(), error)),
        (Blob::Layer(layer), None) => Err(Error::failure(format!(
            "no store to read layer {} from",
            layer.digest()
        ))),
        (Blob::File { path, digest, .. }, _) => std::fs::File::open(path)
            .map(|file| Box::new(file) as Box<dyn Read + Send>)
            .map_err(|error| {
                Error::failure(format!(
                    "cannot read layer {digest} from {} to upload it: {error}",
                    path.display()
                ))
            }),
    }
}

fn source_failed(digest: &Sha256Digest, error: BlobError) -> Error {
    let error = match error {
        BlobError::Failed(typed) => return typed,
        BlobError::Io(error) => error,
    };
    if error.kind() == io::ErrorKind::InvalidData {
        Error::base(format!(
            "base blob {digest} is missing or corrupt, so nothing was tagged: {error}"
        ))
        .hint("pull the base again; if it comes from a registry, that registry is serving bad content")
    } else {
        Error::failure(format!("cannot read blob {digest} to upload it: {error}"))
    }
}

/// Keeps the source's read error, which reqwest would otherwise report only as a body failure.
struct RecordErrors {
    inner: Box<dyn Read + Send>,
    slot: Arc<Mutex<Option<BlobError>>>,
}

impl Read for RecordErrors {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|error| {
            let copy = match blob_failure(error) {
                Some(typed) => BlobError::Failed(typed),
                None => BlobError::Io(io::Error::new(error.kind(), error.to_string())),
            };
            *self.slot.lock().expect("source error slot") = Some(copy);
        })
    }
}
