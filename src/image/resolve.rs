//! Resolving a base's top document (an index or a single manifest) to one image per wanted
//! architecture: manifest, config and layer descriptors. Shared by every source (OCI layouts,
//! archives, registries); each says through [`DocumentStore`] how its documents are read.
//!
//! Only small documents are read here, each verified against its digest. Layers are not touched.

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::ImageFormat;
use super::config::read_base_config;
use super::manifest::{Document, platform};
use super::set::{Image, Layer};
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::platform::Architecture;

/// Largest manifest or index accepted (the limit registries use).
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// Largest image config accepted.
pub const CONFIG_LIMIT: u64 = 8 << 20;

/// Where a source's manifests and configs are. Shared by the threads that read each
/// architecture's documents ([`resolve_images`]), hence `Sync`.
pub trait DocumentStore: Sync {
    /// Reads a manifest or config named by `descriptor`, verified against its digest and size.
    fn read_document(&self, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>>;
}

/// A descriptor's digest, refusing algorithms other than sha256.
pub fn descriptor_digest(descriptor: &Descriptor) -> Result<Sha256Digest> {
    descriptor
        .digest()
        .to_string()
        .parse()
        .map_err(|error| Error::base(format!("{error}; only sha256 content is supported")))
}

/// The images of a base for the wanted architectures, the media-type family of its manifests,
/// and whether the top document is an index.
pub type ResolvedImages = (ImageFormat, BTreeMap<Architecture, Image>, bool);

/// Resolves `top` (already read and verified: an index or a manifest) for the wanted architectures.
/// `descriptor_media_type` is what whoever pointed at it said it is (a layout's index entry, a
/// registry's `Content-Type`); the document's own `mediaType` wins. With no wanted architectures,
/// every Lambda architecture the document has is resolved.
pub fn resolve_images(
    store: &dyn DocumentStore,
    top_digest: &Sha256Digest,
    top_bytes: &[u8],
    descriptor_media_type: &str,
    wanted: &[Architecture],
) -> Result<ResolvedImages> {
    let media_type = document_media_type(descriptor_media_type, top_bytes);
    let mut images = BTreeMap::new();
    let format;
    if let Some(index_format) = ImageFormat::of_index(&media_type) {
        format = index_format;
        let index = serde_json::from_slice::<ImageIndex>(top_bytes)
            .map_err(|error| Error::base(format!("index {top_digest} is malformed: {error}")))?;
        let available = available_platforms(index.manifests());
        let every_lambda_architecture: Vec<Architecture> =
            [Architecture::Amd64, Architecture::Arm64]
                .into_iter()
                .filter(|&architecture| choose_platform(index.manifests(), architecture).is_some())
                .collect();
        let wanted = if wanted.is_empty() {
            &every_lambda_architecture
        } else {
            wanted
        };
        let entries: Vec<(Architecture, Option<&Descriptor>)> = wanted
            .iter()
            .map(|&architecture| {
                (
                    architecture,
                    choose_platform(index.manifests(), architecture),
                )
            })
            .collect();
        let resolved = resolve_entries(store, &entries);
        // In the order asked for, as when they were read one after another: the first
        // architecture's failure is the one reported.
        for ((architecture, entry), image) in entries.into_iter().zip(resolved) {
            if entry.is_none() {
                return Err(missing_architecture(architecture, &available));
            }
            images.insert(architecture, image.expect("an entry is resolved")?);
        }
    } else if let Some(manifest_format) = ImageFormat::of_manifest(&media_type) {
        format = manifest_format;
        let image = resolve_manifest(store, top_digest.clone(), top_bytes)?;
        let image_arch = image_architecture(&image);
        if let Some(&architecture) = wanted.iter().find(|&&a| Some(a) != image_arch) {
            let available = vec![format!("{}/{}", image.facts.os, image.facts.architecture)];
            return Err(missing_architecture(architecture, &available));
        }
        if let Some(architecture) = image_arch {
            images.insert(architecture, image);
        }
    } else {
        return Err(Error::base(format!(
            "{top_digest} has media type {media_type}, which is not an image or an index"
        )));
    }
    let is_index = ImageFormat::of_index(&media_type).is_some();
    Ok((format, images, is_index))
}

/// Resolves each architecture's index entry (manifest, then config) at the same time as the
/// others, one thread each: a registry answers them in parallel instead of one round trip
/// after another. The results are in the order of `entries`; `None` where there is no entry.
fn resolve_entries(
    store: &dyn DocumentStore,
    entries: &[(Architecture, Option<&Descriptor>)],
) -> Vec<Option<Result<Image>>> {
    let resolve = |&(architecture, entry): &(Architecture, Option<&Descriptor>)| {
        entry.map(|entry| resolve_entry(store, architecture, entry))
    };
    if entries.iter().filter(|(_, entry)| entry.is_some()).count() < 2 {
        return entries.iter().map(resolve).collect();
    }
    std::thread::scope(|scope| {
        let (first, others) = entries.split_first().expect("two entries or more");
        let others: Vec<_> = others
            .iter()
            .map(|entry| scope.spawn(move || resolve(entry)))
            .collect();
        let mut resolved = vec![resolve(first)];
        resolved.extend(others.into_iter().map(|thread| match thread.join() {
            Ok(image) => image,
            Err(panic) => std::panic::resume_unwind(panic),
        }));
        resolved
    })
}

/// The image of one index entry listed as `linux/<architecture>`: its manifest and config,
/// which must say the same architecture.
fn resolve_entry(
    store: &dyn DocumentStore,
    architecture: Architecture,
    entry: &Descriptor,
) -> Result<Image> {
    let bytes = store.read_document(entry, MANIFEST_LIMIT)?;
    let digest = descriptor_digest(entry)?;
    let image = resolve_manifest(store, digest.clone(), &bytes)?;
    if image_architecture(&image) != Some(architecture) {
        return Err(Error::base(format!(
            "manifest {digest} is listed as linux/{architecture}, but its config says {}/{}",
            image.facts.os, image.facts.architecture
        )));
    }
    Ok(image)
}

/// The error for an architecture the base does not have.
/// The hint names the Lambda architectures it does have.
pub fn missing_architecture(wanted: Architecture, available: &[String]) -> Error {
    let usable: Vec<&str> = available
        .iter()
        .filter_map(|platform| Architecture::parse(platform.strip_prefix("linux/")?))
        .map(Architecture::oci_name)
        .collect();
    let listed = if available.is_empty() {
        "none".to_owned()
    } else {
        available.join(", ")
    };
    let error = Error::base(format!("has no image for linux/{wanted}; it has: {listed}"));
    if usable.is_empty() {
        return error.hint(format!("use a base that includes linux/{wanted}"));
    }
    error.hint(format!(
        "use a base that includes linux/{wanted}, or ask only for the architectures it has ({})",
        usable.join(", ")
    ))
}

fn available_platforms(entries: &[Descriptor]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|entry| entry.platform().as_ref())
        .map(|platform| format!("{}/{}", platform.os(), platform.architecture()))
        .collect()
}

