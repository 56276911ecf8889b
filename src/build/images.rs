//! Making a build's images: every architecture's new layer (started by the caller, compressed in
//! parallel or taken from the layer cache), assembled on the base, with the blobs pushed
//! meanwhile when the build pushes. Used by `build`; manifests and tags are pushed after, by the
//! caller.

use super::layers::{LayerJobs, ProducedLayer};
use crate::assemble::{ImageSettings, NewLayer, assemble};
use crate::error::{Error, Result};
use crate::image::set::ImageSet;
use crate::registry::progress::Progress;
use crate::registry::push::{Destination, push_base_layers, push_configs};
use crate::registry::stream::push_new_layer;

/// What [`make_images`] needs.
pub struct MakeImages<'a> {
    /// The new layers, being made since the build started.
    pub layers: LayerJobs,
    pub base: &'a ImageSet,
    pub settings: &'a ImageSettings<'a>,
    /// Where to push the blobs, if anywhere.
    pub push_to: Option<(&'a [Destination], &'a Progress)>,
}

/// Waits for the new layers and assembles the images. When pushing, the blobs go up meanwhile,
/// each on a thread of its own: the base's layers at once, each new layer while it is
/// compressed ([`push_new_layer`]), the configs once the images are assembled. Manifests and
/// tags are left for after every blob is in place. Errors, in this order: a layer that could not
/// be made, the images' assembly or a config's push, the base's layers' push, a new layer's push.
pub fn make_images(job: MakeImages) -> Result<(Vec<ProducedLayer>, ImageSet)> {
    let pending = job.layers.pending();
    std::thread::scope(|scope| {
        let base_push = job.push_to.map(|(destinations, progress)| {
            let base = job.base;
            scope.spawn(move || push_base_layers(destinations, base, progress))
        });
        let mut layer_pushes = Vec::new();
        if let Some((destinations, progress)) = job.push_to {
            for destination in destinations {
                for layer in &pending {
                    layer_pushes
                        .push(scope.spawn(move || push_new_layer(destination, layer, progress)));
                }
            }
        }
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
        // The scope waits for every push thread; the first failure is the one reported.
        let layers_pushed = layer_pushes
            .into_iter()
            .try_for_each(|worker| joined(worker, "layer push"));
        let made = made?;
        base_pushed?;
        layers_pushed?;
        Ok(made)
    })
}
