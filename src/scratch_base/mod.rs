//! The built-in `--base scratch` (catalog entry `base-images/scratch.json`): an image with no
//! base layers at all, made by the tool with no registry, no download and no cache. Its base
//! [`ImageSet`] is one config per architecture with an empty `rootfs` and history (os `linux`,
//! arm64 variant `v8`, the catalog entry's `Entrypoint`, `WorkingDir` and `Env`), no manifests
//! (so no `org.opencontainers.image.base.*` annotations) and the OCI format; the build's new
//! layer then holds everything the image has ([`add_to_layer`]): the bootstrap, the
//! `--include`s, `/var/task` (the working directory), `/tmp` (mode 1777) and the CA bundle at
//! [`CA_BUNDLE_PATH`] ([`ca_bundle`]).
//!
//! Nothing else is in the image: no shell, no C library, no dynamic loader, no
//! `aws-lambda-rie`. Only statically linked bootstraps run on it; the bootstrap checks refuse
//! the others through the catalog entry (no glibc, no loaders, no files).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use crate::catalog::{self, BaseReference, CatalogBase};
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::config::read_base_config;
use crate::image::json::to_canonical_vec;
use crate::image::manifest::{config_document, platform};
use crate::image::set::{Image, ImageSet};
use crate::image::store::LocalBlobs;
use crate::layer::LayerContents;
use crate::layer::contents::{GeneratedContent, LayerEntry};
use crate::platform::Architecture;

mod ca_bundle;

pub use ca_bundle::{ca_bundle, certificate_count};

/// Where the CA bundle goes: the path Debian's and Alpine's `ca-certificates` use, which Go's
/// `crypto/x509` tries first on Linux, and which the config's `SSL_CERT_FILE` names.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The scratch image's temporary directory (mode 1777): Lambda gives functions a writable
/// `/tmp`, and code expects it to exist.
pub const TMP_PATH: &str = "/tmp";

/// The working directory the config names (`WorkingDir`, `LAMBDA_TASK_ROOT`).
pub const TASK_ROOT: &str = "/var/task";

/// What the history entry adds to `created_by` for the entries of [`add_to_layer`].
pub const CREATED_BY: &str = ", /var/task, /tmp and the CA bundle of --base scratch";

/// The catalog entry.
fn entry() -> CatalogBase {
    catalog::by_name(catalog::SCRATCH).expect("the catalog has scratch")
}

/// The base image set of `--base scratch` for the `wanted` architectures (both when empty):
/// configs only, nothing to download or read.
pub fn image_set(wanted: &[Architecture]) -> Result<ImageSet> {
    let entry = entry();
    let architectures = if wanted.is_empty() {
        vec![Architecture::Amd64, Architecture::Arm64]
    } else {
        wanted.to_vec()
    };
    let format = ImageFormat::Oci;
    let mut images = BTreeMap::new();
    for architecture in architectures {
        let config = config_document(format, config_bytes(&entry, architecture));
        let facts = read_base_config(&config.bytes)
            .map_err(|error| Error::failure(format!("the scratch base's config: {error}")))?;
        images.insert(
            architecture,
            Image {
                manifest: None,
                platform: platform(architecture.oci_name(), "linux", architecture.oci_variant()),
                config,
                facts,
                layers: Vec::new(),
            },
        );
    }
    // No document names the scratch base (it has no manifest or index): the set's digest is
    // that of its first config, and the build reports no base digest.
    let digest = images
        .values()
        .next()
        .map(|image| image.config.digest.clone())
        .unwrap_or_else(|| Sha256Digest::of(b""));
    Ok(ImageSet {
        reference: catalog::SCRATCH.to_owned(),
        name: None,
        digest,
        format,
        images,
        index: None,
        blobs: Arc::new(LocalBlobs::new(BTreeMap::new(), None)),
    })
}

