//! A scriptable fake registry for hostile-input tests, on the small HTTP server of
//! `support/registries/http.rs`: it speaks just enough of the distribution API (`GET /v2/`, manifests by
//! tag or digest, blobs by digest) to serve the fixture base, and lets a test replace any
//! document with something a real registry would never send: an oversized manifest, a config
//! over the limit, invalid JSON, unknown media types, a document under the wrong digest, a
//! blob redirected to another host.
//!
//! `GET /token` answers an anonymous bearer token, so a second fake can be the token service
//! a first one's challenge names. Every request is recorded with whether it carried `Authorization`, so tests can check what
//! was (not) sent. It is not a registry: nothing can be pushed to it (uploads get `405`).
//! Shared by `hostile_input.rs` and `secrets.rs`, each using part of it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::http::{HttpServer, Reply, Request, Response};
use crate::support::{self, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, fixtures};

/// The token `GET /token` hands out to anyone.
pub const ANONYMOUS_TOKEN: &str = "fake-anonymous-token";

/// The repository the fixture base is served under.
pub const BASE_REPOSITORY: &str = "lambda/base";

/// One request the fake registry got.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A document served at `/v2/REPO/manifests/REF`.
#[derive(Clone)]
struct Served {
    media_type: String,
    body: Vec<u8>,
    /// The `Docker-Content-Digest` header; None leaves it out.
    digest_header: Option<String>,
}

#[derive(Default)]
struct State {
    manifests: Mutex<HashMap<String, Served>>,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    /// `WWW-Authenticate` for requests without `Authorization`.
    challenge: Mutex<Option<String>>,
    /// Blob GETs are answered `307` to this base URL plus the same path.
    redirect_blobs_to: Mutex<Option<String>>,
    seen: Mutex<Vec<SeenRequest>>,
}

/// A running fake registry on `127.0.0.1`; stopped on drop.
pub struct FakeRegistry {
    server: HttpServer,
    state: Arc<State>,
}

impl FakeRegistry {
    /// Serves nothing yet: every manifest and blob is `404`.
    pub fn empty() -> FakeRegistry {
        let state = Arc::new(State::default());
        let handler_state = Arc::clone(&state);
        let server = HttpServer::start(
            "fake-registry",
            Arc::new(move |request: &Request| Reply::Send(handler_state.handle(request))),
        );
        FakeRegistry { server, state }
    }

