//! When a registry request is worth sending again, and how long to wait first.
//!
//! Retried: 408, 429 (waiting as long as `Retry-After` says, within a cap), 500, 502, 503, 504, and
//! transport failures that a second try can fix (connection refused or reset, timeouts, a
//! connection closed mid-answer). Not retried: TLS and certificate failures, a proxy that wants
//! other credentials, a host name that does not resolve (it will not within the few seconds of
//! the retries), and every other status.
//! Waits grow exponentially, and the whole run of tries is bounded in count and in time.
//!
//! [`send_with_retries`] applies this to one request whose body can be copied (the `/v2/` ping,
//! token requests); requests with a streamed body or an authentication step retry in
//! [`super::client::Registry::send`] and [`crate::registry::push`] with [`Retries`] directly. What a failure
//! *means* to the user (which hint) is [`super::advice`], not here.

use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::error::{after_tries, is_dns_error, is_tls_error};
use crate::error::Error;

/// How many times one request is tried in all.
const ATTEMPTS: u32 = 4;
/// The wait before the second try; doubled before each later one.
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest single wait, including one a server asks for with `Retry-After`.
const MAX_DELAY: Duration = Duration::from_secs(20);
/// No retry starts after this much time has gone into one request.
pub const TOTAL_BUDGET: Duration = Duration::from_secs(60);

/// The tries of one request.
pub struct Retries {
    attempt: u32,
    started: Instant,
}

impl Default for Retries {
    fn default() -> Self {
        Self::new()
    }
}

impl Retries {
    pub fn new() -> Self {
        Self {
            attempt: 0,
            started: Instant::now(),
        }
    }

    /// Called after a failed try: returns how long to wait before the next, or None if the
    /// budget is spent. `asked` is a server's `Retry-After`.
    pub fn next_delay(&mut self, asked: Option<Duration>) -> Option<Duration> {
        self.attempt += 1;
        if self.attempt >= ATTEMPTS {
            return None;
        }
        let backoff = FIRST_DELAY * 2u32.pow(self.attempt - 1);
        let delay = asked.unwrap_or(backoff).min(MAX_DELAY);
        (self.started.elapsed() + delay <= TOTAL_BUDGET).then_some(delay)
    }

    /// How many tries have failed so far.
    pub fn failures(&self) -> u32 {
        self.attempt
    }
}

/// Whether a response status means "try again".
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// The wait a `Retry-After` header asks for (RFC 9110 section 10.2.3): `delay-seconds` (`120`),
/// or an HTTP-date in any of the three forms recipients must accept (RFC 9110 section 5.6.7:
/// `Sun, 06 Nov 1994 08:49:37 GMT`, the RFC 850 and the asctime forms), read as the time from
/// now until then (zero for a date already past). None for a missing or unreadable value, which
/// leaves the usual backoff. The cap on the wait is [`Retries::next_delay`]'s.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    retry_after_value(value, SystemTime::now())
}

/// [`retry_after`] of one header value, at time `now`.
fn retry_after_value(value: &str, now: SystemTime) -> Option<Duration> {
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // All digits: seconds, however many (a huge number is still "wait the longest").
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}

/// Whether a transport failure (no response at all) is worth another try. TLS failures are
/// not: a certificate will not become trusted by asking again; nor is a name that does not
/// resolve ([`is_dns_error`]).
pub fn is_retryable_transport_error(error: &reqwest::Error) -> bool {
    if is_tls_error(error)
        || is_dns_error(error)
        || super::proxy_failure::wants_other_credentials(error)
    {
        return false;
    }
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// How a request sent by [`send_with_retries`] ended, and how many times it was sent in all.
pub struct Tried {
    pub outcome: std::result::Result<Response, reqwest::Error>,
    pub tries: u32,
}

/// Sends `request`, and again (after the waits of [`Retries`]) while the answer has a retryable
/// status or, with `retry_transport`, the failure is a retryable transport one. Returns the last
/// outcome: a response with a retryable status when the tries ran out, whatever the status
/// otherwise. A request whose body cannot be copied (a stream) is sent once.
pub fn send_with_retries(request: RequestBuilder, retry_transport: bool) -> Tried {
    let mut retries = Retries::new();
    let mut tries = 0;
    loop {
        let Some(copy) = request.try_clone() else {
            return Tried {
                outcome: request.send(),
                tries: tries + 1,
            };
        };
        let outcome = copy.send();
        tries += 1;
        let delay = match &outcome {
            Ok(response) if is_retryable_status(response.status()) => {
                retries.next_delay(retry_after(response.headers()))
            }
            Err(error) if retry_transport && is_retryable_transport_error(error) => {
                retries.next_delay(None)
            }
            _ => None,
        };
        match delay {
            Some(delay) => std::thread::sleep(delay),
            None => return Tried { outcome, tries },
        }
    }
}

/// `error` for an answer with a retryable `status` that kept coming: " (after N tries)", and
/// unless it has one already, a hint saying what such a status means
/// ([`super::advice::still_failing_hint`]).
pub fn still_failing(error: Error, status: StatusCode, tries: u32) -> Error {
    let error = after_tries(error, tries);
    if error.hint_text().is_some() || !is_retryable_status(status) {
        return error;
    }
    error.hint(super::advice::still_failing_hint(status.as_u16()))
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
