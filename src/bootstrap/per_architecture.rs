//! The bootstraps of one command (`build`, `check --bootstrap`): each inspected, at most one per
//! architecture, in architecture order. Not here: inspecting one bootstrap ([`super::inspect`])
//! or checking it against a base ([`super::base_knowledge`]).

use super::{Bootstrap, BootstrapSpec};
use crate::error::{Error, Result};

/// Inspects every bootstrap, refusing two for one architecture.
pub fn inspect_bootstraps(specs: &[BootstrapSpec]) -> Result<Vec<Bootstrap>> {
    let mut bootstraps: Vec<Bootstrap> = Vec::new();
    for spec in specs {
        let bootstrap = super::inspect(spec)?;
        if let Some(other) = bootstraps
            .iter()
            .find(|b| b.architecture == bootstrap.architecture)
        {
            return Err(Error::bootstrap(format!(
                "two bootstraps for {}: {} and {}",
                bootstrap.architecture,
                other.path.display(),
                bootstrap.path.display()
            ))
            .hint("give one bootstrap per architecture (one amd64, one arm64)"));
        }
        bootstraps.push(bootstrap);
    }
    bootstraps.sort_by_key(|b| b.architecture);
    Ok(bootstraps)
}
