//! The request handling of [`super::proxy::TestProxy`]: forwarding to the upstream registry,
//! rewriting `Location`, and the faults and redirects its [`ProxyBehaviour`] asks for (see the
//! module docs of [`super::proxy`] for what each does). Not here: starting and querying the
//! proxy ([`super::proxy`]).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::json;

use super::body_faults;
use super::http::{Cutoff, Reply, Request, Response};
use super::proxy::{Arrival, HeldGet, HeldPut, ProxyBehaviour, RedirectedRequest};

/// What the proxy knows and records, shared by its listeners.
pub(super) struct State {
    /// The upstream URL without a trailing slash.
    pub(super) upstream: String,
    pub(super) behaviour: ProxyBehaviour,
    pub(super) client: reqwest::blocking::Client,
    /// `http://127.0.0.1:PORT`, set right after the front listener is bound.
    pub(super) own_url: OnceLock<String>,
    /// `http://localhost:PORT2` (`RedirectBlobs` only).
    pub(super) redirect_url: OnceLock<String>,
    pub(super) requests: Mutex<Vec<(String, String, u16)>>,
    pub(super) injected: Mutex<usize>,
    pub(super) redirected: Mutex<Vec<RedirectedRequest>>,
    /// The manifest `PUT`s held (`HoldManifestPuts`).
    pub(super) held: Mutex<Vec<HeldPut>>,
    /// Every request whole, as received ([`Arrival`]).
    pub(super) arrivals: Mutex<Vec<Arrival>>,
    /// Blobs the redirect target serves, by path.
    pub(super) blobs: Mutex<HashMap<String, RedirectedBlob>>,
    /// What `HoldBaseGets` held.
    pub(super) held_gets: Mutex<Vec<HeldGet>>,
}

/// A blob the redirect target serves: its upstream `Content-Type` and bytes.
#[derive(Clone)]
pub(super) struct RedirectedBlob {
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
}

