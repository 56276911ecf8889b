//! The auth file format (docker `config.json`, containers `auth.json`): parsing it, and which of
//! its `auths` and `credHelpers` keys stand for a registry host or one of its namespaces.
//!
//! Not here: the order files and settings are consulted in ([`super::auth_files`]), or running
//! helpers ([`super::helper`]). Errors name the file and the key, never its content.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use serde::Deserialize;

use super::{Credential, HELPER_PREFIX};
use crate::error::{Error, Result};
use crate::reference::registry::DOCKER_HUB;

/// The `auths` key docker uses for Docker Hub, and the server URL it asks helpers for.
pub(super) const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// Every host name Docker Hub is known by in credential files.
const DOCKER_HUB_HOSTS: [&str; 3] = [DOCKER_HUB, "index.docker.io", "registry-1.docker.io"];

/// The parts of a docker `config.json` or containers `auth.json` that hold credentials. Go
/// decodes `null` as empty, hence the options.
#[derive(Debug, Default, Deserialize)]
pub struct AuthFile {
    #[serde(default)]
    pub(super) auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(default, rename = "credHelpers")]
    pub(super) cred_helpers: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "credsStore")]
    pub(super) creds_store: Option<String>,
}

/// One `auths` entry. `{}` is docker's marker for "the credsStore holds it".
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthFile {
    /// The credential the plain `auths` section holds for `registry` (helpers are not asked).
    /// `file` names the file in errors.
    pub fn auths_credential(&self, file: &Path, registry: &str) -> Result<Option<Credential>> {
        match lookup(&self.auths, registry) {
            Some((key, entry)) => entry.credential(file, key),
            None => Ok(None),
        }
    }
}

impl AuthEntry {
    /// An identity token wins over a user name and password, as in docker's registry client.
    pub(super) fn credential(&self, file: &Path, key: &str) -> Result<Option<Credential>> {
        let non_empty = |field: &Option<String>| field.clone().filter(|value| !value.is_empty());
        if let Some(token) = non_empty(&self.identitytoken) {
            return Ok(Some(Credential::IdentityToken(token)));
        }
        if let Some(auth) = non_empty(&self.auth) {
            return decode_auth(auth.trim()).map(Some).ok_or_else(|| {
                Error::registry(format!(
                    "the auths entry {key:?} in {} has an \"auth\" field that is not base64 of USER:PASSWORD",
                    file.display()
                ))
                .hint("log in again (docker login, skopeo login), or fix or remove that entry")
            });
        }
        Ok(non_empty(&self.username).map(|username| Credential::Basic {
            username,
            password: self.password.clone().unwrap_or_default(),
        }))
    }
}

/// `base64(USER:PASSWORD)` (standard alphabet, padding optional); None if malformed. Trailing
/// NULs are cut from the password, as docker does.
pub(super) fn decode_auth(auth: &str) -> Option<Credential> {
    let decoded = STANDARD_PAD_INDIFFERENT.decode(auth).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (username, password) = text.split_once(':')?;
    if username.is_empty() {
        return None;
    }
    Some(Credential::Basic {
        username: username.to_owned(),
        password: password.trim_matches('\0').to_owned(),
    })
}

/// Reads a credential file; None if it does not exist. Errors name the file, never its content.
pub(super) fn read_auth_file(file: &Path) -> Result<Option<AuthFile>> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(error) => {
            return Err(Error::registry(format!(
                "cannot read credentials file {}: {error}",
                file.display()
            ))
            .hint("fix its permissions, or point REGISTRY_AUTH_FILE or DOCKER_CONFIG elsewhere"));
        }
    };
    parse_auth_file(&bytes, file).map(Some)
}

/// Parses the bytes of a credential file (`config.json`, `auth.json`); `file` names it in errors,
/// which never quote its content.
pub fn parse_auth_file(bytes: &[u8], file: &Path) -> Result<AuthFile> {
    // Docker accepts an empty file.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(AuthFile::default());
    }
    serde_json::from_slice(bytes).map_err(|error| {
        // serde_json's message can quote values, which may be secrets: only its position is kept.
        let what = match error.classify() {
            serde_json::error::Category::Data => "JSON of an unexpected shape",
            serde_json::error::Category::Eof => "truncated JSON",
            _ => "malformed JSON",
        };
        Error::registry(format!(
            "credentials file {} is not valid: {what} at line {}, column {} (contents not shown)",
            file.display(),
            error.line(),
            error.column()
        ))
        .hint("fix or remove the file (docker login and skopeo login rewrite it), or point REGISTRY_AUTH_FILE or DOCKER_CONFIG elsewhere")
    })
}

pub(super) fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS.contains(&host)
}

