//! The token server behind [`super::registry::RegistryAuth::Token`]: an in-process HTTP
//! server on a free `127.0.0.1` port (plain HTTP, also when the registry serves TLS) that
//! issues the JWTs distribution's `auth: token:` access controller trusts.
//!
//! `GET /token?service=…&scope=repository:REPO:pull,push&scope=…&account=…` (the Docker
//! token protocol; a `scope` parameter may be repeated and may hold several
//! space-separated scopes):
//!
//! * with `Authorization: Basic` matching the configured user and password: a token granting
//!   every action of every scope asked for;
//! * with the Basic credentials of one of [`TokenServerConfig::namespace_users`]: every action,
//!   but only on repositories inside that user's namespace (`NS` and `NS/...`);
//! * with [`TokenServerConfig::first_scope_only`], only the first scope of a request is
//!   considered, the others ignored, as some Harbor versions do;
//! * with any other `Authorization`: `401` and no token;
//! * without `Authorization`: an anonymous token granting **nothing** (so anonymous clients
//!   get `401 insufficient_scope` from the registry, as with a private registry), or only
//!   the `pull` actions of `repository` scopes with [`TokenServerConfig::anonymous_pull`];
//! * a missing or unknown `service`: `400`. Other paths and methods (e.g. the OAuth2
//!   `POST /token`): `404`, on which Docker-style clients fall back to `GET`.
//!
//! The answer is `{"token", "access_token", "expires_in", "issued_at"}`; both token fields
//! hold the same JWT.
//!
//! [`TokenServer::fail_next`] makes the next requests fail with a status (and a `Retry-After`
//! given as is, seconds or an HTTP-date), as a token service under load does; they are
//! recorded like the others.
//!
//! # What distribution v2.8 checks (`registry/auth/token/token.go`)
//!
//! Compact JWS, header `{"typ":"JWT","alg":"ES256","x5c":[leaf DER, base64]}`: the `x5c`
//! leaf must verify against the `rootcertbundle` (here the self-signed signing certificate
//! itself) and its key must verify the signature (ES256: raw `r‖s`, 64 bytes). Claims:
//! `iss` must equal the configured issuer, `aud` the configured service (a **string**: an
//! array makes the token malformed), `exp` + 60 s and `nbf` − 60 s bound the current time
//! (`Leeway`, for clock skew), and `access` (`[{type, name, actions}]`) must contain every
//! action the request needs. `iat`, `jti` and `sub` are not checked (`sub` becomes the
//! user name in the registry's log).
//!
//! Because of that leeway, the server backdates `exp` by 60 s: a token's lifetime at the
//! registry is the configured TTL (rounded up to whole seconds, plus less than one second),
//! and `expires_in` says the same. With a short TTL `exp` is therefore *before* `iat`.
//! Tokens are opaque to clients, so that is invisible unless a client decodes them.
//! A TTL of 2 s or more leaves a client time to use a fresh token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use super::http::{HttpServer, Reply, Request, Response};

/// The registry's `service` (the `aud` of its tokens).
pub const TOKEN_SERVICE: &str = "lambda-image-test-registry";
/// The `iss` of the tokens.
pub const TOKEN_ISSUER: &str = "lambda-image-test-token-issuer";
/// Token lifetime when none is configured.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);
/// distribution's `Leeway` on `exp` and `nbf`.
pub const REGISTRY_LEEWAY_SECS: u64 = 60;

/// One request the token server got, in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET`, or what else was sent.
    pub method: String,
    /// The `scope` values, split at spaces, in order: `repository:fn:pull,push`.
    pub scopes: Vec<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// The `account` parameter.
    pub account: Option<String>,
    /// The user name of an `Authorization: Basic` header, whether or not it was accepted.
    pub user: Option<String>,
    /// Whether an `Authorization` header was sent and accepted (false: anonymous or refused).
    pub authenticated: bool,
    /// The status answered: 200 with a token, 401 bad credentials, 400, 404.
    pub status: u16,
    /// The scopes the token granted (`type:name:actions`, only those with actions left).
    pub granted: Vec<String>,
    /// When the request was received.
    pub received: Instant,
}

/// Failures to answer with instead of tokens ([`TokenServer::fail_next`]).
struct Fault {
    status: u16,
    remaining: usize,
    retry_after: Option<String>,
}

