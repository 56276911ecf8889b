//! Putting manifests, the index and the tags: the last steps of a push, once every blob is in
//! every destination repository ([`super::push`]). Manifests go by digest first, then the index
//! by digest, and only then the tags, so no tag ever names something incomplete.

use super::http::client::SMALL_REQUEST_TIMEOUT;
use super::progress::Progress;
use super::push::Destination;
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::image::manifest::Document;
use crate::image::set::ImageSet;
use crate::platform::Architecture;
use reqwest::header::CONTENT_TYPE;

/// Every reference a push wrote, for the report. In each list, the first destination's come
/// first, so the first entry is the main one: `HOST/REPO@sha256:...` for an image (what Lambda
/// deploys), `HOST/REPO:TAG` for the index.
pub struct Pushed {
    /// Per architecture: the manifest digest, then per destination `HOST/REPO@DIGEST` and the
    /// tags that name this manifest (`HOST/REPO:TAG` for a single architecture, else
    /// `HOST/REPO:TAG-ARCH` unless per-architecture tags are off).
    pub images: Vec<(Architecture, Sha256Digest, Vec<String>)>,
    /// With several architectures: the index digest, then per destination `HOST/REPO:TAG` for
    /// each tag and `HOST/REPO@DIGEST`.
    pub index: Option<(Sha256Digest, Vec<String>)>,
}

/// Pushes the manifests of `assembled` by digest, then the index, then the tags, to every
/// destination. Every blob must be there already ([`push_base_layers`], [`push_new_blobs`]).
/// `arch_tags`: with several architectures, also tag each one `TAG-ARCH`.
pub fn push_manifests(
    destinations: &[Destination],
    set: &ImageSet,
    arch_tags: bool,
    progress: &Progress,
) -> Result<Pushed> {
    let images = set.manifests()?;
    let assembled = &Manifested {
        images: images
            .iter()
            .map(|each| (each.architecture, each.manifest))
            .collect(),
        index: set.index.as_ref(),
    };
    for destination in destinations {
        for (_, manifest) in &assembled.images {
            put_manifest(destination, manifest, &manifest.digest.to_string())?;
        }
        if let Some(index) = &assembled.index {
            put_manifest(destination, index, &index.digest.to_string())?;
        }
    }
    // Everything is in place under its digest: now the names.
    for destination in destinations {
        for tag in &destination.tags {
            match &assembled.index {
                None => {
                    put_manifest(destination, assembled.images[0].1, tag)?;
                }
                Some(index) => {
                    if arch_tags {
                        for (architecture, manifest) in &assembled.images {
                            let arch_tag = architecture.tag(tag);
                            put_manifest(destination, manifest, &arch_tag)?;
                            progress.note(&format!("tagged   {}:{arch_tag}", destination.name()));
                        }
                    }
                    put_manifest(destination, index, tag)?;
                }
            }
            progress.note(&format!("tagged   {}:{tag}", destination.name()));
        }
    }
    Ok(pushed_references(destinations, assembled, arch_tags))
}

/// The manifests [`push_manifests`] puts: each architecture's, and the index.
struct Manifested<'a> {
    images: Vec<(Architecture, &'a Document)>,
    index: Option<&'a Document>,
}

/// What [`push_manifests`] wrote, named as the report lists it.
fn pushed_references(
    destinations: &[Destination],
    assembled: &Manifested,
    arch_tags: bool,
) -> Pushed {
    let images = assembled
        .images
        .iter()
        .map(|&(architecture, manifest)| {
            let mut references = Vec::new();
            for destination in destinations {
                let name = destination.name();
                references.push(format!("{name}@{}", manifest.digest));
                for tag in &destination.tags {
                    match &assembled.index {
                        None => references.push(format!("{name}:{tag}")),
                        Some(_) if arch_tags => {
                            references.push(format!("{name}:{}", architecture.tag(tag)))
                        }
                        Some(_) => {}
                    }
                }
            }
            (architecture, manifest.digest.clone(), references)
        })
        .collect();
    let index = assembled.index.as_ref().map(|index| {
        let mut references = Vec::new();
        for destination in destinations {
            let name = destination.name();
            references.extend(destination.tags.iter().map(|tag| format!("{name}:{tag}")));
            references.push(format!("{name}@{}", index.digest));
        }
        (index.digest.clone(), references)
    });
    Pushed { images, index }
}

/// `PUT /manifests/<reference>` (a digest or a tag).
fn put_manifest(destination: &Destination, document: &Document, reference: &str) -> Result<()> {
    let registry = &destination.registry;
    let url = registry.url(&format!(
        "/v2/{}/manifests/{reference}",
        destination.repository
    ));
    // `REPO@sha256:...` for a manifest put by digest, `REPO:TAG` for a tag, as references read.
    let separator = if reference.contains(':') { '@' } else { ':' };
    let operation = format!(
        "put manifest {}{separator}{reference}",
        destination.repository
    );
    let response = registry.send(&operation, &|http| {
        http.put(&url)
            .header(CONTENT_TYPE, &document.media_type)
            .body(document.bytes.clone())
            .timeout(SMALL_REQUEST_TIMEOUT)
    })?;
    if !response.status().is_success() {
        return Err(registry.manifest_error(&operation, response, &document.media_type));
    }
    let answered: Option<Sha256Digest> = response
        .headers()
        .get("docker-content-digest")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    if let Some(answered) = answered
        && answered != document.digest
    {
        return Err(Error::registry(format!(
            "registry {}: {operation}: it stored the manifest as {answered}, not {}; it may have rewritten it",
            registry.host(),
            document.digest
        )));
    }
    Ok(())
}
