//! Making a build's images: every architecture's new layer (compressed in parallel, or taken
//! from the layer cache), assembled on the base, with the blobs pushed meanwhile when the build
//! pushes. Used by `build`; manifests and tags are pushed after, by the caller.

use std::path::Path;

use super::layers::{ProducedLayer, produce_layers};
use crate::assemble::{ImageSettings, NewLayer, assemble};
use crate::cache::layers::LayerCache;
use crate::error::{Error, Result};
use crate::image::set::ImageSet;
use crate::layer::LayerContents;
use crate::platform::Architecture;
use crate::registry::progress::Progress;
use crate::registry::push::{Destination, push_base_layers, push_new_blobs};

/// What [`make_images`] needs.
pub struct MakeImages<'a> {
    pub architectures: &'a [Architecture],
    pub contents: &'a [LayerContents],
    pub mtime: u64,
    pub scratch: &'a Path,
    pub layer_cache: Option<&'a LayerCache>,
    pub base: &'a ImageSet,
    pub settings: &'a ImageSettings<'a>,
    /// Where to push the blobs, if anywhere.
    pub push_to: Option<(&'a [Destination], &'a Progress)>,
}

/// Makes the new layers and assembles the images. When pushing, the blobs go up meanwhile: the
/// base's layers while the new layers are compressed, the new layers and configs as soon as
/// they exist. Manifests and tags are left for after every blob is in place.
pub fn make_images(job: MakeImages) -> Result<(Vec<ProducedLayer>, ImageSet)> {
    let (made, base_pushed) = std::thread::scope(|scope| {
        let base_push = job.push_to.map(|(destinations, progress)| {
            let base = job.base;
            scope.spawn(move || push_base_layers(destinations, base, progress))
        });
        let made = produce_layers(
            job.architectures,
            job.contents,
            job.mtime,
            job.scratch,
            job.layer_cache,
        )
        .and_then(|layers| {
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
                push_new_blobs(destinations, &assembled, job.base, progress)?;
            }
            Ok((layers, assembled))
        });
        let base_pushed = match base_push {
            Some(worker) => worker
                .join()
                .unwrap_or_else(|_| Err(Error::failure("the base layer push thread panicked"))),
            None => Ok(()),
        };
        (made, base_pushed)
    });
    let made = made?;
    base_pushed?;
    Ok(made)
}
