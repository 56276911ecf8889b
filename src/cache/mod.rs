//! What lambda-image keeps between runs, in one place under the cache root
//! (`$XDG_CACHE_HOME/lambda-image`, `~/.cache/lambda-image` or `--cache-dir`): pulled blobs by
//! digest ([`blobs`]), compressed new layers by the hash of their inputs ([`layers`]), the content
//! digests of the files that went into them, by inode and times ([`file_digests`]), and which
//! digest a registry base's tag named when it was last resolved online ([`base`], with the
//! hints for a base the cache cannot provide offline in [`offline_hints`]).
//!
//! Every cache is an optimisation: what cannot be written is left out, and everything read back
//! is verified. Not here: reading or writing images (the registry, layout and archive code does
//! that, through these caches).

pub mod base;
pub mod blobs;
pub mod file_digests;
pub mod layers;
pub mod offline_hints;
