//! A minimal HTTP/1.1 server on std, shared by the test servers of this directory: the token
//! server of [`super::token`] and the proxy of [`super::proxy`].
//!
//! [`HttpServer::start`] listens on a free `127.0.0.1` port and serves each connection on a
//! thread of its own, with keep-alive (HTTP/1.1 rules: open unless the client says
//! `Connection: close`). Every request is read whole before the handler sees it: the body as
//! framed by `Content-Length` or `Transfer-Encoding: chunked` (decoded), after a
//! `100 Continue` when the client asked for one. The handler answers with a [`Response`],
//! always sent with a `Content-Length` (never chunked), with [`Reply::Reset`], which closes
//! the connection with a TCP reset instead of answering, or with [`Reply::Partial`], which
//! breaks the body off mid-way (reset, close or silence, see [`Cutoff`]). A [`BodyGate`]
//! ([`HttpServer::start_with_gate`]) can break a request off mid-body the same ways. Dropping
//! the server stops its listener and shuts every open connection down.
//!
//! It is a test tool for well-behaved local clients (skopeo, reqwest), not a general server:
//! a malformed request gets a `400` and the connection is closed.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use super::http_cutoff::Cutoff;
use super::http_cutoff::end_connection;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Largest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest request body accepted (blobs of test images are far smaller).
pub const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;

/// A request, read whole.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The request-target as sent: path and query, percent-encoded.
    pub target: String,
    /// Header fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Whether the body was framed at all (`Content-Length` or chunked), even if empty.
    pub has_body: bool,
    /// Whether the body came chunked (`Transfer-Encoding: chunked`, no length given).
    pub chunked: bool,
    /// When the header block had arrived, before the body was read.
    pub headers_at: std::time::SystemTime,
    keep_alive: bool,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The request-target without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// A response to send. `Content-Length` is computed from `body`, except for responses to
/// `HEAD`, where a `Content-Length` given in `headers` is kept (the length of the body a
/// `GET` would have had).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no header and an empty body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response (`Content-Type: application/json`).
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status)
            .with_header("Content-Type", "application/json")
            .with_body(serde_json::to_vec(value).unwrap())
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// What a handler does with a request.
#[derive(Debug)]
pub enum Reply {
    /// Send this response (and keep the connection open unless the client asked otherwise).
    Send(Response),
    /// Close the connection with a TCP reset (`SO_LINGER` 0) without answering.
    Reset,
    /// Send the head (its `Content-Length` that of the whole body) and the first `sent` bytes
    /// of the body, then end as `then` says: a body broken off mid-way.
    Partial {
        response: Response,
        sent: usize,
        then: Cutoff,
    },
}

/// A request handler, called on the connection's thread.
pub type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// What to do with a request body, decided from the head alone (method, request-target,
/// `Content-Length`) before any of it is read: read it, or read only `after` bytes of it and
/// then end the connection as `then` says (no answer is sent).
pub type BodyGate = dyn Fn(&str, &str, Option<usize>) -> Option<(usize, Cutoff)> + Send + Sync;

/// A listening server; stopped on drop.
pub struct HttpServer {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<HashMap<u64, TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on a free `127.0.0.1` port and serves every connection with `handler`.
    /// `name` names the threads (`{name}-accept`, `{name}-conn`).
    pub fn start(name: &str, handler: Arc<Handler>) -> HttpServer {
        Self::start_with_gate(
            name,
            Arc::new(|_: &str, _: &str, _: Option<usize>| None),
            handler,
        )
    }

    /// [`HttpServer::start`], with `gate` deciding from each request's head whether its body is
    /// read (see [`BodyGate`]).
    pub fn start_with_gate(name: &str, gate: Arc<BodyGate>, handler: Arc<Handler>) -> HttpServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("{name}: binding 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().unwrap();
        let stopping = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let acceptor = {
            let stopping = Arc::clone(&stopping);
            let connections = Arc::clone(&connections);
            let conn_name = format!("{name}-conn");
            std::thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || {
                    accept_loop(listener, &conn_name, gate, handler, &stopping, &connections)
                })
                .expect("spawning an accept thread")
        };
        HttpServer {
            addr,
            stopping,
            connections,
            acceptor: Some(acceptor),
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor up; it sees the flag and returns.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.connections.lock().unwrap().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    conn_name: &str,
    gate: Arc<BodyGate>,
    handler: Arc<Handler>,
    stopping: &Arc<AtomicBool>,
    connections: &Arc<Mutex<HashMap<u64, TcpStream>>>,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            connections.lock().unwrap().insert(id, clone);
        }
        let handler = Arc::clone(&handler);
        let gate = Arc::clone(&gate);
        let stopping = Arc::clone(stopping);
        let connections = Arc::clone(connections);
        let spawned = std::thread::Builder::new()
            .name(conn_name.to_string())
            .spawn(move || {
                let server = Server {
                    gate: &*gate,
                    handler: &*handler,
                    stopping: &stopping,
                };
                serve_connection(stream, &server, || {
                    connections.lock().unwrap().remove(&id);
                })
            });
        if spawned.is_err() {
            // Out of threads: the stream was moved into the failed closure and is closed.
            continue;
        }
    }
}

/// What a connection's thread needs of its server.
struct Server<'a> {
    gate: &'a BodyGate,
    handler: &'a Handler,
    stopping: &'a AtomicBool,
}

/// How a request ended: read whole, or broken off by the body gate.
enum Incoming {
    Whole(Request),
    BrokenOff(Cutoff),
}

