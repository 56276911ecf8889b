//! Sources and sinks of images: OCI layouts (directory or archive) and docker-archives.
//!
//! [`source`] resolves a base for the requested architectures; [`sink`] writes the built images.
//! Both sit on [`tree`], which hides whether files live in a directory or a tar.

pub mod docker_archive;
pub mod oci;
pub mod sink;
pub mod source;
pub mod tree;
