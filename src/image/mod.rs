//! The image model and documents lambda-image reads and writes: media types, manifests, indexes
//! and configs; resolving a top document to per-architecture images ([`resolve`]); the
//! [`set::ImageSet`] every source produces and every sink consumes, over a [`store::BlobStore`].
//!
//! Documents are produced as canonical JSON bytes (sorted keys, compact), so their digests depend
//! only on their content. The base config is edited as raw JSON, so fields this tool does not
//! know survive untouched.

pub mod config;
pub mod filesystem;
pub mod json;
pub mod manifest;
pub mod media_types;
pub mod resolve;
pub mod set;
pub mod store;

pub use media_types::ImageFormat;