    /// Serves the fixture base as `lambda/base:al2023` (the index) plus every blob of it.
    pub fn serving_base() -> FakeRegistry {
        let registry = FakeRegistry::empty();
        let layout = &fixtures().base_layout;
        for entry in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            let digest = format!("sha256:{}", entry.file_name().to_string_lossy());
            registry.add_blob(&digest, std::fs::read(entry.path()).unwrap());
        }
        let index = support::read_blob(layout, &fixtures().base_digest);
        registry.add_manifest("al2023", MEDIA_TYPE_INDEX, index);
        for digest in fixtures().base_manifests.values() {
            let manifest = support::read_blob(layout, digest);
            registry.add_manifest(digest, MEDIA_TYPE_MANIFEST, manifest);
        }
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port())
    }

    /// Serves `body` as manifest `reference` (a tag or a digest), with a correct
    /// `Docker-Content-Digest`.
    pub fn add_manifest(&self, reference: &str, media_type: &str, body: Vec<u8>) {
        let digest = format!("sha256:{}", support::sha256_hex(&body));
        self.add_manifest_claiming(reference, media_type, body, Some(digest));
    }

    /// Like [`Self::add_manifest`], with any `Docker-Content-Digest` (None: no header).
    pub fn add_manifest_claiming(
        &self,
        reference: &str,
        media_type: &str,
        body: Vec<u8>,
        digest_header: Option<String>,
    ) {
        self.state.manifests.lock().unwrap().insert(
            reference.to_owned(),
            Served {
                media_type: media_type.to_owned(),
                body,
                digest_header,
            },
        );
    }

    /// Serves `body` as the blob `digest` (whether or not it is its digest).
    pub fn add_blob(&self, digest: &str, body: Vec<u8>) {
        self.state
            .blobs
            .lock()
            .unwrap()
            .insert(digest.to_owned(), body);
    }

    /// Adds `body` as a blob under its own digest; returns its descriptor.
    pub fn add_json_blob(&self, media_type: &str, body: &[u8]) -> Value {
        let digest = format!("sha256:{}", support::sha256_hex(body));
        self.add_blob(&digest, body.to_vec());
        json!({"mediaType": media_type, "digest": digest, "size": body.len()})
    }

    /// Asks for credentials: requests without `Authorization` get `401` with this challenge.
    pub fn challenge(&self, www_authenticate: &str) {
        *self.state.challenge.lock().unwrap() = Some(www_authenticate.to_owned());
    }

    /// Redirects every blob GET to `url` (`http://HOST:PORT`) plus the same path.
    pub fn redirect_blobs_to(&self, url: &str) {
        *self.state.redirect_blobs_to.lock().unwrap() = Some(url.to_owned());
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The fixture's amd64 manifest, parsed (to derive hostile variants from).
    pub fn fixture_manifest(architecture: &str) -> Value {
        let f = fixtures();
        support::read_blob_json(&f.base_layout, &f.base_manifests[architecture])
    }

    /// The fixture's blob `digest`.
    pub fn fixture_blob(digest: &str) -> Vec<u8> {
        support::read_blob(Path::new(&fixtures().base_layout), digest)
    }

    /// Serves `manifest` (JSON) as tag `tag`, with the OCI manifest media type.
    pub fn add_manifest_json(&self, tag: &str, manifest: &Value) {
        self.add_manifest(tag, MEDIA_TYPE_MANIFEST, support::to_json_bytes(manifest));
    }
}

impl State {
    fn handle(&self, request: &Request) -> Response {
        let authorization = request.header("Authorization").map(str::to_owned);
        self.seen.lock().unwrap().push(SeenRequest {
            method: request.method.clone(),
            path: request.path().to_owned(),
            authorization: authorization.clone(),
        });
        if request.path() == "/token" {
            // A token service handing anyone an anonymous token, as public registries do.
            return Response::json(200, &json!({"token": ANONYMOUS_TOKEN}));
        }
        if authorization.is_none()
            && let Some(challenge) = self.challenge.lock().unwrap().clone()
        {
            return error(401, "UNAUTHORIZED", "authentication required")
                .with_header("WWW-Authenticate", &challenge);
        }
        let path = request.path();
        if path == "/v2/" {
            return Response::json(200, &json!({}));
        }
        if !matches!(request.method.as_str(), "GET" | "HEAD") {
            return error(405, "UNSUPPORTED", "this fake registry takes no pushes");
        }
        let Some(rest) = path.strip_prefix(&format!("/v2/{BASE_REPOSITORY}/")) else {
            return error(404, "NAME_UNKNOWN", "repository name not known to registry");
        };
        if let Some(reference) = rest.strip_prefix("manifests/") {
            let Some(served) = self.manifests.lock().unwrap().get(reference).cloned() else {
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
            };
            let mut response = Response::new(200)
                .with_header("Content-Type", &served.media_type)
                .with_body(served.body);
            if let Some(digest) = &served.digest_header {
                response = response.with_header("Docker-Content-Digest", digest);
            }
            return response;
        }
        if let Some(digest) = rest.strip_prefix("blobs/") {
            if let Some(target) = self.redirect_blobs_to.lock().unwrap().clone() {
                return Response::new(307).with_header("Location", &format!("{target}{path}"));
            }
            return match self.blobs.lock().unwrap().get(digest) {
                Some(body) => Response::new(200)
                    .with_header("Content-Type", "application/octet-stream")
                    .with_header("Docker-Content-Digest", digest)
                    .with_body(body.clone()),
                None => error(404, "BLOB_UNKNOWN", "blob unknown to registry"),
            };
        }
        error(404, "NAME_UNKNOWN", "unknown path")
    }
}

/// A distribution-style JSON error.
fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
    )
}
