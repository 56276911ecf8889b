//! A registry whose documents never end: a raw HTTP/1.1 server on `127.0.0.1` that answers
//! chosen paths with `Content-Length: 1 GiB` and then streams spaces until the client hangs
//! up, counting every byte it managed to send. It proves a size limit is enforced while
//! reading, not after: a client that stops at the limit leaves the count near it (plus what
//! the kernel's socket buffers took), one that reads on pushes it towards the gigabyte.
//!
//! (The shared `support/registries/http.rs` server sends whole bodies from memory, so it cannot do this.)

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the endless server sends for a path.
#[derive(Clone)]
pub enum Body {
    /// This document, with this `Content-Type`.
    Document(&'static str, Vec<u8>),
    /// A `Content-Length` of [`ENDLESS_LENGTH`] and spaces until the client stops reading.
    Endless(&'static str),
}

/// What an endless body claims to be.
pub const ENDLESS_LENGTH: u64 = 1 << 30;

struct State {
    routes: Mutex<HashMap<String, Body>>,
    endless_bytes_sent: AtomicU64,
    open_connections: AtomicUsize,
}

/// The running server; its listener thread ends with the test process.
pub struct EndlessServer {
    port: u16,
    state: Arc<State>,
}

impl EndlessServer {
    /// Serves `GET /v2/` (200) and `routes` (by path); anything else is 404.
    pub fn start(routes: HashMap<String, Body>) -> EndlessServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            routes: Mutex::new(routes),
            endless_bytes_sent: AtomicU64::new(0),
            open_connections: AtomicUsize::new(0),
        });
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&accept_state);
                state.open_connections.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    serve(stream, &state);
                    state.open_connections.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        EndlessServer { port, state }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Bytes of endless bodies sent, once every connection is closed (or after 10 s).
    pub fn endless_bytes_sent(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.state.open_connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.state.endless_bytes_sent.load(Ordering::SeqCst)
    }
}

fn serve(stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
        let body = if path == "/v2/" {
            Some(Body::Document("application/json", b"{}".to_vec()))
        } else {
            state.routes.lock().unwrap().get(&path).cloned()
        };
        let sent = match body {
            None => write_document(&mut writer, 404, "application/json", b"{}"),
            Some(Body::Document(content_type, bytes)) => {
                write_document(&mut writer, 200, content_type, &bytes)
            }
            Some(Body::Endless(content_type)) => {
                write_endless(&mut writer, content_type, &state.endless_bytes_sent);
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn write_document(
    writer: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        writer,
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    writer.write_all(body)?;
    writer.flush()
}

/// Streams spaces until the peer stops reading (or the claimed length is reached).
fn write_endless(writer: &mut TcpStream, content_type: &str, sent: &AtomicU64) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {ENDLESS_LENGTH}\r\n\r\n"
    );
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    let _ = writer.set_write_timeout(Some(Duration::from_secs(5)));
    let chunk = vec![b' '; 64 * 1024];
    let mut total = 0u64;
    while total < ENDLESS_LENGTH {
        match writer.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                total += n as u64;
                sent.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
}
