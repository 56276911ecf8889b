//! Opening a build's base (or any image a command reads): a registry session when a registry is
//! involved, and the image from wherever its reference points (a layout, an archive, or a
//! registry). Not here: the base from the cache offline ([`super::offline_base`]), or reading
//! any one kind of source ([`crate::transport`], [`crate::registry::pull`]).

use std::sync::Arc;

use super::Plan;
use crate::catalog::BaseReference;
use crate::error::Result;
use crate::image::set::ImageSet;
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;
use crate::registry::pull::{RemoteRepository, open_registry_base};
use crate::registry::{Session, SessionOptions};
use crate::transport::source::{ImageRole, open_local};

/// Opens an image from wherever `reference` points; a registry reference needs a session;
/// `scratch` is made here ([`crate::scratch_base`]).
/// With no wanted architectures, every Lambda architecture it has is resolved. `role` names it
/// in messages.
pub fn open_image(
    reference: &BaseReference,
    wanted: &[Architecture],
    session: Option<&Session>,
    role: ImageRole,
) -> Result<ImageSet> {
    match (reference, session) {
        (BaseReference::Local(location), _) => open_local(location, wanted, role),
        (BaseReference::Scratch, _) => crate::scratch_base::image_set(wanted),
        (BaseReference::Registry(reference), Some(session)) => {
            let repository = RemoteRepository::new(
                session.registry(&reference.registry),
                &reference.repository,
                session.cache.clone(),
                session.progress.clone(),
            );
            open_registry_base(reference, wanted, repository)
        }
        (BaseReference::Registry(_), None) => unreachable!("a registry reference opens a session"),
    }
}

/// A registry session, when the base is in a registry (and the build is online) or the build
/// pushes.
pub(super) fn open_session(plan: &Plan, targets: &[RegistryReference]) -> Result<Option<Session>> {
    let registry_base = match &plan.base {
        BaseReference::Registry(reference) if !plan.offline => Some(reference),
        _ => None,
    };
    if registry_base.is_none() && targets.is_empty() {
        return Ok(None);
    }
    let access = &plan.registries;
    Session::connect(
        registry_base,
        targets,
        SessionOptions {
            creds: access.creds.clone(),
            base_creds: access.base_creds.clone(),
            insecure_registries: access.insecure_registries.clone(),
            cache_dir: access.cache_dir.clone(),
            quiet: access.quiet,
            ecr_tokens: Arc::clone(&access.ecr_tokens),
            read_role: Default::default(),
            read_credential_flag: crate::credentials::CredentialFlag::BaseCreds,
        },
    )
    .map(Some)
}
