//! The emulator's HTTP/1.1 server on a loopback port, and the plain request and reply values the
//! Runtime API and the invoke endpoint work with.
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

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::invocation::MAX_RESPONSE_BYTES;
use crate::error::{Error, Result};

/// The most body bytes kept in memory: the largest response a runtime may post (6,291,556
/// bytes, see [`MAX_RESPONSE_BYTES`]) plus one, so that "one byte more" is seen. Larger bodies
/// are read to the end and counted ([`IncomingRequest::body_length`]), not kept.
pub const KEPT_BODY_BYTES: usize = MAX_RESPONSE_BYTES + 1;
/// A body longer than this (256 MiB) is not read to its end: the connection is answered `413`
/// and closed.
const MAX_READ_BODY_BYTES: u64 = 256 * 1024 * 1024;
/// The longest request head, chunk-size line or trailer section accepted (64 KiB).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields in a request head.
const MAX_HEADERS: usize = 100;

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

/// The running server. Dropping it stops accepting connections.
pub struct HttpServer {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept_loop: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `listener` until dropped, answering each request with `handler`, under the
    /// default [`ServerLimits`].
    pub fn start(listener: TcpListener, handler: Arc<RequestHandler>) -> Result<Self> {
        Self::start_with(listener, handler, ServerLimits::default())
    }

    /// [`HttpServer::start`] under `limits`.
    pub fn start_with(
        listener: TcpListener,
        handler: Arc<RequestHandler>,
        limits: ServerLimits,
    ) -> Result<Self> {
        let address = listener.local_addr().map_err(|error| {
            Error::failure(format!("cannot read the listening address: {error}"))
        })?;
        let stopping = Arc::new(AtomicBool::new(false));
        let accept_loop = {
            let stopping = Arc::clone(&stopping);
            std::thread::Builder::new()
                .name("emulator-http".into())
                .spawn(move || accept_connections(&listener, &stopping, &handler, limits))
                .map_err(|error| Error::failure(format!("cannot start the HTTP server: {error}")))?
        };
        Ok(Self {
            address,
            stopping,
            accept_loop: Some(accept_loop),
        })
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect(self.address);
        if let Some(accept_loop) = self.accept_loop.take() {
            let _ = accept_loop.join();
        }
    }
}

fn accept_connections(
    listener: &TcpListener,
    stopping: &AtomicBool,
    handler: &Arc<RequestHandler>,
    limits: ServerLimits,
) {
    let open = Arc::new(AtomicUsize::new(0));
    for connection in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut connection = match connection {
            Ok(connection) => connection,
            // Out of file descriptors and the like: the same error would come back at once, so
            // wait a little rather than spin; the client waits in the listen queue meanwhile.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.load(Ordering::SeqCst) >= limits.max_connections {
            let _ = connection.set_write_timeout(Some(Duration::from_secs(1)));
            let refusal = HttpReply::plain(
                503,
                &format!(
                    "too many open connections (at most {} at once): close idle ones and retry",
                    limits.max_connections
                ),
            );
            let _ = write_reply(&mut connection, &refusal, false);
            continue;
        }
        let slot = OpenConnection::new(&open);
        let handler = Arc::clone(handler);
        // Out of threads: the connection is dropped (closed) with the closure; the client sees it.
        let _ = std::thread::Builder::new()
            .name("emulator-connection".into())
            .spawn(move || {
                serve_connection(connection, &handler, limits);
                drop(slot);
            });
    }
}

/// One of the connections being served, counted while it lives.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(open))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long an accepted connection may wait, and then take, before its request head is read
/// whole (30 s). A head comes in one write from every real client; a client that trickles it a
/// byte at a time ("slowloris") is answered `408` and closed instead of holding its thread.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a kept-alive connection may sit idle between requests, or a body or a reply make no
/// progress at all (16 minutes): longer than Lambda's largest function timeout, 900 s (Lambda
/// quotas page, "Function timeout"), because a runtime may hold a connection idle while its
/// handler runs and post the response on it after up to that long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(16 * 60);
/// The most connections served at once (64). Each has a thread and may keep a body of up to
/// [`KEPT_BODY_BYTES`], so this bounds threads, file descriptors (two per connection, far below
/// the usual limit of 1,024) and memory (about 400 MiB at worst). A runtime uses one or two
/// connections and `serve` runs one invocation at a time, so real use stays far below it; a
/// connection past it is answered `503` and closed at once.
const MAX_CONNECTIONS: usize = 64;

