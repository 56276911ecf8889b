//! Accepting connections on a loopback port and serving each on a thread of its own, one request
//! after another (HTTP/1.1 persistent connections), within [`ServerLimits`] against slow, idle
//! and too many clients; requests that browsers send for pages elsewhere are refused.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::request::{read_after_head, read_head};
use super::{ClientConnection, HttpReply, IncomingRequest, write_reply};
use crate::error::{Error, Result};

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
/// [`KEPT_BODY_BYTES`](super::KEPT_BODY_BYTES), so this bounds threads, file descriptors (two per connection, far below
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
    let (Ok(mut writer), Ok(client)) = (connection.try_clone(), connection.try_clone()) else {
        return;
    };
    let client = ClientConnection::new(client);
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
        let (mut request, keep_alive) = match read {
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
        request.client = Some(client.clone());
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::emulator::http::request::MAX_READ_BODY_BYTES;

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
