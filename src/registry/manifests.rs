//! Putting manifests, the index and the tags: the last steps of a push, once every blob is in
//! every destination repository ([`super::push`]). Four waves, each waiting for the one before:
//! every architecture's manifest by digest, the index by digest, the tags naming a manifest,
//! then the tags naming the index, so no tag ever names something incomplete. The `PUT`s of one
//! wave do not depend on each other and go side by side, so the end of a push costs four round
//! trips whatever the number of architectures, destinations and tags, rather than one per
//! `PUT` (six for two architectures and one tag).

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
/// destination. Every blob must be there already ([`super::push::push_base_layers`], [`super::push::push_new_blobs`]).
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
    // Wave 1: every architecture's manifest, in every destination, by digest.
    let mut by_digest = Vec::new();
    for destination in destinations {
        for (_, manifest) in &assembled.images {
            by_digest.push(Put::new(destination, manifest, manifest.digest.to_string()));
        }
    }
    put_together(&by_digest, &|_| {})?;
    // Wave 2: the index, which names those manifests.
    if let Some(index) = assembled.index {
        let indexes: Vec<Put> = destinations
            .iter()
            .map(|destination| Put::new(destination, index, index.digest.to_string()))
            .collect();
        put_together(&indexes, &|_| {})?;
    }
    // Everything is in place under its digest; now the names. Wave 3: the tags that name one
    // architecture's manifest (`TAG-ARCH`, or `TAG` for a single architecture); wave 4: the tags
    // that name the index. Not together: a registry re-putting a manifest under a tag rewrites
    // its revision link in place, and an index put beside it may read that link half-written
    // while checking the manifests it names (distribution answers `MANIFEST_BLOB_UNKNOWN`).
    let mut image_tags = Vec::new();
    let mut index_tags = Vec::new();
    for destination in destinations {
        for tag in &destination.tags {
            match assembled.index {
                None => image_tags.push(Put::new(destination, assembled.images[0].1, tag.clone())),
                Some(index) => {
                    if arch_tags {
                        for (architecture, manifest) in &assembled.images {
                            image_tags.push(Put::new(destination, manifest, architecture.tag(tag)));
                        }
                    }
                    index_tags.push(Put::new(destination, index, tag.clone()));
                }
            }
        }
    }
    // Every tag set is said, even when another of its wave fails: what moved is never hidden.
    let tagged = |put: &Put| {
        progress.note(&format!(
            "tagged   {}:{}",
            put.destination.name(),
            put.reference
        ))
    };
    put_together(&image_tags, &tagged)?;
    put_together(&index_tags, &tagged)?;
    Ok(pushed_references(destinations, assembled, arch_tags))
}

/// How many manifest or tag `PUT`s are in flight at once.
const PARALLEL_PUTS: usize = 8;

/// One manifest `PUT`: `document` under `reference` (its digest, or a tag) in `destination`.
struct Put<'a> {
    destination: &'a Destination,
    document: &'a Document,
    reference: String,
}

impl<'a> Put<'a> {
    fn new(destination: &'a Destination, document: &'a Document, reference: String) -> Self {
        Put {
            destination,
            document,
            reference,
        }
    }
}

/// Sends `puts` side by side (up to [`PARALLEL_PUTS`] at once), as one wave: they do not depend
/// on each other, only on the waves before. Every put of a wave is finished before the next wave
/// starts; the first failure, in the order of `puts`, is returned (the later waves, the tags
/// above all, are then never sent). `on_put` is called for every put that succeeded, also when
/// another of its wave failed.
fn put_together(puts: &[Put], on_put: &dyn Fn(&Put)) -> Result<()> {
    for group in puts.chunks(PARALLEL_PUTS) {
        let results: Vec<Result<()>> = if group.len() == 1 {
            vec![put_manifest(
                group[0].destination,
                group[0].document,
                &group[0].reference,
            )]
        } else {
            std::thread::scope(|scope| {
                let running: Vec<_> = group
                    .iter()
                    .map(|put| {
                        scope.spawn(move || {
                            put_manifest(put.destination, put.document, &put.reference)
                        })
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|handle| {
                        handle.join().unwrap_or_else(|_| {
                            Err(Error::failure("a manifest push thread panicked"))
                        })
                    })
                    .collect()
            })
        };
        let mut first_error = None;
        for (put, result) in group.iter().zip(results) {
            match result {
                Ok(()) => on_put(put),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
    }
    Ok(())
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
