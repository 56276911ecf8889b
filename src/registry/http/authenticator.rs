//! The authentication state of one registry host, per repository (the scope a request needs,
//! from its API path): which `Authorization` header its requests carry, the challenge that
//! asked for it, and why authenticating failed. Credentials are asked of the host's chain
//! ([`crate::credentials::HostCredentials`]) the first time the registry wants them for a
//! repository; a token service is asked for the scopes the run needs there, or exactly the one
//! a challenge names (`error="insufficient_scope",scope="…"`), since some token services
//! (Harbor) grant only the first `scope=` of a request. An issued credential (an ECR token) is
//! replaced before it expires, and when the registry says it has.
//!
//! Not here: parsing challenges and fetching tokens ([`super::auth`]), sending requests
//! ([`super::client`]).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use reqwest::StatusCode;
use reqwest::blocking::Client;

use super::auth::{Challenge, TokenAsker, basic_header, fetch_token};
use super::error::{Answer, error_detail, unmatched_suffix, with_unmatched};
use super::scheme::allows_plain_http;
use super::tls::Rejections;
use crate::credentials::advice::{login_hint, refused_hint};
use crate::credentials::{Credential, HostCredentials, RepositoryCredential};
use crate::error::{Error, Result};

/// How one registry host's requests are authenticated, repository by repository.
pub(super) struct Authenticator {
    host: String,
    /// The host's HTTP client and TLS refusals, for token services.
    http: Client,
    tls_rejections: Arc<Rejections>,
    /// Where credentials come from, and the flag hints name.
    pub(super) credentials: HostCredentials,
    scopes: Vec<String>,
    pub(super) insecure_registries: Vec<String>,
    auth: Mutex<AuthStates>,
    /// Warnings about a skipped credsStore, for requests that succeeded without it: printed
    /// when the run is done with this registry, unless it turned out to need credentials
    /// after all (then the error names the helper, and the warning would contradict it).
    skipped_store_warnings: Mutex<Vec<String>>,
    credentials_were_needed: std::sync::atomic::AtomicBool,
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        if self
            .credentials_were_needed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let warnings = self
            .skipped_store_warnings
            .get_mut()
            .unwrap_or_else(|poison| poison.into_inner());
        for warning in warnings.iter() {
            eprintln!("{warning}");
        }
    }
}

/// The authentication of every repository used so far.
#[derive(Default)]
struct AuthStates {
    /// The host's challenge, from `GET /v2/` or the latest 401: once known, a repository's
    /// first request is authenticated before it is sent.
    challenge: Option<Challenge>,
    by_key: std::collections::BTreeMap<AuthKey, AuthState>,
}

/// An authentication error, kept to be given again.
struct Failure {
    kind: crate::error::ErrorKind,
    message: String,
    hint: Option<String>,
}

impl Failure {
    fn of(error: &Error) -> Failure {
        Failure {
            kind: error.kind(),
            message: error.message().to_owned(),
            hint: error.hint_text().map(str::to_owned),
        }
    }

    fn error(&self) -> Error {
        let error = Error::new(self.kind, self.message.clone());
        match &self.hint {
            Some(hint) => error.hint(hint.clone()),
            None => error,
        }
    }
}

/// What a request is authenticated for: a repository, a mount into one from another, or
/// neither (`/v2/` itself, a URL outside the API).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct AuthKey {
    pub(super) repository: Option<String>,
    pub(super) mount_from: Option<String>,
}

impl AuthKey {
    /// The key of a request URL (see [`request_repository`]).
    pub(super) fn of(url: &reqwest::Url) -> AuthKey {
        let repository = request_repository(url.path());
        let mount_from = repository.as_ref().and_then(|_| {
            let pairs: Vec<_> = url.query_pairs().collect();
            pairs
                .iter()
                .any(|(name, _)| name == "mount")
                .then(|| pairs.iter().find(|(name, _)| name == "from"))
                .flatten()
                .map(|(_, from)| from.to_string())
        });
        AuthKey {
            repository,
            mount_from,
        }
    }