impl State {
    pub(super) fn handle(&self, request: &Request) -> Reply {
        let line = format!("{} {}", request.method, request.target);
        let path = request.path();
        let is_blob_get = request.method == "GET"
            && path.contains("/blobs/sha256:")
            && !path.contains("/blobs/uploads/");
        let reply = match &self.behaviour {
            ProxyBehaviour::Fail {
                status,
                times,
                path_contains,
                retry_after,
            } if line.contains(path_contains.as_str()) && self.inject(*times) => {
                let mut response = Response::json(
                    *status,
                    &json!({ "errors": [{
                        "code": error_code(*status),
                        "message": format!("injected by the test proxy: {line}"),
                    }] }),
                );
                if let Some(seconds) = retry_after {
                    response = response.with_header("Retry-After", &seconds.to_string());
                }
                Reply::Send(response)
            }
            ProxyBehaviour::ResetConnection {
                times,
                path_contains,
            } if line.contains(path_contains.as_str()) && self.inject(*times) => Reply::Reset,
            ProxyBehaviour::Answer {
                status,
                body,
                times,
                path_contains,
            } if line.contains(path_contains.as_str()) && self.inject(*times) => Reply::Send(
                Response::new(*status)
                    .with_header("Content-Type", "application/json; charset=utf-8")
                    .with_body(body.clone().into_bytes()),
            ),
            ProxyBehaviour::CorruptBlob { digest_hex }
                if is_blob_get && path.ends_with(&format!("/blobs/sha256:{digest_hex}")) =>
            {
                let mut response = self.forward(request);
                if response.status == 200 && !response.body.is_empty() {
                    let middle = response.body.len() / 2;
                    response.body[middle] ^= 0xff;
                }
                Reply::Send(response)
            }
            ProxyBehaviour::RedirectBlobs if is_blob_get => {
                let response = self.forward(request);
                if response.status == 200 {
                    let blob = RedirectedBlob {
                        content_type: response.header("Content-Type").map(str::to_string),
                        body: response.body,
                    };
                    self.blobs.lock().unwrap().insert(path.to_string(), blob);
                    let location = format!("{}{path}", self.redirect_url.get().unwrap());
                    Reply::Send(Response::new(307).with_header("Location", &location))
                } else {
                    Reply::Send(response)
                }
            }
            ProxyBehaviour::BreakBody {
                fault,
                times,
                path_contains,
                min_body,
            } if line.contains(path_contains.as_str()) => body_faults::answer(
                *fault,
                request,
                *min_body,
                || self.inject(*times),
                |r| self.forward(r),
            ),
            ProxyBehaviour::RedirectUploads { .. } if path.contains("/blobs/uploads/") => {
                if request.method == "POST" && path.ends_with("/blobs/uploads/") {
                    let location =
                        format!("{}{}", self.redirect_url.get().unwrap(), request.target);
                    Reply::Send(Response::new(307).with_header("Location", &location))
                } else {
                    Reply::Send(Response::json(
                        404,
                        &json!({ "errors": [{
                            "code": "BLOB_UPLOAD_UNKNOWN",
                            "message": "blob upload unknown to registry",
                        }] }),
                    ))
                }
            }
            ProxyBehaviour::RefuseManifestTypes {
                status,
                content_type_prefix,
            } if request.method == "PUT"
                && path.contains("/manifests/")
                && request
                    .header("Content-Type")
                    .is_some_and(|value| value.starts_with(content_type_prefix.as_str())) =>
            {
                self.inject(usize::MAX);
                Reply::Send(Response::json(
                    *status,
                    &json!({ "errors": [{
                        "code": "MANIFEST_INVALID",
                        "message": "manifest invalid",
                        "detail": "manifest media type not supported by this registry",
                    }] }),
                ))
            }
            ProxyBehaviour::RefuseMounts
                if request.method == "POST" && request.target.contains("mount=") =>
            {
                self.inject(usize::MAX);
                let mut plain = request.clone();
                plain.target = path.to_string();
                Reply::Send(self.forward(&plain))
            }
            ProxyBehaviour::HoldManifestPuts { millis }
                if request.method == "PUT" && path.contains("/manifests/") =>
            {
                let received = std::time::Instant::now();
                std::thread::sleep(std::time::Duration::from_millis(*millis));
                let response = self.forward(request);
                self.held.lock().unwrap().push(HeldPut {
                    target: request.target.clone(),
                    received,
                    answered: std::time::Instant::now(),
                });
                Reply::Send(response)
            }
            ProxyBehaviour::HoldBaseGets {
                millis,
                path_contains,
            } if request.method == "GET"
                && (path.contains("/manifests/sha256:") || is_blob_get)
                && request.target.contains(path_contains.as_str()) =>
            {
                let received = std::time::Instant::now();
                let response = self.forward(request);
                std::thread::sleep(std::time::Duration::from_millis(*millis));
                self.held_gets.lock().unwrap().push(HeldGet {
                    target: request.target.clone(),
                    received,
                    answered: std::time::Instant::now(),
                });
                Reply::Send(response)
            }
            ProxyBehaviour::ReplaceStatus {
                path_contains,
                status,
            } if line.contains(path_contains.as_str()) => {
                let mut response = self.forward(request);
                response.status = *status;
                *self.injected.lock().unwrap() += 1;
                Reply::Send(response)
            }
            _ => Reply::Send(self.forward(request)),
        };
        let status = match &reply {
            Reply::Send(response) => response.status,
            Reply::Reset | Reply::Partial { .. } => 0,
        };
        self.requests.lock().unwrap().push((
            request.method.clone(),
            request.target.clone(),
            status,
        ));
        self.arrivals.lock().unwrap().push(Arrival {
            method: request.method.clone(),
            target: request.target.clone(),
            headers_at: request.headers_at,
            chunked: request.chunked,
            body_bytes: request.body.len(),
            status,
        });
        reply
    }

    /// The body gate: breaks a matching upload off half-way (`BreakBody` upload faults).
    pub(super) fn break_upload(
        &self,
        method: &str,
        target: &str,
        length: Option<usize>,
    ) -> Option<(usize, Cutoff)> {
        let ProxyBehaviour::BreakBody {
            fault,
            times,
            path_contains,
            min_body,
        } = &self.behaviour
        else {
            return None;
        };
        let cutoff = fault.upload_cutoff()?;
        let length = length?;
        let matches = format!("{method} {target}").contains(path_contains.as_str());
        if !matches || length < *min_body || !self.inject(*times) {
            return None;
        }
        self.requests
            .lock()
            .unwrap()
            .push((method.to_string(), target.to_string(), 0));
        Some((length / 2, cutoff))
    }

    /// Counts one more injection if fewer than `times` were made.
    fn inject(&self, times: usize) -> bool {
        let mut injected = self.injected.lock().unwrap();
        if *injected < times {
            *injected += 1;
            true
        } else {
            false
        }
    }

