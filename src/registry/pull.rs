//! Reading a base image from a registry: the tag (or digest) to its top document, the
//! per-architecture manifests and configs (all verified, all kept in the blob cache), and the
//! layers, which are fetched only if a sink needs their bytes: a push to the same registry
//! mounts them, and a push to a registry that already has them skips them. A layer is fetched
//! through [`RestartingDownload`] (asked for again if its body breaks off) and verified as it is
//! read; it enters the cache only whole and verified.

use std::io::Read;
use std::sync::Arc;

use oci_spec::image::Descriptor;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::download::RestartingDownload;
use super::http::client::{Registry, SMALL_REQUEST_TIMEOUT};
use super::progress::Progress;
use crate::cache::blobs::BlobCache;
use crate::digest::{Sha256Digest, VerifyingReader, read_verified};
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::manifest::Document;
use crate::image::resolve::{DocumentStore, MANIFEST_LIMIT, descriptor_digest, resolve_images};
use crate::image::set::ImageSet;
use crate::image::store::{BlobError, BlobStore};
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;

/// Every manifest and index media type this tool reads, for `Accept`.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// One repository of a registry, read through the cache.
pub struct RemoteRepository {
    registry: Arc<Registry>,
    repository: String,
    /// The image read from it, once known (for messages about content it lacks).
    reference: Option<RegistryReference>,
    cache: Option<BlobCache>,
    progress: Arc<Progress>,
}