    /// `NAME`, `NAME (mounting from OTHER)`, or `the registry`, for messages.
    pub(super) fn describe(&self) -> String {
        match (&self.repository, &self.mount_from) {
            (Some(repository), Some(from)) => format!("{repository} (mounting from {from})"),
            (Some(repository), None) => repository.clone(),
            (None, _) => "the registry".to_owned(),
        }
    }
}

/// The repository NAME a distribution API path is about: `/v2/NAME/manifests/REF`,
/// `/v2/NAME/blobs/DIGEST`, `/v2/NAME/blobs/uploads/[ID]`, `/v2/NAME/tags/list`,
/// `/v2/NAME/referrers/DIGEST` (distribution spec, "Endpoints"). None for `/v2/` and other
/// paths.
fn request_repository(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let name_end = if n >= 4 && segments[n - 3] == "blobs" && segments[n - 2] == "uploads" {
        n - 3
    } else if n >= 3
        && ["manifests", "blobs", "tags", "referrers"].contains(&segments[n - 2])
        && !segments[n - 1].is_empty()
    {
        n - 2
    } else {
        return None;
    };
    let name = &segments[..name_end];
    (!name.iter().any(|segment| segment.is_empty())).then(|| name.join("/"))
}

#[derive(Default)]
struct AuthState {
    header: Option<String>,
    challenge: Option<Challenge>,
    /// Whether a token service gave the token in `header` for a credential (200 to it): a
    /// refusal by the registry is then about permissions, not the credential.
    credential_accepted: bool,
    /// The warning to print once a request with this state succeeds (a skipped credsStore).
    pending_warning: Option<String>,
    /// Why authenticating failed: final for the run, so that parallel requests do not ask a
    /// failing token service (or ECR) again.
    failure: Option<Failure>,
    /// Bumped on every change of `header`, so concurrent 401s refresh the token once.
    generation: u64,
    /// Whether `header` carries a credential the host's [`crate::credentials::TokenIssuer`] issued (an ECR token).
    using_issued: bool,
    /// When that issued credential is to be replaced before the next request.
    refresh_at: Option<SystemTime>,
}

/// Why credentials are being (re)applied.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reauthentication {
    /// First contact, or a 401 with the credentials in hand.
    Challenged,
    /// The issued credential (an ECR token) in use is near its expiry, or a registry said the
    /// credential in use has expired: the issuer is asked for a new one.
    NewIssued,
}

impl Authenticator {
    /// The authentication of `host`, with the HTTP client and TLS refusals of its connection;
    /// `scopes` are the token scopes the run needs, `insecure_registries` the hosts whose token
    /// services may be plain HTTP.
    pub(super) fn new(
        host: &str,
        http: Client,
        tls_rejections: Arc<Rejections>,
        credentials: HostCredentials,
        scopes: Vec<String>,
        insecure_registries: Vec<String>,
    ) -> Self {
        Self {
            host: host.to_owned(),
            http,
            tls_rejections,
            credentials,
            scopes,
            insecure_registries,
            auth: Mutex::default(),
            skipped_store_warnings: Mutex::default(),
            credentials_were_needed: Default::default(),
        }
    }

    /// Whether a refusal (`answer`, a 401 or 403) may say the credential in use has expired,
    /// so that the host's issuer (ECR) could cure it with a fresh one; false without an issuer.
    pub(super) fn may_be_expired(&self, answer: &Answer) -> bool {
        self.credentials
            .issuer()
            .is_some_and(|issuer| issuer.may_be_expired(answer.status.as_u16(), &answer.body))
    }

    /// Keeps the challenge of the host's `GET /v2/`: once known, a repository's first request
    /// is authenticated before it is sent.
    pub(super) fn set_host_challenge(&mut self, challenge: Option<Challenge>) {
        self.auth.get_mut().expect("auth state lock").challenge = challenge;
    }

