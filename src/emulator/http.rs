//! The emulator's HTTP/1.1 server on a loopback port (tiny_http), and the plain request and
//! reply values the Runtime API and the invoke endpoint work with.
//!
//! Every request is read whole (bodies up to 6 MB; larger ones are flagged, not kept) and
//! answered on a thread of its own, because some answers take as long as they take: a
//! `GET /runtime/invocation/next` waits for the next event, an invocation for the function.
//! Routing is the caller's: one handler function sees every request.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;

use super::invocation::MAX_PAYLOAD_BYTES;
use crate::error::{Error, Result};

/// A request, read whole.
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, cut at 6 MB (see `body_too_large`).
    pub body: Vec<u8>,
    /// The body was larger than Lambda's 6 MB payload limit.
    pub body_too_large: bool,
}

impl IncomingRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A reply to send; `Content-Length` is added by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A reply with a JSON body (`Content-Type: application/json`).
    pub fn json(status: u16, body: &Value) -> Self {
        Self::new(status)
            .with_header("Content-Type", "application/json")
            .with_body(body.to_string().into_bytes())
    }

    /// `405 Method Not Allowed`, naming the method the path takes.
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(405)
            .with_header("Allow", allowed)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("method not allowed: use {allowed}\n").into_bytes())
    }

    /// `404 Not Found`, listing what the server does serve.
    pub fn not_found(served: &str) -> Self {
        Self::new(404)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("404 page not found; this server answers {served}\n").into_bytes())
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The first value of header `name` (case-insensitive).
    #[cfg(test)]
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Everything the server serves: one function from request to reply, called on many threads.
pub type RequestHandler = dyn Fn(&IncomingRequest) -> HttpReply + Send + Sync;

/// Binds `127.0.0.1:port` (`0`: a free port). Only loopback: the emulator trusts its callers.
pub fn bind_loopback(port: u16) -> Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|error| {
        let message = format!("cannot listen on 127.0.0.1:{port}: {error}");
        match error.kind() {
            std::io::ErrorKind::AddrInUse => Error::usage(message)
                .hint("another program uses that port: pick another one with --port"),
            std::io::ErrorKind::PermissionDenied => {
                Error::usage(message).hint("ports below 1024 need root: use --port 9000 or higher")
            }
            _ => Error::failure(message),
        }
    })
}

/// The running server. Dropping it stops accepting requests.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    accept_loop: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `listener` until dropped, answering each request with `handler`.
    pub fn start(listener: TcpListener, handler: Arc<RequestHandler>) -> Result<Self> {
        let address = listener.local_addr().map_err(|error| {
            Error::failure(format!("cannot read the listening address: {error}"))
        })?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|error| Error::failure(format!("cannot serve on {address}: {error}")))?;
        let server = Arc::new(server);
        let accept_loop = {
            let server = Arc::clone(&server);
            std::thread::Builder::new()
                .name("emulator-http".into())
                .spawn(move || accept_requests(&server, &handler))
                .map_err(|error| Error::failure(format!("cannot start the HTTP server: {error}")))?
        };
        Ok(Self {
            server,
            accept_loop: Some(accept_loop),
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.join();
        }
    }
}

fn accept_requests(server: &tiny_http::Server, handler: &Arc<RequestHandler>) {
    // `recv` fails only once the server is unblocked (dropped).
    while let Ok(request) = server.recv() {
        let handler = Arc::clone(handler);
        let spawned = std::thread::Builder::new()
            .name("emulator-request".into())
            .spawn(move || answer(request, &handler));
        if spawned.is_err() {
            // Out of threads: the request was moved into the failed closure and is dropped,
            // which closes its connection; the client sees the failure.
            continue;
        }
    }
}

fn answer(mut request: tiny_http::Request, handler: &Arc<RequestHandler>) {
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(MAX_PAYLOAD_BYTES as u64 + 1)
        .read_to_end(&mut body);
    let reply = match read {
        Err(error) => HttpReply::new(400)
            .with_body(format!("cannot read the request body: {error}\n").into_bytes()),
        Ok(_) => {
            let body_too_large = body.len() > MAX_PAYLOAD_BYTES;
            body.truncate(MAX_PAYLOAD_BYTES);
            let incoming = IncomingRequest {
                method: request.method().as_str().to_owned(),
                path: request
                    .url()
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                headers: request
                    .headers()
                    .iter()
                    .map(|header| {
                        (
                            header.field.as_str().as_str().to_owned(),
                            header.value.as_str().to_owned(),
                        )
                    })
                    .collect(),
                body,
                body_too_large,
            };
            handler(&incoming)
        }
    };
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in &reply.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    // The client may be gone (a killed runtime, a curl that gave up): nothing to do about it.
    let _ = request.respond(response);
}