impl RemoteRepository {
    pub fn new(
        registry: Arc<Registry>,
        repository: &str,
        cache: Option<BlobCache>,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            registry,
            repository: repository.to_owned(),
            reference: None,
            cache,
            progress,
        }
    }

    fn name(&self) -> String {
        format!("{}/{}", self.registry.host(), self.repository)
    }

    /// Fetches the manifest or index a tag or digest names, verified; returns its bytes, digest
    /// and the media type the registry gave.
    fn fetch_top(&self, reference: &RegistryReference) -> Result<(Vec<u8>, Sha256Digest, String)> {
        let wanted = match (&reference.digest, &reference.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        };
        let url = self
            .registry
            .url(&format!("/v2/{}/manifests/{wanted}", self.repository));
        // `REPO@sha256:...` for a digest, `REPO:TAG` for a tag, as references read.
        let separator = if reference.digest.is_some() { '@' } else { ':' };
        let operation = format!("get manifest {}{separator}{wanted}", self.repository);
        let response = self.registry.send(&operation, &|http| {
            http.get(&url)
                .header(ACCEPT, MANIFEST_ACCEPT)
                .timeout(SMALL_REQUEST_TIMEOUT)
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            let detail = self.registry.status_error(&operation, response);
            return Err(Error::base(format!(
                "{} {reference} does not exist: {}",
                self.registry.role().noun(),
                detail.message()
            ))
            .hint(not_found_hint(reference)));
        }
        if !response.status().is_success() {
            return Err(self.registry.status_error(&operation, response));
        }
        let media_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let claimed: Option<Sha256Digest> = response
            .headers()
            .get("docker-content-digest")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        let mut bytes = Vec::new();
        response
            .take(MANIFEST_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| {
                Error::registry(format!(
                    "registry {}: {operation}: {error}",
                    self.registry.host()
                ))
            })?;
        if bytes.len() as u64 > MANIFEST_LIMIT {
            return Err(Error::base(format!(
                "base {reference}: the manifest is over the {MANIFEST_LIMIT}-byte limit"
            )));
        }
        let digest = Sha256Digest::of(&bytes);
        let expected = reference.digest.as_ref().or(claimed.as_ref());
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(Error::base(format!(
                "base {reference}: the manifest {} sent does not match its digest: expected {expected}, got {digest}",
                self.name()
            )));
        }
        if let Some(cache) = &self.cache {
            cache.store_small(&digest, &bytes);
        }
        Ok((bytes, digest, media_type))
    }

    /// GETs a small blob (or, for manifest media types, a manifest) by digest; the response
    /// body is not yet read. Layers go through [`RestartingDownload`] instead.
    fn get_small_by_digest(
        &self,
        digest: &Sha256Digest,
        is_manifest: bool,
    ) -> Result<reqwest::blocking::Response> {
        let kind = if is_manifest { "manifests" } else { "blobs" };
        let url = self
            .registry
            .url(&format!("/v2/{}/{kind}/{digest}", self.repository));
        let operation = format!(
            "get {} {digest} of {}",
            &kind[..kind.len() - 1],
            self.repository
        );
        let response = self.registry.send(&operation, &|http| {
            http.get(&url)
                .header(ACCEPT, MANIFEST_ACCEPT)
                .timeout(SMALL_REQUEST_TIMEOUT)
        })?;
        if response.status() == StatusCode::NOT_FOUND {
            let error = self.registry.status_error(&operation, response);
            return Err(self.missing_blob(&Error::base(error.message().to_owned()), digest, false));
        }
        if !response.status().is_success() {
            return Err(self.registry.status_error(&operation, response));
        }
        Ok(response)
    }

    /// `error` (a 404, of kind base) for a manifest, config or layer of the image that this
    /// repository does not have, though the image's own documents name it: the image's copy in
    /// this registry is incomplete (exit 4, not a registry failure). The hint says how to fix it:
    /// for a mirror of `public.ecr.aws/lambda`, copy the base into it again; else the image is
    /// damaged in this registry.
    /// `named_by` says whether the message starts with the image (a layer's does; a document's
    /// is prefixed with it by [`open_registry_base`]).
    fn missing_blob(&self, error: &Error, digest: &Sha256Digest, named_by: bool) -> Error {
        let noun = self.registry.role().noun();
        let image = match (&self.reference, named_by) {
            (Some(reference), true) => format!("{noun} {reference}: "),
            _ => String::new(),
        };
        let message = format!(
            "{image}it refers to {digest}, which {} does not have: {}",
            self.name(),
            error.message()
        );
        let mirrored = self.reference.as_ref().and_then(|reference| {
            crate::catalog::mirrored_upstream(reference).map(|found| (reference, found))
        });
        let hint = match mirrored {
            Some((reference, (upstream, mirror))) => format!(
                "the mirror's copy is incomplete ({mirror} is the mirror {} names): copy the base \
                 into it again, e.g. `skopeo copy --all docker://{upstream} docker://{reference}`",
                crate::catalog::MIRROR_VARIABLE,
            ),
            None => format!(
                "the {noun} is damaged in {}: it refers to content the registry does not \
                 have; push it there again (e.g. `skopeo copy --all` from a complete copy), or \
                 use another copy",
                self.name()
            ),
        };
        Error::base(message).hint(hint)
    }
}

impl DocumentStore for RemoteRepository {
    fn read_document(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        let digest = descriptor_digest(descriptor)?;
        let size = descriptor.size();
        if let Some(bytes) = self
            .cache
            .as_ref()
            .and_then(|cache| cache.read_small(&digest, size, limit))
        {
            return Ok(bytes);
        }
        let media_type = descriptor.media_type().to_string();
        let is_manifest = ImageFormat::of_manifest(&media_type).is_some()
            || ImageFormat::of_index(&media_type).is_some();
        let response = self.get_small_by_digest(&digest, is_manifest)?;
        let bytes = read_verified(response, &digest, size, limit)
            .map_err(|error| Error::base(format!("{digest} from {}: {error}", self.name())))?;
        if let Some(cache) = &self.cache {
            cache.store_small(&digest, &bytes);
        }
        Ok(bytes)
    }
}