/// How the server guards itself against clients that are slow, idle or too many.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// The time a connection's first request head, and every later head once its first byte
    /// arrived, has to arrive whole (`408` after it).
    pub head_timeout: Duration,
    /// The longest wait for the next request on a kept-alive connection, and for any progress
    /// while a body is read or a reply written; the connection is closed after it.
    pub idle_timeout: Duration,
    /// The most connections served at once; more are answered `503` and closed.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    /// A head within 30 s, 16 minutes idle at most, 64 connections at once (the constants' docs
    /// in this module say why).
    fn default() -> Self {
        Self {
            head_timeout: HEAD_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// A connection's reading side: every read waits at most until `deadline` when one is set, else
/// at most `idle` (`TimedOut` after it).
struct TimedStream {
    stream: TcpStream,
    deadline: Option<Instant>,
    idle: Duration,
}

impl Read for TimedStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let wait = match self.deadline {
            None => self.idle,
            Some(deadline) => deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or(io::ErrorKind::TimedOut)?,
        };
        self.stream.set_read_timeout(Some(wait))?;
        self.stream
            .read(buffer)
            .map_err(|error| match error.kind() {
                // What a read timeout looks like on Unix.
                io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut.into(),
                _ => error,
            })
    }
}

/// Answers the requests of one connection in order, until the client closes it or asks to, or
/// it breaks one of `limits`.
fn serve_connection(connection: TcpStream, handler: &Arc<RequestHandler>, limits: ServerLimits) {
    let _ = connection.set_nodelay(true);
    let _ = connection.set_write_timeout(Some(limits.idle_timeout));
    let Ok(mut writer) = connection.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(TimedStream {
        stream: connection,
        deadline: Some(Instant::now() + limits.head_timeout),
        idle: limits.idle_timeout,
    });
    loop {
        // The wait for a request's first byte: the head timeout for a new connection, the idle
        // timeout between requests. A connection that ends or times out here is closed quietly.
        loop {
            match reader.fill_buf() {
                Ok([]) => return,
                Ok(_) => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
        reader.get_mut().deadline = Some(Instant::now() + limits.head_timeout);
        let read = read_head(&mut reader).and_then(|head| {
            reader.get_mut().deadline = None;
            match head {
                Some(head) => read_after_head(&head, &mut reader, &mut writer).map(Some),
                None => Ok(None),
            }
        });
        reader.get_mut().deadline = None;
        let (request, keep_alive) = match read {
            Ok(Some(read)) => read,
            Ok(None) => return,
            Err(refusal) => {
                let _ = write_reply(&mut writer, &refusal, false);
                return;
            }
        };
        if let Some(refusal) = from_a_web_page_elsewhere(&request) {
            let _ = write_reply(&mut writer, &refusal, false);
            return;
        }
        let reply = handler(&request);
        // The client may be gone (a killed runtime, a curl that gave up): nothing to do about it.
        if write_reply(&mut writer, &reply, keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

/// `403` for a request a web browser sent on behalf of a page that is not itself on this
/// machine: its `Origin` field (RFC 6454; browsers send it with every cross-origin POST, also
/// the "simple" ones that need no CORS preflight) names a host other than `localhost`, a
/// `*.localhost` name (RFC 6761 section 6.3) or a loopback address, or is `null`. Listening on
/// 127.0.0.1 keeps other machines out but not the pages of the developer's own browser, which
/// could otherwise invoke the function, with the AWS credentials it was given, or take events
/// from the Runtime API. Clients other than browsers send no `Origin` and are not affected.
fn from_a_web_page_elsewhere(request: &IncomingRequest) -> Option<HttpReply> {
    let origin = request.header("Origin")?;
    let host = origin
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    // `[::1]:9000`, `127.0.0.1:9000`, `localhost`.
    let host = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    let on_this_machine = name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    (!on_this_machine).then(|| {
        HttpReply::plain(
            403,
            &format!(
                "requests from web pages are refused (Origin: {origin}): call this server \
                 with curl or an SDK, or from a page served on localhost"
            ),
        )
    })
}

/// Reads one HTTP/1.1 request (RFC 9112) from `reader`: the head (parsed by `httparse`), then
/// the body its framing gives (section 6.3: `Transfer-Encoding: chunked` with its trailer
/// fields, else `Content-Length`, else none). `interim` gets `100 Continue` when the request
/// asks for it (RFC 9110 section 10.1.1). `Ok(None)`: the input ended cleanly before a request.
/// `Ok(Some((request, keep_alive)))`: `keep_alive` is false when the connection must close after
/// the reply (the client asked for it, HTTP/1.0 without `keep-alive`, or a framing that calls
/// for it). `Err(reply)`: the request cannot be read; send `reply` (a 4xx or 5xx naming what is
/// wrong) and close the connection, as nothing after it can be trusted.
///
/// Memory stays bounded whatever the input: a head or trailer section of at most 64 KiB and 100
/// fields, a body kept up to [`KEPT_BODY_BYTES`] (the rest only counted), nothing sized from a
/// length the client claims. The server reads from its sockets with this; it is public so that
/// the fuzz target can feed it arbitrary bytes.
pub fn read_request(
    reader: &mut impl BufRead,
    interim: &mut impl Write,
) -> std::result::Result<Option<(IncomingRequest, bool)>, HttpReply> {
    match read_head(reader)? {
        Some(head) => read_after_head(&head, reader, interim).map(Some),
        None => Ok(None),
    }
}

/// How a request's body is delimited (RFC 9112 section 6.3).
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Sized(u64),
    Chunked,
}

/// The request after its head: its fields, then its body.
fn read_after_head(
    head: &[u8],
    reader: &mut impl BufRead,
    interim: &mut impl Write,
) -> std::result::Result<(IncomingRequest, bool), HttpReply> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad_request("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpReply::plain(
                431,
                &format!("more than {MAX_HEADERS} header fields in the request head"),
            ));
        }
        Err(error) => return Err(bad_request(&format!("malformed request head: {error}"))),
    }
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|field| {
            (
                field.name.to_owned(),
                String::from_utf8_lossy(field.value).trim().to_owned(),
            )
        })
        .collect();
    let mut request = IncomingRequest {
        method: parsed.method.unwrap_or_default().to_owned(),
        path: parsed
            .path
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned(),
        headers,
        ..IncomingRequest::default()
    };
    let http_1_0 = parsed.version == Some(0);
    let connection = field_tokens(&request.headers, "Connection");
    let mut keep_alive = if http_1_0 {
        connection.iter().any(|token| token == "keep-alive")
    } else {
        !connection.iter().any(|token| token == "close")
    };

    let (framing, must_close) = framing(&request.headers, http_1_0)?;
    keep_alive &= !must_close;
    if let Framing::Sized(length) = framing
        && length > MAX_READ_BODY_BYTES
    {
        return Err(too_large());
    }
    // RFC 9110 section 10.1.1: only to an HTTP/1.1 client, and only when a body is to come.
    if !http_1_0
        && framing != Framing::Sized(0)
        && field_tokens(&request.headers, "Expect")
            .iter()
            .any(|token| token == "100-continue")
    {
        interim
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| interim.flush())
            .map_err(|error| bad_request(&error.to_string()))?;
    }
    let body = match framing {
        Framing::Chunked => read_chunked_body(reader),
        Framing::Sized(length) => read_sized_body(reader, length),
    };
    let body = body.map_err(|error| match error.kind() {
        io::ErrorKind::FileTooLarge => too_large(),
        io::ErrorKind::TimedOut => HttpReply::plain(
            408,
            "the request body made no progress for too long; the connection is closed",
        ),
        _ => bad_request(&format!("cannot read the request body: {error}")),
    })?;
    request.body = body.kept;
    request.body_length = body.length;
    request.trailers = body.trailers;
    request.last_chunk_at = body.last_chunk_at;
    Ok((request, keep_alive))
}

