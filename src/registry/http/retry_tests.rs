//! Unit tests of [`super`] (registry/http/retry.rs).

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
    headers.insert(RETRY_AFTER, " 7 ".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    headers.insert(
        RETRY_AFTER,
        "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
    );
    assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    headers.insert(RETRY_AFTER, "soon".parse().unwrap());
    assert_eq!(retry_after(&headers), None);
    assert_eq!(retry_after(&HeaderMap::new()), None);
}

/// RFC 9110 section 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
#[test]
fn retry_after_dates_in_every_form_count_from_now() {
    let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:07 GMT").unwrap();
    for value in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        assert_eq!(
            retry_after_value(value, now),
            Some(Duration::from_secs(30)),
            "{value}"
        );
    }
    let later = now + Duration::from_secs(60);
    assert_eq!(
        retry_after_value("Sun, 06 Nov 1994 08:49:37 GMT", later),
        Some(Duration::ZERO)
    );
}

#[test]
fn retry_after_seconds_are_digits_only() {
    let now = SystemTime::now();
    assert_eq!(retry_after_value("0", now), Some(Duration::ZERO));
    assert_eq!(
        retry_after_value("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        retry_after_value("99999999999999999999999", now),
        Some(Duration::from_secs(u64::MAX))
    );
    for value in ["", "-5", "1.5", "+3", "3s", "Sun, 06 Nov 1994"] {
        assert_eq!(retry_after_value(value, now), None, "{value:?}");
    }
}

/// An error with a cause, as hyper-util and reqwest chain them.
#[derive(Debug)]
struct Chained(String, Option<Box<Chained>>);

impl std::fmt::Display for Chained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Chained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().map(|cause| cause as _)
    }
}

fn chain(texts: &[&str]) -> Chained {
    texts
        .iter()
        .rev()
        .fold(None, |cause, text| {
            Some(Chained(text.to_string(), cause.map(Box::new)))
        })
        .unwrap()
}

#[test]
fn dns_failures_are_told_from_other_connect_failures() {
    for dns in [
        chain(&[
            "error sending request",
            "client error (Connect)",
            "dns error",
            "failed to lookup address information: Name or service not known",
        ]),
        chain(&["client error (Connect)", "dns error"]),
        chain(&["failed to lookup address information: Temporary failure in name resolution"]),
    ] {
        assert!(is_dns_error(&dns), "{dns:?}");
    }
    for other in [
        chain(&[
            "error sending request",
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ]),
        chain(&["operation timed out"]),
        chain(&["a dns error somewhere"]),
    ] {
        assert!(!is_dns_error(&other), "{other:?}");
    }
}

/// A server on a free loopback port that answers each connection with the next of
/// `answers` (raw HTTP/1.1 responses), closing it after.
fn serve(answers: Vec<&'static str>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for (mut stream, answer) in listener.incoming().flatten().zip(answers) {
            let _ = stream.read(&mut [0u8; 4096]);
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    port
}

const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const OK: &str = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

#[test]
fn send_with_retries_sends_again_after_a_retryable_status_only() {
    let http = reqwest::blocking::Client::new();
    let port = serve(vec![UNAVAILABLE, UNAVAILABLE, OK]);
    let tried = send_with_retries(http.get(format!("http://127.0.0.1:{port}/v2/")), false);
    assert_eq!(tried.outcome.unwrap().status(), StatusCode::OK);
    assert_eq!(tried.tries, 3);

    let port = serve(vec![NOT_FOUND, OK]);
    let tried = send_with_retries(http.get(format!("http://127.0.0.1:{port}/v2/")), true);
    assert_eq!(tried.outcome.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(tried.tries, 1);

    let port = serve(vec![UNAVAILABLE; 4]);
    let tried = send_with_retries(http.get(format!("http://127.0.0.1:{port}/v2/")), false);
    assert_eq!(
        tried.outcome.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(tried.tries, 4);
}

#[test]
fn send_with_retries_retries_transport_failures_only_when_asked() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let http = reqwest::blocking::Client::new();
    let tried = send_with_retries(http.get(format!("http://127.0.0.1:{port}/v2/")), false);
    assert!(tried.outcome.unwrap_err().is_connect());
    assert_eq!(tried.tries, 1);
    let started = Instant::now();
    let tried = send_with_retries(http.get(format!("http://127.0.0.1:{port}/v2/")), true);
    assert!(tried.outcome.is_err());
    assert_eq!(tried.tries, 4);
    assert!(started.elapsed() >= Duration::from_millis(3500));
}

#[test]
fn transport_failures_that_cannot_heal_are_not_retried() {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = http
        .get(format!("http://127.0.0.1:{dead}/v2/"))
        .send()
        .unwrap_err();
    assert!(is_retryable_transport_error(&refused), "{refused:?}");
    // A server that accepts and never answers: a timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let timed_out = http
        .get(format!("http://127.0.0.1:{port}/v2/"))
        .send()
        .unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out:?}");
    assert!(is_retryable_transport_error(&timed_out), "{timed_out:?}");
    drop(silent);
    // A name that does not resolve (.invalid is reserved, RFC 2606).
    let unresolved = http
        .get("http://no-such-registry.invalid/v2/")
        .send()
        .unwrap_err();
    assert!(!is_retryable_transport_error(&unresolved), "{unresolved:?}");
    // TLS spoken to a plain-HTTP server.
    let port = serve(vec![NOT_FOUND]);
    let tls = http
        .get(format!("https://127.0.0.1:{port}/v2/"))
        .send()
        .unwrap_err();
    assert!(!is_retryable_transport_error(&tls), "{tls:?}");
}

#[test]
fn a_request_whose_body_is_a_stream_is_sent_once() {
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let port = serve(vec![UNAVAILABLE, OK]);
    let body = reqwest::blocking::Body::new(std::io::Cursor::new(b"blob".to_vec()));
    let tried = send_with_retries(
        http.put(format!("http://127.0.0.1:{port}/v2/")).body(body),
        true,
    );
    assert_eq!(
        tried.outcome.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(tried.tries, 1);
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
