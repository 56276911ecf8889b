//! A misbehaving reverse proxy in front of a plain-HTTP [`super::registry::TestRegistry`],
//! for testing how a registry client copes with corrupt blobs, redirects, transient
//! failures and dropped connections.
//!
//! ```ignore
//! let registry = TestRegistry::start(RegistryOptions::default());
//! let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::Fail {
//!     status: 503, times: 1, path_contains: "PUT /v2/fn/manifests/".into(), retry_after: Some(1),
//! });
//! // push to proxy.reference("fn:v1") …
//! assert_eq!(proxy.injected(), 1);
//! ```
//!
//! [`TestProxy::start`] listens on a free `127.0.0.1` port (plain HTTP, keep-alive, see
//! [`super::http`]) and forwards every request — method, request-target, headers except
//! `Host` and the hop-by-hop ones, body — to the upstream with a blocking reqwest client that
//! follows no redirect, then sends the upstream's answer back with its status, headers and
//! body (always with a `Content-Length`, so chunked upstream answers are re-framed). A
//! `Location` that points at the upstream (distribution's upload URLs are absolute) is
//! rewritten to point at the proxy, so uploads keep going through it; relative ones are
//! kept. Bodies are buffered whole (fine for test images). When the upstream cannot be
//! reached the client gets a `502` with the error in its body.
//!
//! [`ProxyBehaviour`] says what to do besides forwarding:
//!
//! * `PassThrough`: nothing.
//! * `CorruptBlob { digest_hex }`: a successful `GET …/blobs/sha256:<digest_hex>` gets its
//!   middle byte inverted; length and headers (`Docker-Content-Digest` included) are kept.
//! * `RedirectBlobs`: a `GET …/blobs/sha256:<hex>` is fetched from the upstream (with the
//!   client's headers, so with its credentials); if that gives 200, the client gets
//!   `307 Temporary Redirect` to `http://localhost:<port2><same path>`, where a second
//!   listener (bound to `127.0.0.1`, but *another host* by name, like a storage bucket)
//!   serves the bytes, to any client, with only `Content-Type`. It records whether each
//!   request it gets carries `Authorization` ([`TestProxy::redirected_requests`]). Other
//!   answers (401, 404) are passed through.
//! * `Fail { status, times, path_contains, retry_after }`: the first `times` requests whose
//!   `"METHOD request-target"` contains `path_contains` (so `"/manifests/"` matches any method,
//!   `"PUT /v2/fn/manifests/"` only pushes) are answered with `status`, a registry-style JSON
//!   error body and `Retry-After: <retry_after>` if given, without reaching the upstream.
//! * `Answer { status, body, times, path_contains }`: like `Fail`, but the answer's JSON body is
//!   `body` as given (for the error answers of a particular registry, such as ECR's), with no
//!   `Retry-After`.
//! * `ResetConnection { times, path_contains }`: the first `times` matching requests are read
//!   whole, then their connection is closed with a TCP reset instead of an answer (the client
//!   sees "connection reset by peer").
//!
//! * `BreakBody { fault, times, path_contains, min_body }`: the first `times` matching requests
//!   whose body (the request's for upload faults, the upstream's answer's for download faults)
//!   (a `200` or `206` one) has at least `min_body` bytes get `fault`: broken off half-way by a reset, a close or
//!   silence, or changed in transit (see [`super::body_faults::BodyFault`]). Counted as
//!   injections; recorded with status 0 when broken off.
//! * `RedirectUploads { upload_credentials }`: an upload service on another host behind this
//!   front end. A `POST …/blobs/uploads/` (with any query) gets `307 Temporary Redirect` to
//!   `http://localhost:<port2><same request-target>`; any other request for an upload session
//!   (`…/blobs/uploads/<id>`) gets `404 BLOB_UPLOAD_UNKNOWN`, as the front end knows no
//!   sessions. The second listener forwards everything to the upstream, with the client's
//!   `Authorization` replaced by Basic `upload_credentials` when given (a service account of
//!   its own) and kept otherwise, and rewrites a `Location` pointing at the upstream to
//!   itself (a relative one is kept). It records each request as
//!   [`TestProxy::redirected_requests`] does for `RedirectBlobs`.
//! * `RefuseManifestTypes { status, content_type_prefix }`: a `PUT …/manifests/…` whose
//!   `Content-Type` starts with `content_type_prefix` gets `status` with distribution's
//!   `MANIFEST_INVALID` error, as registries that store only one family of manifests answer,
//!   without reaching the upstream. Counted as injections.
//! * `RefuseMounts`: a cross-repository mount (`POST …/blobs/uploads/?mount=…&from=…`) is
//!   forwarded without its query, so the registry opens an ordinary upload session and answers
//!   `202` with its `Location`, as ECR does when blob mounting is off. Counted as injections.
//!
//! * `HoldBaseGets { millis, path_contains }`: a `GET` of a manifest or blob by digest
//!   (`…/manifests/sha256:…`, `…/blobs/sha256:…`) whose request-target contains
//!   `path_contains` is forwarded, and its answer held `millis` before it is sent; each is
//!   recorded with the instants it arrived and was answered ([`TestProxy::held_gets`]), so a
//!   test can tell requests sent one after another from requests sent together.
//!
//! [`TestProxy::requests`] lists every request as `(method, request-target, status)`, with
//! status 0 for reset or broken-off connections; [`TestProxy::injected`] counts the `Fail`, `Answer`,
//! `ResetConnection` and `BreakBody` injections.