    /// The `Authorization` value for a request of `key`, and the generation it belongs to:
    /// authenticates a repository's first request once the host's challenge is known, and
    /// replaces an issued credential (an ECR token) that is due.
    pub(super) fn prepare(&self, key: &AuthKey) -> Result<(Option<String>, u64)> {
        for _ in 0..2 {
            let (known, due, generation) = {
                let states = self.auth.lock().expect("auth state lock");
                match states.by_key.get(key) {
                    Some(state) => {
                        if let Some(failure) = &state.failure {
                            return Err(failure.error());
                        }
                        let due = state
                            .refresh_at
                            .is_some_and(|refresh_at| SystemTime::now() >= refresh_at);
                        if !due {
                            return Ok((state.header.clone(), state.generation));
                        }
                        (true, due, state.generation)
                    }
                    None => (false, false, 0),
                }
            };
            if due {
                self.authenticate(key, None, generation, Reauthentication::NewIssued)?;
            } else if !known && key.repository.is_some() && self.host_challenge().is_some() {
                self.authenticate(key, None, 0, Reauthentication::Challenged)?;
            } else {
                return Ok((None, 0));
            }
        }
        let states = self.auth.lock().expect("auth state lock");
        Ok(states
            .by_key
            .get(key)
            .map_or((None, 0), |state| (state.header.clone(), state.generation)))
    }

    fn host_challenge(&self) -> Option<Challenge> {
        self.auth.lock().expect("auth state lock").challenge.clone()
    }

    /// Keeps the warning a request of `key` left pending, now that it got an answer other than
    /// a refusal (the registry needed nothing from the skipped credsStore); printed on drop.
    pub(super) fn warn_if_pending(&self, key: &AuthKey, status: StatusCode) {
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return;
        }
        let warning = {
            let mut states = self.auth.lock().expect("auth state lock");
            states
                .by_key
                .get_mut(key)
                .and_then(|state| state.pending_warning.take())
        };
        if let Some(warning) = warning {
            let mut warnings = self.skipped_store_warnings.lock().expect("warnings lock");
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
    }

    /// The error for a skipped credsStore, now that credentials were needed.
    fn skipped_store_error(&self, found: &RepositoryCredential, context: &str) -> Option<Error> {
        let error = found.skipped_store_error(context)?;
        self.credentials_were_needed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Some(error)
    }

    /// The credential of `key`'s repository (a mount uses the target's), looked up on first use.
    fn credential_for(&self, key: &AuthKey) -> Result<std::sync::Arc<RepositoryCredential>> {
        self.credentials.for_repository(key.repository.as_deref())
    }

    /// The scopes a token for `key` is first asked for: the run's scope for the repository
    /// (else pull), plus pull on the repository mounted from.
    fn default_scopes(&self, key: &AuthKey) -> Vec<String> {
        let Some(repository) = &key.repository else {
            return Vec::new();
        };
        let prefix = format!("repository:{repository}:");
        let own = self
            .scopes
            .iter()
            .find(|scope| scope.starts_with(&prefix))
            .cloned()
            .unwrap_or_else(|| format!("{prefix}pull"));
        let mut scopes = vec![own];
        scopes.extend(
            key.mount_from
                .as_ref()
                .map(|from| format!("repository:{from}:pull")),
        );
        scopes
    }