/// One architecture's config, canonical JSON: the catalog entry's `config`, an empty
/// `rootfs` and `history`; `created` is set by the build.
fn config_bytes(entry: &CatalogBase, architecture: Architecture) -> Vec<u8> {
    let mut config = json!({
        "architecture": architecture.oci_name(),
        "os": "linux",
        "config": entry.config,
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    if let Some(variant) = architecture.oci_variant() {
        config["variant"] = json!(variant);
    }
    to_canonical_vec(&config)
}

/// Each architecture's layer `contents`, with what [`add_to_layer`] adds when `base` is
/// `scratch`; as they are for any other base.
pub fn with_layer_entries(
    base: &BaseReference,
    mut contents: Vec<LayerContents>,
) -> Result<Vec<LayerContents>> {
    if *base == BaseReference::Scratch {
        contents.iter_mut().try_for_each(add_to_layer)?;
    }
    Ok(contents)
}

/// Adds what a scratch image needs besides the bootstrap and the `--include`s: `/var/task`,
/// `/tmp` (mode 1777) and the CA bundle. An `--include` already at [`CA_BUNDLE_PATH`] replaces
/// the bundle (a private CA's); a directory `--include`d at `/tmp` or `/var/task` is kept, `/tmp`
/// with mode 1777; a file there is an error.
pub fn add_to_layer(contents: &mut LayerContents) -> Result<()> {
    contents.add_generated(
        TASK_ROOT,
        LayerEntry::Directory,
        "--base scratch makes /var/task (its WorkingDir) a directory, and an --include puts a file there",
    )?;
    contents.add_generated(
        TMP_PATH,
        LayerEntry::SharedDirectory,
        "--base scratch makes /tmp a directory (mode 1777), and an --include puts a file there",
    )?;
    if contents.get(CA_BUNDLE_PATH).is_none() {
        contents.add_generated(
            CA_BUNDLE_PATH,
            LayerEntry::Generated {
                content: GeneratedContent(ca_bundle()),
            },
            "--base scratch puts its CA bundle in /etc/ssl/certs, and an --include puts a file in the way",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn configs_have_no_layers_and_the_lambda_settings() {
        let set = image_set(&[]).unwrap();
        assert_eq!(set.format, ImageFormat::Oci);
        assert!(set.index.is_none() && set.name.is_none());
        assert_eq!(set.images.len(), 2);
        for (architecture, image) in &set.images {
            assert!(image.manifest.is_none() && image.layers.is_empty());
            let config: Value = serde_json::from_slice(&image.config.bytes).unwrap();
            assert_eq!(config["architecture"], architecture.oci_name());
            assert_eq!(config["os"], "linux");
            assert_eq!(config["rootfs"], json!({"type": "layers", "diff_ids": []}));
            assert_eq!(config["history"], json!([]));
            assert_eq!(
                config["config"]["Entrypoint"],
                json!(["/var/runtime/bootstrap"])
            );
            assert_eq!(config["config"]["WorkingDir"], "/var/task");
            assert!(config["config"].get("Cmd").is_none());
            assert_eq!(
                config["config"]["Env"],
                json!([
                    "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
                    "TZ=:/etc/localtime",
                    "LAMBDA_TASK_ROOT=/var/task",
                    "LAMBDA_RUNTIME_DIR=/var/runtime",
                    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
                ])
            );
            assert_eq!(
                config.get("variant").and_then(Value::as_str),
                architecture.oci_variant()
            );
            assert_eq!(image.facts.diff_id_count, 0);
        }
        let arm64 = image_set(&[Architecture::Arm64]).unwrap();
        assert_eq!(
            arm64.images.keys().collect::<Vec<_>>(),
            [&Architecture::Arm64]
        );
        assert_eq!(
            arm64.images[&Architecture::Arm64].config.bytes,
            set.images[&Architecture::Arm64].config.bytes,
            "the same config whatever else is built"
        );
    }

    #[test]
    fn the_layer_gets_tmp_the_working_directory_and_the_bundle() {
        let directory = tempfile::tempdir().unwrap();
        let bootstrap = directory.path().join("bootstrap");
        std::fs::write(&bootstrap, b"\x7fELF").unwrap();
        let mut contents = LayerContents::with_bootstrap(&bootstrap, 4).unwrap();
        add_to_layer(&mut contents).unwrap();
        let modes: Vec<(&str, u32)> = contents
            .entries()
            .map(|(path, entry)| (path, entry.mode()))
            .collect();
        assert_eq!(
            modes,
            [
                ("etc", 0o755),
                ("etc/ssl", 0o755),
                ("etc/ssl/certs", 0o755),
                ("etc/ssl/certs/ca-certificates.crt", 0o644),
                ("tmp", 0o1777),
                ("var", 0o755),
                ("var/runtime", 0o755),
                ("var/runtime/bootstrap", 0o755),
                ("var/task", 0o755),
            ]
        );

        // A file --included under /tmp first: /tmp still gets 1777; an included bundle wins.
        let mine = directory.path().join("ca.pem");
        std::fs::write(&mine, b"mine").unwrap();
        let mut contents = LayerContents::with_bootstrap(&bootstrap, 4).unwrap();
        for include in [
            format!("{}:/tmp/seed", mine.display()),
            format!("{}:{CA_BUNDLE_PATH}", mine.display()),
        ] {
            contents.include(&include.parse().unwrap()).unwrap();
        }
        add_to_layer(&mut contents).unwrap();
        assert_eq!(contents.get("/tmp"), Some(&LayerEntry::SharedDirectory));
        assert!(matches!(
            contents.get(CA_BUNDLE_PATH),
            Some(LayerEntry::File { source, .. }) if *source == mine
        ));

        // A file where /tmp goes cannot be.
        let mut contents = LayerContents::with_bootstrap(&bootstrap, 4).unwrap();
        contents
            .include(&format!("{}:/tmp", mine.display()).parse().unwrap())
            .unwrap();
        let error = add_to_layer(&mut contents).unwrap_err();
        assert!(error.message().contains("/tmp"), "{}", error.message());
    }
}
