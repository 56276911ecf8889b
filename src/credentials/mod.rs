//! Where registry credentials come from: a chain of sources, each asked in turn for the
//! credential of a registry host (or one repository of it) when the registry asks for one.
//!
//! - [`FlagCredential`] (`flag.rs`): `--creds` / `--base-creds` (or `--username` with
//!   `--password-stdin`), for the hosts the flag is for;
//! - [`CredentialSources`] (`auth_files.rs`): the auth files (`$REGISTRY_AUTH_FILE`, containers
//!   `auth.json`, docker's `config.json` under `$DOCKER_CONFIG` or `~/.docker`), with the
//!   credential helpers they name (`helper.rs`, `credHelpers`, `credsStore`) and their format
//!   (`auth_file.rs`);
//! - [`ecr::EcrSource`] (`ecr.rs`): tokens from ECR's `GetAuthorizationToken` for an ECR host,
//!   issued when no other source had a credential and again when one expires or a registry
//!   says it has.
//!
//! [`HostCredentials`] (`chain.rs`) is the chain of one host, as the registry client asks it;
//! [`advice`] words the hints about credentials. Not here: using a credential (challenges,
//! tokens: `registry::http`), storing one (`docker login`), or prompting. Secrets never reach a
//! message: errors name files, keys and helpers, never a file's contents or a helper's answer.

pub mod advice;
mod auth_file;
mod auth_files;
#[cfg(feature = "ecr")]
pub mod aws_sdk;
mod chain;
pub mod ecr;
mod flag;
mod helper;
#[cfg(test)]
mod test_fixture;

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::{Error, Result};
pub use advice::{CredentialFlag, HostRole};
pub use auth_file::{AuthFile, parse_auth_file};
pub use auth_files::CredentialSources;
pub use chain::{HostCredentials, RepositoryCredential};
pub use flag::FlagCredential;
pub use helper::HelperAnswers;

/// Helper programs are `docker-credential-` followed by the name in the config file.
const HELPER_PREFIX: &str = "docker-credential-";

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
pub fn parse_creds(text: &str) -> Result<Credential, CredsError> {
    let Some((username, password)) = text.split_once(':') else {
        return Err(CredsError::NoColon);
    };
    if username.is_empty() {
        return Err(CredsError::EmptyUser);
    }
    if password.is_empty() {
        return Err(CredsError::EmptyPassword);
    }
    Ok(Credential::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// Why a `USER:PASSWORD` flag value was refused. Its Display never quotes the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredsError {
    /// No `:` at all.
    NoColon,
    /// Nothing before the first `:`.
    EmptyUser,
    /// Nothing after the first `:`.
    EmptyPassword,
}

impl fmt::Display for CredsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredsError::NoColon => "expected USER:PASSWORD, and the value has no ':' (not shown)",
            CredsError::EmptyUser => {
                "expected USER:PASSWORD, and the user name before ':' is empty"
            }
            CredsError::EmptyPassword => {
                "expected USER:PASSWORD, and the password after ':' is empty (an unset variable?)"
            }
        })
    }
}

impl std::error::Error for CredsError {}

/// Where a credential came from, for messages. Never holds the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialOrigin {
    /// Given on the command line with `flag` (`--creds`, `--base-creds`, `--password-stdin`).
    CommandLine { flag: &'static str },
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
            CredentialOrigin::CommandLine { flag } => f.write_str(flag),
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

/// What a source is asked: the credential of `repository` (None: the whole host) of registry
/// `host` (`host[:port]`, as in references); `flag` is the flag the user would give one with
/// instead, which the hints of a failed lookup name.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    pub host: &'a str,
    pub repository: Option<&'a str>,
    pub flag: CredentialFlag,
}

/// One place credentials come from, asked in its turn by [`HostCredentials`] (go-containerregistry
/// calls this a keychain).
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// What this source has for `query`; [`Lookup::found`] None: nothing here, the next source
    /// is asked. Errors: a source that exists and cannot be read (a malformed file, a failing
    /// `credHelpers` helper), which stops the lookup.
    fn lookup(&self, query: &Query<'_>) -> Result<Lookup>;

    /// Whether a credential from here may be replaced by one a [`TokenIssuer`] issues once a
    /// registry refuses it as expired: true for a saved login, false for a flag.
    fn replaceable(&self) -> bool;
}

/// A user name and password a [`TokenIssuer`] issued (for HTTP Basic), and when to ask for a
/// new one (None: use it until a registry says it has expired). Debug never shows the password.
pub struct Issued {
    pub username: String,
    pub password: String,
    pub refresh_at: Option<SystemTime>,
}

/// A source that issues short-lived credentials on demand (ECR's `GetAuthorizationToken`): the
/// last of a host's chain, asked when no other source had a credential, again before what it
/// issued expires, and in place of a replaceable credential a registry refused as expired. It
/// also says what its registry's error answers mean.
pub trait TokenIssuer: Send + Sync {
    /// A credential: the one issued before while it is fresh at `now` (unless `force_new`),
    /// else a new one.
    fn issue(&self, now: SystemTime, force_new: bool) -> Result<Issued>;

    /// Whether a refusal (`status` 401 or 403, with `body`) may be the registry saying the
    /// credential has expired, so that a fresh one could cure it.
    fn may_be_expired(&self, status: u16, body: &str) -> bool;

    /// Where issued credentials come from, for messages (`ECR GetAuthorizationToken in REGION
    /// with the AWS credential chain`).
    fn origin(&self) -> String;

    /// The warning printed when an issued credential replaces one from `origin` that the
    /// registry `host` refused as expired.
    fn replacement_warning(&self, host: &str, origin: &str) -> String;

    /// The hint for an error answer of this registry to `operation` (status `status`, the
    /// `(code, message)` entries of its JSON `errors`, `body` its text, at URL path `path`),
    /// when the answer is one a user can act on.
    fn answer_hint(
        &self,
        operation: &str,
        status: u16,
        errors: &[(String, String)],
        path: &str,
    ) -> Option<String>;
}
