//! A build's new layers: what goes in each (the bootstrap and every `--include`), the history
//! entry that says so, and making every architecture's layer at once, from the start of the
//! build (compression is the slow part of a build), each taken from the layer cache when the
//! same inputs were compressed before. Not here: the tar writer ([`crate::layer::writer`]) or the cache ([`crate::cache::layers`]).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::bootstrap::Bootstrap;
use crate::cache::layers::LayerCache;
use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::lambda_layer::{LambdaLayers, LayerSource};
use crate::layer::contents::BOOTSTRAP_PATH;
use crate::layer::growing::GrowingFile;
use crate::layer::pending::{FinishedLayer, PendingLayer};
use crate::layer::writer::{LayerDigests, write_growing_layer};
use crate::layer::{IncludeSpec, LayerContents};
use crate::platform::Architecture;

/// Each bootstrap's layer: the bootstrap at /var/runtime/bootstrap plus every `--include`, then
/// the `--layer`s for its architecture under /opt, in order.
pub(super) fn layer_contents(
    includes: &[IncludeSpec],
    bootstraps: &[Bootstrap],
    lambda_layers: &LambdaLayers,
) -> Result<Vec<LayerContents>> {
    bootstraps
        .iter()
        .map(|bootstrap| {
            let mut contents = LayerContents::with_bootstrap(&bootstrap.path, bootstrap.size)?;
            includes
                .iter()
                .try_for_each(|include| contents.include(include))?;
            for layer in lambda_layers.for_architecture(bootstrap.architecture) {
                contents.add_lambda_layer(&layer.reported.source, &layer.entries)?;
            }
            Ok(contents)
        })
        .collect()
}

