//! Making a build's images: every architecture's new layer (started by the caller, compressed in
//! parallel or taken from the layer cache), assembled on the base, with the blobs pushed
//! meanwhile when the build pushes. Used by `build`; manifests and tags are pushed after, by the
//! caller.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::layers::{LayerJobs, ProducedLayer};
use crate::assemble::{ImageSettings, NewLayer, assemble};
use crate::error::{Error, Result};
use crate::image::set::ImageSet;
use crate::layer::pending::PendingLayer;
use crate::registry::progress::Progress;
use crate::registry::push::{Destination, push_base_layers, push_configs};
use crate::registry::stream::push_new_layer;

/// The pushes of the new layers, one thread per layer and destination, started as soon as the
/// registries are connected: a layer streams while it is compressed, even while the base is
/// still being resolved (the layer does not depend on it). Dropping them (the build failed
/// before the images were made) cancels the layers still being made and waits for the threads.
pub struct LayerPushes {
    pushes: Vec<JoinHandle<Result<()>>>,
    /// Why a push could not even start (no thread), reported first.
    not_started: Option<Error>,
    layers: Vec<PendingLayer>,
}

impl LayerPushes {
    /// Starts pushing every layer of `layers` to every destination.
    pub fn start(
        destinations: &[Destination],
        layers: &LayerJobs,
        progress: &Arc<Progress>,
    ) -> LayerPushes {
        let mut pushes = Vec::new();
        let mut not_started = None;
        let pending = layers.pending();
        for destination in destinations {
            for layer in pending.iter().cloned() {
                let destination = destination.clone();
                let progress = Arc::clone(progress);
                let started = std::thread::Builder::new()
                    .name(format!("push-{}", layer.architecture.oci_name()))
                    .spawn(move || push_new_layer(&destination, &layer, &progress));
                match started {
                    Ok(push) => pushes.push(push),
                    Err(error) => {
                        not_started.get_or_insert(Error::failure(format!(
                            "cannot start a thread to push a layer: {error}"
                        )));
                    }
                }
            }
        }
        LayerPushes {
            pushes,
            not_started,
            layers: pending,
        }
    }

    /// Waits for every push; the first failure, in the order they were started.
    fn join(mut self) -> Result<()> {
        // Every thread is waited for, whatever the first one says.
        let joined: Vec<Result<()>> = std::mem::take(&mut self.pushes)
            .into_iter()
            .map(|push| {
                push.join()
                    .unwrap_or_else(|_| Err(Error::failure("the layer push thread panicked")))
            })
            .collect();
        match self.not_started.take() {
            Some(error) => Err(error),
            None => joined.into_iter().collect(),
        }
    }
}

impl Drop for LayerPushes {
    fn drop(&mut self) {
        if self.pushes.is_empty() {
            return;
        }
        // A stream under way then fails, and the push gives up on a layer that is not there.
        for layer in &self.layers {
            layer.cancel();
        }
        for push in self.pushes.drain(..) {
            let _ = push.join();
        }
    }
}

/// What [`make_images`] needs.
pub struct MakeImages<'a> {
    /// The new layers, being made since the build started.
    pub layers: LayerJobs,
    /// Their pushes, under way since the registries were connected.
    pub layer_pushes: Option<LayerPushes>,
    pub base: &'a ImageSet,
    pub settings: &'a ImageSettings<'a>,
    /// Where to push the blobs, if anywhere.
    pub push_to: Option<(&'a [Destination], &'a Progress)>,
}

/// Waits for the new layers and assembles the images. When pushing, the blobs go up meanwhile,
/// each on a thread of its own: each new layer while it is compressed ([`LayerPushes`], started
/// by the caller), the base's layers from now, the configs once the images are assembled. Manifests and
/// tags are left for after every blob is in place. Errors, in this order: a layer that could not
/// be made, the images' assembly or a config's push, the base's layers' push, a new layer's push.
pub fn make_images(job: MakeImages) -> Result<(Vec<ProducedLayer>, ImageSet)> {
    std::thread::scope(|scope| {
        let base_push = job.push_to.map(|(destinations, progress)| {
            let base = job.base;
            scope.spawn(move || push_base_layers(destinations, base, progress))
        });
        let made = job.layers.join().and_then(|layers| {
            let new_layers = layers
                .iter()
                .map(|layer| NewLayer {
                    architecture: layer.architecture,
                    digests: layer.digests.clone(),
                    file: layer.file.clone(),
                })
                .collect();
            let assembled = assemble(job.base, new_layers, job.settings)?;
            if let Some((destinations, progress)) = job.push_to {
                push_configs(destinations, &assembled, progress)?;
            }
            Ok((layers, assembled))
        });
        let joined = |worker: std::thread::ScopedJoinHandle<Result<()>>, what: &str| {
            worker
                .join()
                .unwrap_or_else(|_| Err(Error::failure(format!("the {what} thread panicked"))))
        };
        let base_pushed = base_push.map_or(Ok(()), |worker| joined(worker, "base layer push"));
        let layers_pushed = job.layer_pushes.map_or(Ok(()), LayerPushes::join);
        let made = made?;
        base_pushed?;
        layers_pushed?;
        Ok(made)
    })
}