    /// The upstream's answer to `request`, or a 502 saying why there is none. A `Location` at
    /// the upstream is rewritten to the host the client named in `Host` (as distribution builds
    /// its absolute URLs from the request's `Host`), so a client that reaches the proxy by a
    /// host name gets upload URLs on that same name.
    fn forward(&self, request: &Request) -> Response {
        let public_url = match request.header("Host") {
            Some(host) => format!("http://{host}"),
            None => self.own_url.get().unwrap().clone(),
        };
        self.forward_as(request, &public_url)
    }

    /// [`State::forward`], with a `Location` at the upstream rewritten to `public_url`.
    fn forward_as(&self, request: &Request, public_url: &str) -> Response {
        match self.try_forward(request, public_url) {
            Ok(response) => response,
            Err(e) => Response::new(502)
                .with_header("Content-Type", "text/plain")
                .with_body(format!("test proxy: upstream {}: {e}\n", self.upstream).into_bytes()),
        }
    }

    fn try_forward(&self, request: &Request, own_url: &str) -> Result<Response, String> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| format!("method {:?}: {e}", request.method))?;
        let bodiless = method == reqwest::Method::GET || method == reqwest::Method::HEAD;
        let mut builder = self
            .client
            .request(method, format!("{}{}", self.upstream, request.target));
        for (name, value) in &request.headers {
            if !is_hop_by_hop(name)
                && !name.eq_ignore_ascii_case("Host")
                && !name.eq_ignore_ascii_case("Content-Length")
            {
                builder = builder.header(name.as_str(), value.as_str());
            }
        }
        if request.has_body || !bodiless {
            builder = builder.body(request.body.clone());
        }
        let upstream = builder.send().map_err(|e| error_chain(&e))?;
        let status = upstream.status().as_u16();
        let headers = upstream
            .headers()
            .iter()
            .filter(|(name, _)| !is_hop_by_hop(name.as_str()))
            .map(|(name, value)| {
                let mut value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                if name == reqwest::header::LOCATION
                    && let Some(rest) = value.strip_prefix(&self.upstream)
                {
                    value = format!("{own_url}{rest}");
                }
                (name.as_str().to_string(), value)
            })
            .collect();
        let body = upstream.bytes().map_err(|e| error_chain(&e))?.to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// The upload host of `RedirectUploads`: forwards to the upstream, with its own credentials
    /// when it has them, and records what it got.
    pub(super) fn serve_upload(
        &self,
        request: &Request,
        credentials: Option<&(String, String)>,
    ) -> Response {
        let had_authorization = request.header("Authorization").is_some();
        let mut forwarded = request.clone();
        if let Some((user, password)) = credentials {
            use base64::Engine as _;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            forwarded
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case("Authorization"));
            forwarded
                .headers
                .push(("Authorization".to_string(), format!("Basic {encoded}")));
        }
        let response = self.forward_as(&forwarded, self.redirect_url.get().unwrap());
        self.redirected.lock().unwrap().push(RedirectedRequest {
            method: request.method.clone(),
            path: request.path().to_string(),
            had_authorization,
            status: response.status,
        });
        response
    }

    /// The redirect target of `RedirectBlobs`: serves what the proxy stored under the path.
    pub(super) fn serve_redirected(&self, request: &Request) -> Response {
        let path = request.path().to_string();
        let blob = self.blobs.lock().unwrap().get(&path).cloned();
        let response = match blob {
            Some(blob) if request.method == "GET" || request.method == "HEAD" => {
                let content_type = blob.content_type.as_deref();
                Response::new(200)
                    .with_header(
                        "Content-Type",
                        content_type.unwrap_or("application/octet-stream"),
                    )
                    .with_body(blob.body)
            }
            _ => Response::new(404).with_body(b"not a redirected blob\n".to_vec()),
        };
        self.redirected.lock().unwrap().push(RedirectedRequest {
            method: request.method.clone(),
            path,
            had_authorization: request.header("Authorization").is_some(),
            status: response.status,
        });
        response
    }
}

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1), plus the
/// framing ones the proxy redoes.
fn is_hop_by_hop(name: &str) -> bool {
    [
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Expect",
    ]
    .iter()
    .any(|hop| name.eq_ignore_ascii_case(hop))
}

/// The distribution error code for an injected status.
fn error_code(status: u16) -> &'static str {
    match status {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NAME_UNKNOWN",
        429 => "TOOMANYREQUESTS",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