    /// Sets the `Authorization` header of `key` that a challenge (else the last one) asks
    /// for, unless another thread already replaced the one seen at `seen_generation`.
    pub(super) fn authenticate(
        &self,
        key: &AuthKey,
        challenge: Option<Challenge>,
        seen_generation: u64,
        reason: Reauthentication,
    ) -> Result<()> {
        let mut states = self.auth.lock().expect("auth state lock");
        if let Some(challenge) = &challenge {
            states.challenge = Some(challenge.clone());
        }
        let host_challenge = states.challenge.clone();
        let state = states.by_key.entry(key.clone()).or_default();
        if state.generation != seen_generation {
            return Ok(());
        }
        if let Some(failure) = &state.failure {
            return Err(failure.error());
        }
        let result = self.apply_challenge(key, challenge, host_challenge, state, reason);
        if let Err(error) = &result {
            state.failure = Some(Failure::of(error));
        }
        result
    }

    /// Sets `state`'s header for `challenge` (else the last one of `key`, else the host's).
    fn apply_challenge(
        &self,
        key: &AuthKey,
        challenge: Option<Challenge>,
        host_challenge: Option<Challenge>,
        state: &mut AuthState,
        reason: Reauthentication,
    ) -> Result<()> {
        // The credential is looked up now, when the registry has asked for one.
        let found = self.credential_for(key)?;
        let credential = found.credential.as_ref();
        // A challenge naming the scope the request lacks is answered with exactly that scope.
        let challenged_scopes: Vec<String> = match &challenge {
            Some(Challenge::Bearer {
                scope: Some(scope), ..
            }) => scope
                .split_whitespace()
                .filter(|scope| scope.starts_with("repository:"))
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let challenge = challenge
            .or_else(|| state.challenge.clone())
            .or(host_challenge);
        let mut refresh_at = None;
        let mut using_issued = false;
        let mut credential_accepted = false;
        let header = match &challenge {
            None => None,
            Some(Challenge::Basic) if self.uses_issued(&found, state, reason) => {
                let issuer = self.credentials.issuer().expect("a host with an issuer");
                let issued =
                    issuer.issue(SystemTime::now(), reason == Reauthentication::NewIssued)?;
                if credential.is_some() && !state.using_issued {
                    eprintln!(
                        "{}",
                        issuer.replacement_warning(
                            &self.host,
                            found.origin.as_deref().unwrap_or("given")
                        )
                    );
                }
                refresh_at = issued.refresh_at;
                using_issued = true;
                Some(basic_header(&issued.username, &issued.password))
            }
            Some(Challenge::Basic) => match credential {
                Some(Credential::Basic { username, password }) => {
                    Some(basic_header(username, password))
                }
                Some(Credential::IdentityToken(_)) => {
                    return Err(Error::registry(format!(
                        "registry {} asks for a user name and password, but its credential is an identity token",
                        self.host
                    ))
                    .hint(login_hint(self.credentials.flag(), &self.host)));
                }
                // A Basic challenge means credentials are needed: a skipped store is the error.
                None => match self.skipped_store_error(
                    &found,
                    &format!(
                        "registry {} wants a user name and password for {}",
                        self.host,
                        key.describe()
                    ),
                ) {
                    Some(error) => return Err(error),
                    None => None,
                },
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.check_realm(realm, credential.is_some())?;
                let scopes = if challenged_scopes.is_empty() {
                    self.default_scopes(key)
                } else {
                    challenged_scopes
                };
                let token = fetch_token(
                    &self.http,
                    TokenAsker {
                        registry: &self.host,
                        credential_flag: self.credentials.flag(),
                    },
                    realm,
                    service.as_deref(),
                    &scopes,
                    credential,
                    &self.tls_rejections,
                );
                let token = match token {
                    // Anonymous access refused: a skipped credsStore is the cause to name.
                    Err(error) if credential.is_none() => {
                        return Err(self
                            .skipped_store_error(&found, error.message())
                            .unwrap_or_else(|| with_unmatched(error, &found.unmatched)));
                    }
                    token => token?,
                };
                credential_accepted = credential.is_some();
                Some(token)
            }
        };
        state.header = header;
        state.challenge = challenge;
        state.generation += 1;
        state.using_issued = using_issued;
        state.refresh_at = refresh_at;
        state.credential_accepted = credential_accepted;
        state.pending_warning = found.skipped_store_warning();
        Ok(())
    }

    /// Whether a Basic challenge is answered with an issued credential (an ECR token): for a
    /// host with an issuer and no other credential, or once it has said that other credential
    /// expired.
    fn uses_issued(
        &self,
        found: &RepositoryCredential,
        state: &AuthState,
        reason: Reauthentication,
    ) -> bool {
        self.credentials.issuer().is_some()
            && (found.credential.is_none()
                || state.using_issued
                || (found.replaceable && reason == Reauthentication::NewIssued))
    }

    /// Credentials go to a token service only over HTTPS, unless it is loopback or insecure.
    fn check_realm(&self, realm: &str, sends_credentials: bool) -> Result<()> {
        let Ok(url) = reqwest::Url::parse(realm) else {
            return Err(Error::registry(format!(
                "registry {} named a token service that is not a URL: {realm}",
                self.host
            )));
        };
        let plain_ok = url.host_str().is_some_and(|host| {
            let authority = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            };
            allows_plain_http(&authority, &self.insecure_registries)
                || allows_plain_http(host, &self.insecure_registries)
        });
        match url.scheme() {
            "https" => Ok(()),
            "http" if plain_ok || !sends_credentials => Ok(()),
            _ => Err(Error::registry(format!(
                "registry {} sends credentials to {realm}, which is not HTTPS; refusing to send them",
                self.host
            ))
            .hint("use --insecure-registry for that host if plain HTTP is really intended")),
        }
    }