/// The host a registry or key names, with Docker Hub's aliases folded into `docker.io`.
/// Lower-case: host names compare without regard to case (RFC 4343), and references spell
/// them in lower case.
pub(super) fn canonical_host(host: &str) -> String {
    if is_docker_hub(host) {
        DOCKER_HUB.to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

/// The `host[:port]` an `auths` or `credHelpers` key stands for: scheme and path are stripped
/// from URLs; a key with a path but no scheme is repository-scoped and stands for no host.
pub(super) fn key_host(key: &str) -> Option<&str> {
    match key.split_once("://") {
        Some((_, rest)) => rest.split('/').next().filter(|host| !host.is_empty()),
        None if key.contains('/') => None,
        None => Some(key),
    }
}

/// The namespaces `repository` is in, longest first: `a/b/c`, `a/b`, `a`.
pub(super) fn namespaces(repository: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(repository.trim_matches('/')).filter(|name| !name.is_empty());
    std::iter::from_fn(move || {
        let current = rest?;
        rest = current.rsplit_once('/').map(|(parent, _)| parent);
        Some(current)
    })
}

/// `(host, namespace)` of a namespace key `HOST/NS[/...]` (no scheme; a trailing `/` ignored).
pub(super) fn namespace_key(key: &str) -> Option<(&str, &str)> {
    if key.contains("://") {
        return None;
    }
    let (host, namespace) = key.split_once('/')?;
    let namespace = namespace.trim_end_matches('/');
    (!host.is_empty() && !namespace.is_empty()).then_some((host, namespace))
}

/// What `config` (read from `file`) has for `registry` that did not give a credential for
/// `repository`: the helper it names for the host (which answered "not found"), and the
/// `auths` keys of the host's namespaces that do not hold the repository. `store_skipped`: the
/// file's `credsStore` was skipped (not installed, or failed), which is told on its own.
pub(super) fn unmatched_in_file(
    config: &AuthFile,
    file: &Path,
    registry: &str,
    repository: Option<&str>,
    store_skipped: bool,
) -> Vec<String> {
    let mut unmatched = Vec::new();
    let helper = match lookup(&config.cred_helpers, registry) {
        Some((_, name)) if !name.is_empty() => Some((name, "credHelpers")),
        Some(_) => None,
        None => config
            .creds_store
            .as_ref()
            .filter(|name| !name.is_empty() && !store_skipped)
            .map(|name| (name, "credsStore")),
    };
    if let Some((name, setting)) = helper {
        unmatched.push(format!(
            "{HELPER_PREFIX}{name} ({setting} in {}) has none for {registry}",
            file.display()
        ));
    }
    let wanted = canonical_host(registry);
    let others: Vec<&str> = config
        .auths
        .iter()
        .flatten()
        .filter_map(|(key, _)| {
            let (host, namespace) = namespace_key(key)?;
            let covers = repository.is_some_and(|repository| {
                namespaces(repository).any(|candidate| candidate == namespace)
            });
            (canonical_host(host) == wanted && !covers).then_some(key.as_str())
        })
        .collect();
    if !others.is_empty() {
        unmatched.push(format!(
            "{} has auths entries only for {}",
            file.display(),
            others.join(", ")
        ));
    }
    unmatched
}

/// The `auths` entries whose namespace key holds `repository` of `registry`, longest namespace
/// first (Docker Hub's aliases count as one host).
pub(super) fn namespace_entries<'a, T>(
    map: &'a Option<BTreeMap<String, T>>,
    registry: &str,
    repository: &'a str,
) -> impl Iterator<Item = (&'a str, &'a T)> {
    let wanted = canonical_host(registry).to_owned();
    namespaces(repository).flat_map(move |namespace| {
        let wanted = wanted.clone();
        map.iter().flatten().filter_map(move |(key, value)| {
            let (host, key_namespace) = namespace_key(key)?;
            (canonical_host(host) == wanted && key_namespace == namespace)
                .then_some((key.as_str(), value))
        })
    })
}

/// The entry of `map` for `registry`: docker's own key for it, then the exact host, then the
/// first key (in sorted order, so the choice is stable) that stands for the same host.
pub(super) fn lookup<'a, T>(
    map: &'a Option<BTreeMap<String, T>>,
    registry: &str,
) -> Option<(&'a str, &'a T)> {
    let map = map.as_ref()?;
    let wanted = canonical_host(registry);
    let preferred = is_docker_hub(registry).then_some(DOCKER_HUB_AUTH_KEY);
    preferred
        .into_iter()
        .chain([registry])
        .find_map(|key| map.get_key_value(key))
        .or_else(|| {
            map.iter()
                .find(|(key, _)| key_host(key).is_some_and(|host| canonical_host(host) == wanted))
        })
        .map(|(key, value)| (key.as_str(), value))
}
