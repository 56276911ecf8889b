//! The chain of credential sources of one registry host, as the registry client asks it: each
//! repository's credential is looked up the first time the registry asks for one (a 401), from
//! the first source that has one, and kept for the rest of the run.
//!
//! Not here: the sources themselves ([`super::FlagCredential`], [`super::CredentialSources`],
//! [`super::ecr::EcrSource`]), or sending a credential (`registry::http`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::{Credential, CredentialFlag, CredentialSource, Query, TokenIssuer};
use crate::error::{Error, Result};

/// The credentials of one registry host: its sources in the order they are asked, and the
/// issuer of short-lived credentials (ECR) for a host that has one.
pub struct HostCredentials {
    host: String,
    /// The flag that gives credentials for this host, for hints.
    flag: CredentialFlag,
    sources: Vec<Box<dyn CredentialSource>>,
    issuer: Option<Box<dyn TokenIssuer>>,
    found: Mutex<BTreeMap<Option<String>, Arc<RepositoryCredential>>>,
}

impl std::fmt::Debug for HostCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCredentials")
            .field("host", &self.host)
            .field("flag", &self.flag)
            .field("sources", &self.sources)
            .field("issuer", &self.issuer.is_some())
            .finish_non_exhaustive()
    }
}

/// The credential for one repository (or the whole host), and what to say about it.
#[derive(Debug, Default)]
pub struct RepositoryCredential {
    pub credential: Option<Credential>,
    /// Where it came from, e.g. `from --creds`, `from auths in FILE` (never the secret).
    pub origin: Option<String>,
    /// Whether an ECR token may replace it once ECR refuses it as expired: true for one saved
    /// in a file (a `docker login` 12 hours ago), false for a flag.
    pub replaceable: bool,
    /// The message and hint of a skipped `credsStore` ([`super::Lookup::skipped_store`]).
    skipped_store: Option<(String, Option<String>)>,
    /// What was consulted and had nothing for the repository ([`super::Lookup::unmatched`]).
    pub unmatched: Vec<String>,
}

impl RepositoryCredential {
    /// The error for a skipped `credsStore`, if one was skipped, with `context` (what needed
    /// credentials) before its own message.
    pub fn skipped_store_error(&self, context: &str) -> Option<Error> {
        let (message, hint) = self.skipped_store.as_ref()?;
        let error = Error::registry(format!("{context}, and none could be looked up: {message}"));
        Some(match hint {
            Some(hint) => error.hint(hint.clone()),
            None => error,
        })
    }

    /// The one-line warning for a skipped `credsStore` when the registry did not need it.
    pub fn skipped_store_warning(&self) -> Option<String> {
        let (message, _) = self.skipped_store.as_ref()?;
        Some(format!(
            "warning: {message}; it was skipped, as the registry needed no credentials from it"
        ))
    }
}

impl HostCredentials {
    /// The chain of `host`: `sources` asked in order; hints of a failed lookup (a credential
    /// helper, a skipped `credsStore`) name `flag` as the way to give credentials instead.
    pub fn new(host: &str, flag: CredentialFlag, sources: Vec<Box<dyn CredentialSource>>) -> Self {
        Self {
            host: host.to_owned(),
            flag,
            sources,
            issuer: None,
            found: Mutex::default(),
        }
    }

    /// The chain with `issuer` last: asked when no source has a credential, and in place of a
    /// replaceable one that the registry refuses as expired.
    pub fn with_issuer(mut self, issuer: Option<Box<dyn TokenIssuer>>) -> Self {
        self.issuer = issuer;
        self
    }

    /// The flag that gives credentials for this host, for hints.
    pub fn flag(&self) -> CredentialFlag {
        self.flag
    }

    /// The issuer of short-lived credentials for this host (ECR), if it has one.
    pub fn issuer(&self) -> Option<&dyn TokenIssuer> {
        self.issuer.as_deref()
    }

    /// The credential for `repository` (None: the host as a whole), looked up once: the first
    /// source that has one gives it; what the sources asked before had (a skipped `credsStore`,
    /// entries for other namespaces) is kept for messages.
    pub fn for_repository(&self, repository: Option<&str>) -> Result<Arc<RepositoryCredential>> {
        let key = repository.map(str::to_owned);
        if let Some(found) = self.found.lock().expect("credential cache").get(&key) {
            return Ok(Arc::clone(found));
        }
        let query = Query {
            host: &self.host,
            repository,
            flag: self.flag,
        };
        let mut found = RepositoryCredential {
            replaceable: true,
            ..RepositoryCredential::default()
        };
        for source in &self.sources {
            let lookup = source.lookup(&query)?;
            found.unmatched.extend(lookup.unmatched);
            if found.skipped_store.is_none() {
                found.skipped_store = lookup.skipped_store.map(|error: Error| {
                    (
                        error.message().to_owned(),
                        error.hint_text().map(str::to_owned),
                    )
                });
            }
            if let Some((credential, origin)) = lookup.found {
                found.credential = Some(credential);
                found.origin = Some(format!("from {origin}"));
                found.replaceable = source.replaceable();
                break;
            }
        }
        let found = Arc::new(found);
        self.found
            .lock()
            .expect("credential cache")
            .insert(key, Arc::clone(&found));
        Ok(found)
    }

    /// The credential already looked up for `repository`, if it was.
    pub fn cached(&self, repository: Option<&str>) -> Option<Arc<RepositoryCredential>> {
        self.found
            .lock()
            .expect("credential cache")
            .get(&repository.map(str::to_owned))
            .cloned()
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
