//! One registry host: its HTTP client (TLS roots, timeouts, redirects), the choice of HTTPS or
//! plain HTTP, authentication when the registry asks (a 401), and retries.
//!
//! Authentication is per repository: every distribution API path names its repository
//! (`/v2/NAME/manifests/…`, `/v2/NAME/blobs/…`), which is how a registry decides the scope a
//! request needs, and how [`Registry::send`] picks the credential (namespace-keyed entries,
//! [`crate::credentials`]) and the token for it. A cross-repository mount (`?mount=&from=`)
//! has a token of its own, for both repositories. A token is asked for the scopes the run
//! needs in that repository; when the registry refuses it naming the scope it lacks
//! (`error="insufficient_scope",scope="…"`), exactly that scope is asked for, since some token
//! services (Harbor) grant only the first `scope=` of a request.
//!
//! The protocol steps themselves (pulling documents, pushing blobs and manifests) live in
//! [`crate::registry::pull`] and [`crate::registry::push`]; they build requests and call [`Registry::send`].
//!
//! Redirects are followed by reqwest, which drops `Authorization` when a redirect leads to another
//! host or port (blob GETs are often redirected to object storage); a test checks this. Requests
//! this client itself sends to another host (an upload session's `Location` there) get no
//! `Authorization` either ([`super::location`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};

use super::advice::{refused_media_type_hint, unreachable_hint};
use super::auth::{Challenge, TokenAsker, basic_header, fetch_token};
use super::location::{authority, same_authority};
use super::proxy::{self, ProxySettings};
use super::retry::{
    Retries, Tried, is_dns_error, is_retryable_status, is_retryable_transport_error, is_tls_error,
    retry_after, send_with_retries,
};
use super::tls::{self, Rejections};
use crate::credentials::HostRole;
use crate::credentials::advice::{login_hint, refused_hint};
use crate::credentials::{Credential, HostCredentials, RepositoryCredential};
use crate::error::{Error, Result};
use crate::reference::registry::RegistryReference;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The whole-request limit for small requests (manifests, HEAD, upload sessions, tokens). Blob
/// transfers have none, their size being unbounded; instead they may not go idle for long
/// ([`crate::registry::transfer::blob_idle_timeout`]).
pub const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach and authenticate to one registry.
pub struct ConnectOptions {
    /// `host[:port]` names allowed to use plain HTTP (loopback hosts always are).
    pub insecure_registries: Vec<String>,
    /// Where each repository's credential comes from, looked up on the registry's first 401.
    pub credentials: HostCredentials,
    /// The token scopes the run needs, e.g. `repository:fn:pull,push`: a repository's token is
    /// first asked for its own (else `repository:NAME:pull`).
    pub scopes: Vec<String>,
    /// What the host is to the run: hints for a host that cannot be reached depend on it.
    pub role: HostRole,
    /// The reference the run reads from this host (the base, or the image `check` reads), for
    /// hints that name it.
    pub read: Option<RegistryReference>,
}

/// A connection to one registry host.
pub struct Registry {
    host: String,
    base_url: String,
    http: Client,
    /// What the TLS verifier refused last, and the client certificate offered (for errors).
    tls_rejections: Arc<Rejections>,
    client_certificate: Option<PathBuf>,
    credentials: HostCredentials,
    scopes: Vec<String>,
    insecure_registries: Vec<String>,
    role: HostRole,
    /// [`ConnectOptions::read`].
    read: Option<RegistryReference>,
    auth: Mutex<AuthStates>,
    /// Warnings about a skipped credsStore, for requests that succeeded without it: printed
    /// when the run is done with this registry, unless it turned out to need credentials
    /// after all (then the error names the helper, and the warning would contradict it).
    skipped_store_warnings: Mutex<Vec<String>>,
    credentials_were_needed: std::sync::atomic::AtomicBool,
}

