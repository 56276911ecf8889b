//! A TCP front in front of a server (a plain-HTTP or TLS registry): it records the first byte
//! of every connection it accepts and forwards the bytes both ways, untouched, so a test can
//! tell a TLS handshake (a record of type `0x16`) from a plain HTTP request (`G`, `H`, `P` …)
//! without decrypting anything.
//!
//! A connection that does not start with a TLS handshake can instead be answered the way TLS
//! servers that do not answer plain HTTP with a page answer it ([`PlainHttp`]): closed without
//! a byte (what OpenSSL 3's `openssl s_server` does with `GET /v2/ HTTP/1.1`), a TLS alert
//! then closed, or a TCP reset.
//!
//! ```ignore
//! let front = TcpFront::start(registry.port(), PlainHttp::Forward);
//! // build with --tag front.host()/fn:v1 …
//! assert!(!front.first_bytes().contains(&TLS_HANDSHAKE));
//! ```

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The content type of a TLS handshake record, the first byte a TLS client sends.
pub const TLS_HANDSHAKE: u8 = 0x16;

/// A fatal `protocol_version` TLS alert (TLS 1.2 record), as a TLS server may send a client
/// that does not speak TLS.
const TLS_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];

/// What the front does with a connection whose first byte is not [`TLS_HANDSHAKE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Forward it like any other.
    Forward,
    /// Close it without sending a byte.
    Close,
    /// Send a TLS alert record, then close it.
    Alert,
    /// Close it with a TCP reset.
    Reset,
}

/// A running front on a free `127.0.0.1` port; stopped on drop (open connections end when
/// their peers close them).
pub struct TcpFront {
    port: u16,
    first_bytes: Arc<Mutex<Vec<u8>>>,
    stopping: Arc<AtomicBool>,
}

impl TcpFront {
    /// Starts a front forwarding to `127.0.0.1:upstream_port`.
    pub fn start(upstream_port: u16, plain_http: PlainHttp) -> TcpFront {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the TCP front");
        let port = listener.local_addr().unwrap().port();
        let first_bytes = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (recorded, stop) = (Arc::clone(&first_bytes), Arc::clone(&stopping));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || serve(client, upstream_port, plain_http, &recorded));
            }
        });
        TcpFront {
            port,
            first_bytes,
            stopping,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The first byte of each connection so far, in the order they came.
    pub fn first_bytes(&self) -> Vec<u8> {
        self.first_bytes.lock().unwrap().clone()
    }
}

impl Drop for TcpFront {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees it must stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    mut client: TcpStream,
    upstream_port: u16,
    plain_http: PlainHttp,
    recorded: &Mutex<Vec<u8>>,
) {
    let mut first = [0u8; 1];
    if client.read_exact(&mut first).is_err() {
        return;
    }
    recorded.lock().unwrap().push(first[0]);
    if first[0] != TLS_HANDSHAKE {
        match plain_http {
            PlainHttp::Forward => {}
            PlainHttp::Close => {
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            PlainHttp::Alert => {
                let _ = client.write_all(&TLS_ALERT);
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            PlainHttp::Reset => {
                super::http_cutoff::set_linger_zero(&client);
                return;
            }
        }
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        return;
    };
    if upstream.write_all(&first).is_err() {
        return;
    }
    let (Ok(mut client_reader), Ok(mut upstream_writer)) =
        (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_reader, &mut upstream_writer);
        let _ = upstream_writer.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
}
