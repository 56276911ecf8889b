//! Media types of the OCI and Docker (v2 schema 2) image formats, and conversion between them.

use std::fmt;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Which family of media types an image is written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Oci,
    Docker,
}

impl ImageFormat {
    pub fn manifest(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_MANIFEST,
            ImageFormat::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn index(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_INDEX,
            ImageFormat::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    pub fn config(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_CONFIG,
            ImageFormat::Docker => DOCKER_CONFIG,
        }
    }

    pub fn gzip_layer(self) -> &'static str {
        match self {
            ImageFormat::Oci => OCI_LAYER_GZIP,
            ImageFormat::Docker => DOCKER_LAYER_GZIP,
        }
    }

    /// The format of a single-image manifest media type.
    pub fn of_manifest(media_type: &str) -> Option<Self> {
        match media_type {
            OCI_MANIFEST => Some(ImageFormat::Oci),
            DOCKER_MANIFEST => Some(ImageFormat::Docker),
            _ => None,
        }
    }

    /// The format of an index / manifest list media type.
    pub fn of_index(media_type: &str) -> Option<Self> {
        match media_type {
            OCI_INDEX => Some(ImageFormat::Oci),
            DOCKER_MANIFEST_LIST => Some(ImageFormat::Docker),
            _ => None,
        }
    }

    /// The media type a base layer gets in this format. The blob itself is never re-encoded, so
    /// only equivalent media types are converted; anything else is refused with the reason.
    pub fn convert_layer(self, media_type: &str) -> Result<&str, String> {
        match (self, media_type) {
            (ImageFormat::Oci, OCI_LAYER_GZIP | DOCKER_LAYER_GZIP) => Ok(OCI_LAYER_GZIP),
            (ImageFormat::Docker, OCI_LAYER_GZIP | DOCKER_LAYER_GZIP) => Ok(DOCKER_LAYER_GZIP),
            (ImageFormat::Oci, OCI_LAYER_TAR | OCI_LAYER_ZSTD) => Ok(media_type),
            _ => Err(format!(
                "the base has a layer of media type {media_type}, which cannot go into a {self} image \
                 without re-encoding it; Lambda needs gzip layers"
            )),
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImageFormat::Oci => "OCI",
            ImageFormat::Docker => "Docker v2 schema 2",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_layers_convert_both_ways_and_zstd_does_not_become_docker() {
        assert_eq!(
            ImageFormat::Oci.convert_layer(DOCKER_LAYER_GZIP),
            Ok(OCI_LAYER_GZIP)
        );
        assert_eq!(
            ImageFormat::Docker.convert_layer(OCI_LAYER_GZIP),
            Ok(DOCKER_LAYER_GZIP)
        );
        assert!(ImageFormat::Docker.convert_layer(OCI_LAYER_ZSTD).is_err());
    }
}
