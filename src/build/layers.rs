//! A build's new layers: what goes in each (the bootstrap and every `--include`), the history
//! entry that says so, and producing every architecture's layer at once (compression is the
//! slow part of a build), each taken from the layer cache when the same inputs were compressed
//! before. Not here: the tar writer ([`crate::layer::writer`]) or the cache ([`crate::cache::layers`]).

use std::path::{Path, PathBuf};

use crate::bootstrap::Bootstrap;
use crate::cache::layers::{LayerCache, layer_key};
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::layer::contents::BOOTSTRAP_PATH;
use crate::layer::writer::{LayerDigests, write_layer_to_temp_file};
use crate::layer::{IncludeSpec, LayerContents};
use crate::platform::Architecture;

/// Each bootstrap's layer: the bootstrap at /var/runtime/bootstrap plus every `--include`.
pub(super) fn layer_contents(
    includes: &[IncludeSpec],
    bootstraps: &[Bootstrap],
) -> Result<Vec<LayerContents>> {
    bootstraps
        .iter()
        .map(|bootstrap| {
            let mut contents = LayerContents::with_bootstrap(&bootstrap.path, bootstrap.size)?;
            includes
                .iter()
                .try_for_each(|include| contents.include(include))?;
            Ok(contents)
        })
        .collect()
}

/// The history entry's `created_by`: what went into the layer, with no machine-specific paths.
pub(super) fn created_by(includes: &[IncludeSpec]) -> String {
    let mut text = format!("lambda-image build: bootstrap at {BOOTSTRAP_PATH}");
    for include in includes {
        text.push_str(&format!(", include {}", include.destination));
    }
    text
}

/// A layer ready for the sinks: its digests and a file holding its bytes.
pub struct ProducedLayer {
    pub architecture: Architecture,
    pub digests: LayerDigests,
    pub file: PathBuf,
    /// True when it came from the cache, not from compressing.
    pub cached: bool,
    /// Keeps a layer that could not go into the cache alive until the build ends.
    _temporary: Option<tempfile::NamedTempFile>,
}

/// Produces the layers of `contents` (one per architecture), in parallel. With a cache, layers
/// are looked up by key first and stored after writing; without one, they are written in
/// `scratch`.
pub fn produce_layers(
    architectures: &[Architecture],
    contents: &[LayerContents],
    mtime: u64,
    scratch: &Path,
    cache: Option<&LayerCache>,
) -> Result<Vec<ProducedLayer>> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = architectures
            .iter()
            .zip(contents)
            .map(|(&architecture, contents)| {
                scope.spawn(move || produce_layer(architecture, contents, mtime, scratch, cache))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(Error::failure("a layer writer thread panicked")))
            })
            .collect()
    })
}

fn produce_layer(
    architecture: Architecture,
    contents: &LayerContents,
    mtime: u64,
    scratch: &Path,
    cache: Option<&LayerCache>,
) -> Result<ProducedLayer> {
    let Some(cache) = cache else {
        let (file, digests) = write_layer_to_temp_file(contents, mtime, scratch)?;
        return Ok(ProducedLayer {
            architecture,
            digests,
            file: file.path().to_owned(),
            cached: false,
            _temporary: Some(file),
        });
    };
    let key = layer_key(contents, mtime).context(ErrorKind::Bootstrap, || {
        "cannot read the layer's files".into()
    })?;
    if let Some((digests, file)) = cache.lookup(&key) {
        return Ok(ProducedLayer {
            architecture,
            digests,
            file,
            cached: true,
            _temporary: None,
        });
    }
    let (file, digests) = write_layer_to_temp_file(contents, mtime, &cache.temporary_directory())?;
    let (file, temporary) = match cache.store(&key, file, &digests) {
        Ok(stored) => (stored, None),
        // The cache is an optimisation: a layer it cannot take is used from where it is.
        Err(file) => (file.path().to_owned(), Some(file)),
    };
    Ok(ProducedLayer {
        architecture,
        digests,
        file,
        cached: false,
        _temporary: temporary,
    })
}
