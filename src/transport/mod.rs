//! Sources and sinks of images: OCI layouts (directory or archive) and docker-archives.
//!
//! [`source`] opens a local image as an [`ImageSet`](crate::image::set::ImageSet) resolved for the
//! requested architectures; [`sink`] writes an image set. Both sit on [`tree`], which hides
//! whether files live in a directory or a tar, and whose [`tree::TreeBlobs`] is the blob store
//! of a layout or archive.
//!
//! [`oci`] reads an OCI layout (directory or `oci-archive`) and [`layout_index`] writes its
//! `index.json`; [`docker_archive`] reads and writes docker-archives (`docker save` tars).

pub mod docker_archive;
pub mod layout_index;
pub mod oci;
pub mod sink;
pub mod source;
pub mod tree;
