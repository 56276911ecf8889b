//! Blob transfers that notice a stalled peer: the idle watch. (How a registry failure travels
//! through a reader is `crate::image::store::BlobFailure`.)
//!
//! reqwest's blocking client has only whole-request timeouts, and a blob may rightly take an
//! hour; what must not happen is an hour of nothing. So a blob transfer runs on a thread of its
//! own, and the caller waits for it while watching an [`Activity`] clock that every byte moved
//! resets: after [`blob_idle_timeout`] without a byte the caller gives up on that thread (which is
//! left to fail on its own; it holds only its connection) and treats the transfer as failed in
//! a way worth retrying.
//!
//! Not here: whether a status is worth retrying ([`super::http::retry`]), the upload protocol
//! ([`super::push`]), downloads that resume ([`super::download`]).

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The environment variable that overrides [`DEFAULT_IDLE_TIMEOUT`], in whole seconds.
pub const IDLE_TIMEOUT_VARIABLE: &str = "LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS";
/// How long a blob transfer may go without moving a byte: long enough for a slow link.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a blob transfer may go without moving a byte: `LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS`
/// if set to a positive number of seconds, else 60 s.
pub fn blob_idle_timeout() -> Duration {
    std::env::var(IDLE_TIMEOUT_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .map_or(DEFAULT_IDLE_TIMEOUT, Duration::from_secs)
}

/// When a transfer last moved a byte. Time spent inside a read of the transfer's *source*
/// (which may itself be a download, with its own watch) does not count as idle.
#[derive(Clone)]
pub struct Activity {
    state: Arc<ActivityState>,
}

struct ActivityState {
    started: Instant,
    /// Milliseconds from `started` to the last byte moved.
    last: AtomicU64,
    in_source: AtomicBool,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    pub fn new() -> Self {
        Self {
            state: Arc::new(ActivityState {
                started: Instant::now(),
                last: AtomicU64::new(0),
                in_source: AtomicBool::new(false),
            }),
        }
    }

    /// Something moved: the idle time starts again.
    pub fn touch(&self) {
        let now = self.state.started.elapsed().as_millis() as u64;
        self.state.last.store(now, Ordering::Relaxed);
    }

    /// How long nothing has moved (zero while a source read is under way).
    pub fn idle(&self) -> Duration {
        if self.state.in_source.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.state.last.load(Ordering::Relaxed));
        self.state.started.elapsed().saturating_sub(last)
    }

    /// Wraps the source of an upload: each read counts as activity, and the time spent in it
    /// does not count as idle.
    pub fn watch_source(&self, inner: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        Box::new(WatchedSource {
            inner,
            activity: self.clone(),
        })
    }
}

struct WatchedSource {
    inner: Box<dyn Read + Send>,
    activity: Activity,
}

impl Read for WatchedSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.activity.state.in_source.store(true, Ordering::Relaxed);
        let result = self.inner.read(buf);
        self.activity.touch();
        self.activity
            .state
            .in_source
            .store(false, Ordering::Relaxed);
        result
    }
}

/// Runs `work` on a thread of its own and returns what it returns, or None once `activity` has
/// been idle for `limit` (the thread is then abandoned). If no thread can be started, `work`
/// runs here, unwatched.
pub fn run_watched<T: Send + 'static>(
    activity: &Activity,
    limit: Duration,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let work = Arc::new(Mutex::new(Some(work)));
    let on_thread = Arc::clone(&work);
    let spawned = std::thread::Builder::new()
        .name("blob-transfer".to_owned())
        .spawn(move || {
            let work = on_thread.lock().ok().and_then(|mut slot| slot.take());
            if let Some(work) = work {
                let _ = sender.send(work());
            }
        });
    if spawned.is_err() {
        let work = work.lock().ok().and_then(|mut slot| slot.take())?;
        return Some(work());
    }
    activity.touch();
    loop {
        let wait = limit
            .saturating_sub(activity.idle())
            .max(Duration::from_millis(10));
        match receiver.recv_timeout(wait) {
            Ok(result) => return Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) if activity.idle() >= limit => return None,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The thread ended without an answer: it panicked, which is a bug, not a stall.
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(150);

    #[test]
    fn a_watched_transfer_that_finishes_gives_its_result() {
        let activity = Activity::new();
        assert_eq!(run_watched(&activity, LIMIT, || 7), Some(7));
    }

    #[test]
    fn a_transfer_that_moves_nothing_is_given_up_and_one_that_moves_is_not() {
        let activity = Activity::new();
        let started = Instant::now();
        let stalled = run_watched(&activity, LIMIT, || {
            std::thread::sleep(Duration::from_secs(5));
        });
        assert!(stalled.is_none());
        assert!(started.elapsed() < Duration::from_secs(2));

        let activity = Activity::new();
        let moving = activity.clone();
        let slow_but_alive = run_watched(&activity, LIMIT, move || {
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(25));
                moving.touch();
            }
            "done"
        });
        assert_eq!(slow_but_alive, Some("done"));
    }

    #[test]
    fn time_spent_reading_the_source_is_not_idle() {
        struct SlowSource;
        impl Read for SlowSource {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(400));
                Ok(0)
            }
        }
        let activity = Activity::new();
        let mut source = activity.watch_source(Box::new(SlowSource));
        let result = run_watched(&activity, LIMIT, move || source.read(&mut [0; 8]).unwrap());
        assert_eq!(result, Some(0));
    }
}
