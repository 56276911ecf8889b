//! Finding the credential for a registry the way docker, skopeo and crane do: containers
//! `auth.json` files, docker's `config.json` (`credHelpers`, `credsStore`, `auths`) and
//! `docker-credential-NAME` helper programs; and parsing `--creds USER:PASSWORD`.
//!
//! Not here: using a credential (the token dance with a registry belongs to the registry client),
//! storing one (`docker login`), or prompting. Secrets never reach a message: errors name files,
//! keys and helpers, never a file's contents or a helper's answer.
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

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reference::registry::DOCKER_HUB;

/// How the hints of credential lookups (helpers, auth files) name the flag to pass instead;
/// [`crate::registry::http::advice::with_credential_flag`] puts the flag of the registry's role in its place.
pub const CREDS_FLAG_IN_HINTS: &str = "--creds USER:PASSWORD";

/// The `auths` key docker uses for Docker Hub, and the server URL it asks helpers for.
const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// Every host name Docker Hub is known by in credential files.
const DOCKER_HUB_HOSTS: [&str; 3] = [DOCKER_HUB, "index.docker.io", "registry-1.docker.io"];
/// Helper programs are `docker-credential-` followed by the name in the config file.
const HELPER_PREFIX: &str = "docker-credential-";
/// A helper answering with this user name gives an identity token as its secret.
const TOKEN_USERNAME: &str = "<token>";
/// What a helper prints when it has nothing for the server (docker-credential-helpers'
/// `credentials/error.go`).
const NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";
/// How much of a failed helper's output is quoted in an error.
const MAX_QUOTED_OUTPUT: usize = 200;

/// A secret for one registry. Its Debug and Display never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: String,
    },
    /// An identity/refresh token (docker config `identitytoken`, or a helper answering Username
    /// `<token>`), exchanged for a bearer token with an OAuth2 `refresh_token` grant.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &format_args!("<hidden>"))
                .finish(),
            Credential::IdentityToken(_) => f
                .debug_tuple("IdentityToken")
                .field(&format_args!("<hidden>"))
                .finish(),
        }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "user {username} (password hidden)"),
            Credential::IdentityToken(_) => f.write_str("an identity token (hidden)"),
        }
    }
}

/// Parses `--creds USER:PASSWORD`, split at the first `:` so the password may contain `:`.
///
/// The user name must not be empty, and neither may the password: an empty one is far more often
/// an unset variable (`--creds "AWS:$TOKEN"`) than a real password, and with no prompt to fall
/// back on, refusing it gives a clear error instead of a registry's 401. Usable as a clap
/// `value_parser`; the error never contains any of the text, which may be a secret.
pub fn parse_creds(text: &str) -> Result<Credential, String> {
    let Some((username, password)) = text.split_once(':') else {
        return Err("expected USER:PASSWORD, and the value has no ':' (not shown)".to_owned());
    };
    if username.is_empty() {
        return Err("expected USER:PASSWORD, and the user name before ':' is empty".to_owned());
    }
    if password.is_empty() {
        return Err(
            "expected USER:PASSWORD, and the password after ':' is empty (an unset variable?)"
                .to_owned(),
        );
    }
    Ok(Credential::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Where a credential came from, for messages. Never holds the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialOrigin {
    /// Given on the command line with `--creds`.
    CommandLine,
    /// An `auths` entry of a credential file, keyed by host.
    Auths { file: PathBuf },
    /// An `auths` entry keyed by a namespace (`HOST/NS`).
    NamespaceAuths { file: PathBuf, key: String },
    /// A `docker-credential-NAME` helper, named in `file` by `credHelpers` or `credsStore`.
    Helper {
        helper: String,
        file: PathBuf,
        setting: HelperSetting,
    },
}

/// The config setting that named a credential helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelperSetting {
    CredHelpers,
    CredsStore,
}

impl fmt::Display for CredentialOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialOrigin::CommandLine => f.write_str("--creds"),
            CredentialOrigin::Auths { file } => write!(f, "auths in {}", file.display()),
            CredentialOrigin::NamespaceAuths { file, key } => {
                write!(f, "auths entry {key:?} in {}", file.display())
            }
            CredentialOrigin::Helper {
                helper,
                file,
                setting,
            } => write!(
                f,
                "credential helper {HELPER_PREFIX}{helper} ({} in {})",
                setting.key(),
                file.display()
            ),
        }
    }
}

impl HelperSetting {
    fn key(self) -> &'static str {
        match self {
            HelperSetting::CredHelpers => "credHelpers",
            HelperSetting::CredsStore => "credsStore",
        }
    }
}

