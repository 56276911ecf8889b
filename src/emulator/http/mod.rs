//! The emulator's HTTP/1.1 server on a loopback port, and the plain request and reply values the
//! Runtime API and the invoke endpoint work with: `request` reads requests, `server` accepts
//! connections and serves them, this file holds the values and writes replies.
//!
//! Request heads are parsed by `httparse`; bodies are read here because the Runtime API needs
//! what small general servers leave out: a chunked body (RFC 9112 section 7.1) may end with
//! trailer fields (section 7.1.2), which is how a response-streaming runtime reports an error
//! after its last chunk (`Lambda-Runtime-Function-Error-Type` and
//! `Lambda-Runtime-Function-Error-Body`; the RIE reads them from Go's `Request.Trailer` in
//! `internal/lambda/core/directinvoke/directinvoke.go`). The start of the last data chunk is kept
//! too (see [`IncomingRequest::last_chunk_at`]).
//!
//! Every connection has a thread of its own and keeps serving requests one after another
//! (HTTP/1.1 persistent connections, as runtime clients use them), because some answers take as
//! long as they take: a `GET /runtime/invocation/next` waits for the next event, an invocation
//! for the function. Bodies are kept up to [`KEPT_BODY_BYTES`] and counted beyond that. Routing
//! is the caller's: one handler function sees every request.
//!
//! The server listens on 127.0.0.1 only, but anything on the machine can reach it, so it reads
//! requests as hostile input: framing by RFC 9112 section 6.3 (a request with both
//! `Transfer-Encoding` and `Content-Length` is read chunked and its connection closed; other
//! transfer codings, disagreeing lengths and malformed chunk-size lines are refused with a 4xx
//! or 501 and the connection closed), heads and trailer sections of at most 64 KiB and 100
//! fields, nothing allocated from a length the client claims, and [`ServerLimits`] against
//! slow, idle and too many clients. A request a browser sends for a web page that is not on
//! this machine (its `Origin` is not loopback) is refused with `403` before any handler sees it.

mod request;
mod server;

pub use request::{KEPT_BODY_BYTES, read_request};
pub use server::{HttpServer, RequestHandler, ServerLimits, bind_loopback};

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use serde_json::Value;

/// A request, read whole.
#[derive(Clone, Debug, Default)]
pub struct IncomingRequest {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, cut at [`KEPT_BODY_BYTES`] (see `body_length`).
    pub body: Vec<u8>,
    /// The body's whole length in bytes, including what was not kept.
    pub body_length: u64,
    /// The trailer fields after a chunked body's last chunk (RFC 9112 section 7.1.2), in order;
    /// empty for other bodies.
    pub trailers: Vec<(String, String)>,
    /// For a chunked body: where its last non-empty chunk starts in `body`, when that chunk was
    /// kept whole. (`lambda_runtime` 1.x writes its error "trailers" as such a chunk.)
    pub last_chunk_at: Option<usize>,
    /// The connection the request came on, set by the server (`None` for a request read from
    /// elsewhere): a handler that takes long can see whether its client is still there.
    pub client: Option<ClientConnection>,
}

impl IncomingRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The first value of trailer field `name` (case-insensitive).
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find_header(&self.trailers, name)
    }
}

/// The connection a request came on, shared with the server that reads and answers it.
#[derive(Clone, Debug)]
pub struct ClientConnection(Arc<TcpStream>);

impl ClientConnection {
    /// `stream` is (a clone of) the server's side of the connection.
    pub fn new(stream: TcpStream) -> Self {
        Self(Arc::new(stream))
    }

    /// The client is gone: it closed the connection (end of stream, as when a runtime's process
    /// is killed and the kernel closes its sockets) or the connection broke (a reset). Looks
    /// without waiting and without consuming anything: bytes a client sent after its request (a
    /// pipelined next request) stay for the server, and mean the client is still there (an end
    /// behind them shows only once the server has read them, as in Go's `net/http`).
    pub fn is_gone(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: recv(2) writes at most one byte into `byte`, which outlives the call, from a
        // socket `self` keeps open; MSG_PEEK leaves the byte queued, MSG_DONTWAIT never blocks.
        let received = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match received {
            0 => true,
            1.. => false,
            _ => !matches!(
                io::Error::last_os_error().kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
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

    fn plain(status: u16, message: &str) -> Self {
        Self::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(format!("{message}\n").into_bytes())
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

fn write_reply(writer: &mut impl Write, reply: &HttpReply, keep_alive: bool) -> io::Result<()> {
    let mut bytes = format!(
        "HTTP/1.1 {} {}\r\n",
        reply.status,
        reason_phrase(reply.status)
    )
    .into_bytes();
    for (name, value) in &reply.headers {
        // A value with a line break would split the head: never sent.
        if !value.contains(['\r', '\n']) {
            bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    bytes.extend_from_slice(format!("Content-Length: {}\r\n", reply.body.len()).as_bytes());
    if !keep_alive {
        bytes.extend_from_slice(b"Connection: close\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(&reply.body);
    writer.write_all(&bytes)?;
    writer.flush()
}

/// RFC 9110 section 15's reason phrases for the statuses the emulator sends.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