/// The body's framing from the `Transfer-Encoding` and `Content-Length` fields (RFC 9112
/// section 6.3), and whether the connection must close after the reply. A request with both is
/// framed by `Transfer-Encoding` and its connection closed (section 6.3 item 3: it may be a
/// request smuggling attempt; an honest client that sent both still gets its answer).
fn framing(
    headers: &[(String, String)],
    http_1_0: bool,
) -> std::result::Result<(Framing, bool), HttpReply> {
    let codings = field_tokens(headers, "Transfer-Encoding");
    let has_length = find_header(headers, "Content-Length").is_some();
    let has_coding = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Transfer-Encoding"));
    if has_coding {
        // Section 6.1: an HTTP/1.0 sender cannot have meant chunked framing.
        if http_1_0 {
            return Err(bad_request(
                "Transfer-Encoding in an HTTP/1.0 request: send HTTP/1.1, or a Content-Length",
            ));
        }
        return match codings.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["chunked"] => Ok((Framing::Chunked, has_length)),
            // Section 6.3 item 4: without chunked last, the body's end cannot be known.
            [.., last] if last != "chunked" => Err(bad_request(&format!(
                "Transfer-Encoding {:?} does not end with chunked: the body's length cannot be known",
                codings.join(", ")
            ))),
            [] => Err(bad_request("an empty Transfer-Encoding field")),
            // Section 7: chunked at most once.
            _ if codings.iter().filter(|coding| *coding == "chunked").count() > 1 => Err(
                bad_request("Transfer-Encoding applies chunked more than once"),
            ),
            // Section 6.1: a server SHOULD answer an unknown transfer coding with 501.
            _ => Err(HttpReply::plain(
                501,
                &format!(
                    "Transfer-Encoding {:?} is not implemented: send the body with \
                     Transfer-Encoding: chunked alone, or with a Content-Length",
                    codings.join(", ")
                ),
            )),
        };
    }
    // RFC 9110 section 8.6: Content-Length = 1*DIGIT. Several fields or a list are accepted
    // only when every value is the same number; anything else is an unrecoverable framing error
    // (RFC 9112 section 6.3 item 5).
    let mut length = None;
    for value in headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
        .flat_map(|(_, value)| value.split(','))
    {
        let value = value.trim_matches([' ', '\t']);
        let parsed = (!value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| bad_request(&format!("Content-Length {value:?} is not a byte count")))?;
        if length.is_some_and(|length| length != parsed) {
            return Err(bad_request(
                "Content-Length fields that disagree: send one Content-Length",
            ));
        }
        length = Some(parsed);
    }
    Ok((Framing::Sized(length.unwrap_or(0)), false))
}