use std::sync::{Arc, Mutex, OnceLock};

use super::body_faults::BodyFault;
use super::http::{HttpServer, Reply, Request};
use super::proxy_handler::State;

/// What the proxy does besides forwarding (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyBehaviour {
    PassThrough,
    CorruptBlob {
        digest_hex: String,
    },
    RedirectBlobs,
    Fail {
        status: u16,
        times: usize,
        path_contains: String,
        retry_after: Option<u64>,
    },
    ResetConnection {
        times: usize,
        path_contains: String,
    },
    Answer {
        status: u16,
        body: String,
        times: usize,
        path_contains: String,
    },
    RefuseMounts,
    RedirectUploads {
        upload_credentials: Option<(String, String)>,
    },
    RefuseManifestTypes {
        status: u16,
        content_type_prefix: String,
    },
    BreakBody {
        fault: BodyFault,
        times: usize,
        path_contains: String,
        min_body: usize,
    },
    /// Holds every manifest `PUT` for `millis` before forwarding it, and records when each was
    /// received and answered ([`TestProxy::manifest_puts`]), so a test can see which overlapped.
    HoldManifestPuts {
        millis: u64,
    },
    /// Forwards every request whose `"METHOD request-target"` contains `path_contains`, and
    /// gives the client the upstream's answer with its status replaced by `status` (ECR answers
    /// an upload's `PATCH` with `201 Created` where the spec says `202 Accepted`). Counted as
    /// injections.
    ReplaceStatus {
        path_contains: String,
        status: u16,
    },
    HoldBaseGets {
        millis: u64,
        path_contains: String,
    },
}

/// A request the proxy received whole: when its headers arrived (before its body was read), how
/// its body was framed and how long it was, and the status it got (0: the connection was reset).
#[derive(Debug, Clone)]
pub struct Arrival {
    pub method: String,
    pub target: String,
    pub headers_at: std::time::SystemTime,
    pub chunked: bool,
    pub body_bytes: usize,
    pub status: u16,
}

/// A manifest `PUT` the proxy held (`HoldManifestPuts`): its target and when it was received and
/// answered.
#[derive(Debug, Clone)]
pub struct HeldPut {
    pub target: String,
    pub received: std::time::Instant,
    pub answered: std::time::Instant,
}

impl HeldPut {
    /// Whether the two were in flight at the same time.
    pub fn overlaps(&self, other: &HeldPut) -> bool {
        self.received < other.answered && other.received < self.answered
    }
}

/// A `GET` that `HoldBaseGets` held: when it arrived, and when its answer (got from the
/// upstream at once, then held) started back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldGet {
    /// The request-target, `/v2/<repo>/manifests/sha256:<hex>` or `/v2/<repo>/blobs/sha256:<hex>`.
    pub target: String,
    pub received: std::time::Instant,
    pub answered: std::time::Instant,
}

/// A request the redirect target (`RedirectBlobs`) got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectedRequest {
    pub method: String,
    /// The path, `/v2/<repo>/blobs/sha256:<hex>` (`RedirectUploads`: any path it got).
    pub path: String,
    /// Whether the request carried an `Authorization` header.
    pub had_authorization: bool,
    /// The status answered (200, or 404 for a blob the proxy did not redirect to).
    pub status: u16,
}

/// A running proxy; stopped on drop.
pub struct TestProxy {
    front: HttpServer,
    /// The redirect target of `RedirectBlobs`.
    second: Option<HttpServer>,
    state: Arc<State>,
}

