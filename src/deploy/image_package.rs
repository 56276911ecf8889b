//! The image a function is given: an ECR reference (a tag or a digest, naming an index or one
//! manifest) resolved in the registry to each architecture's manifest digest, or the images a
//! build has just pushed. Lambda takes an image only from a private ECR repository
//! (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`; CreateFunction, `Code.ImageUri`), so any other
//! registry is refused before any AWS call.

use std::collections::BTreeMap;

use super::ImagePackage;
use crate::catalog::BaseReference;
use crate::credentials::ecr::EcrRegistry;
use crate::error::{Error, Result};
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;
use crate::registry::{Session, SessionOptions};
use crate::transport::source::ImageRole;

/// The region of the private ECR registry `reference` is in. Error (usage): any other registry
/// (`public.ecr.aws` too: Lambda does not deploy from it).
pub fn ecr_region(reference: &RegistryReference, flag: &str) -> Result<String> {
    match EcrRegistry::from_host(&reference.registry) {
        Some(registry) => Ok(registry.region),
        None => Err(Error::usage(format!(
            "{flag} {reference}: Lambda deploys images only from a private ECR repository \
             (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO), not from {}",
            reference.registry
        ))
        .hint(
            "push the image to ECR in the function's region first, e.g. lambda-image build ... \
             --tag ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG (or copy it there with skopeo \
             copy --all)",
        )),
    }
}

/// Reads `reference` from its registry (credentials as `options` give them; ECR's from
/// `GetAuthorizationToken`) and returns each architecture's manifest digest. Errors: those of
/// reading an image (registry, exit 6; a missing tag or a malformed image, exit 4).
pub fn resolve_image(
    reference: &RegistryReference,
    options: SessionOptions,
) -> Result<ImagePackage> {
    let session = Session::connect(Some(reference), &[], options)?;
    let base_reference = BaseReference::Registry(reference.clone());
    let opened = crate::build::open_image(&base_reference, &[], Some(&session), ImageRole::Image)?;
    let manifests: BTreeMap<_, _> = opened
        .images
        .iter()
        .filter_map(|(architecture, image)| {
            image
                .manifest_digest()
                .map(|digest| (*architecture, digest.clone()))
        })
        .collect();
    if manifests.is_empty() {
        return Err(Error::base(format!(
            "{reference} holds no Lambda architecture (amd64 or arm64) image"
        )));
    }
    Ok(ImagePackage {
        shown: reference.to_string(),
        repository: reference.name(),
        manifests,
    })
}

/// The images a build pushed to `tag`'s repository: `HOST/REPO` and each architecture's
/// manifest digest (`images`: architecture and `sha256:...`, as the build reports them).
pub fn built_image<'a>(
    tag: &RegistryReference,
    images: impl IntoIterator<Item = (Architecture, &'a str)>,
) -> ImagePackage {
    let manifests = images
        .into_iter()
        .filter_map(|(architecture, digest)| Some((architecture, digest.parse().ok()?)))
        .collect();
    ImagePackage {
        shown: tag.to_string(),
        repository: tag.name(),
        manifests,
    }
}