impl BlobStore for RemoteRepository {
    fn open(&self, descriptor: &Descriptor) -> Result<Box<dyn Read + Send>, BlobError> {
        let digest = descriptor_digest(descriptor).map_err(|error| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, error.message().to_owned())
        })?;
        let size = descriptor.size();
        if let Some(cached) = self
            .cache
            .as_ref()
            .and_then(|cache| cache.open_blob(&digest, size))
        {
            return Ok(cached);
        }
        let url = self
            .registry
            .url(&format!("/v2/{}/blobs/{digest}", self.repository));
        let operation = format!("get blob {digest} of {}", self.repository);
        let response = RestartingDownload::start(Arc::clone(&self.registry), url, operation, size)
            .map_err(|error| {
                // A 404 is a base problem (kind base); any other refusal the registry's.
                let error = match error.kind() {
                    crate::error::ErrorKind::Base => self.missing_blob(&error, &digest, true),
                    _ => error,
                };
                BlobError::Failed(error)
            })?;
        let progress = self.progress.blob(&digest, size, &self.name());
        let verified: Box<dyn Read + Send> = Box::new(VerifyingReader::new(
            FinishOnEnd {
                inner: progress.track(response),
                progress: Some(progress),
            },
            digest.clone(),
            size,
        ));
        Ok(match &self.cache {
            Some(cache) => cache.fill_while_reading(&digest, size, verified),
            None => verified,
        })
    }

    fn origin(&self) -> Option<(&str, &str)> {
        Some((self.registry.host(), &self.repository))
    }
}

/// The hint for a base (or checked image) the registry says does not exist: for a tag, how to
/// list the repository's tags; for a pinned digest, that no manifest has it and how to find the
/// current one; and, for a mirrored catalog base, that the mirror must hold it.
fn not_found_hint(reference: &RegistryReference) -> String {
    let list = match &reference.digest {
        Some(digest) => format!(
            "the registry has no manifest with the digest {digest} in {}/{} (it was deleted, or \
             the digest is of another repository): `skopeo inspect docker://{}/{}:{}` shows the \
             current digest",
            reference.registry,
            reference.repository,
            reference.registry,
            reference.repository,
            reference.tag.as_deref().unwrap_or("TAG")
        ),
        None => format!(
            "check the repository and tag: `skopeo list-tags docker://{}/{}` lists its tags",
            reference.registry, reference.repository
        ),
    };
    match crate::catalog::mirrored_upstream(reference) {
        Some((upstream, mirror)) => format!(
            "{list}; {mirror} is the mirror {} names, which must hold a copy of {upstream}",
            crate::catalog::MIRROR_VARIABLE
        ),
        None => list,
    }
}

/// Reports a fetched blob when its last byte has been read.
struct FinishOnEnd {
    inner: Box<dyn Read + Send>,
    progress: Option<super::progress::BlobProgress>,
}

impl Read for FinishOnEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0
            && let Some(progress) = self.progress.take()
        {
            progress.finish("fetched");
        }
        Ok(n)
    }
}

/// Resolves a base in a registry for the wanted architectures.
pub fn open_registry_base(
    reference: &RegistryReference,
    wanted: &[Architecture],
    mut repository: RemoteRepository,
) -> Result<ImageSet> {
    repository.reference = Some(reference.clone());
    let (top_bytes, top_digest, media_type) = repository.fetch_top(reference)?;
    let role = repository.registry.role();
    let (format, images, is_index) =
        resolve_images(&repository, &top_digest, &top_bytes, &media_type, wanted).map_err(
            |error| {
                // The kind is kept: a registry that fails while serving a manifest is still a
                // registry failure (6); content it lacks or serves damaged is the base's (4).
                Error::new(
                    error.kind(),
                    format!("{} {reference}: {}", role.noun(), error.message()),
                )
                .hint(
                    error
                        .hint_text()
                        .unwrap_or(role.check_reference())
                        .to_owned(),
                )
            },
        )?;
    Ok(ImageSet {
        reference: reference.to_string(),
        name: Some(reference.to_string()),
        digest: top_digest,
        format,
        images,
        index: is_index.then(|| Document::new(&media_type, top_bytes.clone())),
        blobs: Arc::new(repository),
    })
}