/// The entry for `linux/<architecture>`; for arm64, `v8` or no variant.
fn choose_platform(entries: &[Descriptor], architecture: Architecture) -> Option<&Descriptor> {
    entries.iter().find(|entry| {
        entry.platform().as_ref().is_some_and(|platform| {
            platform.os().to_string() == "linux"
                && platform.architecture().to_string() == architecture.oci_name()
                && platform
                    .variant()
                    .as_deref()
                    .is_none_or(|variant| Some(variant) == architecture.oci_variant())
        })
    })
}

/// The Lambda architecture an image's config describes, if it is one.
fn image_architecture(image: &Image) -> Option<Architecture> {
    (image.facts.os == "linux")
        .then(|| Architecture::parse(&image.facts.architecture))
        .flatten()
}

fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest> {
    serde_json::from_slice::<ImageManifest>(bytes)
        .map_err(|error| Error::base(format!("manifest is malformed: {error}")))
}

/// Reads an image manifest and its config, checking they agree on the layers.
fn resolve_manifest(
    store: &dyn DocumentStore,
    manifest_digest: Sha256Digest,
    bytes: &[u8],
) -> Result<Image> {
    let manifest = parse_manifest(bytes)?;
    let config_raw = store.read_document(manifest.config(), CONFIG_LIMIT)?;
    let facts = read_base_config(&config_raw)
        .map_err(|error| Error::base(format!("config of {manifest_digest}: {error}")))?;
    if facts.diff_id_count != manifest.layers().len() {
        return Err(Error::base(format!(
            "manifest {manifest_digest} has {} layers but its config lists {} diff_ids",
            manifest.layers().len(),
            facts.diff_id_count
        )));
    }
    let layers = manifest
        .layers()
        .iter()
        .map(|layer| {
            descriptor_digest(layer)?;
            Ok(Layer {
                descriptor: layer.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let media_type = document_media_type(
        manifest.media_type().as_ref().map_or("", |m| m.as_ref()),
        bytes,
    );
    Ok(Image {
        manifest: Some(Document::new(&media_type, bytes.to_vec())),
        config: Document::new(manifest.config().media_type().as_ref(), config_raw),
        platform: platform(&facts.architecture, &facts.os, facts.variant.as_deref()),
        facts,
        layers,
    })
}

/// The media type of a document: its own `mediaType`, else the descriptor's.
fn document_media_type(descriptor_media_type: &str, bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|value| {
            value
                .get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| descriptor_media_type.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::{descriptor, platform};

    #[test]
    fn chooses_linux_arm64_with_or_without_v8() {
        let digest = Sha256Digest::of(b"x");
        let mut amd = descriptor("m", &digest, 1);
        amd.set_platform(Some(platform("amd64", "linux", None)));
        let mut arm = descriptor("m", &digest, 2);
        arm.set_platform(Some(platform("arm64", "linux", Some("v8"))));
        let mut unknown = descriptor("m", &digest, 3);
        unknown.set_platform(Some(platform("unknown", "unknown", None)));
        let entries = [unknown, amd, arm];
        assert_eq!(
            choose_platform(&entries, Architecture::Arm64)
                .unwrap()
                .size(),
            2
        );
        assert_eq!(
            choose_platform(&entries, Architecture::Amd64)
                .unwrap()
                .size(),
            1
        );
        assert_eq!(
            available_platforms(&entries),
            ["unknown/unknown", "linux/amd64", "linux/arm64"]
        );
    }

    /// The hint names what the base does have, when it has a Lambda architecture at all.
    #[test]
    fn a_missing_architecture_names_the_ones_there_are() {
        let error = missing_architecture(
            Architecture::Amd64,
            &["linux/arm64".to_owned(), "windows/amd64".to_owned()],
        );
        assert_eq!(
            error.hint_text(),
            Some(
                "use a base that includes linux/amd64, or ask only for the architectures it has (arm64)"
            )
        );
        let none = missing_architecture(Architecture::Arm64, &["linux/s390x".to_owned()]);
        assert_eq!(
            none.hint_text(),
            Some("use a base that includes linux/arm64")
        );
    }

    /// A store that fails every read, the amd64 manifest's only once the arm64 one has failed
    /// (or after a while, when reads are not side by side).
    struct FailingStore {
        amd64: Sha256Digest,
        arm64_failed: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
        tell: std::sync::Mutex<std::sync::mpsc::Sender<()>>,
    }

    impl DocumentStore for FailingStore {
        fn read_document(&self, descriptor: &Descriptor, _limit: u64) -> Result<Vec<u8>> {
            let digest = descriptor_digest(descriptor)?;
            if digest == self.amd64 {
                let _ = self
                    .arm64_failed
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(10));
            } else {
                let _ = self.tell.lock().unwrap().send(());
            }
            Err(Error::registry(format!("cannot read {digest}")))
        }
    }

    /// The architectures are read side by side, yet the failure reported is the first asked
    /// for, whichever failed first.
    #[test]
    fn the_first_architectures_failure_is_reported_whichever_fails_first() {
        let (amd64, arm64) = (Sha256Digest::of(b"amd64"), Sha256Digest::of(b"arm64"));
        let entry = |digest: &Sha256Digest, architecture: &str| {
            let mut entry = descriptor("application/vnd.oci.image.manifest.v1+json", digest, 6);
            entry.set_platform(Some(platform(architecture, "linux", None)));
            entry
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry(&amd64, "amd64"), entry(&arm64, "arm64")],
        });
        let bytes = serde_json::to_vec(&index).unwrap();
        let top = Sha256Digest::of(&bytes);
        let resolve = |wanted: &[Architecture]| {
            let (tell, arm64_failed) = std::sync::mpsc::channel();
            let store = FailingStore {
                amd64: amd64.clone(),
                arm64_failed: std::sync::Mutex::new(arm64_failed),
                tell: std::sync::Mutex::new(tell),
            };
            let media_type = "application/vnd.oci.image.index.v1+json";
            resolve_images(&store, &top, &bytes, media_type, wanted)
                .unwrap_err()
                .message()
                .to_owned()
        };
        let both = [Architecture::Amd64, Architecture::Arm64];
        assert_eq!(resolve(&both), format!("cannot read {amd64}"));
        let reversed = [Architecture::Arm64, Architecture::Amd64];
        assert_eq!(resolve(&reversed), format!("cannot read {arm64}"));
    }
}
