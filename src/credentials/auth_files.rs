//! The auth files source: finding the credential for a registry the way docker, skopeo and crane
//! do, in containers `auth.json` files and docker's `config.json` (`credHelpers`, `credsStore`,
//! `auths`), asking the `docker-credential-NAME` helpers they name ([`super::helper`]).
//!
//! Not here: the file format and key matching ([`super::auth_file`]), running helpers
//! ([`super::helper`]), using a credential (the token dance with a registry belongs to the
//! registry client), storing one (`docker login`), or prompting. Secrets never reach a message:
//! errors name files, keys and helpers, never a file's contents or a helper's answer.
//!
//! # Where a credential is looked for
//!
//! [`CredentialSources::lookup`] reads these files in order; the first that yields a credential
//! for the registry wins, and a missing file is skipped:
//!
//! 1. `$REGISTRY_AUTH_FILE` (skopeo and podman's `--authfile` default);
//! 2. `$XDG_RUNTIME_DIR/containers/auth.json`, or `/run/containers/UID/auth.json` without
//!    `XDG_RUNTIME_DIR` (where `podman login` / `skopeo login` write);
//! 3. `${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json`;
//! 4. `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
//!
//! This is skopeo's order, except that skopeo reads only `$REGISTRY_AUTH_FILE` when it is set,
//! whereas here the other files are still tried after it. crane (go-containerregistry) reads
//! only the docker config when one exists, so it never looks at the others.
//!
//! Within one file, all formats share docker's rules, as docker applies them:
//!
//! 1. `credHelpers[HOST]` names a helper: its answer is final for this file (a "not found"
//!    moves on to the next file, without looking at `auths`). An empty helper name means "use
//!    `auths`", ignoring `credsStore`, as docker does. A `credHelpers` key with a path
//!    (`HOST/NS`) is never used: docker and containers/image key helpers by host only, and
//!    helpers are asked for a host, so such a key could not mean anything narrower.
//! 2. Else, for a repository, the `auths` entry keyed by its namespace, longest first: for
//!    `HOST/a/b/c`, the keys `HOST/a/b/c`, `HOST/a/b`, `HOST/a` (containers-auth.json(5), as
//!    `podman login HOST/NS` writes them). Such an entry is used for repositories inside that
//!    namespace (whole path components: `HOST/a` is not `HOST/ab`) and never for any other
//!    repository of the host. Docker writes no such keys, so taking them before `credsStore`
//!    changes nothing docker would do.
//! 3. Else, if `credsStore` is set, that helper is asked and `auths` is **not** consulted:
//!    docker then keeps only empty `{}` markers in `auths`, and a stale entry there must not be
//!    sent where docker would go anonymous. A `credsStore` helper that is not installed or
//!    fails does not stop the lookup: it is skipped ([`Lookup::skipped_store`]) and the next
//!    file tried, and the registry client reports it as an error only if the registry turns
//!    out to need credentials (else as a warning).
//! 4. Else the `auths` entry for the host.
//!
//! (skopeo ignores `credsStore`; docker and crane honour it.)
//!
//! Host `auths` keys are matched by host: an exact key first, then a key whose scheme and path
//! are stripped (`https://host/v1/`, `http://host:5000`). A key without a scheme but with a
//! path (`quay.io/org`) is a namespace entry (rule 2) and never stands for a whole registry
//! (skopeo's rule; docker would cut the path, sending one namespace's secret to every other).
//! Docker Hub (`docker.io`) matches `https://index.docker.io/v1/` (preferred, docker's key),
//! `index.docker.io`, `docker.io` and `registry-1.docker.io`, also in `credHelpers`. Helpers
//! are asked, as docker asks them, for `https://index.docker.io/v1/` for Docker Hub and for the
//! bare `host[:port]` otherwise.
//!
//! Not supported: `DOCKER_AUTH_CONFIG`, the legacy `~/.dockercfg`, `registrytoken`, and
//! `registries.conf` `credential-helpers`.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::advice::CredentialFlag;
use super::auth_file::{AuthFile, lookup, namespace_entries, read_auth_file, unmatched_in_file};
use super::helper::HelperAnswers;
use super::{Credential, CredentialOrigin, CredentialSource, HelperSetting, Lookup, Query};
use crate::error::{Error, Result};

