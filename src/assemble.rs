//! The "mutate" step: a base [`ImageSet`] plus one new layer per architecture become the
//! function's image set: new configs, manifests and (for several architectures) an index, whose
//! blob store is the new layers' files over the base's store. Pure: nothing is read or written.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::config::{ConfigChanges, KeyValue, edit_config, read_base_config};
use crate::image::manifest::{
    config_document, descriptor, index_document, manifest_document, platform,
};
use crate::image::set::{Image, ImageSet, Layer};
use crate::image::store::LocalBlobs;
use crate::layer::LayerDigests;
use crate::platform::Architecture;

/// The annotation recording which base manifest an image was built on (OCI format only;
/// OCI image spec, annotations.md, "Pre-Defined Annotation Keys").
const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";

/// The annotation naming the base that `base.digest` was read from, as a fully-qualified
/// reference (`public.ecr.aws/lambda/provided:al2023`; annotations.md: "SHOULD be a
/// fully-qualified reference name"). Written beside `base.digest` only when the base has such a
/// name ([`ImageSet::name`]): a local path is not one, and would make the digest depend on
/// where the base lies on disk.
const BASE_NAME_ANNOTATION: &str = "org.opencontainers.image.base.name";

/// The settings shared by every architecture's image.
pub struct ImageSettings<'a> {
    pub format: ImageFormat,
    pub cmd: Vec<String>,
    pub env: &'a [KeyValue],
    pub labels: &'a [KeyValue],
    pub annotations: &'a [KeyValue],
    pub created: String,
    pub created_by: String,
}

/// The new layer of one architecture, already written to `file`.
pub struct NewLayer {
    pub architecture: Architecture,
    pub digests: LayerDigests,
    pub file: std::path::PathBuf,
}

/// Builds each architecture's config and manifest on top of the base, and an index when there are
/// two or more. The set's blobs are the new layers' files over the base's store.
pub fn assemble(
    base: &ImageSet,
    new_layers: Vec<NewLayer>,
    settings: &ImageSettings,
) -> Result<ImageSet> {
    let format = settings.format;
    let mut images = BTreeMap::new();
    let mut files = BTreeMap::new();
    let mut first_manifest = None;
    for layer in new_layers {
        let base_image = &base.images[&layer.architecture];
        let facts = &base_image.facts;
        // The same variant in the index descriptor and in the config (image spec, config.md
        // `variant`; image-index.md `platform.variant`): the base's, else arm64's `v8`.
        let variant = facts
            .variant
            .as_deref()
            .or(layer.architecture.oci_variant());
        let changes = ConfigChanges {
            variant,
            cmd: &settings.cmd,
            env: settings.env,
            labels: settings.labels,
            created: &settings.created,
            diff_id: &layer.digests.diff_id,
            created_by: &settings.created_by,
        };
        let config_bytes = edit_config(&base_image.config.bytes, &changes).map_err(|error| {
            Error::base(format!(
                "base {}: cannot edit its config: {error}",
                base.reference
            ))
        })?;
        let config = config_document(format, config_bytes);
        let config_facts = read_base_config(&config.bytes).map_err(|error| {
            Error::base(format!(
                "base {}: its edited config cannot be read: {error}",
                base.reference
            ))
        })?;

        let mut layers = Vec::with_capacity(base_image.layers.len() + 1);
        for base_layer in &base_image.layers {
            let media_type = format
                .convert_layer(base_layer.descriptor.media_type().as_ref())
                .map_err(|error| Error::base(format!("base {}: {error}", base.reference)))?
                .to_owned();
            let mut converted = base_layer.clone();
            converted
                .descriptor
                .set_media_type(media_type.as_str().into());
            layers.push(converted);
        }
        layers.push(Layer {
            descriptor: descriptor(
                format.gzip_layer(),
                &layer.digests.digest,
                layer.digests.size,
            ),
        });
        files.insert(layer.digests.digest.clone(), layer.file);

        let mut annotations = key_values_to_map(settings.annotations);
        if format == ImageFormat::Oci
            && let Some(base_manifest) = base_image.manifest_digest()
        {
            annotations
                .entry(BASE_DIGEST_ANNOTATION.to_owned())
                .or_insert_with(|| base_manifest.to_string());
            if let Some(name) = &base.name {
                annotations
                    .entry(BASE_NAME_ANNOTATION.to_owned())
                    .or_insert_with(|| name.clone());
            }
        }
        let descriptors = layers
            .iter()
            .map(|layer| layer.descriptor.clone())
            .collect();
        let manifest = manifest_document(format, &config, descriptors, &annotations);
        first_manifest.get_or_insert_with(|| manifest.digest.clone());
        images.insert(
            layer.architecture,
            Image {
                platform: platform(&facts.architecture, &facts.os, variant),
                manifest: Some(manifest),
                config,
                facts: config_facts,
                layers,
            },
        );
    }
    let index = (images.len() > 1).then(|| {
        let entries = images
            .values()
            .filter_map(|image| Some((image.manifest.clone()?, image.platform.clone())))
            .collect();
        index_document(format, entries, &key_values_to_map(settings.annotations))
    });
    let digest = index
        .as_ref()
        .map(|index| index.digest.clone())
        .or(first_manifest)
        .ok_or_else(|| Error::failure("no architecture to build"))?;
    Ok(ImageSet {
        reference: String::new(),
        name: None,
        digest,
        format,
        index,
        images,
        blobs: Arc::new(LocalBlobs::new(files, Some(Arc::clone(&base.blobs)))),
    })
}

fn key_values_to_map(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), pair.value.clone()))
        .collect()
}
