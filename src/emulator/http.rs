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

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

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
    /// Serves `listener` until dropped, answering each request with `handler`.
    pub fn start(listener: TcpListener, handler: Arc<RequestHandler>) -> Result<Self> {
        let address = listener.local_addr().map_err(|error| {
            Error::failure(format!("cannot read the listening address: {error}"))
        })?;
        let stopping = Arc::new(AtomicBool::new(false));
        let accept_loop = {
            let stopping = Arc::clone(&stopping);
            std::thread::Builder::new()
                .name("emulator-http".into())
                .spawn(move || accept_connections(&listener, &stopping, &handler))
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
) {
    for connection in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(connection) = connection else {
            // Out of file descriptors and the like: the client sees its connection fail.
            continue;
        };
        let handler = Arc::clone(handler);
        // Out of threads: the connection is dropped (closed) with the closure; the client sees it.
        let _ = std::thread::Builder::new()
            .name("emulator-connection".into())
            .spawn(move || serve_connection(connection, &handler));
    }
}

/// Answers the requests of one connection in order, until the client closes it or asks to.
fn serve_connection(connection: TcpStream, handler: &Arc<RequestHandler>) {
    let _ = connection.set_nodelay(true);
    let Ok(mut writer) = connection.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(connection);
    loop {
        let (request, keep_alive) = match read_request(&mut reader, &mut writer) {
            Ok(Some(read)) => read,
            // The client closed the connection between requests.
            Ok(None) => return,
            Err(refusal) => {
                let _ = write_reply(&mut writer, &refusal, false);
                return;
            }
        };
        let reply = handler(&request);
        // The client may be gone (a killed runtime, a curl that gave up): nothing to do about it.
        if write_reply(&mut writer, &reply, keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

/// Reads one request; `None` when the connection ends cleanly first. A request that cannot be
/// read is answered by the returned reply, and the connection closed.
fn read_request(
    reader: &mut impl BufRead,
    writer: &mut impl Write,
) -> std::result::Result<Option<(IncomingRequest, bool)>, HttpReply> {
    let Some(head) = read_head(reader).map_err(|error| bad_request(&error.to_string()))? else {
        return Ok(None);
    };
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad_request("incomplete request head")),
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
    let connection = request.header("Connection").unwrap_or_default();
    let keep_alive = if http_1_0 {
        connection.eq_ignore_ascii_case("keep-alive")
    } else {
        !connection.eq_ignore_ascii_case("close")
    };

    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|coding| coding.to_ascii_lowercase().contains("chunked"));
    let content_length = match (chunked, request.header("Content-Length")) {
        (true, _) | (false, None) => 0,
        (false, Some(length)) => length
            .parse::<u64>()
            .map_err(|_| bad_request(&format!("Content-Length {length:?} is not a number")))?,
    };
    if (chunked || content_length > 0)
        && request
            .header("Expect")
            .is_some_and(|expect| expect.eq_ignore_ascii_case("100-continue"))
    {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|error| bad_request(&error.to_string()))?;
    }
    let body = if chunked {
        read_chunked_body(reader)
    } else {
        read_sized_body(reader, content_length)
    };
    let body = body.map_err(|error| match error.kind() {
        io::ErrorKind::FileTooLarge => HttpReply::plain(413, &error.to_string()),
        _ => bad_request(&format!("cannot read the request body: {error}")),
    })?;
    request.body = body.kept;
    request.body_length = body.length;
    request.trailers = body.trailers;
    request.last_chunk_at = body.last_chunk_at;
    Ok(Some((request, keep_alive)))
}

fn bad_request(message: &str) -> HttpReply {
    HttpReply::plain(400, message)
}

/// The request line and header fields up to the empty line, or `None` at a clean end of input.
/// Empty lines before the request line are skipped (RFC 9112 section 2.2).
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        let read = reader
            .by_ref()
            .take((MAX_HEAD_BYTES - start) as u64)
            .read_until(b'\n', &mut head)?;
        if read == 0 {
            return if head.is_empty() {
                Ok(None)
            } else if head.len() >= MAX_HEAD_BYTES {
                Err(invalid("request head too large"))
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        let line = &head[start..];
        if !line.ends_with(b"\n") {
            return Err(invalid("request head too large"));
        }
        if line == b"\r\n" || line == b"\n" {
            if start == 0 {
                head.clear();
                continue;
            }
            return Ok(Some(head));
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
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("request body larger than {MAX_READ_BODY_BYTES} bytes"),
            ));
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
/// until an empty line. Chunk extensions are ignored.
fn read_chunked_body(reader: &mut impl BufRead) -> io::Result<Body> {
    let mut body = Body::default();
    loop {
        let line = read_line(reader)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| invalid(&format!("bad chunk size line {line:?}")))?;
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
            return Err(invalid("chunk data longer than its size"));
        }
    }
    let mut trailer_bytes = 0;
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(body);
        }
        trailer_bytes += line.len();
        if trailer_bytes > MAX_HEAD_BYTES {
            return Err(invalid("trailer section too large"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(&format!("bad trailer field {line:?}")))?;
        body.trailers
            .push((name.trim().to_owned(), value.trim().to_owned()));
    }
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
        413 => "Content Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
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