/// What a lookup for one registry or repository found.
#[derive(Debug, Default)]
pub struct Lookup {
    /// The credential and where it came from; None: go anonymous.
    pub found: Option<(Credential, CredentialOrigin)>,
    /// A `credsStore` helper that is not installed or failed, skipped: the error to give if the
    /// registry needs credentials after all (docker would have failed on it before any request;
    /// a configuration copied from a machine with Docker Desktop names `desktop`, a helper only
    /// that machine has). Its message names the helper and the file, never a secret.
    pub skipped_store: Option<Error>,
    /// What was consulted and had nothing for this repository, for the message when the
    /// registry wants credentials after all: a helper that answered "not found", `auths`
    /// entries of the host's other namespaces. Names files, keys and helpers only.
    pub unmatched: Vec<String>,
}

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

/// The credentials helpers gave, by `(helper program, server URL)`. Debug never shows them;
/// two caches always compare equal (they are not part of what the sources are).
#[derive(Clone, Default)]
pub struct HelperAnswers(Arc<Mutex<BTreeMap<HelperQuestion, Option<Credential>>>>);

/// A helper program and the server URL it is asked about.
type HelperQuestion = (PathBuf, String);

impl fmt::Debug for HelperAnswers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HelperAnswers(<hidden>)")
    }
}