impl Drop for Registry {
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
struct AuthKey {
    repository: Option<String>,
    mount_from: Option<String>,
}

impl AuthKey {
    /// The key of a request URL (see [`request_repository`]).
    fn of(url: &reqwest::Url) -> AuthKey {
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
    fn describe(&self) -> String {
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
    /// Whether `header` carries a credential the host's [`TokenIssuer`] issued (an ECR token).
    using_issued: bool,
    /// When that issued credential is to be replaced before the next request.
    refresh_at: Option<SystemTime>,
}

/// Why credentials are being (re)applied.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reauthentication {
    /// First contact, or a 401 with the credentials in hand.
    Challenged,
    /// The issued credential (an ECR token) in use is near its expiry, or a registry said the
    /// credential in use has expired: the issuer is asked for a new one.
    NewIssued,
}

impl Registry {
    /// Connects to `host`: HTTPS, or for a loopback or `--insecure-registry` host plain HTTP
    /// when it does not speak TLS; then authenticates as its `/v2/` challenge asks.
    pub fn connect(host: &str, options: ConnectOptions) -> Result<Registry> {
        let (http, host_tls) = build_http_client(host)?;
        let plain_http_allowed = allows_plain_http(host, &options.insecure_registries);
        let api_host = api_host(host);
        let mut registry = Registry {
            host: host.to_owned(),
            base_url: format!("https://{api_host}"),
            http,
            tls_rejections: host_tls.rejections,
            client_certificate: host_tls.client_certificate,
            role: options.role,
            read: options.read,
            credentials: options.credentials,
            scopes: options.scopes,
            insecure_registries: options.insecure_registries,
            auth: Mutex::default(),
            skipped_store_warnings: Mutex::default(),
            credentials_were_needed: Default::default(),
        };
        let (ping, tries) = if plain_http_allowed {
            match registry.ping(false) {
                Tried {
                    outcome: Ok(response),
                    tries,
                } => (response, tries),
                Tried {
                    outcome: Err(https_error),
                    ..
                } => {
                    registry.base_url = format!("http://{api_host}");
                    match registry.ping(true) {
                        Tried {
                            outcome: Ok(response),
                            tries,
                        } if !is_https_only_answer(&response) => (response, tries),
                        // The host speaks TLS, and TLS failed: that is the error to report,
                        // never a silent fall-back to plain HTTP.
                        Tried { outcome: Ok(_), .. } => {
                            return Err(registry.transport_error("connect", &https_error));
                        }
                        Tried {
                            outcome: Err(_), ..
                        } if is_tls_error(&https_error) => {
                            return Err(registry.transport_error("connect", &https_error));
                        }
                        Tried {
                            outcome: Err(http_error),
                            tries,
                        } => {
                            return Err(after_tries(
                                registry.transport_error("connect", &http_error),
                                tries,
                            ));
                        }
                    }
                }
            }
        } else {
            match registry.ping(true) {
                Tried {
                    outcome: Ok(response),
                    tries,
                } => (response, tries),
                Tried {
                    outcome: Err(error),
                    tries,
                } => {
                    return Err(after_tries(
                        registry.transport_error("connect", &error),
                        tries,
                    ));
                }
            }
        };
        match ping.status() {
            // Credentials are looked up when a repository is first used, for that repository.
            StatusCode::UNAUTHORIZED => {
                registry.auth.get_mut().expect("auth state lock").challenge = read_challenge(&ping);
            }
            StatusCode::NOT_FOUND => {
                return Err(Error::registry(format!(
                    "{} does not serve the registry API: GET {}/v2/ answered 404",
                    registry.host, registry.base_url
                ))
                .hint("check the registry host and port in the reference"));
            }
            status if status.is_success() => {}
            status => {
                return Err(still_failing(
                    registry.status_error("connect", ping),
                    status,
                    tries,
                ));
            }
        }
        Ok(registry)
    }

    /// Whether `url` is this registry's own host and port, where its credentials may go.
    fn is_own_url(&self, url: &reqwest::Url) -> bool {
        reqwest::Url::parse(&self.base_url).is_ok_and(|own| same_authority(url, &own))
    }

