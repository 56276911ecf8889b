//! One registry host: its HTTP client (TLS roots, timeouts, redirects), the choice of HTTPS or
//! plain HTTP, authentication on first contact and again on a later 401, and retries.
//!
//! The protocol steps themselves (pulling documents, pushing blobs and manifests) live in
//! [`super::pull`] and [`super::push`]; they build requests and call [`Registry::send`].
//!
//! Redirects are followed by reqwest, which drops `Authorization` when a redirect leads to another
//! host or port (blob GETs are often redirected to object storage); a test checks this.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use super::auth::{Challenge, basic_header, fetch_token};
use super::credentials::Credential;
use super::ecr::{self, EcrRegistry, TokenCache};
use super::proxy::{self, ProxySettings};
use super::retry::{
    Retries, is_retryable_status, is_retryable_transport_error, is_tls_error, retry_after,
};
use crate::error::{Error, Result};

/// What to do when a registry wants credentials it did not get, or refused them.
pub const LOGIN_HINT: &str = "give credentials with --creds USER:PASS, or log in so that \
     ~/.docker/config.json (or $REGISTRY_AUTH_FILE) has them, e.g. `docker login HOST`, \
     or a credHelpers entry such as ecr-login for ECR";
/// Where extra CA certificates for a registry are looked for, as docker and podman do.
const CERTS_DIRECTORIES: [&str; 2] = ["/etc/docker/certs.d", "/etc/containers/certs.d"];
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The whole-request limit for small requests (manifests, HEAD, upload sessions, tokens). Blob
/// transfers have none, their size being unbounded; instead they may not go idle for long
/// ([`super::transfer::blob_idle_timeout`]).
pub const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach and authenticate to one registry.
pub struct ConnectOptions {
    /// `host[:port]` names allowed to use plain HTTP (loopback hosts always are).
    pub insecure_registries: Vec<String>,
    pub credential: Option<Credential>,
    /// Where the credential came from, for messages (never the secret).
    pub credential_origin: Option<String>,
    /// The token scopes to ask for, e.g. `repository:fn:pull,push`.
    pub scopes: Vec<String>,
    /// For an ECR host: where its tokens come from. Used when `credential` is None, and in
    /// place of a `credential` that ECR says has expired (a token saved by `docker login`).
    pub ecr_tokens: Option<&'static TokenCache>,
    /// Whether an ECR token may replace `credential` once ECR refuses it as expired: true for
    /// one saved in a file (a `docker login` 12 hours ago), false for `--creds`.
    pub credential_replaceable: bool,
}

/// A connection to one registry host.
pub struct Registry {
    host: String,
    base_url: String,
    http: Client,
    credential: Option<Credential>,
    credential_origin: Option<String>,
    scopes: Vec<String>,
    insecure_registries: Vec<String>,
    /// The ECR registry this host is, with the run's token cache.
    ecr: Option<(EcrRegistry, &'static TokenCache)>,
    credential_replaceable: bool,
    auth: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    header: Option<String>,
    challenge: Option<Challenge>,
    /// Bumped on every change of `header`, so concurrent 401s refresh the token once.
    generation: u64,
    /// Whether `header` carries an ECR token from `GetAuthorizationToken`.
    using_ecr_token: bool,
    /// When that ECR token is to be replaced before the next request.
    ecr_refresh_at: Option<SystemTime>,
}

/// Why credentials are being (re)applied.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reauthentication {
    /// First contact, or a 401 with the credentials in hand.
    Challenged,
    /// The ECR token in use is near its `expiresAt`, or a registry said it has expired.
    NewEcrToken,
}

