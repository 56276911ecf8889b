//! The messages and hints for a registry base the cache cannot provide offline: what is missing
//! or damaged, and how to get the base (`base pull` with the build's `--cache-dir`, or a kit for a
//! machine that never has network). Not here: deciding what is missing (the tag records in
//! [`super::base`], the offline resolution in the build's `offline_base`).

use super::blobs::BlobCache;
use crate::error::Error;
use crate::reference::registry::RegistryReference;

/// What to do about a record of the same base under another registry (`found`): for a
/// `public.ecr.aws/lambda` base pulled through a mirror, set the mirror variable as it was; for
/// a mirrored base pulled from upstream, leave the variable unset; else name `found` as --base.
pub fn elsewhere_hint(reference: &RegistryReference, found: &RegistryReference) -> String {
    let variable = crate::catalog::MIRROR_VARIABLE;
    if let Some(rest) = crate::catalog::upstream_repository(reference)
        && let Some(path) = found.repository.strip_suffix(&format!("/{rest}"))
    {
        return format!(
            "it was pulled through a mirror: set {variable}={}/{path} as when it was pulled \
             (or build with --base {found})",
            found.registry
        );
    }
    if crate::catalog::upstream_repository(found).is_some() {
        return format!(
            "it was pulled from {} itself: unset {variable}, or build with --base {found}",
            crate::catalog::UPSTREAM
        );
    }
    format!("build with --base {found}")
}

/// An error about a base the cache cannot provide (what is missing or damaged), naming the base and
/// the cache, with the way to get the base.
pub fn offline_base_error(
    reference: &RegistryReference,
    cache: Option<&BlobCache>,
    why: &str,
) -> Error {
    let place = match cache {
        Some(cache) => format!("the cache {}", cache.root().display()),
        None => "the cache".to_owned(),
    };
    Error::base(format!("base {reference} (--offline, from {place}): {why}"))
        .hint(offline_hint(reference, cache))
}

/// How to make a registry base available offline, whatever is missing or damaged: `base pull
/// REF` (with the build's `--cache-dir`) reads every document and layer of the base through the
/// cache, fetching again any copy that does not verify, and records the tag; an online build
/// does not always do that (it caches only the layers it reads). Said once; the kit is the way
/// for a machine that never has network.
pub fn offline_hint(reference: &RegistryReference, cache: Option<&BlobCache>) -> String {
    let (cache_flag, build_flag) = match cache {
        Some(cache) => (cache.flag(), String::new()),
        None => (
            " --cache-dir DIR".to_owned(),
            " with --cache-dir DIR".to_owned(),
        ),
    };
    format!(
        "with network, run `lambda-image base pull {reference}{cache_flag}` once: it puts the \
         whole base in the cache (every layer, and which image the tag names), then run this \
         build again{build_flag}; for a machine that never has network, make a kit on a machine \
         with network (`lambda-image base pull {reference} --output oci:DIR`), carry DIR over and build \
         with --base oci:DIR"
    )
}

/// The hint for a layer the cache lacks: why an online build may have left it out, and how to
/// get it.
pub fn missing_layer_hint(reference: &RegistryReference, cache: &BlobCache) -> String {
    format!(
        "an online build caches only the base layers it reads, not those a push mounted or found \
         already in the registry; {}",
        offline_hint(reference, Some(cache))
    )
}