/// Who may get what.
#[derive(Debug, Clone)]
pub struct TokenServerConfig {
    pub user: String,
    pub password: String,
    /// Lifetime of the tokens at the registry (see the module docs).
    pub ttl: Duration,
    /// Anonymous tokens grant `pull` on repositories instead of nothing.
    pub anonymous_pull: bool,
    /// Grant only the first scope of a request (Harbor-like).
    pub first_scope_only: bool,
    /// More users, each limited to one namespace.
    pub namespace_users: Vec<NamespaceUser>,
}

/// A user of the token server who may do anything, but only inside one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceUser {
    pub user: String,
    pub password: String,
    /// `team-a`: repositories `team-a` and `team-a/...`.
    pub namespace: String,
}

/// The token-signing key and its self-signed certificate (made with the openssl CLI).
pub struct TokenSigner {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The P-256 private key, PKCS#8 DER.
    pub key_pkcs8_der: Vec<u8>,
}

/// A running token server; stopped on drop.
pub struct TokenServer {
    server: HttpServer,
    state: Arc<State>,
}

struct State {
    config: TokenServerConfig,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// `x5c` of every token header: the signing certificate, base64 (not URL-safe).
    x5c: String,
    requests: Mutex<Vec<TokenRequest>>,
    next_id: AtomicU64,
    fault: Mutex<Option<Fault>>,
}

impl TokenServer {
    /// Starts the server on a free `127.0.0.1` port.
    pub fn start(config: TokenServerConfig, signer: &TokenSigner) -> TokenServer {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &signer.key_pkcs8_der,
            &rng,
        )
        .unwrap_or_else(|e| panic!("ring rejects the token signing key: {e}"));
        let state = Arc::new(State {
            config,
            key,
            rng,
            x5c: STANDARD.encode(&signer.cert_der),
            requests: Mutex::default(),
            next_id: AtomicU64::new(1),
            fault: Mutex::default(),
        });
        let handler_state = Arc::clone(&state);
        let server = HttpServer::start(
            "token-server",
            Arc::new(move |request: &Request| Reply::Send(handler_state.handle(request))),
        );
        TokenServer { server, state }
    }

    /// The realm for the registry's challenge: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.port())
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Answers the next `times` requests with `status` (a registry-style JSON error) and, if
    /// given, `Retry-After: <retry_after>` exactly as given, instead of a token.
    pub fn fail_next(&self, status: u16, times: usize, retry_after: Option<&str>) {
        *self.state.fault.lock().unwrap() = Some(Fault {
            status,
            remaining: times,
            retry_after: retry_after.map(str::to_string),
        });
    }
}

impl State {
    fn handle(&self, request: &Request) -> Response {
        let url = reqwest::Url::parse(&format!("http://token-server{}", request.target));
        let mut record = TokenRequest {
            method: request.method.clone(),
            scopes: Vec::new(),
            service: None,
            account: None,
            user: None,
            authenticated: false,
            status: 0,
            granted: Vec::new(),
            received: Instant::now(),
        };
        let response = match (url, self.injected_fault()) {
            (_, Some(fault)) => fault,
            (Ok(url), None) => self.answer(request, &url, &mut record),
            (Err(e), None) => error(400, "INVALID_REQUEST", &format!("bad request-target: {e}")),
        };
        record.status = response.status;
        self.requests.lock().unwrap().push(record);
        response
    }

    /// The failure to answer with, if [`TokenServer::fail_next`] left one.
    fn injected_fault(&self) -> Option<Response> {
        let mut fault = self.fault.lock().unwrap();
        let current = fault.as_mut().filter(|fault| fault.remaining > 0)?;
        current.remaining -= 1;
        let code = if current.status == 429 {
            "TOOMANYREQUESTS"
        } else {
            "UNAVAILABLE"
        };
        let response = error(current.status, code, "injected by the test token server");
        Some(match &current.retry_after {
            Some(value) => response.with_header("Retry-After", value),
            None => response,
        })
    }