impl Registry {
    /// Connects to `host`: HTTPS, or for a loopback or `--insecure-registry` host plain HTTP
    /// when it does not speak TLS; then authenticates as its `/v2/` challenge asks.
    pub fn connect(host: &str, options: ConnectOptions) -> Result<Registry> {
        let http = build_http_client(host)?;
        let plain_http_allowed = allows_plain_http(host, &options.insecure_registries);
        let api_host = api_host(host);
        let ecr = options
            .ecr_tokens
            .and_then(|tokens| Some((EcrRegistry::from_host(host)?, tokens)));
        let mut registry = Registry {
            host: host.to_owned(),
            base_url: format!("https://{api_host}"),
            http,
            credential: options.credential,
            credential_origin: options.credential_origin,
            scopes: options.scopes,
            insecure_registries: options.insecure_registries,
            ecr,
            credential_replaceable: options.credential_replaceable,
            auth: Mutex::new(AuthState::default()),
        };
        let ping = if plain_http_allowed {
            match registry.ping(false) {
                Ok(response) => response,
                Err(https_error) => {
                    registry.base_url = format!("http://{api_host}");
                    match registry.ping(true) {
                        Ok(response) if !is_https_only_answer(&response) => response,
                        // The host speaks TLS, and TLS failed: that is the error to report,
                        // never a silent fall-back to plain HTTP.
                        Ok(_) => return Err(registry.transport_error("connect", &https_error)),
                        Err(_) if is_tls_error(&https_error) => {
                            return Err(registry.transport_error("connect", &https_error));
                        }
                        Err(http_error) => {
                            return Err(registry.transport_error("connect", &http_error));
                        }
                    }
                }
            }
        } else {
            registry
                .ping(true)
                .map_err(|error| registry.transport_error("connect", &error))?
        };
        match ping.status() {
            StatusCode::UNAUTHORIZED => {
                let challenge = read_challenge(&ping);
                registry.authenticate(challenge, 0, Reauthentication::Challenged)?;
            }
            StatusCode::NOT_FOUND => {
                return Err(Error::registry(format!(
                    "{} does not serve the registry API: GET {}/v2/ answered 404",
                    registry.host, registry.base_url
                ))
                .hint("check the registry host and port in the reference"));
            }
            status if status.is_success() => {}
            _ => return Err(registry.status_error("connect", ping)),
        }
        Ok(registry)
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
            let (header, generation, ecr_refresh_due) = {
                let state = self.auth.lock().expect("auth state lock");
                let due = state
                    .ecr_refresh_at
                    .is_some_and(|refresh_at| SystemTime::now() >= refresh_at);
                (state.header.clone(), state.generation, due)
            };
            if ecr_refresh_due {
                self.authenticate(None, generation, Reauthentication::NewEcrToken)?;
                continue;
            }
            let mut request = build(&self.http);
            if let Some(header) = &header {
                request = request.header(AUTHORIZATION, header);
            }
            match request.send() {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    let challenge = read_challenge(&response);
                    let answer = Answer::read(response);
                    if authenticated_again {
                        return Err(self.unauthorized(operation, &answer));
                    }
                    let reason =
                        if self.ecr.is_some() && ecr::may_be_expired_token_answer(&answer.body) {
                            Reauthentication::NewEcrToken
                        } else {
                            Reauthentication::Challenged
                        };
                    self.authenticate(challenge, generation, reason)?;
                    authenticated_again = true;
                }
                // ECR answers an expired token with a 403 as well as a 401.
                Ok(response)
                    if response.status() == StatusCode::FORBIDDEN && self.ecr.is_some() =>
                {
                    let answer = Answer::read(response);
                    if authenticated_again || !ecr::may_be_expired_token_answer(&answer.body) {
                        return Err(self.answer_error(operation, &answer));
                    }
                    self.authenticate(None, generation, Reauthentication::NewEcrToken)?;
                    authenticated_again = true;
                }
                Ok(response) if retry && is_retryable_status(response.status()) => {
                    match retries.next_delay(retry_after(response.headers())) {
                        Some(delay) => std::thread::sleep(delay),
                        None => {
                            return Err(self
                                .status_error(operation, response)
                                .with_message_suffix(&format!(
                                    " (after {} tries)",
                                    retries.failures()
                                )));
                        }
                    }
                }
                Ok(response) => return Ok(response),
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

    /// `GET /v2/`, the API version check that also returns the auth challenge.
    fn ping(&self, retry: bool) -> std::result::Result<Response, reqwest::Error> {
        let url = self.url("/v2/");
        let mut retries = Retries::new();
        loop {
            match self.http.get(&url).timeout(SMALL_REQUEST_TIMEOUT).send() {
                Err(error) if retry && is_retryable_transport_error(&error) => {
                    match retries.next_delay(None) {
                        Some(delay) => std::thread::sleep(delay),
                        None => return Err(error),
                    }
                }
                other => return other,
            }
        }
    }

    /// Sets the `Authorization` header a challenge asks for, unless another thread already
    /// replaced the one seen at `seen_generation`.
    fn authenticate(
        &self,
        challenge: Option<Challenge>,
        seen_generation: u64,
        reason: Reauthentication,
    ) -> Result<()> {
        let mut state = self.auth.lock().expect("auth state lock");
        if state.generation != seen_generation {
            return Ok(());
        }
        let challenge = challenge.or_else(|| state.challenge.clone());
        let mut ecr_refresh_at = None;
        let mut using_ecr_token = false;
        let header = match &challenge {
            None => None,
            Some(Challenge::Basic) if self.uses_ecr_token(&state, reason) => {
                let (registry, tokens) = self.ecr.as_ref().expect("an ECR host");
                let now = SystemTime::now();
                let token = tokens.token(registry, now, reason == Reauthentication::NewEcrToken)?;
                if self.credential.is_some() && !state.using_ecr_token {
                    eprintln!(
                        "warning: ECR refused the credential for {} ({}) as it refuses an \
                         expired token; using a new token from ECR GetAuthorizationToken instead",
                        self.host,
                        self.credential_origin.as_deref().unwrap_or("given")
                    );
                }
                ecr_refresh_at = token.refresh_at(now);
                using_ecr_token = true;
                Some(basic_header(&token.username, &token.password))
            }
            Some(Challenge::Basic) => match &self.credential {
                Some(Credential::Basic { username, password }) => {
                    Some(basic_header(username, password))
                }
                Some(Credential::IdentityToken(_)) => {
                    return Err(Error::registry(format!(
                        "registry {} asks for a user name and password, but its credential is an identity token",
                        self.host
                    ))
                    .hint(LOGIN_HINT));
                }
                None => None,
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                self.check_realm(realm)?;
                let mut scopes = self.scopes.clone();
                if let Some(scope) = scope
                    && !scopes.contains(scope)
                    && scope.starts_with("repository:")
                {
                    scopes.push(scope.clone());
                }
                Some(fetch_token(
                    &self.http,
                    &self.host,
                    realm,
                    service.as_deref(),
                    &scopes,
                    self.credential.as_ref(),
                )?)
            }
        };
        state.header = header;
        state.challenge = challenge;
        state.generation += 1;
        state.using_ecr_token = using_ecr_token;
        state.ecr_refresh_at = ecr_refresh_at;
        Ok(())
    }

    /// Whether a Basic challenge is answered with an ECR token: for an ECR host with no other
    /// credential, or once ECR has said that other credential expired.
    fn uses_ecr_token(&self, state: &AuthState, reason: Reauthentication) -> bool {
        self.ecr.is_some()
            && (self.credential.is_none()
                || state.using_ecr_token
                || (self.credential_replaceable && reason == Reauthentication::NewEcrToken))
    }

    /// Credentials go to a token service only over HTTPS, unless it is loopback or insecure.
    fn check_realm(&self, realm: &str) -> Result<()> {
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
            "http" if plain_ok || self.credential.is_none() => Ok(()),
            _ => Err(Error::registry(format!(
                "registry {} sends credentials to {realm}, which is not HTTPS; refusing to send them",
                self.host
            ))
            .hint("use --insecure-registry for that host if plain HTTP is really intended")),
        }
    }

