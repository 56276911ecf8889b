//! Talking to OCI registries: pulling a base and pushing the built images, speaking the
//! distribution protocol directly (no Docker daemon).
//!
//! [`Session`] connects once to each registry a build touches, knowing the token scopes the whole
//! build needs and where credentials come from (looked up per repository when a registry asks),
//! and holds the blob cache and progress display they share.

pub mod download;
pub mod http;
pub mod manifests;
pub mod progress;
pub mod pull;
pub mod push;
pub mod stream;
pub mod transfer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::blobs::BlobCache;
use http::client::{ConnectOptions, Registry};

use crate::credentials::ecr::{EcrSource, TokenCache};
use crate::credentials::{
    Credential, CredentialFlag, CredentialSource, CredentialSources, FlagCredential,
    HostCredentials, HostRole,
};
use progress::Progress;

use crate::error::Result;
use crate::reference::registry::RegistryReference;

/// What the command line says about registries.
#[derive(Default)]
pub struct SessionOptions {
    /// `--creds` (or `--username` + `--password-stdin`), with the flag that gave it (for
    /// messages): for the registries pushed to (and the base's, if it is one of them); never
    /// sent to any other registry.
    pub creds: Option<(Credential, &'static str)>,
    /// `--base-creds` (`check` and `base pull`: their `--creds`), with the flag that gave it:
    /// for the base's (the read image's) registry only.
    pub base_creds: Option<(Credential, &'static str)>,
    pub insecure_registries: Vec<String>,
    pub cache_dir: Option<PathBuf>,
    pub quiet: bool,
    /// What the run reads from the base's registry: a base (default), or the image `check`
    /// reads; for messages.
    pub read_role: HostRole,
    /// The flag that gives credentials for the base's (the read image's) registry, for hints:
    /// `--creds` (default: `check`, `base pull`), `--base-creds` for `build`.
    pub read_credential_flag: CredentialFlag,
    /// The run's ECR tokens (made with `--region`, the region they are asked in instead of the
    /// registry host's), shared by every ECR host the run connects to.
    pub ecr_tokens: Arc<TokenCache>,
}

/// The registries of one run, connected and authenticated.
pub struct Session {
    registries: BTreeMap<String, Arc<Registry>>,
    pub cache: Option<BlobCache>,
    pub progress: Arc<Progress>,
}

impl Session {
    /// Connects to the base's registry (pull) and each target's (pull and push).
    pub fn connect(
        base: Option<&RegistryReference>,
        targets: &[RegistryReference],
        options: SessionOptions,
    ) -> Result<Session> {
        let mut scopes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for target in targets {
            let scope = format!("repository:{}:pull,push", target.repository);
            let list = scopes.entry(target.registry.clone()).or_default();
            if !list.contains(&scope) {
                list.push(scope);
            }
        }
        if let Some(base) = base {
            let list = scopes.entry(base.registry.clone()).or_default();
            let pushed_to = format!("repository:{}:pull,push", base.repository);
            if !list.contains(&pushed_to) {
                list.push(format!("repository:{}:pull", base.repository));
            }
        }
        let sources = CredentialSources::from_environment();
        let cache = BlobCache::open(options.cache_dir.as_deref())?;
        let progress = Progress::for_stderr(options.quiet);
        let mut registries = BTreeMap::new();
        for (host, scopes) in scopes {
            // Each flag's secret goes only to the registries it is for: --creds to those pushed
            // to, --base-creds to the base's. A host that is both takes either, --creds first.
            let is_target = targets.iter().any(|target| target.registry == host);
            let is_base = base.is_some_and(|base| base.registry == host);
            let creds = is_target.then(|| options.creds.clone());
            let base_creds = is_base.then(|| options.base_creds.clone());
            let explicit = creds.flatten().or(base_creds.flatten());
            let role = HostRole::of(is_target, options.read_role);
            let credential_flag = CredentialFlag::of(role, options.read_credential_flag);
            // The flag, else the auth files and their helpers; an ECR host with no other
            // credential gets tokens from GetAuthorizationToken (without the `ecr` feature, an
            // error saying how to give one instead).
            let mut chain: Vec<Box<dyn CredentialSource>> = Vec::new();
            if let Some((credential, flag)) = explicit {
                chain.push(Box::new(FlagCredential::new(credential, flag)));
            }
            chain.push(Box::new(sources.clone()));
            let ecr = EcrSource::for_host(&host, &options.ecr_tokens);
            let credentials = HostCredentials::new(&host, credential_flag, chain)
                .with_issuer(ecr.map(|ecr| Box::new(ecr) as Box<_>));
            let registry = Registry::connect(
                &host,
                ConnectOptions {
                    insecure_registries: options.insecure_registries.clone(),
                    credentials,
                    scopes,
                    role,
                    read: base.filter(|base| base.registry == host).cloned(),
                },
            )?;
            registries.insert(host, Arc::new(registry));
        }
        Ok(Session {
            registries,
            cache,
            progress,
        })
    }

    /// The connection to a registry named when connecting.
    pub fn registry(&self, host: &str) -> Arc<Registry> {
        self.registries
            .get(host)
            .cloned()
            .expect("every registry of the run is connected up front")
    }
}