    /// What the host is to the run (for messages).
    pub fn role(&self) -> HostRole {
        self.role
    }

    /// `host[:port]`, as in references.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The absolute URL of an API path such as `/v2/fn/blobs/uploads/`, or of a `Location`
    /// header (which may be relative).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base_url)
        }
    }

    /// Sends a request built by `build` (called again for each try), authenticating on a 401 and
    /// retrying what is worth retrying. Returns the final response, whatever its status, except
    /// that a 401 after authenticating is an error. `operation` names the step in errors.
    pub fn send(
        &self,
        operation: &str,
        build: &dyn Fn(&Client) -> RequestBuilder,
    ) -> Result<Response> {
        self.send_with(operation, build, true)
    }

    /// Like [`Registry::send`] but never retries: for requests whose body is a stream that the
    /// caller must reopen (a blob upload restarts from a new session instead).
    pub fn send_once(
        &self,
        operation: &str,
        build: &dyn Fn(&Client) -> RequestBuilder,
    ) -> Result<Response> {
        self.send_with(operation, build, false)
    }

    fn send_with(
        &self,
        operation: &str,
        build: &dyn Fn(&Client) -> RequestBuilder,
        retry: bool,
    ) -> Result<Response> {
        let mut retries = Retries::new();
        let mut authenticated_again = false;
        loop {
            let mut request = match build(&self.http).build() {
                Ok(request) => request,
                Err(error) => return Err(self.transport_error(operation, &error)),
            };
            let key = AuthKey::of(request.url());
            let (header, generation) = self.prepare(&key)?;
            // Authorization only for the registry's own host and port ([`super::location`]).
            if let Some(header) = header
                && self.is_own_url(request.url())
            {
                let mut value = HeaderValue::from_str(&header).map_err(|_| {
                    Error::registry(format!(
                        "registry {}: the token for {} is not a valid header value (not shown)",
                        self.host,
                        key.describe()
                    ))
                })?;
                value.set_sensitive(true);
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            match self.http.execute(request) {
                // Another host (an upload service) wants credentials: it gets none.
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED
                        && !self.is_own_url(response.url()) =>
                {
                    return Err(self.foreign_host_wants_credentials(operation, response.url()));
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    let challenge = read_challenge(&response);
                    let answer = Answer::read(response);
                    if authenticated_again {
                        return Err(self.unauthorized(&key, operation, &answer, challenge));
                    }
                    let expired = self.credentials.issuer().is_some_and(|issuer| {
                        issuer.may_be_expired(answer.status.as_u16(), &answer.body)
                    });
                    let reason = if expired {
                        Reauthentication::NewIssued
                    } else {
                        Reauthentication::Challenged
                    };
                    self.authenticate(&key, challenge, generation, reason)?;
                    authenticated_again = true;
                }
                // A host with an issuer (ECR) may answer an expired credential with a 403 as
                // well as a 401: the issuer says which 403s may mean that.
                Ok(response)
                    if response.status() == StatusCode::FORBIDDEN
                        && self.credentials.issuer().is_some() =>
                {
                    let answer = Answer::read(response);
                    let expired = self.credentials.issuer().is_some_and(|issuer| {
                        issuer.may_be_expired(answer.status.as_u16(), &answer.body)
                    });
                    if authenticated_again || !expired {
                        return Err(self.answer_error(operation, &answer));
                    }
                    self.authenticate(&key, None, generation, Reauthentication::NewIssued)?;
                    authenticated_again = true;
                }
                Ok(response) if retry && is_retryable_status(response.status()) => {
                    match retries.next_delay(retry_after(response.headers())) {
                        Some(delay) => std::thread::sleep(delay),
                        None => {
                            let status = response.status();
                            return Err(still_failing(
                                self.status_error(operation, response),
                                status,
                                retries.failures(),
                            ));
                        }
                    }
                }
                Ok(response) => {
                    self.warn_if_pending(&key, response.status());
                    return Ok(response);
                }
                Err(error) if retry && is_retryable_transport_error(&error) => {
                    match retries.next_delay(None) {
                        Some(delay) => std::thread::sleep(delay),
                        None => {
                            return Err(self
                                .transport_error(operation, &error)
                                .with_message_suffix(&format!(
                                    " (after {} tries)",
                                    retries.failures()
                                )));
                        }
                    }
                }
                Err(error) => return Err(self.transport_error(operation, &error)),
            }
        }
    }

    /// `GET /v2/`, the API version check that also returns the auth challenge. Retryable
    /// statuses (429, 5xx …) are retried; transport failures only with `retry_transport` (not
    /// when HTTPS is only being tried on a loopback host that may speak plain HTTP).
    fn ping(&self, retry_transport: bool) -> Tried {
        let url = self.url("/v2/");
        send_with_retries(
            self.http.get(&url).timeout(SMALL_REQUEST_TIMEOUT),
            retry_transport,
        )
    }

    /// The `Authorization` value for a request of `key`, and the generation it belongs to:
    /// authenticates a repository's first request once the host's challenge is known, and
    /// replaces an ECR token that is due.
    fn prepare(&self, key: &AuthKey) -> Result<(Option<String>, u64)> {
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
    fn warn_if_pending(&self, key: &AuthKey, status: StatusCode) {
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
    fn authenticate(
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

    /// The error for a 401 from a host other than the registry's (an upload service behind a
    /// front end), which is never sent the registry's credentials.
    fn foreign_host_wants_credentials(&self, operation: &str, url: &reqwest::Url) -> Error {
        let other = authority(url);
        Error::registry(format!(
            "registry {}: {operation} failed: {other}, where the registry sent the request, \
             asks for credentials; they are sent only to {} itself",
            self.host, self.host
        ))
        .hint(format!(
            "if {other} is this registry under another name, have the registry name itself \
             as {} in its Location headers (distribution: http.host; behind a reverse proxy, \
             pass on the Host and X-Forwarded-Proto headers); an upload service on another \
             host must accept its upload URLs without the registry's credentials",
            self.host
        ))
    }

    /// The error for a 401 that authenticating again did not cure. A refusal of a token the
    /// token service gave for a credential is about that account's permissions, never the
    /// credential.
    fn unauthorized(
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

    /// The error for a response with an unexpected status.
    pub fn status_error(&self, operation: &str, response: Response) -> Error {
        if let Some(error) = proxy::status_failure(&self.host, operation, &response) {
            return error;
        }
        self.answer_error(operation, &Answer::read(response))
    }

    /// The error for a refused manifest `PUT` of `media_type`: when the answer says the type is
    /// what was refused, the error names it and the hint the other `--format`
    /// ([`super::advice::refused_media_type_hint`]).
    pub fn manifest_error(&self, operation: &str, response: Response, media_type: &str) -> Error {
        let answer = Answer::read(response);
        let error = self.answer_error(operation, &answer);
        match refused_media_type_hint(answer.status.as_u16(), &answer.body, media_type) {
            Some(hint) => error
                .with_message_suffix(&format!(" (manifest media type {media_type})"))
                .hint(hint),
            None => error,
        }
    }

    /// The error for an answer with an unexpected status: ECR's with a hint saying what to do.
    fn answer_error(&self, operation: &str, answer: &Answer) -> Error {
        let status = answer.status;
        let detail = error_detail(&answer.body);
        let error = Error::registry(format!(
            "registry {}: {operation} failed: {status}{detail}",
            self.host
        ));
        if let Some(issuer) = self.credentials.issuer()
            && let Some(hint) = issuer.answer_hint(
                operation,
                status.as_u16(),
                &registry_errors(&answer.body),
                &answer.path,
            )
        {
            return error.hint(hint);
        }
        if let Some(explanation) = tls::explain_answer(
            &self.host,
            status.as_u16(),
            &answer.body,
            self.client_certificate.as_deref(),
        ) {
            // The answer is a TLS front end's HTML page: its cause, not its markup.
            let cause = explanation
                .cause
                .map_or_else(String::new, |cause| format!(": {cause}"));
            return Error::registry(format!(
                "registry {}: {operation} failed: {status}{cause}",
                self.host
            ))
            .hint(explanation.hint);
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => error.hint(format!(
                "check that the credentials may pull and push these repositories; {}",
                login_hint(self.credentials.flag(), &self.host)
            )),
            _ => error,
        }
    }

    /// The error for a request that got no answer.
    pub fn transport_error(&self, operation: &str, error: &reqwest::Error) -> Error {
        if let Some(error) = proxy::transport_failure(&self.host, operation, &self.base_url, error)
        {
            return error;
        }
        let description = describe_transport_error(error);
        if is_tls_error(error) || answered_in_plain_http(&description) {
            let rejection = self.tls_rejections.take();
            let explanation = tls::explain(
                &self.host,
                &description,
                rejection.as_ref(),
                self.client_certificate.as_deref(),
            );
            Error::registry(format!(
                "registry {}: {operation} failed: TLS: {}",
                self.host,
                explanation.said(&description)
            ))
            .hint(explanation.hint)
        } else if is_dns_error(error) {
            let name = error
                .url()
                .and_then(|url| url.host_str().map(str::to_owned))
                .unwrap_or_else(|| host_without_port(api_host(&self.host)).to_owned());
            Error::registry(format!(
                "registry {}: {operation} failed: the name {name} could not be resolved \
                 (DNS): {description}",
                self.host
            ))
            .hint(unreachable_hint(
                self.role,
                &self.host,
                true,
                self.read.as_ref(),
            ))
        } else {
            Error::registry(format!(
                "registry {}: {operation} failed: {description}",
                self.host
            ))
            .hint(unreachable_hint(
                self.role,
                &self.host,
                false,
                self.read.as_ref(),
            ))
        }
    }
}

/// `; none was found for it: NOTE; NOTE` from what was consulted and had no credential for a
/// repository ([`crate::credentials::Lookup::unmatched`]); empty when nothing was.
fn unmatched_suffix(unmatched: &[String]) -> String {
    if unmatched.is_empty() {
        String::new()
    } else {
        format!("; no credential was found for it: {}", unmatched.join("; "))
    }
}

/// `error` with [`unmatched_suffix`] added to its message.
fn with_unmatched(error: Error, unmatched: &[String]) -> Error {
    error.with_message_suffix(&unmatched_suffix(unmatched))
}

/// `error` for an answer with a retryable `status` that kept coming: " (after N tries)", and
/// unless it has one already, a hint saying what such a status means
/// ([`super::advice::still_failing_hint`]).
pub(crate) fn still_failing(error: Error, status: StatusCode, tries: u32) -> Error {
    let error = after_tries(error, tries);
    if error.hint_text().is_some() || !is_retryable_status(status) {
        return error;
    }
    error.hint(super::advice::still_failing_hint(status.as_u16()))
}

/// `error` with " (after N tries)" when the request was sent more than once.
pub(crate) fn after_tries(error: Error, tries: u32) -> Error {
    if tries > 1 {
        error.with_message_suffix(&format!(" (after {tries} tries)"))
    } else {
        error
    }
}

/// Whether a TLS handshake got a plain HTTP answer (rustls: "received corrupt message of type
/// InvalidContentType"): the host speaks HTTP only.
fn answered_in_plain_http(description: &str) -> bool {
    description.contains("InvalidContentType")
}

/// The challenge of a 401 answer.
fn read_challenge(response: &Response) -> Option<Challenge> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(Challenge::parse)
        // Prefer a bearer challenge when a registry offers both.
        .max_by_key(|challenge| matches!(challenge, Challenge::Bearer { .. }))
}

/// What an error answer said, read whole (it is small: at most [`ERROR_BODY_LIMIT`] is kept).
struct Answer {
    status: StatusCode,
    /// The request's URL path, e.g. `/v2/fn/manifests/v1`.
    path: String,
    body: String,
}

/// How much of an error answer's body is read.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

impl Answer {
    fn read(response: Response) -> Answer {
        use std::io::Read;
        let status = response.status();
        let path = response.url().path().to_owned();
        let mut bytes = Vec::new();
        let _ = response.take(ERROR_BODY_LIMIT).read_to_end(&mut bytes);
        Answer {
            status,
            path,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// `(code, message)` of each entry of a registry's JSON `errors` (none when the body is not
/// such JSON).
pub(crate) fn registry_errors(body: &str) -> Vec<(String, String)> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let Some(errors) = value.get("errors").and_then(|errors| errors.as_array()) else {
        return Vec::new();
    };
    errors
        .iter()
        .map(|error| {
            let text = |key: &str| error.get(key).and_then(|v| v.as_str()).unwrap_or("");
            (text("code").to_owned(), text("message").to_owned())
        })
        .collect()
}

/// ` (CODE: message)` from a registry's JSON error body, if it has one; at most 300 characters.
pub(crate) fn error_detail(body: &str) -> String {
    let errors = registry_errors(body);
    let text = if errors.is_empty() {
        body.trim().to_owned()
    } else {
        errors
            .iter()
            .map(|(code, message)| format!("{code}: {message}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if text.is_empty() {
        String::new()
    } else {
        let short: String = text.chars().take(300).collect();
        format!(" ({short})")
    }
}

/// A transport error as one line: each cause once, without repeating reqwest's wrappers.
pub fn describe_transport_error(error: &reqwest::Error) -> String {
    describe_error_chain(error)
}

/// An error and its causes as one line, each once.
pub fn describe_error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        let text = current.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

/// Go's answer to plain HTTP on a TLS port.
fn is_https_only_answer(response: &Response) -> bool {
    response.status() == StatusCode::BAD_REQUEST
        && response.headers().get(WWW_AUTHENTICATE).is_none()
        && response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_none_or(|value| !value.as_bytes().starts_with(b"application/json"))
}

/// Where a registry's API is served: Docker Hub's is not at `docker.io`.
fn api_host(registry: &str) -> &str {
    if registry == crate::reference::registry::DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Loopback hosts, and hosts the user named with `--insecure-registry`, may use plain HTTP.
/// Host names compare without regard to case (RFC 4343).
pub fn allows_plain_http(host: &str, insecure_registries: &[String]) -> bool {
    if insecure_registries
        .iter()
        .any(|insecure| insecure.eq_ignore_ascii_case(host))
    {
        return true;
    }
    is_loopback_name(host_without_port(host))
}

/// Whether a host name (no port; IPv6 with or without brackets) is `localhost` or a loopback
/// address (`127.0.0.0/8`, `::1`, and IPv4-mapped `::ffff:127.x.y.z`).
pub(crate) fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `host` without its `:port`, IPv6 brackets kept (`[::1]`).
pub(crate) fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(ip, _)| &host[..ip.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The HTTP client for `host`, with its TLS set-up ([`tls::host_tls`]): system roots (which
/// honour `SSL_CERT_FILE`), and the CA and client certificates of `/etc/docker/certs.d/HOST/`
/// or `/etc/containers/certs.d/HOST/`; proxies from the environment as [`super::proxy`] chooses
/// them (reqwest's own choice is turned off).
fn build_http_client(host: &str) -> Result<(Client, tls::HostTls)> {
    let host_tls = tls::host_tls(host)?;
    let proxies = ProxySettings::global()?;
    let mut builder = Client::builder().no_proxy();
    if !proxies.is_empty() {
        builder = builder.proxy(proxies.reqwest_proxy());
    }
    let client = builder
        .user_agent(concat!("lambda-image/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(None::<Duration>)
        .tcp_keepalive(Duration::from_secs(30))
        .http1_only()
        .use_preconfigured_tls(host_tls.config.clone())
        .build()
        .map_err(|error| {
            Error::registry(format!(
                "cannot set up HTTPS for {host}: {}",
                describe_transport_error(&error)
            ))
            .hint("check SSL_CERT_FILE and the system CA certificates")
        })?;
    Ok((client, host_tls))
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