    fn unauthorized(&self, operation: &str, answer: &Answer) -> Error {
        let status = answer.status;
        let detail = error_detail(&answer.body);
        let message = match &self.credential_origin {
            Some(origin) => format!(
                "registry {} refused the credentials ({origin}) for {operation}: {status}{detail}",
                self.host
            ),
            None => format!(
                "registry {} wants credentials for {operation}: {status}{detail}",
                self.host
            ),
        };
        Error::registry(message).hint(LOGIN_HINT)
    }

    /// The error for a response with an unexpected status.
    pub fn status_error(&self, operation: &str, response: Response) -> Error {
        if let Some(error) = proxy::status_failure(&self.host, operation, &response) {
            return error;
        }
        self.answer_error(operation, &Answer::read(response))
    }

    /// The error for an answer with an unexpected status: ECR's with a hint saying what to do.
    fn answer_error(&self, operation: &str, answer: &Answer) -> Error {
        let status = answer.status;
        let detail = error_detail(&answer.body);
        let error = Error::registry(format!(
            "registry {}: {operation} failed: {status}{detail}",
            self.host
        ));
        if let Some((registry, tokens)) = &self.ecr
            && let Some(hint) = ecr::hint_for_answer(
                registry,
                &tokens.region_for(registry),
                operation,
                status.as_u16(),
                &answer.body,
                &answer.path,
            )
        {
            return error.hint(hint);
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => error.hint(format!(
                "check that the credentials may pull and push these repositories; {LOGIN_HINT}"
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
            Error::registry(format!(
                "registry {}: {operation} failed: TLS: {description}",
                self.host
            ))
            .hint(tls_hint(&self.host, &description))
        } else {
            Error::registry(format!(
                "registry {}: {operation} failed: {description}",
                self.host
            ))
            .hint(
                "check the registry host and port, and that it is up and reachable; without \
                 network access, build from a local base (--base oci:DIR:TAG)",
            )
        }
    }
}

/// Whether a TLS handshake got a plain HTTP answer (rustls: "received corrupt message of type
/// InvalidContentType"): the host speaks HTTP only.
fn answered_in_plain_http(description: &str) -> bool {
    description.contains("InvalidContentType")
}

/// What to do about a TLS failure, from rustls's description of it.
fn tls_hint(host: &str, description: &str) -> String {
    if description.contains("not valid for name") {
        format!(
            "the registry's certificate does not name {host}: use a host name the certificate has, or have it reissued for {host}"
        )
    } else if description.contains("Expired") || description.contains("expired") {
        "the registry's certificate has expired (or this machine's clock is wrong): renew the certificate".to_owned()
    } else if description.contains("InvalidContentType") || description.contains("corrupt message")
    {
        format!(
            "{host} may speak only plain HTTP; if you trust the network, allow that with --insecure-registry {host}"
        )
    } else {
        format!(
            "if the registry uses a private CA, put it in /etc/docker/certs.d/{host}/ca.crt or point SSL_CERT_FILE at it"
        )
    }
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
pub(super) fn registry_errors(body: &str) -> Vec<(String, String)> {
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
fn error_detail(body: &str) -> String {
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
pub fn allows_plain_http(host: &str, insecure_registries: &[String]) -> bool {
    if insecure_registries.iter().any(|insecure| insecure == host) {
        return true;
    }
    let name = host_without_port(host);
    name == "localhost"
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host` without its `:port`, IPv6 brackets kept (`[::1]`).
pub(super) fn host_without_port(host: &str) -> &str {
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

/// The HTTP client for `host`: system roots (which honour `SSL_CERT_FILE`), plus any CA in
/// `/etc/docker/certs.d/HOST/` or `/etc/containers/certs.d/HOST/`; proxies from the environment
/// as [`super::proxy`] chooses them (reqwest's own choice is turned off).
fn build_http_client(host: &str) -> Result<Client> {
    let proxies = ProxySettings::global()?;
    let mut builder = Client::builder().no_proxy();
    if !proxies.is_empty() {
        builder = builder.proxy(proxies.reqwest_proxy());
    }
    let mut builder = builder
        .user_agent(concat!("lambda-image/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(None::<Duration>)
        .tcp_keepalive(Duration::from_secs(30))
        .http1_only();
    for directory in CERTS_DIRECTORIES {
        for certificate in certificates_in(&Path::new(directory).join(host))? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|error| {
        Error::registry(format!(
            "cannot set up HTTPS for {host}: {}",
            describe_transport_error(&error)
        ))
        .hint("check SSL_CERT_FILE and the system CA certificates")
    })
}

/// The `*.crt` CA files of a certs.d directory (absent directory: none).
fn certificates_in(directory: &Path) -> Result<Vec<reqwest::Certificate>> {
    let Ok(listing) = std::fs::read_dir(directory) else {
        return Ok(Vec::new());
    };
    let mut certificates = Vec::new();
    let mut paths: Vec<_> = listing
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "crt"))
        .collect();
    paths.sort();
    for path in paths {
        let bad = |why: String| {
            Error::registry(format!(
                "cannot use CA certificate {}: {why}",
                path.display()
            ))
            .hint("it must be a PEM file of CA certificates")
        };
        let pem = std::fs::read(&path).map_err(|error| bad(error.to_string()))?;
        let found =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| bad(error.to_string()))?;
        if found.is_empty() {
            return Err(bad("it holds no certificate".to_owned()));
        }
        certificates.extend(found);
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_named_hosts_may_use_plain_http() {
        let insecure = vec!["registry.internal:5000".to_owned()];
        for host in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:80",
            "[::1]:5000",
            "127.8.9.1",
        ] {
            assert!(allows_plain_http(host, &[]), "{host}");
        }
        assert!(allows_plain_http("registry.internal:5000", &insecure));
        for host in [
            "registry.internal",
            "public.ecr.aws",
            "10.0.0.1:5000",
            "localhost.evil.com",
        ] {
            assert!(!allows_plain_http(host, &insecure), "{host}");
        }
    }

    #[test]
    fn tls_hints_say_what_is_wrong_with_the_certificate() {
        let host = "registry.internal:5000";
        let hint = |description| tls_hint(host, description);
        assert!(
            hint("invalid peer certificate: certificate not valid for name \"x\"")
                .contains("does not name")
        );
        assert!(hint("invalid peer certificate: Expired").contains("has expired"));
        assert!(
            hint("received corrupt message of type InvalidContentType")
                .contains("--insecure-registry registry.internal:5000")
        );
        assert!(
            hint("invalid peer certificate: UnknownIssuer")
                .contains("certs.d/registry.internal:5000/ca.crt")
        );
    }

    /// A registry that speaks only plain HTTP, asked over HTTPS, is named as such (loopback
    /// only here, but the description is the same for any host).
    #[test]
    fn plain_http_answer_to_https_gets_the_insecure_registry_hint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for mut stream in listener.incoming().flatten() {
                let _ = stream.read(&mut [0u8; 1024]);
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let http = build_http_client("127.0.0.1").unwrap();
        let error = http
            .get(format!("https://127.0.0.1:{port}/v2/"))
            .send()
            .unwrap_err();
        let description = describe_transport_error(&error);
        assert!(answered_in_plain_http(&description), "{description}");
        assert!(tls_hint("127.0.0.1:1", &description).contains("--insecure-registry"));
    }
}
