//! Blob downloads that survive a broken connection.
//!
//! [`RestartingDownload`] is a blob GET that, when the body breaks off (a reset, a body shorter
//! than its `Content-Length`, a stall found by the idle watch of [`super::transfer`]), asks
//! again for the rest (`Range: bytes=N-`), within the usual retry budget; a registry that
//! ignores the range sends the whole blob again and what was already passed on is skipped. It
//! does not verify: its consumer wraps it in a [`crate::digest::VerifyingReader`], which sees
//! one continuous stream either way and checks the whole blob's size and digest at its end.
//!
//! The GET and the body's reads run on a thread of their own, which hands the body over in
//! pieces; the reader waits for each piece no longer than the idle limit allows.

use std::io::{self, Read};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};

use super::http::client::Registry;
use super::http::retry::{Retries, TOTAL_BUDGET};
use super::transfer::{Activity, IDLE_TIMEOUT_VARIABLE, blob_idle_timeout};
use crate::error::Error;
use crate::error::describe_error_chain;
use crate::image::store::BlobFailure;

/// The size of the pieces a download thread hands over.
const CHUNK_SIZE: usize = 256 * 1024;
/// How many pieces may wait to be consumed.
const CHUNKS_IN_FLIGHT: usize = 4;

/// What a download thread hands over.
enum Piece {
    /// The request failed before any body (a status or transport error, already retried).
    Refused(Error),
    /// The answer's body starts at this offset of the blob (0, or where a `Range` asked).
    StartsAt(u64),
    Bytes(Vec<u8>),
    /// The body broke off.
    Broken(BrokenOff),
    End,
}

/// Why a download's body broke off (and is asked for again, while the retry budget lasts).
#[derive(Debug)]
enum BrokenOff {
    /// The download thread could not be started.
    NoThread(io::Error),
    /// Reading the body failed (a reset, a body shorter than its `Content-Length`, …).
    Read(io::Error),
    /// A partial answer that does not start where the `Range` (`bytes N-`) asked.
    OtherRange { wanted: String },
    /// No data for this many seconds (the idle limit).
    Idle { seconds: u64 },
    /// The download thread went away without a word.
    Stopped,
    /// The body ended before the blob's size (bytes).
    EndedEarly { expected: u64 },
}

impl std::fmt::Display for BrokenOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokenOff::NoThread(error) => write!(f, "cannot start a thread: {error}"),
            BrokenOff::Read(error) => f.write_str(&describe_error_chain(error)),
            BrokenOff::OtherRange { wanted } => write!(
                f,
                "the registry answered a range other than the one asked for ({wanted}…)"
            ),
            BrokenOff::Idle { seconds } => write!(
                f,
                "no data for {seconds} s ({IDLE_TIMEOUT_VARIABLE} sets this limit)"
            ),
            BrokenOff::Stopped => f.write_str("the download stopped unexpectedly"),
            BrokenOff::EndedEarly { expected } => {
                write!(f, "the body ended early ({expected} bytes were expected)")
            }
        }
    }
}

/// A blob GET that restarts from the beginning when its body breaks off (see the module docs).
pub struct RestartingDownload {
    registry: Arc<Registry>,
    url: String,
    operation: String,
    size: u64,
    limit: Duration,
    retries: Retries,
    /// Bytes passed on to the reader so far.
    delivered: u64,
    /// Bytes of the current answer still to skip (passed on from an earlier one).
    to_skip: u64,
    current: Option<mpsc::Receiver<Piece>>,
    /// A piece received before the reader asked for it (the first, to see a refusal early).
    peeked: Option<Piece>,
    /// Whether the current request has not been answered yet.
    awaiting_answer: bool,
    activity: Activity,
    pending: Vec<u8>,
    pending_start: usize,
}

