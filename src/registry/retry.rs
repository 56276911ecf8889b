//! When a registry request is worth sending again, and how long to wait first.
//!
//! Retried: 408, 429 (waiting as long as `Retry-After` says, within a cap), 500, 502, 503, 504, and
//! transport failures that a second try can fix (connection refused or reset, timeouts, a
//! connection closed mid-answer). Not retried: TLS and certificate failures, and every other status.
//! Waits grow exponentially, and the whole run of tries is bounded in count and in time.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

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

/// The wait a `Retry-After` header asks for, in seconds (the HTTP-date form is read as "soon").
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => humantime::parse_rfc3339_weak(value)
            .ok()
            .or_else(|| httpdate_to_system_time(value))
            .map(|when| {
                when.duration_since(std::time::SystemTime::now())
                    .unwrap_or_default()
            }),
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`, the form `Retry-After` dates take.
fn httpdate_to_system_time(value: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let text = format!("{year}-{month:02}-{day:0>2}T{time}Z");
    humantime::parse_rfc3339(&text).ok()
}

/// Whether a transport failure (no response at all) is worth another try. TLS failures are
/// not: a certificate will not become trusted by asking again.
pub fn is_retryable_transport_error(error: &reqwest::Error) -> bool {
    if is_tls_error(error) {
        return false;
    }
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// Whether a failure came from TLS (a handshake or certificate problem).
pub fn is_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return true;
        }
        let text = current.to_string();
        if text.contains("certificate") || text.contains("tls handshake") {
            return true;
        }
        source = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_bounded_and_back_off() {
        let mut retries = Retries::new();
        assert_eq!(retries.next_delay(None), Some(Duration::from_millis(500)));
        assert_eq!(retries.next_delay(None), Some(Duration::from_millis(1000)));
        assert_eq!(retries.next_delay(None), Some(Duration::from_millis(2000)));
        assert_eq!(retries.next_delay(None), None);
        assert_eq!(retries.failures(), 4);
    }

    #[test]
    fn retry_after_is_honoured_within_the_cap() {
        let mut retries = Retries::new();
        assert_eq!(
            retries.next_delay(Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retries.next_delay(Some(Duration::from_secs(3600))),
            Some(MAX_DELAY)
        );
    }

    #[test]
    fn reads_retry_after_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn which_statuses_are_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
        for code in [200, 201, 400, 401, 403, 404, 501] {
            assert!(!is_retryable_status(StatusCode::from_u16(code).unwrap()));
        }
    }
}