/// The history entry's `created_by`: what went into the layer, with no machine-specific paths
/// (a `--layer` zip by its file name, an ARN as it is).
pub(super) fn created_by(includes: &[IncludeSpec], lambda_layers: &LambdaLayers) -> String {
    let mut text = format!("lambda-image build: bootstrap at {BOOTSTRAP_PATH}");
    for include in includes {
        text.push_str(&format!(", include {}", include.destination));
    }
    for layer in &lambda_layers.layers {
        let name = match &layer.spec.source {
            LayerSource::Zip(path) => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            LayerSource::Arn(arn) => arn.to_string(),
        };
        text.push_str(&format!(", lambda layer {name} in /opt"));
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

/// Every architecture's new layer, being made on threads of their own from the moment the build
/// knows what goes in them: before the registry is contacted or the base resolved, which the
/// layers do not depend on. Each is looked up in the layer cache, else compressed into a file
/// that a push can read as it grows ([`PendingLayer`]). Dropping the jobs cancels what is still
/// being made and waits for the threads.
pub struct LayerJobs {
    jobs: Vec<(PendingLayer, Option<JoinHandle<Result<ProducedLayer>>>)>,
}

impl LayerJobs {
    /// Starts making the layers of `contents` (one per architecture, in the same order). With a
    /// cache, a layer is looked up by key first and stored after writing; without one, it is
    /// written in `scratch`.
    pub fn start(
        architectures: &[Architecture],
        contents: &[LayerContents],
        mtime: u64,
        scratch: &Path,
        cache: Option<&LayerCache>,
    ) -> LayerJobs {
        let jobs = architectures
            .iter()
            .zip(contents)
            .map(|(&architecture, contents)| {
                let pending = PendingLayer::new(architecture);
                let job = Job {
                    pending: pending.clone(),
                    contents: contents.clone(),
                    mtime,
                    scratch: scratch.to_owned(),
                    cache: cache.cloned(),
                };
                let worker = std::thread::Builder::new()
                    .name(format!("layer-{}", architecture.oci_name()))
                    .spawn(move || job.run());
                match worker {
                    Ok(worker) => (pending, Some(worker)),
                    // [`LayerJobs::join`] reports it.
                    Err(_) => {
                        pending.finish(None);
                        (pending, None)
                    }
                }
            })
            .collect();
        LayerJobs { jobs }
    }

    /// The layers as the pushes follow them, in the order of the architectures.
    pub fn pending(&self) -> Vec<PendingLayer> {
        self.jobs
            .iter()
            .map(|(pending, _)| pending.clone())
            .collect()
    }

    /// Waits for every layer; the first failure in the order of the architectures.
    pub fn join(mut self) -> Result<Vec<ProducedLayer>> {
        let results: Vec<Result<ProducedLayer>> = self
            .jobs
            .iter_mut()
            .map(|(_, worker)| match worker.take() {
                Some(worker) => worker
                    .join()
                    .unwrap_or_else(|_| Err(Error::failure("a layer writer thread panicked"))),
                None => Err(Error::failure("cannot start a thread to write a layer")),
            })
            .collect();
        results.into_iter().collect()
    }
}

impl Drop for LayerJobs {
    fn drop(&mut self) {
        for (pending, _) in &self.jobs {
            pending.cancel();
        }
        for (_, worker) in &mut self.jobs {
            if let Some(worker) = worker.take() {
                let _ = worker.join();
            }
        }
    }
}

/// What one layer's thread needs, owned.
struct Job {
    pending: PendingLayer,
    contents: LayerContents,
    mtime: u64,
    scratch: PathBuf,
    cache: Option<LayerCache>,
}

impl Job {
    fn run(self) -> Result<ProducedLayer> {
        let produced = self.produce();
        self.pending
            .finish(produced.as_ref().ok().map(|layer| FinishedLayer {
                digests: layer.digests.clone(),
                file: layer.file.clone(),
            }));
        produced
    }

    fn produce(&self) -> Result<ProducedLayer> {
        let architecture = self.pending.architecture;
        let publish = |growing: &GrowingFile| self.pending.compressing(growing);
        let Some(cache) = &self.cache else {
            let (file, digests, _) =
                write_growing_layer(&self.contents, self.mtime, &self.scratch, publish)?;
            return Ok(ProducedLayer {
                architecture,
                digests,
                file: file.path().to_owned(),
                cached: false,
                _temporary: Some(file),
            });
        };
        // The compression starts now, beside the key's computation (which reads the files the
        // cache has not seen as they are): the layer is published to the pushes only once the
        // key is known to miss, and the compression is stopped if it hits.
        let temporary_directory = cache.temporary_directory();
        let (started, growing) = std::sync::mpsc::sync_channel(1);
        let (key, compressed) = std::thread::scope(|scope| {
            let compressing = scope.spawn(|| {
                // Owned by the writer's thread: when the writer fails before it starts (the
                // cache's temporary directory cannot be made), the sender goes with it, and the
                // `recv` below returns instead of waiting forever.
                let started = started;
                write_growing_layer(
                    &self.contents,
                    self.mtime,
                    &temporary_directory,
                    |growing| {
                        let _ = started.send(growing.clone());
                    },
                )
            });
            let growing = growing.recv().ok();
            let key = cache.key(&self.contents, self.mtime);
            let hit = key.as_ref().ok().and_then(|(key, _)| cache.lookup(key));
            match (&key, &hit, &growing) {
                (Ok(_), None, Some(growing)) => self.pending.compressing(growing),
                (_, _, Some(growing)) => growing.cancel(),
                (_, _, None) => {}
            }
            let compressed = compressing
                .join()
                .unwrap_or_else(|_| Err(Error::failure("a layer writer thread panicked")));
            (key.map(|key| (key, hit)), compressed)
        });
        let ((key, taken_as), hit) = key.context(ErrorKind::Bootstrap, || {
            "cannot read the layer's files".into()
        })?;
        if let Some((digests, file)) = hit {
            return Ok(ProducedLayer {
                architecture,
                digests,
                file,
                cached: true,
                _temporary: None,
            });
        }
        if self.pending.is_cancelled() {
            return Err(Error::failure(
                "the build stopped before the layer was made",
            ));
        }
        let (file, digests, read) = compressed?;
        // The key came from another read (or from what the cache remembered): a file rewritten
        // in place meanwhile, with the same size, would put one content under another's key.
        // So every file must have held, when the writer read it, what the key was made from;
        // then the key is the one of what the layer holds.
        if let Some(changed) = taken_as
            .iter()
            .find(|(path, digest)| read.get(*path).map(|read| read.hex()) != Some(digest.as_str()))
            .map(|(path, _)| path)
        {
            cache.forget_files(taken_as.keys().map(PathBuf::as_path));
            return Err(Error::bootstrap(format!(
                "{} changed while it was being added to the layer (same size, other content)",
                changed.display()
            ))
            .hint("run the build again once the file is no longer being written"));
        }
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
}