/// The comma-separated tokens of every field `name`, trimmed and in lowercase, in order.
fn field_tokens(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim_matches([' ', '\t']).to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

fn bad_request(message: &str) -> HttpReply {
    HttpReply::plain(400, message)
}

fn too_large() -> HttpReply {
    HttpReply::plain(
        413,
        &format!("request body larger than {MAX_READ_BODY_BYTES} bytes"),
    )
}

/// The request line and header fields up to the empty line, or `None` at a clean end of input.
/// Empty lines before the request line are skipped (RFC 9112 section 2.2).
fn read_head(reader: &mut impl BufRead) -> std::result::Result<Option<Vec<u8>>, HttpReply> {
    let head = read_field_lines(reader, true).map_err(|error| match error.kind() {
        io::ErrorKind::TimedOut => HttpReply::plain(
            408,
            "the request head did not arrive whole in time; the connection is closed",
        ),
        io::ErrorKind::FileTooLarge => HttpReply::plain(
            431,
            &format!("request head larger than {MAX_HEAD_BYTES} bytes"),
        ),
        io::ErrorKind::UnexpectedEof => bad_request("the request head ended early"),
        _ => bad_request(&format!("cannot read the request head: {error}")),
    })?;
    Ok((!head.is_empty()).then_some(head))
}

/// Lines up to and including the first empty one (LF or CRLF), at most [`MAX_HEAD_BYTES`] in
/// all (`FileTooLarge` past it). With `skip_leading_empty`, empty lines before the first line
/// are dropped; an input that ends before any line gives an empty result. An input that ends
/// after a line but before the empty one is `UnexpectedEof`.
fn read_field_lines(reader: &mut impl BufRead, skip_leading_empty: bool) -> io::Result<Vec<u8>> {
    let mut lines = Vec::new();
    loop {
        let start = lines.len();
        let read = reader
            .by_ref()
            .take((MAX_HEAD_BYTES - start) as u64)
            .read_until(b'\n', &mut lines)?;
        let line = &lines[start..];
        if read == 0 && start == 0 && skip_leading_empty {
            return Ok(lines);
        }
        if !line.ends_with(b"\n") {
            return Err(if lines.len() >= MAX_HEAD_BYTES {
                io::ErrorKind::FileTooLarge.into()
            } else {
                io::ErrorKind::UnexpectedEof.into()
            });
        }
        if line == b"\r\n" || line == b"\n" {
            if start == 0 && skip_leading_empty {
                lines.clear();
                continue;
            }
            return Ok(lines);
        }
    }
}

/// A body as read: what was kept, its whole length, and what a chunked body carried besides.
#[derive(Debug, Default)]
struct Body {
    kept: Vec<u8>,
    length: u64,
    trailers: Vec<(String, String)>,
    last_chunk_at: Option<usize>,
}

impl Body {
    /// Reads `count` bytes of body data, keeping what fits in [`KEPT_BODY_BYTES`].
    fn take(&mut self, reader: &mut impl Read, count: u64) -> io::Result<()> {
        if self.length.saturating_add(count) > MAX_READ_BODY_BYTES {
            return Err(io::ErrorKind::FileTooLarge.into());
        }
        let keep = (KEPT_BODY_BYTES.saturating_sub(self.kept.len()) as u64).min(count);
        let kept = reader.by_ref().take(keep).read_to_end(&mut self.kept)? as u64;
        let skipped = io::copy(&mut reader.by_ref().take(count - kept), &mut io::sink())?;
        if kept + skipped < count {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.length += count;
        Ok(())
    }
}

fn read_sized_body(reader: &mut impl Read, length: u64) -> io::Result<Body> {
    let mut body = Body::default();
    body.take(reader, length)?;
    Ok(body)
}

/// A chunked body (RFC 9112 section 7.1): chunks until the zero-size one, then trailer fields
/// until an empty line, parsed as header fields are (by `httparse`). Chunk extensions are
/// ignored (section 7.1.1).
fn read_chunked_body(reader: &mut impl BufRead) -> io::Result<Body> {
    let mut body = Body::default();
    loop {
        let size = chunk_size(&read_line(reader)?)?;
        if size == 0 {
            break;
        }
        let start = body.kept.len();
        body.take(reader, size)?;
        if body.kept.len() as u64 - start as u64 == size {
            body.last_chunk_at = Some(start);
        } else {
            body.last_chunk_at = None;
        }
        if !read_line(reader)?.is_empty() {
            return Err(invalid(
                "chunk data longer than its size, or not followed by CRLF",
            ));
        }
    }
    let trailer_section = read_field_lines(reader, false).map_err(|error| match error.kind() {
        io::ErrorKind::FileTooLarge => invalid(&format!(
            "trailer section larger than {MAX_HEAD_BYTES} bytes"
        )),
        _ => error,
    })?;
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(&trailer_section, &mut fields) {
        Ok(httparse::Status::Complete((_, fields))) => {
            body.trailers = fields
                .iter()
                .map(|field| {
                    (
                        field.name.to_owned(),
                        String::from_utf8_lossy(field.value).trim().to_owned(),
                    )
                })
                .collect();
            Ok(body)
        }
        Ok(httparse::Status::Partial) => Err(invalid("an incomplete trailer section")),
        Err(error) => Err(invalid(&format!("malformed trailer section: {error}"))),
    }
}

/// The size of a chunk-size line (RFC 9112 section 7.1: `chunk-size [ chunk-ext ]`, the size
/// 1*HEXDIG, extensions after `;` ignored); `InvalidData` for anything else, and for a size
/// that does not fit in 64 bits.
fn chunk_size(line: &str) -> io::Result<u64> {
    let size = line
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_end_matches([' ', '\t']);
    if size.is_empty() || !size.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid(&format!(
            "bad chunk size line {line:?}: a chunk starts with its size in hexadecimal"
        )));
    }
    u64::from_str_radix(size, 16)
        .map_err(|_| invalid(&format!("chunk size {size:?} does not fit in 64 bits")))
}