impl TestProxy {
    /// Starts a proxy to `upstream_url` (`http://HOST:PORT`) on a free `127.0.0.1` port.
    pub fn start(upstream_url: &str, behaviour: ProxyBehaviour) -> TestProxy {
        assert!(
            upstream_url.starts_with("http://"),
            "TestProxy forwards to plain-HTTP upstreams only, not {upstream_url}"
        );
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(None)
            .build()
            .expect("building the proxy's upstream client");
        let state = Arc::new(State {
            upstream: upstream_url.trim_end_matches('/').to_string(),
            behaviour,
            client,
            own_url: OnceLock::new(),
            redirect_url: OnceLock::new(),
            requests: Mutex::default(),
            injected: Mutex::new(0),
            redirected: Mutex::default(),
            held: Mutex::default(),
            arrivals: Mutex::default(),
            blobs: Mutex::default(),
            held_gets: Mutex::default(),
        });
        let second = matches!(
            state.behaviour,
            ProxyBehaviour::RedirectBlobs | ProxyBehaviour::RedirectUploads { .. }
        )
        .then(|| {
            let handler_state = Arc::clone(&state);
            let server = HttpServer::start(
                "proxy-redirect",
                Arc::new(move |request: &Request| {
                    Reply::Send(match &handler_state.behaviour {
                        ProxyBehaviour::RedirectUploads { upload_credentials } => {
                            handler_state.serve_upload(request, upload_credentials.as_ref())
                        }
                        _ => handler_state.serve_redirected(request),
                    })
                }),
            );
            let _ = state
                .redirect_url
                .set(format!("http://localhost:{}", server.port()));
            server
        });
        let handler_state = Arc::clone(&state);
        let gate_state = Arc::clone(&state);
        let front = HttpServer::start_with_gate(
            "proxy",
            Arc::new(move |method: &str, target: &str, length: Option<usize>| {
                gate_state.break_upload(method, target, length)
            }),
            Arc::new(move |request: &Request| handler_state.handle(request)),
        );
        let _ = state
            .own_url
            .set(format!("http://127.0.0.1:{}", front.port()));
        TestProxy {
            front,
            second,
            state,
        }
    }

    /// `127.0.0.1:PORT`, the registry part of image references through the proxy.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.front.port())
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.front.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `HOST/REPOSITORY:TAG` through the proxy.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host())
    }

    /// The upstream it forwards to.
    pub fn upstream(&self) -> &str {
        &self.state.upstream
    }

    /// `localhost:PORT2`, the host blobs or uploads are redirected to (`RedirectBlobs`,
    /// `RedirectUploads`).
    pub fn redirect_host(&self) -> Option<String> {
        self.second
            .as_ref()
            .map(|server| format!("localhost:{}", server.port()))
    }

    /// Every request so far as `(method, request-target, status)`, oldest first; status 0
    /// means the connection was reset instead.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many requests so far had method `method` and a request-target containing
    /// `path_contains`.
    /// Every request received whole so far, oldest answer first ([`Arrival`]).
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// The manifest `PUT`s held by `HoldManifestPuts`, in the order they were answered.
    pub fn manifest_puts(&self) -> Vec<HeldPut> {
        self.state.held.lock().unwrap().clone()
    }

    pub fn count_requests(&self, method: &str, path_contains: &str) -> usize {
        self.requests()
            .iter()
            .filter(|(m, target, _)| m == method && target.contains(path_contains))
            .count()
    }

    /// How many failures (`Fail`) or resets (`ResetConnection`) were injected so far.
    pub fn injected(&self) -> usize {
        *self.state.injected.lock().unwrap()
    }

    /// The requests the redirect target got so far (`RedirectBlobs`), oldest first.
    pub fn redirected_requests(&self) -> Vec<RedirectedRequest> {
        self.state.redirected.lock().unwrap().clone()
    }

    /// The `GET`s `HoldBaseGets` held so far, in the order they were answered.
    pub fn held_gets(&self) -> Vec<HeldGet> {
        self.state.held_gets.lock().unwrap().clone()
    }

    /// skopeo flags for this plain-HTTP proxy; `prefix` is `"dest-"`, `"src-"` or `""`.
    /// `creds: None` gives `--…no-creds`.
    pub fn skopeo_flags(&self, prefix: &str, creds: Option<(&str, &str)>) -> Vec<String> {
        let mut flags = vec![format!("--{prefix}tls-verify=false")];
        match creds {
            Some((user, password)) => flags.push(format!("--{prefix}creds={user}:{password}")),
            None => flags.push(format!("--{prefix}no-creds")),
        }
        flags
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- requests to the test proxy at {} ({:?}, upstream {}) ---\n{:#?}\n\
                 --- its redirect target got ---\n{:#?}",
                self.host(),
                self.state.behaviour,
                self.state.upstream,
                self.requests(),
                self.redirected_requests()
            );
        }
    }
}
