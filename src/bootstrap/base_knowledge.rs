//! What the bootstrap checks can know about a base before and after it is opened: its glibc
//! (from `--base-glibc`, the base-image catalog, or the `libc.so.6` in its layers) and, for a
//! base whose layers are on this machine, its files.
//!
//! Registry layers are never downloaded just to check a bootstrap: a registry base is checked
//! against the catalog (or `--base-glibc`) only.

use super::Bootstrap;
use super::checks::{BaseGlibc, BaseKnowledge, CheckName, check_bootstrap};
use super::elf::defined_glibc_version;
use super::glibc::GlibcVersion;
use crate::catalog;
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::image::filesystem::{Filesystem, LayerCompression};
use crate::image::media_types::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_TAR};
use crate::platform::Architecture;
use crate::reference::BaseReference;
use crate::transport::source::{BaseBlobs, ResolvedBase};

/// Where a base's `libc.so.6` usually is (Amazon Linux, then Debian-style multiarch).
const LIBC_PATHS: [&str; 6] = [
    "usr/lib64/libc.so.6",
    "lib64/libc.so.6",
    "usr/lib/x86_64-linux-gnu/libc.so.6",
    "usr/lib/aarch64-linux-gnu/libc.so.6",
    "lib/x86_64-linux-gnu/libc.so.6",
    "lib/aarch64-linux-gnu/libc.so.6",
];

/// The most of a `libc.so.6` read to find its versions.
const LIBC_READ_LIMIT: usize = 16 << 20;

/// The base's glibc as far as it is known without reading layers: `--base-glibc`, else the
/// catalog entry the reference names.
pub fn glibc_without_layers(
    base: &BaseReference,
    stated: Option<GlibcVersion>,
) -> Option<BaseGlibc> {
    if let Some(version) = stated {
        return Some(BaseGlibc {
            version,
            source: "from --base-glibc".into(),
        });
    }
    let BaseReference::Registry(reference) = base else {
        return None;
    };
    let entry = catalog::for_reference(reference)?;
    Some(BaseGlibc {
        version: entry.glibc.parse().ok()?,
        source: format!("{} in the base-image catalog", entry.name),
    })
}

/// Checks every bootstrap (the caller decides what an error finding means). With `local_base` (a base whose layers
/// are on this machine), bootstraps that need something from the base (dynamic ELFs, scripts)
/// are also checked against its files and its own `libc.so.6`.
pub fn check_bootstraps(
    bootstraps: &[Bootstrap],
    base_name: &str,
    known_glibc: Option<&BaseGlibc>,
    local_base: Option<&ResolvedBase>,
    skip: &[CheckName],
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for bootstrap in bootstraps {
        let filesystem = match local_base {
            Some(base) if !bootstrap.is_static() => Some(scan_base(base, bootstrap.architecture)?),
            _ => None,
        };
        let found_glibc = filesystem.as_ref().and_then(glibc_in_filesystem);
        let knowledge = BaseKnowledge {
            name: base_name,
            glibc: known_glibc.or(found_glibc.as_ref()),
            filesystem: filesystem.as_ref(),
        };
        findings.extend(check_bootstrap(bootstrap, knowledge, skip));
    }
    Ok(findings)
}

/// True when the base's layers can be read without a download.
pub fn layers_are_local(base: &ResolvedBase) -> bool {
    matches!(base.blobs, BaseBlobs::Tree(_))
}

/// Streams the base's layers for one architecture into a file tree, keeping the head of any
/// `libc.so.6` so its glibc can be read.
pub fn scan_base(base: &ResolvedBase, architecture: Architecture) -> Result<Filesystem> {
    let image = &base.images[&architecture];
    let mut filesystem = Filesystem::default();
    // The file itself, whichever name it has (on AL2 `libc.so.6` links to `libc-2.26.so`).
    let capture = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        let is_libc = name == "libc.so.6" || (name.starts_with("libc-") && name.ends_with(".so"));
        is_libc.then_some(LIBC_READ_LIMIT)
    };
    for layer in &image.layers {
        let compression = match layer.descriptor.media_type().to_string().as_str() {
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => LayerCompression::Gzip,
            OCI_LAYER_TAR => LayerCompression::None,
            // Anything else (zstd) cannot be read here; the base's files stay unknown.
            _ => return Ok(Filesystem::default()),
        };
        let unreadable = |error: std::io::Error| {
            Error::base(format!(
                "base {}: cannot read layer {} to check the bootstrap against it: {error}",
                base.reference,
                layer.digest()
            ))
        };
        let reader = base.open_layer(layer).map_err(unreadable)?;
        filesystem
            .apply_layer(reader, compression, &capture)
            .map_err(unreadable)?;
    }
    Ok(filesystem)
}

/// The glibc the base's own `libc.so.6` defines, if it has one.
pub fn glibc_in_filesystem(filesystem: &Filesystem) -> Option<BaseGlibc> {
    LIBC_PATHS.iter().find_map(|path| {
        let (found, node) = filesystem.resolve(path)?;
        let crate::image::filesystem::Node::File {
            head: Some(bytes), ..
        } = node
        else {
            return None;
        };
        Some(BaseGlibc {
            version: defined_glibc_version(bytes.as_slice())?,
            source: format!("its /{found}"),
        })
    })
}