impl PartialEq for HelperAnswers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for HelperAnswers {}

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

    /// The credential for `repository` (e.g. `team/fn`) of `registry`, or for the whole
    /// registry when `repository` is None, by the rules of the module documentation. Errors:
    /// an unreadable or malformed file or entry, a `credHelpers` helper that is missing or
    /// fails. A `credsStore` that cannot be asked is no error: see [`Lookup::skipped_store`].
    pub fn lookup(&self, registry: &str, repository: Option<&str>) -> Result<Lookup> {
        let mut skipped_store = None;
        let mut unmatched = Vec::new();
        for file in &self.auth_files {
            let Some(config) = read_auth_file(file)? else {
                continue;
            };
            let skipped_before = skipped_store.is_some();
            if let Some(found) =
                self.find_in_file(&config, file, registry, repository, &mut skipped_store)?
            {
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
        skipped_store: &mut Option<Error>,
    ) -> Result<Option<(Credential, CredentialOrigin)>> {
        let cred_helper = lookup(&config.cred_helpers, registry);
        if let Some((_, helper)) = cred_helper
            && !helper.is_empty()
        {
            let setting = HelperSetting::CredHelpers;
            let credential = self.ask_helper(helper, file, setting, registry)?;
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
            return match self.ask_helper(store, file, setting, registry) {
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

    /// Runs `docker-credential-HELPER get` for `registry`.
    fn ask_helper(
        &self,
        helper: &str,
        file: &Path,
        setting: HelperSetting,
        registry: &str,
    ) -> Result<Option<Credential>> {
        let origin = CredentialOrigin::Helper {
            helper: helper.to_owned(),
            file: file.to_owned(),
            setting,
        };
        let program = format!("{HELPER_PREFIX}{helper}");
        if helper.contains('/') {
            return Err(Error::registry(format!(
                "{} names an invalid credential helper {helper:?} in {}: helper names cannot contain '/'",
                file.display(),
                setting.key()
            ))
            .hint(format!("fix {} in {}", setting.key(), file.display())));
        }
        let Some(executable) = self.find_helper(&program) else {
            let (named, removal) = match setting {
                HelperSetting::CredHelpers => (
                    format!("in credHelpers for {registry}"),
                    format!("the credHelpers entry for {registry}"),
                ),
                HelperSetting::CredsStore => (
                    format!("as its credsStore (asked for {registry})"),
                    "\"credsStore\"".to_owned(),
                ),
            };
            return Err(Error::registry(format!(
                "credential helper {program} is not installed: {} names it {named}, and no PATH directory has it",
                file.display(),
            ))
            .hint(format!(
                "install {program}, remove {removal} from {} (a config copied from another machine often names a helper only that machine has), or pass {CREDS_FLAG_IN_HINTS}",
                file.display()
            )));
        };
        let server_url = if is_docker_hub(registry) {
            DOCKER_HUB_AUTH_KEY
        } else {
            registry
        };
        let cache_key = (executable.clone(), server_url.to_owned());
        if let Some(answer) = self
            .helper_answers
            .0
            .lock()
            .expect("helper cache")
            .get(&cache_key)
        {
            return Ok(answer.clone());
        }
        let answer = self.run_helper_for(&executable, &program, &origin, server_url, registry)?;
        self.helper_answers
            .0
            .lock()
            .expect("helper cache")
            .insert(cache_key, answer.clone());
        Ok(answer)
    }

    /// Runs `executable get` for `server_url` and reads its answer; `program` and `origin`
    /// name it in errors, `registry` the registry asked about.
    fn run_helper_for(
        &self,
        executable: &Path,
        program: &str,
        origin: &CredentialOrigin,
        server_url: &str,
        registry: &str,
    ) -> Result<Option<Credential>> {
        let output = run_helper(executable, server_url).map_err(|error| {
            Error::registry(format!(
                "cannot run {} ({origin}): {error}",
                executable.display()
            ))
            .hint(format!(
                "check that {} is an executable program, or pass {CREDS_FLAG_IN_HINTS}",
                executable.display()
            ))
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            if stdout.trim() == NOT_FOUND_MESSAGE || stderr.trim() == NOT_FOUND_MESSAGE {
                return Ok(None);
            }
            let said = quotable_line(&stdout)
                .or_else(|| quotable_line(&stderr))
                .map(|line| format!(": {line}"))
                .unwrap_or_default();
            return Err(Error::registry(format!(
                "{origin} failed for {registry} ({}){said}",
                output.status
            ))
            .hint(format!(
                "run `printf '{server_url}' | {program} get` to see the helper's own error (log in again if it has expired), or pass {CREDS_FLAG_IN_HINTS}"
            )));
        }
        // Its output holds the secret: never quote it.
        let answer: HelperAnswer = serde_json::from_str(&stdout).map_err(|_| {
            Error::registry(format!(
                "{origin} answered for {registry} with something other than JSON credentials (not shown)"
            ))
            .hint(format!(
                "check that {program} follows the docker credential helper protocol, or pass {CREDS_FLAG_IN_HINTS}"
            ))
        })?;
        let (username, secret) = (
            answer.username.unwrap_or_default(),
            answer.secret.unwrap_or_default(),
        );
        Ok(match (username.as_str(), secret.is_empty()) {
            // Nothing to authenticate with.
            (_, true) => None,
            (TOKEN_USERNAME, false) => Some(Credential::IdentityToken(secret)),
            ("", false) => None,
            (_, false) => Some(Credential::Basic {
                username,
                password: secret,
            }),
        })
    }

    /// The first executable `program` in the helper directories.
    fn find_helper(&self, program: &str) -> Option<PathBuf> {
        self.helper_dirs
            .iter()
            .map(|dir| dir.join(program))
            .find(|candidate| {
                std::fs::metadata(candidate)
                    .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            })
    }
}

/// The credentials of one registry host, looked up per repository the first time the registry
/// asks for them (a 401), and kept for the rest of the run.
#[derive(Debug)]
pub struct HostCredentials {
    host: String,
    /// `--creds` / `--base-creds` for this host, with the flag's name: for every repository.
    explicit: Option<(Credential, &'static str)>,
    sources: CredentialSources,
    /// The flag that gives credentials for this host, for the hints of a failed lookup.
    flag: crate::registry::http::advice::CredentialFlag,
    found: Mutex<BTreeMap<Option<String>, Arc<RepositoryCredential>>>,
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
    /// The message and hint of a skipped `credsStore` ([`Lookup::skipped_store`]).
    skipped_store: Option<(String, Option<String>)>,
    /// What was consulted and had nothing for the repository ([`Lookup::unmatched`]).
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
    /// `explicit`: the flag credential meant for this host, if any; else `sources` are asked.
    pub fn new(
        host: &str,
        explicit: Option<(Credential, &'static str)>,
        sources: CredentialSources,
    ) -> Self {
        Self {
            host: host.to_owned(),
            explicit,
            sources,
            flag: Default::default(),
            found: Mutex::default(),
        }
    }

    /// Hints of a failed lookup (a credential helper, a skipped `credsStore`) name `flag` as
    /// the way to give credentials instead (default: `--creds`).
    pub fn for_flag(mut self, flag: crate::registry::http::advice::CredentialFlag) -> Self {
        self.flag = flag;
        self
    }

    /// The credential for `repository` (None: the host as a whole), looked up once.
    pub fn for_repository(&self, repository: Option<&str>) -> Result<Arc<RepositoryCredential>> {
        let key = repository.map(str::to_owned);
        if let Some(found) = self.found.lock().expect("credential cache").get(&key) {
            return Ok(Arc::clone(found));
        }
        let found = Arc::new(match &self.explicit {
            Some((credential, flag)) => RepositoryCredential {
                credential: Some(credential.clone()),
                origin: Some(format!("from {flag}")),
                replaceable: false,
                skipped_store: None,
                unmatched: Vec::new(),
            },
            None => {
                let lookup = self
                    .sources
                    .lookup(&self.host, repository)
                    .map_err(|error| match error.hint_text() {
                        Some(hint) => {
                            let hint = crate::registry::http::advice::with_credential_flag(
                                hint, self.flag,
                            );
                            error.hint(hint)
                        }
                        None => error,
                    })?;
                let (credential, origin) = match lookup.found {
                    Some((credential, origin)) => {
                        (Some(credential), Some(format!("from {origin}")))
                    }
                    None => (None, None),
                };
                RepositoryCredential {
                    credential,
                    origin,
                    replaceable: true,
                    unmatched: lookup.unmatched,
                    skipped_store: lookup.skipped_store.map(|error| {
                        (
                            error.message().to_owned(),
                            error.hint_text().map(|hint| {
                                crate::registry::http::advice::with_credential_flag(hint, self.flag)
                            }),
                        )
                    }),
                }
            }
        });
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

/// `executable get` with `server_url` on stdin (no newline, as docker sends it). Unlike docker,
/// the helper's stderr is captured rather than passed through: its first line goes into the error.
fn run_helper(executable: &Path, server_url: &str) -> io::Result<Output> {
    let mut child = Command::new(executable)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading; that is for its exit status to tell.
        match stdin.write_all(server_url.as_bytes()) {
            Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
            _ => {}
        }
    }
    child.wait_with_output()
}

/// The first non-empty line of a failed helper's output, shortened; None if it looks like JSON,
/// which could carry a secret.
fn quotable_line(output: &str) -> Option<String> {
    let line = output
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())?;
    if line.starts_with('{') || line.starts_with('[') {
        return None;
    }
    let mut quoted: String = line.chars().take(MAX_QUOTED_OUTPUT).collect();
    if quoted.len() < line.len() {
        quoted.push('…');
    }
    Some(quoted)
}

/// What a helper prints for `get`. Go's JSON decoding ignores case, so lower-case names are
/// accepted too.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", alias = "username")]
    username: Option<String>,
    #[serde(rename = "Secret", alias = "secret")]
    secret: Option<String>,
}

/// The parts of a docker `config.json` or containers `auth.json` that hold credentials. Go
/// decodes `null` as empty, hence the options.
#[derive(Debug, Default, Deserialize)]
pub struct AuthFile {
    #[serde(default)]
    auths: Option<BTreeMap<String, AuthEntry>>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

/// One `auths` entry. `{}` is docker's marker for "the credsStore holds it".
#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
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
    fn credential(&self, file: &Path, key: &str) -> Result<Option<Credential>> {
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
fn decode_auth(auth: &str) -> Option<Credential> {
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
fn read_auth_file(file: &Path) -> Result<Option<AuthFile>> {
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

fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS.contains(&host)
}

/// The host a registry or key names, with Docker Hub's aliases folded into `docker.io`.
/// Lower-case: host names compare without regard to case (RFC 4343), and references spell
/// them in lower case.
fn canonical_host(host: &str) -> String {
    if is_docker_hub(host) {
        DOCKER_HUB.to_owned()
    } else {
        host.to_ascii_lowercase()
    }
}

/// The `host[:port]` an `auths` or `credHelpers` key stands for: scheme and path are stripped
/// from URLs; a key with a path but no scheme is repository-scoped and stands for no host.
fn key_host(key: &str) -> Option<&str> {
    match key.split_once("://") {
        Some((_, rest)) => rest.split('/').next().filter(|host| !host.is_empty()),
        None if key.contains('/') => None,
        None => Some(key),
    }
}

/// The namespaces `repository` is in, longest first: `a/b/c`, `a/b`, `a`.
fn namespaces(repository: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(repository.trim_matches('/')).filter(|name| !name.is_empty());
    std::iter::from_fn(move || {
        let current = rest?;
        rest = current.rsplit_once('/').map(|(parent, _)| parent);
        Some(current)
    })
}

/// `(host, namespace)` of a namespace key `HOST/NS[/...]` (no scheme; a trailing `/` ignored).
fn namespace_key(key: &str) -> Option<(&str, &str)> {
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
fn unmatched_in_file(
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
fn namespace_entries<'a, T>(
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
fn lookup<'a, T>(map: &'a Option<BTreeMap<String, T>>, registry: &str) -> Option<(&'a str, &'a T)> {
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

#[cfg(test)]
#[path = "auth_files_tests.rs"]
mod tests;