impl RestartingDownload {
    /// Starts `GET url` (`size` bytes expected) and waits for its answer; a refusal (status or
    /// transport error, after the usual retries) is returned as the error.
    pub fn start(
        registry: Arc<Registry>,
        url: String,
        operation: String,
        size: u64,
    ) -> Result<Self, Error> {
        let mut download = Self {
            registry,
            url,
            operation,
            size,
            limit: blob_idle_timeout(),
            retries: Retries::new(),
            delivered: 0,
            to_skip: 0,
            current: None,
            peeked: None,
            awaiting_answer: false,
            activity: Activity::new(),
            pending: Vec::new(),
            pending_start: 0,
        };
        download.open();
        match download.next_piece() {
            Ok(Piece::Refused(error)) => Err(error),
            Ok(piece) => {
                download.peeked = Some(piece);
                Ok(download)
            }
            Err(why) => match download.restart(why) {
                Ok(()) => Ok(download),
                Err(error) => Err(download.failure(error)),
            },
        }
    }

    /// Sends the GET on a thread that passes the body on in pieces.
    fn open(&mut self) {
        let from = self.delivered;
        let (sender, receiver) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let registry = Arc::clone(&self.registry);
        let url = self.url.clone();
        let operation = self.operation.clone();
        let activity = self.activity.clone();
        let spawned = std::thread::Builder::new()
            .name("blob-download".to_owned())
            .spawn(move || {
                fetch_in_pieces(&registry, &url, &operation, from, &activity, &sender);
            });
        if let Err(error) = spawned {
            let (sender, receiver) = mpsc::sync_channel(1);
            let _ = sender.send(Piece::Broken(BrokenOff::NoThread(error)));
            self.current = Some(receiver);
            return;
        }
        self.to_skip = 0;
        self.awaiting_answer = true;
        self.activity.touch();
        self.current = Some(receiver);
    }