    /// The error for a 401 that authenticating again did not cure. A refusal of a token the
    /// token service gave for a credential is about that account's permissions, never the
    /// credential.
    pub(super) fn unauthorized(
        &self,
        key: &AuthKey,
        operation: &str,
        answer: &Answer,
        challenge: Option<Challenge>,
    ) -> Error {
        let status = answer.status;
        let detail = error_detail(&answer.body);
        let found = self.credentials.cached(key.repository.as_deref());
        let credential_accepted = {
            let states = self.auth.lock().expect("auth state lock");
            states
                .by_key
                .get(key)
                .is_some_and(|state| state.credential_accepted)
        };
        let origin = found
            .as_ref()
            .and_then(|found| found.origin.clone())
            .or_else(|| {
                self.credentials
                    .issuer()
                    .map(|issuer| format!("from {}", issuer.origin()))
            });
        let needed = match &challenge {
            Some(Challenge::Bearer {
                scope: Some(scope), ..
            }) => format!(" (it needs {scope})"),
            _ => String::new(),
        };
        if credential_accepted {
            let origin = origin.unwrap_or_else(|| "given".to_owned());
            return Error::registry(format!(
                "registry {}: the token service accepted the credentials ({origin}), but the \
                 token it gave does not allow {operation} in {}{needed}: {status}{detail}",
                self.host,
                key.describe()
            ))
            .hint(format!(
                "the account lacks permission on that repository: check the repository name, \
                 or have the registry's administrator grant it pull (and push for --tag) on {}",
                key.describe()
            ));
        }
        let message = match &origin {
            Some(origin) => format!(
                "registry {} refused the credentials ({origin}) for {operation}: {status}{detail}",
                self.host
            ),
            None => format!(
                "registry {} wants credentials for {operation}{needed}: {status}{detail}{}",
                self.host,
                unmatched_suffix(found.as_ref().map_or(&[][..], |found| &found.unmatched))
            ),
        };
        if origin.is_none()
            && let Some(error) = found
                .as_ref()
                .and_then(|found| self.skipped_store_error(found, &message))
        {
            return error;
        }
        match origin {
            Some(_) => {
                Error::registry(message).hint(refused_hint(self.credentials.flag(), &self.host))
            }
            None => Error::registry(message).hint(login_hint(self.credentials.flag(), &self.host)),
        }
    }
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
