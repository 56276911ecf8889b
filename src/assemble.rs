//! The "mutate" step: a resolved base plus one new layer per architecture become the function's
//! configs, manifests and (for several architectures) an index. Pure: nothing is read or written.

use std::collections::HashMap;

use oci_spec::image::Platform;

use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::config::{ConfigChanges, KeyValue, edit_config};
use crate::image::manifest::{
    Document, config_document, descriptor, index_document, manifest_document, platform,
};
use crate::layer::LayerDigests;
use crate::platform::Architecture;
use crate::transport::source::{BlobSource, LayerBlob, ResolvedBase};

/// The annotation recording which base manifest an image was built on (OCI format only;
/// OCI image spec, annotations.md, "Pre-Defined Annotation Keys").
const BASE_DIGEST_ANNOTATION: &str = "org.opencontainers.image.base.digest";

/// The annotation naming the base that `base.digest` was read from, as a fully-qualified
/// reference (`public.ecr.aws/lambda/provided:al2023`; annotations.md: "SHOULD be a
/// fully-qualified reference name"). Written beside `base.digest` only when the base has such a
/// name ([`ResolvedBase::name`]): a local path is not one, and would make the digest depend on
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

/// One architecture's finished image.
pub struct AssembledImage {
    pub architecture: Architecture,
    pub platform: Platform,
    pub config: Document,
    pub manifest: Document,
    pub layers: Vec<LayerBlob>,
}

/// Everything a sink writes.
pub struct Assembled {
    pub images: Vec<AssembledImage>,
    pub index: Option<Document>,
    /// The registry name the images are known by, recorded in an OCI layout's `index.json` as
    /// `io.containerd.image.name` on the tagged entry: a base kit's registry reference, none for
    /// a built function.
    pub image_name: Option<String>,
}

/// Builds each architecture's config and manifest on top of the base, and an index when there are
/// two or more.
pub fn assemble(
    base: &ResolvedBase,
    new_layers: Vec<NewLayer>,
    settings: &ImageSettings,
) -> Result<Assembled> {
    let format = settings.format;
    let mut images = Vec::new();
    for layer in new_layers {
        let base_image = &base.images[&layer.architecture];
        let facts = &base_image.config;
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
        let config_bytes = edit_config(&base_image.config_raw, &changes).map_err(|error| {
            Error::base(format!(
                "base {}: cannot edit its config: {error}",
                base.reference
            ))
        })?;
        let config = config_document(format, config_bytes);

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
        layers.push(LayerBlob {
            descriptor: descriptor(
                format.gzip_layer(),
                &layer.digests.digest,
                layer.digests.size,
            ),
            source: BlobSource::LocalFile(layer.file),
        });

        let mut annotations = key_values_to_map(settings.annotations);
        if format == ImageFormat::Oci
            && let Some(base_manifest) = &base_image.manifest_digest
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
        images.push(AssembledImage {
            architecture: layer.architecture,
            platform: platform(&facts.architecture, &facts.os, variant),
            config,
            manifest,
            layers,
        });
    }
    let index = (images.len() > 1).then(|| {
        let entries = images
            .iter()
            .map(|image| (image.manifest.clone(), image.platform.clone()))
            .collect();
        index_document(format, entries, &key_values_to_map(settings.annotations))
    });
    Ok(Assembled {
        images,
        index,
        image_name: None,
    })
}

fn key_values_to_map(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|pair| (pair.key.clone(), pair.value.clone()))
        .collect()
}