    /// The next piece of the current answer, or why there is none. The wait for the answer's
    /// head may include the request's own retries, so it gets the retry budget on top.
    fn next_piece(&mut self) -> Result<Piece, BrokenOff> {
        let receiver = self.current.as_ref().expect("a download is open");
        loop {
            let limit = if self.awaiting_answer {
                self.limit + TOTAL_BUDGET
            } else {
                self.limit
            };
            let wait = limit
                .saturating_sub(self.activity.idle())
                .max(Duration::from_millis(10));
            match receiver.recv_timeout(wait) {
                Ok(piece) => {
                    // A slow reader is not a stalled peer: idle time counts from here again.
                    self.activity.touch();
                    self.awaiting_answer = false;
                    return Ok(piece);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if self.activity.idle() >= limit => {
                    return Err(BrokenOff::Idle {
                        seconds: self.limit.as_secs(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(BrokenOff::Stopped);
                }
            }
        }
    }

    /// Keeps what a piece holds (after skipping what was already passed on).
    fn take(&mut self, piece: Piece) {
        if let Piece::StartsAt(offset) = piece {
            // Checked by the thread: 0 (a whole body), or exactly where the Range asked.
            self.to_skip = self.delivered - offset;
        }
        if let Piece::Bytes(bytes) = piece {
            let skip = (self.to_skip.min(bytes.len() as u64)) as usize;
            self.to_skip -= skip as u64;
            self.pending = bytes;
            self.pending_start = skip;
        }
    }

    /// After the body broke off: waits as the retry budget says, then asks again.
    fn restart(&mut self, why: BrokenOff) -> Result<(), BrokenOff> {
        self.current = None;
        match self.retries.next_delay(None) {
            Some(delay) => {
                std::thread::sleep(delay);
                self.open();
                Ok(())
            }
            None => Err(why),
        }
    }

    fn failure(&self, why: BrokenOff) -> Error {
        Error::registry(format!(
            "registry {}: {} failed: {why} (after {} tries)",
            self.registry.host(),
            self.operation,
            self.retries.failures()
        ))
        .hint("check that the registry is up and reachable, then run the build again")
    }
}

impl Read for RestartingDownload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pending_start < self.pending.len() {
                let available = &self.pending[self.pending_start..];
                let n = available.len().min(buf.len());
                buf[..n].copy_from_slice(&available[..n]);
                self.pending_start += n;
                self.delivered += n as u64;
                return Ok(n);
            }
            if self.current.is_none() {
                return Ok(0);
            }
            let piece = match self.peeked.take() {
                Some(piece) => Ok(piece),
                None => self.next_piece(),
            };
            let outcome: Result<(), BrokenOff> = match piece {
                Ok(piece @ (Piece::Bytes(_) | Piece::StartsAt(_))) => {
                    self.take(piece);
                    continue;
                }
                Ok(Piece::End) if self.to_skip == 0 && self.delivered >= self.size => {
                    self.current = None;
                    return Ok(0);
                }
                Ok(Piece::End) => Err(BrokenOff::EndedEarly {
                    expected: self.size,
                }),
                Ok(Piece::Broken(why)) => Err(why),
                Ok(Piece::Refused(error)) => {
                    self.current = None;
                    return Err(io::Error::other(BlobFailure(error)));
                }
                Err(why) => Err(why),
            };
            if let Err(why) = outcome {
                self.restart(why)
                    .map_err(|why| io::Error::other(BlobFailure(self.failure(why))))?;
            }
        }
    }
}

/// The download thread: `GET url` (from byte `from` on, with a `Range`, when it is not 0), then
/// where the body starts and the body in pieces, until it ends or breaks or the reader goes
/// away. A registry that ignores the `Range` sends the whole blob (200), which is as good; a
/// partial answer is used only if its `Content-Range` starts exactly at `from`.
fn fetch_in_pieces(
    registry: &Registry,
    url: &str,
    operation: &str,
    from: u64,
    activity: &Activity,
    sender: &mpsc::SyncSender<Piece>,
) {
    let response = registry.send(operation, &|http| {
        let request = http.get(url);
        if from > 0 {
            request.header(RANGE, format!("bytes={from}-"))
        } else {
            request
        }
    });
    let wanted_range = format!("bytes {from}-");
    let mut response = match response {
        Ok(response) if response.status() == StatusCode::PARTIAL_CONTENT && from > 0 => {
            let starts_at_from = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with(&wanted_range));
            if !starts_at_from {
                let _ = sender.send(Piece::Broken(BrokenOff::OtherRange {
                    wanted: wanted_range,
                }));
                return;
            }
            let _ = sender.send(Piece::StartsAt(from));
            response
        }
        Ok(response) if response.status() == StatusCode::OK => {
            let _ = sender.send(Piece::StartsAt(0));
            response
        }
        // The registry does not have the blob: the base's fault (its registry's copy is
        // incomplete), which the caller words (see `RemoteRepository::open`).
        Ok(response) if response.status() == StatusCode::NOT_FOUND => {
            let error = registry.status_error(operation, response);
            let _ = sender.send(Piece::Refused(Error::base(error.message().to_owned())));
            return;
        }
        Ok(response) => {
            let _ = sender.send(Piece::Refused(registry.status_error(operation, response)));
            return;
        }
        Err(error) => {
            let _ = sender.send(Piece::Refused(error));
            return;
        }
    };
    activity.touch();
    loop {
        let mut chunk = vec![0; CHUNK_SIZE];
        let mut filled = 0;
        let ending = loop {
            match response.read(&mut chunk[filled..]) {
                Ok(0) => break Some(Piece::End),
                Ok(n) => {
                    activity.touch();
                    filled += n;
                    if filled == chunk.len() {
                        break None;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break Some(Piece::Broken(BrokenOff::Read(error))),
            }
        };
        if filled > 0 {
            chunk.truncate(filled);
            if sender.send(Piece::Bytes(chunk)).is_err() {
                return;
            }
        }
        if let Some(ending) = ending {
            let _ = sender.send(ending);
            return;
        }
    }
}
