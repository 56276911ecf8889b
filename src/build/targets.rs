//! Where a build pushes: the `--tag`s checked before anything is read, and grouped into one
//! destination per repository. Not here: pushing ([`crate::registry::push`]) or writing a local
//! output ([`crate::transport::sink`]).

use super::Plan;
use crate::error::{Error, Result};
use crate::platform::Architecture;
use crate::reference::is_valid_tag;
use crate::reference::registry::RegistryReference;
use crate::registry::Session;
use crate::registry::push::Destination;

/// Checks the `--tag`s (no digests; per-architecture tags short enough) and that the build
/// writes somewhere.
pub(super) fn check_targets(
    plan: &Plan,
    architectures: &[Architecture],
) -> Result<Vec<RegistryReference>> {
    if plan.tags.is_empty() && plan.output.is_none() {
        return Err(Error::usage("nothing to write: give --tag to push or --output to write locally")
            .hint("e.g. --tag 123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-function:v1, or --output oci:./out"));
    }
    let mut targets = Vec::new();
    for tag in &plan.tags {
        if tag.digest.is_some() {
            return Err(Error::usage(format!(
                "--tag {tag}: a pushed image gets its digest from its content; give a tag, not @sha256:..."
            )));
        }
        let name = tag.tag.clone().unwrap_or_else(|| "latest".to_owned());
        if architectures.len() > 1 && plan.arch_tags {
            for architecture in architectures {
                if !is_valid_tag(&format!("{name}-{architecture}")) {
                    return Err(Error::usage(format!(
                        "--tag {tag}: the per-architecture tag {name}-{architecture} would be over 128 characters"
                    ))
                    .hint("use a shorter tag, or --no-arch-tags"));
                }
            }
        }
        targets.push(tag.clone());
    }
    Ok(targets)
}

/// The repositories to push to, each with its tags, in the order first named.
pub(super) fn destinations(session: &Session, targets: &[RegistryReference]) -> Vec<Destination> {
    let mut destinations: Vec<Destination> = Vec::new();
    for target in targets {
        let tag = target.tag.clone().unwrap_or_else(|| "latest".to_owned());
        match destinations.iter_mut().find(|destination| {
            destination.registry.host() == target.registry
                && destination.repository == target.repository
        }) {
            Some(destination) => {
                if !destination.tags.contains(&tag) {
                    destination.tags.push(tag);
                }
            }
            None => destinations.push(Destination {
                registry: session.registry(&target.registry),
                repository: target.repository.clone(),
                tags: vec![tag],
            }),
        }
    }
    destinations
}