/// Where credentials are looked up, read from the environment once (tests build one by hand).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialSources {
    /// Credential files in the order they are consulted (see the module documentation).
    pub auth_files: Vec<PathBuf>,
    /// Directories searched, in order, for `docker-credential-NAME` helpers (`$PATH`).
    pub helper_dirs: Vec<PathBuf>,
    /// What each helper answered for each server, so that a helper is run once per host
    /// however many repositories are looked up (shared by clones).
    pub helper_answers: HelperAnswers,
}

impl CredentialSources {
    /// `$REGISTRY_AUTH_FILE`; `${XDG_RUNTIME_DIR}/containers/auth.json` (else
    /// `/run/containers/UID/auth.json`); `${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json`;
    /// `$DOCKER_CONFIG/config.json` or `$HOME/.docker/config.json`; plus `$PATH` for helpers.
    /// Empty variables count as unset.
    pub fn from_environment() -> Self {
        // The owner of /proc/self is this process's user: no libc call needed.
        let uid = std::fs::metadata("/proc/self").ok().map(|meta| meta.uid());
        Self::from_variables(|name| std::env::var_os(name), uid)
    }

    fn from_variables(variable: impl Fn(&str) -> Option<OsString>, uid: Option<u32>) -> Self {
        let variable = |name: &str| variable(name).filter(|value| !value.is_empty());
        let home = variable("HOME").map(PathBuf::from);
        let mut auth_files = Vec::new();
        if let Some(file) = variable("REGISTRY_AUTH_FILE") {
            auth_files.push(PathBuf::from(file));
        }
        match variable("XDG_RUNTIME_DIR") {
            Some(dir) => auth_files.push(Path::new(&dir).join("containers/auth.json")),
            None => auth_files
                .extend(uid.map(|uid| PathBuf::from(format!("/run/containers/{uid}/auth.json")))),
        }
        let config_home = variable("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".config")));
        auth_files.extend(config_home.map(|dir| dir.join("containers/auth.json")));
        match variable("DOCKER_CONFIG") {
            Some(dir) => auth_files.push(Path::new(&dir).join("config.json")),
            None => auth_files.extend(home.map(|home| home.join(".docker/config.json"))),
        }
        let mut seen = Vec::new();
        auth_files.retain(|file| {
            let new = !seen.contains(file);
            seen.push(file.clone());
            new
        });
        // Like Go's exec.LookPath, relative PATH entries (including empty ones, meaning the
        // current directory) are not searched: running a helper from the working directory is a
        // trap.
        let helper_dirs = variable("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .filter(|dir| dir.is_absolute())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            auth_files,
            helper_dirs,
            helper_answers: HelperAnswers::default(),
        }
    }

    /// The credential for `registry` (a `host[:port]` such as `127.0.0.1:5000`,
    /// `public.ecr.aws`, `docker.io`) as a whole, or None for anonymous access. The run asks
    /// per repository and when challenged ([`lookup`](Self::lookup)); this is the tests' short
    /// form.
    #[cfg(test)]
    pub fn find(&self, registry: &str) -> Result<Option<Credential>> {
        Ok(self
            .find_with_origin(registry)?
            .map(|(credential, _)| credential))
    }

    /// Like [`find`](Self::find), with where the credential came from, for messages such as
    /// "the registry refused the credential from credential helper docker-credential-ecr-login
    /// (credHelpers in /root/.docker/config.json)". A skipped `credsStore` is an error here
    /// when nothing else is found.
    #[cfg(test)]
    pub fn find_with_origin(
        &self,
        registry: &str,
    ) -> Result<Option<(Credential, CredentialOrigin)>> {
        let lookup = self.lookup(registry, None)?;
        match (lookup.found, lookup.skipped_store) {
            (None, Some(error)) => Err(error),
            (found, _) => Ok(found),
        }
    }

    /// [`lookup_for`](Self::lookup_for) with hints naming `--creds`.
    #[cfg(test)]
    pub fn lookup(&self, registry: &str, repository: Option<&str>) -> Result<Lookup> {
        self.lookup_for(registry, repository, CredentialFlag::Creds)
    }

    /// The credential for `repository` (e.g. `team/fn`) of `registry`, or for the whole
    /// registry when `repository` is None, by the rules of the module documentation. Errors:
    /// an unreadable or malformed file or entry, a `credHelpers` helper that is missing or
    /// fails. A `credsStore` that cannot be asked is no error: see [`Lookup::skipped_store`].
    pub fn lookup_for(
        &self,
        registry: &str,
        repository: Option<&str>,
        flag: CredentialFlag,
    ) -> Result<Lookup> {
        let mut skipped_store = None;
        let mut unmatched = Vec::new();
        for file in &self.auth_files {
            let Some(config) = read_auth_file(file)? else {
                continue;
            };
            let skipped_before = skipped_store.is_some();
            if let Some(found) = self.find_in_file(
                &config,
                file,
                registry,
                repository,
                flag,
                &mut skipped_store,
            )? {
                return Ok(Lookup {
                    found: Some(found),
                    skipped_store,
                    unmatched,
                });
            }
            let store_skipped = !skipped_before && skipped_store.is_some();
            unmatched.extend(unmatched_in_file(
                &config,
                file,
                registry,
                repository,
                store_skipped,
            ));
        }
        Ok(Lookup {
            found: None,
            skipped_store,
            unmatched,
        })
    }

    fn find_in_file(
        &self,
        config: &AuthFile,
        file: &Path,
        registry: &str,
        repository: Option<&str>,
        flag: CredentialFlag,
        skipped_store: &mut Option<Error>,
    ) -> Result<Option<(Credential, CredentialOrigin)>> {
        let cred_helper = lookup(&config.cred_helpers, registry);
        if let Some((_, helper)) = cred_helper
            && !helper.is_empty()
        {
            let setting = HelperSetting::CredHelpers;
            let credential = self.ask_helper(helper, file, setting, registry, flag)?;
            return Ok(credential.map(|credential| {
                let origin = CredentialOrigin::Helper {
                    helper: helper.clone(),
                    file: file.to_owned(),
                    setting,
                };
                (credential, origin)
            }));
        }
        if let Some(repository) = repository {
            for (key, entry) in namespace_entries(&config.auths, registry, repository) {
                if let Some(credential) = entry.credential(file, key)? {
                    let origin = CredentialOrigin::NamespaceAuths {
                        file: file.to_owned(),
                        key: key.to_owned(),
                    };
                    return Ok(Some((credential, origin)));
                }
            }
        }
        // An empty name in credHelpers makes docker fall back to the plain `auths`.
        let store = config
            .creds_store
            .as_ref()
            .filter(|name| !name.is_empty() && cred_helper.is_none());
        if let Some(store) = store {
            let setting = HelperSetting::CredsStore;
            return match self.ask_helper(store, file, setting, registry, flag) {
                Ok(credential) => Ok(credential.map(|credential| {
                    let origin = CredentialOrigin::Helper {
                        helper: store.clone(),
                        file: file.to_owned(),
                        setting,
                    };
                    (credential, origin)
                })),
                Err(error) => {
                    skipped_store.get_or_insert(error);
                    Ok(None)
                }
            };
        }
        let credential = config.auths_credential(file, registry)?;
        Ok(credential.map(|credential| {
            let origin = CredentialOrigin::Auths {
                file: file.to_owned(),
            };
            (credential, origin)
        }))
    }
}

impl CredentialSource for CredentialSources {
    fn lookup(&self, query: &Query<'_>) -> Result<Lookup> {
        self.lookup_for(query.host, query.repository, query.flag)
    }

    /// A saved login (a `docker login` 12 hours ago) may be replaced by a fresh token.
    fn replaceable(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[path = "auth_files_tests.rs"]
mod tests;