    fn answer(&self, request: &Request, url: &reqwest::Url, record: &mut TokenRequest) -> Response {
        for (name, value) in url.query_pairs() {
            match &*name {
                "scope" => record
                    .scopes
                    .extend(value.split_whitespace().map(str::to_string)),
                "service" => record.service = Some(value.into_owned()),
                "account" => record.account = Some(value.into_owned()),
                _ => {}
            }
        }
        if url.path() != "/token" || request.method != "GET" {
            return error(404, "NOT_FOUND", "only GET /token is served");
        }

        let mut namespace: Option<String> = None;
        match request.header("Authorization") {
            None => {}
            Some(authorization) => {
                let basic = authorization
                    .strip_prefix("Basic ")
                    .and_then(|b64| STANDARD.decode(b64.trim()).ok())
                    .and_then(|bytes| String::from_utf8(bytes).ok());
                let Some((user, password)) = basic.as_deref().and_then(|b| b.split_once(':'))
                else {
                    return unauthorized("only Basic credentials are accepted");
                };
                record.user = Some(user.to_string());
                if user == self.config.user && password == self.config.password {
                    record.authenticated = true;
                } else if let Some(limited) = self
                    .config
                    .namespace_users
                    .iter()
                    .find(|limited| limited.user == user && limited.password == password)
                {
                    record.authenticated = true;
                    namespace = Some(limited.namespace.clone());
                } else {
                    return unauthorized("invalid username or password");
                }
            }
        }

        if record.service.as_deref() != Some(TOKEN_SERVICE) {
            return error(
                400,
                "INVALID_REQUEST",
                &format!(
                    "service must be {TOKEN_SERVICE:?}, got {:?}",
                    record.service
                ),
            );
        }

        let considered = if self.config.first_scope_only {
            &record.scopes[..record.scopes.len().min(1)]
        } else {
            &record.scopes[..]
        };
        let access: Vec<Value> = considered
            .iter()
            .filter_map(|scope| self.grant(scope, record.authenticated, namespace.as_deref()))
            .collect();
        record.granted = access
            .iter()
            .map(|a| {
                let actions: Vec<&str> = a["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                format!(
                    "{}:{}:{}",
                    a["type"].as_str().unwrap(),
                    a["name"].as_str().unwrap(),
                    actions.join(",")
                )
            })
            .collect();

        let subject = if record.authenticated {
            self.config.user.as_str()
        } else {
            ""
        };
        let (token, now) = self.sign(subject, access);
        let ttl = ttl_secs(self.config.ttl);
        Response::json(
            200,
            &json!({
                "token": token,
                "access_token": token,
                "expires_in": ttl,
                "issued_at": humantime::format_rfc3339_seconds(now).to_string(),
            }),
        )
    }

    /// The `access` entry for `scope` (`type:name:actions`), or `None` when nothing of it is
    /// granted.
    fn grant(&self, scope: &str, authenticated: bool, namespace: Option<&str>) -> Option<Value> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        if let Some(namespace) = namespace {
            let inside = name == namespace || name.starts_with(&format!("{namespace}/"));
            if kind != "repository" || !inside {
                return None;
            }
        }
        let actions: Vec<&str> = actions
            .split(',')
            .filter(|action| {
                !action.is_empty()
                    && (authenticated
                        || (self.config.anonymous_pull
                            && kind == "repository"
                            && *action == "pull"))
            })
            .collect();
        (!actions.is_empty()).then(|| json!({ "type": kind, "name": name, "actions": actions }))
    }

    /// A signed JWT for `subject` with `access`, and the time it was issued.
    fn sign(&self, subject: &str, access: Vec<Value>) -> (String, SystemTime) {
        let now = SystemTime::now();
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap();
        let iat = since_epoch.as_secs();
        let now_ceil = iat + u64::from(since_epoch.subsec_nanos() > 0);
        // The registry accepts a token until exp + Leeway: backdate exp by the leeway.
        let exp = (now_ceil + ttl_secs(self.config.ttl)) as i64 - REGISTRY_LEEWAY_SECS as i64;
        let jti = format!(
            "{}-{}",
            std::process::id(),
            self.next_id.fetch_add(1, Ordering::SeqCst)
        );
        let header = json!({ "typ": "JWT", "alg": "ES256", "x5c": [self.x5c] });
        let claims = json!({
            "iss": TOKEN_ISSUER,
            "sub": subject,
            "aud": TOKEN_SERVICE,
            "exp": exp,
            "nbf": iat,
            "iat": iat,
            "jti": jti,
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("signing a token");
        (
            format!(
                "{signing_input}.{}",
                URL_SAFE_NO_PAD.encode(signature.as_ref())
            ),
            now,
        )
    }
}

/// Whole seconds, rounded up, at least 1.
fn ttl_secs(ttl: Duration) -> u64 {
    (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1)
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({ "errors": [{ "code": code, "message": message }] }),
    )
}

fn unauthorized(message: &str) -> Response {
    error(401, "UNAUTHORIZED", message).with_header(
        "WWW-Authenticate",
        "Basic realm=\"lambda-image-test-token\"",
    )
}
