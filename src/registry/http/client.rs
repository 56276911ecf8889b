//! One registry host: its HTTP client (TLS roots, timeouts, redirects) and sending a request,
//! authenticating when the registry asks (a 401) and retrying what is worth retrying.
//!
//! First contact and the choice of HTTPS or plain HTTP are [`super::ping`]; the authentication
//! state of each repository [`super::authenticator`]; the errors for failed requests
//! [`super::failure`].
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
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, HeaderValue};

use super::auth::read_challenge;
use super::authenticator::{AuthKey, Authenticator, Reauthentication};
use super::error::{Answer, describe_transport_error};
use super::location::same_authority;
use super::proxy::ProxySettings;
use super::retry::{
    Retries, is_retryable_status, is_retryable_transport_error, retry_after, still_failing,
};
use super::scheme::{allows_plain_http, api_host};
use super::tls::{self, Rejections};
use crate::credentials::{HostCredentials, HostRole};
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
    pub(super) host: String,
    pub(super) base_url: String,
    pub(super) http: Client,
    /// What the TLS verifier refused last, and the client certificate offered (for errors).
    pub(super) tls_rejections: Arc<Rejections>,
    pub(super) client_certificate: Option<PathBuf>,
    pub(super) role: HostRole,
    /// [`ConnectOptions::read`].
    pub(super) read: Option<RegistryReference>,
    /// Authentication per repository, with the host's credentials.
    pub(super) auth: Authenticator,
}

impl Registry {
    /// Connects to `host`: HTTPS, or for a loopback or `--insecure-registry` host plain HTTP
    /// when it does not speak TLS; then authenticates as its `/v2/` challenge asks.
    pub fn connect(host: &str, options: ConnectOptions) -> Result<Registry> {
        let (http, host_tls) = build_http_client(host)?;
        let plain_http_allowed = allows_plain_http(host, &options.insecure_registries);
        let api_host = api_host(host);
        let auth = Authenticator::new(
            host,
            http.clone(),
            Arc::clone(&host_tls.rejections),
            options.credentials,
            options.scopes,
            options.insecure_registries,
        );
        let mut registry = Registry {
            host: host.to_owned(),
            base_url: format!("https://{api_host}"),
            http,
            tls_rejections: host_tls.rejections,
            client_certificate: host_tls.client_certificate,
            role: options.role,
            read: options.read,
            auth,
        };
        registry.first_contact(plain_http_allowed, api_host)?;
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
            let (header, generation) = self.auth.prepare(&key)?;
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
                        return Err(self.auth.unauthorized(&key, operation, &answer, challenge));
                    }
                    let expired = self.auth.may_be_expired(&answer);
                    let reason = if expired {
                        Reauthentication::NewIssued
                    } else {
                        Reauthentication::Challenged
                    };
                    self.auth
                        .authenticate(&key, challenge, generation, reason)?;
                    authenticated_again = true;
                }
                // A host with an issuer (ECR) may answer an expired credential with a 403 as
                // well as a 401: the issuer says which 403s may mean that.
                Ok(response)
                    if response.status() == StatusCode::FORBIDDEN
                        && self.auth.credentials.issuer().is_some() =>
                {
                    let answer = Answer::read(response);
                    let expired = self.auth.may_be_expired(&answer);
                    if authenticated_again || !expired {
                        return Err(self.answer_error(operation, &answer));
                    }
                    self.auth
                        .authenticate(&key, None, generation, Reauthentication::NewIssued)?;
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
                    self.auth.warn_if_pending(&key, response.status());
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
}

/// The HTTP client for `host`, with its TLS set-up ([`tls::host_tls`]): system roots (which
/// honour `SSL_CERT_FILE`; read once per process, when the first server certificate is
/// verified, so not for a host spoken to in plain HTTP), and the CA and client certificates of `/etc/docker/certs.d/HOST/`
/// or `/etc/containers/certs.d/HOST/`; proxies from the environment as [`super::proxy`] chooses
/// them (reqwest's own choice is turned off).
pub fn build_http_client(host: &str) -> Result<(Client, tls::HostTls)> {
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
