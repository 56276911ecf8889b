//! The one new layer of a Lambda image: which files go in it ([`contents`]) and how it is turned
//! into a deterministic, gzipped tar with its digests in one streaming pass ([`writer`]).

pub mod contents;
pub mod growing;
pub mod pending;
pub mod writer;

pub use contents::{IncludeSpec, LayerContents};
pub use writer::LayerDigests;