/// Serves requests on `stream` until the client closes it, asks for `Connection: close`,
/// sends something malformed, or the handler resets it. `forget` removes the connection
/// from the server's list; it runs before the socket is closed.
fn serve_connection(stream: TcpStream, server: &Server, forget: impl FnOnce()) {
    let Ok(read_half) = stream.try_clone() else {
        forget();
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let request = match read_request(&mut reader, &mut writer, server.gate) {
            Ok(Some(Incoming::Whole(request))) => request,
            Ok(Some(Incoming::BrokenOff(cutoff))) => {
                forget();
                end_connection(reader, writer, cutoff, server.stopping);
                return;
            }
            Ok(None) => break,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let response = Response::new(400).with_body(format!("{e}\n").into_bytes());
                let _ = write_response(&mut writer, &response, false, true);
                break;
            }
            Err(_) => break,
        };
        match (server.handler)(&request) {
            Reply::Send(response) => {
                let head = request.method == "HEAD";
                let close = !request.keep_alive;
                if write_response(&mut writer, &response, head, close).is_err() || close {
                    break;
                }
            }
            Reply::Reset => {
                forget();
                end_connection(reader, writer, Cutoff::Reset, server.stopping);
                return;
            }
            Reply::Partial {
                response,
                sent,
                then,
            } => {
                let head = request.method == "HEAD";
                let _ = write_partial_response(&mut writer, &response, head, sent);
                forget();
                end_connection(reader, writer, then, server.stopping);
                return;
            }
        }
    }
    forget();
    let _ = writer.shutdown(Shutdown::Both);
}

/// Reads one request; `Ok(None)` when the client closed the connection before sending a
/// byte of it. Malformed requests give an `InvalidData` error.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    gate: &BodyGate,
) -> io::Result<Option<Incoming>> {
    // Request line; empty lines before it are allowed (RFC 9112 §2.2).
    let mut head_bytes = 0;
    let request_line = loop {
        match read_line(reader, &mut head_bytes)? {
            None => return Ok(None),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("unsupported version in {request_line:?}")));
    }

    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut head_bytes)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }

    let headers_at = std::time::SystemTime::now();
    let connection = header_value(&headers, "Connection")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let keep_alive = if version == "HTTP/1.0" {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };

    let chunked = header_value(&headers, "Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match header_value(&headers, "Content-Length") {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| invalid(format!("bad Content-Length {v:?}")))?,
        ),
        None => None,
    };
    let has_body = chunked || length.is_some();
    if has_body && let Some((after, cutoff)) = gate(method, target, length) {
        let mut part = vec![0; after.min(length.unwrap_or(after))];
        reader.read_exact(&mut part)?;
        return Ok(Some(Incoming::BrokenOff(cutoff)));
    }
    if has_body
        && header_value(&headers, "Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if chunked {
        read_chunked(reader)?
    } else if let Some(length) = length {
        if length > MAX_BODY_BYTES {
            return Err(invalid(format!("body of {length} bytes is too large")));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        Vec::new()
    };

    Ok(Some(Incoming::Whole(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body,
        has_body,
        chunked,
        headers_at,
        keep_alive,
    })))
}

/// Decodes a chunked body (chunk extensions and trailers are read and dropped).
fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let eof = || io::Error::from(io::ErrorKind::UnexpectedEof);
    let mut body = Vec::new();
    let mut line_bytes = 0;
    loop {
        let line = read_line(reader, &mut line_bytes)?.ok_or_else(eof)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            while !read_line(reader, &mut line_bytes)?
                .ok_or_else(eof)?
                .is_empty()
            {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(invalid("chunked body too large".to_string()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        if !read_line(reader, &mut line_bytes)?
            .ok_or_else(eof)?
            .is_empty()
        {
            return Err(invalid("chunk not followed by CRLF".to_string()));
        }
        line_bytes = 0;
    }
}

/// One line without its CRLF (or LF); `None` at end of stream before any byte. `total`
/// accumulates the bytes read, which must stay under [`MAX_HEAD_BYTES`].
fn read_line(reader: &mut BufReader<TcpStream>, total: &mut usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let limit = (MAX_HEAD_BYTES - (*total).min(MAX_HEAD_BYTES)) as u64 + 1;
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    *total += n;
    if n == 0 {
        return Ok(None);
    }
    if *total > MAX_HEAD_BYTES {
        return Err(invalid("request head too large".to_string()));
    }
    if line.pop() != Some(b'\n') {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| invalid("request head is not UTF-8".to_string()))
}

/// Writes the head of `response` (announcing its whole body) and `sent` bytes of the body.
fn write_partial_response(
    writer: &mut TcpStream,
    response: &Response,
    head: bool,
    sent: usize,
) -> io::Result<()> {
    let mut bytes = response_head(response, head, false);
    if !head {
        bytes.extend_from_slice(&response.body[..sent.min(response.body.len())]);
    }
    writer.write_all(&bytes)?;
    writer.flush()
}

fn write_response(
    writer: &mut TcpStream,
    response: &Response,
    head: bool,
    close: bool,
) -> io::Result<()> {
    let mut bytes = response_head(response, head, close);
    let status = response.status;
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    if !head && !bodiless {
        bytes.extend_from_slice(&response.body);
    }
    writer.write_all(&bytes)?;
    writer.flush()
}

/// The status line and headers, with the framing headers redone.
fn response_head(response: &Response, head: bool, close: bool) -> Vec<u8> {
    let status = response.status;
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    let bodiless = (100..200).contains(&status) || status == 204 || status == 304;
    let keep_length = head && response.header("Content-Length").is_some();
    for (name, value) in &response.headers {
        let framing = name.eq_ignore_ascii_case("Transfer-Encoding")
            || name.eq_ignore_ascii_case("Connection")
            || (name.eq_ignore_ascii_case("Content-Length") && !keep_length);
        if !framing {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    if !bodiless && !keep_length {
        out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