/// One line (up to [`MAX_HEAD_BYTES`]) without its CRLF or LF.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_HEAD_BYTES as u64)
        .read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() >= MAX_HEAD_BYTES {
            invalid("line too long")
        } else {
            io::ErrorKind::UnexpectedEof.into()
        });
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("a line that is not UTF-8"))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &[u8]) -> std::result::Result<Option<(IncomingRequest, bool)>, HttpReply> {
        read_request(&mut BufReader::new(raw), &mut Vec::new())
    }

    #[test]
    fn a_chunked_body_keeps_its_trailers_and_where_its_last_chunk_starts() {
        let raw = b"POST /2018-06-01/runtime/invocation/id/response?x=1 HTTP/1.1\r\n\
            Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n\
            5\r\nhello\r\n3;ext=1\r\n!!!\r\n0\r\n\
            Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\
            Lambda-Runtime-Function-Error-Body: Ym9vbQ==\r\n\r\n";
        let (request, keep_alive) = read(raw).unwrap().unwrap();
        assert!(keep_alive);
        assert_eq!(request.path, "/2018-06-01/runtime/invocation/id/response");
        assert_eq!(request.body, b"hello!!!");
        assert_eq!(request.body_length, 8);
        assert_eq!(request.last_chunk_at, Some(5));
        assert_eq!(
            request.trailer("lambda-runtime-function-error-type"),
            Some("Runtime.StreamError")
        );
        assert_eq!(
            request.trailer("Lambda-Runtime-Function-Error-Body"),
            Some("Ym9vbQ==")
        );
    }

    #[test]
    fn bodies_past_the_kept_size_are_counted_not_kept() {
        let length = KEPT_BODY_BYTES + 10;
        let mut raw =
            format!("POST / HTTP/1.1\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
                .into_bytes();
        raw.extend(std::iter::repeat_n(b'x', length));
        let (request, keep_alive) = read(&raw).unwrap().unwrap();
        assert!(!keep_alive);
        assert_eq!(request.body.len(), KEPT_BODY_BYTES);
        assert_eq!(request.body_length, length as u64);
    }

    #[test]
    fn broken_requests_get_400_and_a_clean_end_is_none() {
        assert!(read(b"").unwrap().is_none());
        let truncated = read(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").unwrap_err();
        assert_eq!(truncated.status, 400);
        let bad_chunk =
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").unwrap_err();
        assert_eq!(bad_chunk.status, 400);
        assert!(String::from_utf8_lossy(&bad_chunk.body).contains("bad chunk size"));
    }

    #[test]
    fn expect_100_continue_is_answered_before_the_body() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}";
        let mut written = Vec::new();
        let (request, _) = read_request(&mut BufReader::new(&raw[..]), &mut written)
            .unwrap()
            .unwrap();
        assert_eq!(written, b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(request.body, b"{}");
    }

    /// The status and body text of a refused request.
    fn refused(raw: &[u8]) -> (u16, String) {
        let reply = read(raw).expect_err("the request should be refused");
        (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    }

    fn chunked(body: &str) -> Vec<u8> {
        format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{body}").into_bytes()
    }

    // seanmonstar/httparse#19: a chunk size past 64 bits must be an error, not a wrapped number.
    #[test]
    fn chunk_size_lines_are_hexdigits_that_fit_in_64_bits() {
        let (status, message) = refused(&chunked("ffffffffffffffffff\r\nx\r\n0\r\n\r\n"));
        assert_eq!(status, 400);
        assert!(message.contains("does not fit in 64 bits"), "{message}");
        // u64::from_str_radix takes a sign; RFC 9112 section 7.1 does not.
        for line in ["+5", "-5", " 5", "0x5", "5 x", "", "g"] {
            let (status, message) = refused(&chunked(&format!("{line}\r\nhello\r\n0\r\n\r\n")));
            assert_eq!(status, 400, "{line:?}");
            assert!(message.contains("chunk size"), "{line:?}: {message}");
        }
        // Leading zeros, extensions and whitespace before them are the client's right.
        let (request, _) = read(&chunked(
            "00000000000000000005;name=\"quoted;value\"\r\nhello\r\n6 ;x\r\n world\r\n0;last\r\n\r\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(request.body, b"hello world");
        // A chunk size that fits in 64 bits but not in the body limit: 413, nothing allocated.
        assert_eq!(refused(&chunked("7fffffffffffffff\r\nx")).0, 413);
    }

    #[test]
    fn chunk_data_must_end_where_its_size_says() {
        for body in [
            "5\r\nhello0\r\n\r\n",
            "5\r\nhello world\r\n0\r\n\r\n",
            "5\r\nhel",
            "5\r\nhello\r\n",
            "5\r\nhello\r\n0\r\nX-Trailer: no end",
        ] {
            assert_eq!(refused(&chunked(body)).0, 400, "{body:?}");
        }
    }

    #[test]
    fn trailer_fields_are_parsed_as_header_fields() {
        for trailers in [
            "Bad Name: x\r\n\r\n",
            "no colon\r\n\r\n",
            " folded: x\r\n\r\n",
        ] {
            let (status, message) = refused(&chunked(&format!("1\r\na\r\n0\r\n{trailers}")));
            assert_eq!(status, 400, "{trailers:?}");
            assert!(message.contains("trailer"), "{message}");
        }
        let many: String = (0..=MAX_HEADERS).map(|n| format!("X-{n}: v\r\n")).collect();
        assert_eq!(refused(&chunked(&format!("0\r\n{many}\r\n"))).0, 400);
        let long = format!("0\r\nX: {}\r\n\r\n", "v".repeat(MAX_HEAD_BYTES));
        assert_eq!(refused(&chunked(&long)).0, 400);
    }

    // kazuho/Starlet#34 and httpwg/http-core#879: a request with both framings may be a
    // smuggling attempt; RFC 9112 section 6.3 item 3 lets chunked win but the connection must
    // close after the reply, so nothing that follows it is read as another request.
    #[test]
    fn content_length_with_transfer_encoding_is_read_chunked_then_the_connection_closes() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
            2\r\n{}\r\n0\r\n\r\nPOST /smuggled HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        let (request, keep_alive) = read(raw).unwrap().unwrap();
        assert_eq!(request.body, b"{}");
        assert!(
            !keep_alive,
            "the connection must close after a request with both framings"
        );
    }

    #[test]
    fn transfer_codings_other_than_chunked_alone_are_refused() {
        let with = |coding: &str| {
            refused(
                format!("POST / HTTP/1.1\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n")
                    .as_bytes(),
            )
        };
        let (status, message) = with("gzip, chunked");
        assert_eq!(status, 501);
        assert!(message.contains("gzip, chunked"), "{message}");
        assert_eq!(with("xchunked").0, 400);
        assert_eq!(with("chunked, gzip").0, 400);
        assert_eq!(with("chunked, chunked").0, 400);
        assert_eq!(with("identity").0, 400);
        // Two fields are one list (RFC 9110 section 5.3).
        assert_eq!(
            refused(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .0,
            501
        );
        assert!(read(&chunked("0\r\n\r\n")).unwrap().is_some());
        assert!(
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n0\r\n\r\n")
                .unwrap()
                .is_some()
        );
        // RFC 9112 section 6.1: from an HTTP/1.0 client the framing is faulty.
        let (status, message) =
            refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert_eq!(status, 400);
        assert!(message.contains("HTTP/1.0"), "{message}");
    }

    // litespeedtech/openlitespeed#392: a server that takes the first of two Content-Length
    // fields reads a different body than a proxy that takes the last.
    #[test]
    fn content_length_is_digits_and_one_number() {
        for fields in [
            "Content-Length: +2",
            "Content-Length: -2",
            "Content-Length: 0x2",
            "Content-Length: 2, 3",
            "Content-Length: 2\r\nContent-Length: 3",
            "Content-Length: ",
            "Content-Length: 99999999999999999999999",
        ] {
            let raw = format!("POST / HTTP/1.1\r\n{fields}\r\n\r\n{{}}");
            let (status, message) = refused(raw.as_bytes());
            assert_eq!(status, 400, "{fields:?}");
            assert!(message.contains("Content-Length"), "{fields:?}: {message}");
        }
        for fields in [
            "Content-Length: 2, 2",
            "Content-Length: 2\r\nContent-Length: 2",
        ] {
            let raw = format!("POST / HTTP/1.1\r\n{fields}\r\n\r\n{{}}");
            assert_eq!(read(raw.as_bytes()).unwrap().unwrap().0.body, b"{}");
        }
    }

    #[test]
    fn a_huge_content_length_is_neither_allocated_nor_announced_with_100_continue() {
        // Within the read limit but far past the input: a clear 400 once the input ends.
        let (status, message) = refused(b"POST / HTTP/1.1\r\nContent-Length: 200000000\r\n\r\nabc");
        assert_eq!(status, 400);
        assert!(
            message.contains("cannot read the request body"),
            "{message}"
        );
        // Past the read limit: 413 at once, and no `100 Continue` inviting the body first.
        let raw = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            u64::MAX
        );
        let mut interim = Vec::new();
        let reply = read_request(&mut BufReader::new(raw.as_bytes()), &mut interim).unwrap_err();
        assert_eq!(reply.status, 413);
        assert!(interim.is_empty(), "{}", String::from_utf8_lossy(&interim));
    }

    #[test]
    fn http_1_0_is_answered_without_100_continue_and_closed_unless_kept_alive() {
        let raw = b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}";
        let mut interim = Vec::new();
        let (request, keep_alive) = read_request(&mut BufReader::new(&raw[..]), &mut interim)
            .unwrap()
            .unwrap();
        assert_eq!(request.body, b"{}");
        assert!(!keep_alive);
        assert!(
            interim.is_empty(),
            "RFC 9110 section 10.1.1: no 100 to HTTP/1.0"
        );
        let (_, keep_alive) = read(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(keep_alive);
        // Connection is a list: `close` anywhere in it closes.
        let (_, keep_alive) = read(b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!keep_alive);
    }

    #[test]
    fn heads_past_the_limits_get_431() {
        let many: String = (0..=MAX_HEADERS).map(|n| format!("X-{n}: v\r\n")).collect();
        let (status, message) = refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert_eq!(status, 431);
        assert!(message.contains("header fields"), "{message}");
        let long = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "v".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(refused(long.as_bytes()).0, 431);
        let endless = "\r\n".repeat(MAX_HEAD_BYTES);
        assert!(read(endless.as_bytes()).unwrap().is_none());
    }

    #[test]
    fn pipelined_requests_are_read_in_turn_from_one_buffer() {
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nxPOST /b HTTP/1.1\r\n\
            Transfer-Encoding: chunked\r\n\r\n1\r\ny\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        let mut paths = Vec::new();
        while let Some((request, _)) = read_request(&mut reader, &mut Vec::new()).unwrap() {
            paths.push((request.path, request.body));
        }
        assert_eq!(
            paths,
            [
                ("/a".to_owned(), b"x".to_vec()),
                ("/b".to_owned(), b"y".to_vec()),
                ("/c".to_owned(), Vec::new())
            ]
        );
    }

    fn echo_server(limits: ServerLimits) -> (HttpServer, SocketAddr) {
        let listener = bind_loopback(0).unwrap();
        let address = listener.local_addr().unwrap();
        let handler: Arc<RequestHandler> = Arc::new(|request: &IncomingRequest| {
            HttpReply::new(200).with_body(request.body.clone())
        });
        (
            HttpServer::start_with(listener, handler, limits).unwrap(),
            address,
        )
    }

    /// Everything the server sends until it closes the connection (or 10 s pass).
    fn answers(client: &mut TcpStream) -> String {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answers = Vec::new();
        let _ = client.read_to_end(&mut answers);
        String::from_utf8_lossy(&answers).into_owned()
    }

    // ethereum/hive#880: without a limit on the time a head takes, one byte now and then keeps
    // a connection (and here its thread) forever.
    #[test]
    fn a_head_trickled_a_byte_at_a_time_gets_408_while_others_are_served() {
        let limits = ServerLimits {
            head_timeout: Duration::from_secs(2),
            ..ServerLimits::default()
        };
        let (_server, address) = echo_server(limits);
        let mut slow = TcpStream::connect(address).unwrap();
        let started = Instant::now();
        let trickle = {
            let mut slow = slow.try_clone().unwrap();
            std::thread::spawn(move || {
                for byte in b"POST / HTTP/1.1\r\nX-Slow: ".iter().cycle().take(30) {
                    if slow.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        // Meanwhile another client is answered at once.
        let mut other = TcpStream::connect(address).unwrap();
        other
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        assert!(answers(&mut other).ends_with("\r\n\r\nok"));
        let answer = answers(&mut slow);
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        trickle.join().unwrap();
    }

    #[test]
    fn a_connection_that_sends_nothing_is_closed_after_the_head_timeout() {
        let limits = ServerLimits {
            head_timeout: Duration::from_secs(1),
            ..ServerLimits::default()
        };
        let (_server, address) = echo_server(limits);
        let mut idle = TcpStream::connect(address).unwrap();
        let started = Instant::now();
        assert_eq!(answers(&mut idle), "");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn connections_past_the_limit_get_503_and_a_freed_slot_is_used_again() {
        let limits = ServerLimits {
            max_connections: 2,
            ..ServerLimits::default()
        };
        let (_server, address) = echo_server(limits);
        let first = TcpStream::connect(address).unwrap();
        let _second = TcpStream::connect(address).unwrap();
        let mut third = TcpStream::connect(address).unwrap();
        let answer = answers(&mut third);
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
        assert!(answer.contains("at most 2 at once"), "{answer:?}");
        drop(first);
        // The first connection's thread sees the end and frees its slot.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut next = TcpStream::connect(address).unwrap();
            next.write_all(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
                .unwrap();
            let answer = answers(&mut next);
            if answer.starts_with("HTTP/1.1 200 ") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the slot was not freed: {answer:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_client_that_closes_mid_body_ends_only_its_connection() {
        let (_server, address) = echo_server(ServerLimits::default());
        let mut gone = TcpStream::connect(address).unwrap();
        gone.write_all(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly part")
            .unwrap();
        gone.shutdown(std::net::Shutdown::Write).unwrap();
        let answer = answers(&mut gone);
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
        assert!(answer.contains("Connection: close"), "{answer:?}");
        let mut next = TcpStream::connect(address).unwrap();
        next.write_all(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
            .unwrap();
        assert!(answers(&mut next).ends_with("\r\n\r\nx"));
    }

    // A refusal sent while the client is still sending its body reaches the client, although
    // closing a socket with unread input makes the kernel send a reset (Linux keeps what was
    // received before it readable).
    #[test]
    fn a_refusal_reaches_a_client_that_is_still_sending_its_body() {
        let (_server, address) = echo_server(ServerLimits::default());
        for round in 0..5 {
            let mut client = TcpStream::connect(address).unwrap();
            let head = format!(
                "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                MAX_READ_BODY_BYTES + 1
            );
            client.write_all(head.as_bytes()).unwrap();
            let sender = {
                let mut client = client.try_clone().unwrap();
                std::thread::spawn(move || {
                    let chunk = vec![b'x'; 64 * 1024];
                    for _ in 0..64 {
                        if client.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                })
            };
            let answer = answers(&mut client);
            assert!(
                answer.starts_with("HTTP/1.1 413 "),
                "round {round}: {answer:?}"
            );
            sender.join().unwrap();
        }
    }

    // modelcontextprotocol/conformance#103, open-mercato/cezar#426: a page in the developer's
    // browser can POST to a loopback server (a "simple" request needs no CORS preflight); the
    // browser names the page in `Origin`.
    #[test]
    fn requests_from_web_pages_elsewhere_are_refused_before_the_handler() {
        let listener = bind_loopback(0).unwrap();
        let address = listener.local_addr().unwrap();
        let handled = Arc::new(AtomicUsize::new(0));
        let handler: Arc<RequestHandler> = {
            let handled = Arc::clone(&handled);
            Arc::new(move |_: &IncomingRequest| {
                handled.fetch_add(1, Ordering::SeqCst);
                HttpReply::new(200)
            })
        };
        let _server = HttpServer::start(listener, handler).unwrap();
        let post = |origin: &str| {
            let mut client = TcpStream::connect(address).unwrap();
            let raw = format!(
                "POST / HTTP/1.1\r\nHost: {address}\r\nOrigin: {origin}\r\n\
                 Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            );
            client.write_all(raw.as_bytes()).unwrap();
            let answer = answers(&mut client);
            answer[9..12].parse::<u16>().unwrap()
        };
        for elsewhere in [
            "https://example.com",
            "http://127.0.0.1.example.com:9000",
            "http://localhost.example.com",
            "null",
            "http://[::2]",
        ] {
            assert_eq!(post(elsewhere), 403, "{elsewhere}");
        }
        assert_eq!(handled.load(Ordering::SeqCst), 0);
        for here in [
            "http://localhost:3000",
            "http://LOCALHOST.",
            "http://app.localhost:8080",
            "http://127.0.0.1:9000",
            "http://127.1.2.3",
            "http://[::1]:9000",
        ] {
            assert_eq!(post(here), 200, "{here}");
        }
        assert_eq!(handled.load(Ordering::SeqCst), 6);
    }

    #[test]
    fn a_persistent_connection_serves_requests_in_turn() {
        let listener = bind_loopback(0).unwrap();
        let address = listener.local_addr().unwrap();
        let handler: Arc<RequestHandler> = Arc::new(|request: &IncomingRequest| {
            HttpReply::new(200).with_body(request.body.clone())
        });
        let server = HttpServer::start(listener, handler).unwrap();
        let mut client = TcpStream::connect(address).unwrap();
        client
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\naPOST / HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nb")
            .unwrap();
        let mut answers = String::new();
        client.read_to_string(&mut answers).unwrap();
        assert_eq!(
            answers.matches("HTTP/1.1 200 OK\r\n").count(),
            2,
            "{answers}"
        );
        assert!(answers.ends_with("\r\n\r\nb"), "{answers}");
        drop(server);
    }
}
