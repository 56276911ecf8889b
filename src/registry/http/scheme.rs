//! Which scheme a registry host is spoken to in: HTTPS, or plain HTTP for loopback hosts and
//! those named with `--insecure-registry`; the scheme found for each host, kept for the
//! process; where a registry's API is served; and telling a TLS port's answer to plain HTTP
//! apart ([`PlainAnswer`]).
//!
//! Not here: trying the schemes ([`super::ping`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header::WWW_AUTHENTICATE;

use super::error::{describe_transport_error, is_dns_error};

/// The scheme a registry host is spoken to in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`, as in URLs.
    pub(super) fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The scheme found for one host, once found.
pub(super) type KnownScheme = Arc<Mutex<Option<Scheme>>>;

/// The scheme found for `api_host` (`name[:port]`, compared without regard to case) by this
/// process, `None` until a session finds it; the lock is held while a session probes, so that
/// one opened at the same time waits and does not probe again.
pub(super) fn known_scheme(api_host: &str) -> KnownScheme {
    static KNOWN: OnceLock<Mutex<HashMap<String, KnownScheme>>> = OnceLock::new();
    let mut known = KNOWN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Arc::clone(known.entry(api_host.to_ascii_lowercase()).or_default())
}

/// What the plain-HTTP `GET /v2/` of a host that may use plain HTTP says about its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlainAnswer {
    /// The host speaks plain HTTP (or cannot be reached at all, which the plain ping reports).
    Plain,
    /// The port speaks TLS: a TLS server's page for plain HTTP ([`is_https_only_answer`]), or a
    /// redirect that ended at `https://`.
    Tls,
    /// It may: the connection was closed or reset, or its answer was not HTTP (what a TLS
    /// server that does not answer plain HTTP with a page does: a TLS alert, or nothing), or
    /// the HTTPS port is another one and the plain port has no registry. HTTPS is tried; if
    /// it cannot be reached, or its port answers in plain HTTP, plain HTTP stands.
    Unsure,
}

impl PlainAnswer {
    /// Reads the outcome of one plain `GET /v2/`; `other_port` says whether HTTPS would be
    /// another port (a host given without a port: 80 and 443).
    pub(super) fn read(
        outcome: std::result::Result<&Response, &reqwest::Error>,
        other_port: bool,
    ) -> PlainAnswer {
        match outcome {
            Ok(response) if response.url().scheme() == "https" => PlainAnswer::Tls,
            Ok(response) if is_https_only_answer(response) => PlainAnswer::Tls,
            Ok(response) if other_port && !is_registry_answer(response) => PlainAnswer::Unsure,
            Ok(_) => PlainAnswer::Plain,
            // A name that does not resolve will not resolve for HTTPS either.
            Err(error) if is_dns_error(error) => PlainAnswer::Plain,
            Err(error) if error.is_connect() && !other_port => PlainAnswer::Plain,
            Err(error) if answered_in_plain_http(&describe_transport_error(error)) => {
                PlainAnswer::Plain
            }
            Err(_) => PlainAnswer::Unsure,
        }
    }
}

/// Whether a `GET /v2/` answer comes from a registry (or a server that wants the client to
/// wait): 2xx, 401, a retryable status, or distribution's `Docker-Distribution-API-Version`.
fn is_registry_answer(response: &Response) -> bool {
    let status = response.status();
    status.is_success()
        || status == StatusCode::UNAUTHORIZED
        || super::retry::is_retryable_status(status)
        || response
            .headers()
            .contains_key("docker-distribution-api-version")
}

/// Whether HTTPS is served on another port than plain HTTP for `api_host`: no port given, so
/// 443 and 80.
pub(super) fn https_port_differs(api_host: &str) -> bool {
    host_without_port(api_host).len() == api_host.len()
}

/// A TLS server's answer to plain HTTP on its port: a `400` that is no registry's (no
/// challenge, no JSON error body). Go's `net/http` ("Client sent an HTTP request to an HTTPS
/// server.", no `Content-Type`), nginx ("The plain HTTP request was sent to HTTPS port",
/// HTML; SUSE/Portus#1508) and Apache's `mod_ssl` ("You're speaking plain HTTP to an
/// SSL-enabled server port", HTML) answer so.
pub(super) fn is_https_only_answer(response: &Response) -> bool {
    response.status() == StatusCode::BAD_REQUEST
        && response.headers().get(WWW_AUTHENTICATE).is_none()
        && response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_none_or(|value| !value.as_bytes().starts_with(b"application/json"))
}

/// Where a registry's API is served: Docker Hub's is not at `docker.io`.
pub(super) fn api_host(registry: &str) -> &str {
    if registry == crate::reference::registry::DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Loopback hosts, and hosts the user named with `--insecure-registry`, may use plain HTTP.
/// Host names compare without regard to case (RFC 4343).
pub fn allows_plain_http(host: &str, insecure_registries: &[String]) -> bool {
    if insecure_registries
        .iter()
        .any(|insecure| insecure.eq_ignore_ascii_case(host))
    {
        return true;
    }
    is_loopback_name(host_without_port(host))
}

/// Whether a host name (no port; IPv6 with or without brackets) is `localhost` or a loopback
/// address (`127.0.0.0/8`, `::1`, and IPv4-mapped `::ffff:127.x.y.z`).
pub(super) fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `host` without its `:port`, IPv6 brackets kept (`[::1]`).
pub(super) fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(ip, _)| &host[..ip.len() + 1]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether a TLS handshake got a plain HTTP answer (rustls: "received corrupt message of type
/// InvalidContentType"): the host speaks HTTP only.
pub(super) fn answered_in_plain_http(description: &str) -> bool {
    description.contains("InvalidContentType")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a port, plain HTTP is port 80 and HTTPS 443; with one, both are that port.
    #[test]
    fn https_is_another_port_only_for_a_host_without_one() {
        for host in ["registry.local", "localhost", "[::1]", "10.0.0.5"] {
            assert!(https_port_differs(host), "{host}");
        }
        for host in [
            "registry.local:5000",
            "localhost:80",
            "[::1]:5000",
            "10.0.0.5:443",
        ] {
            assert!(!https_port_differs(host), "{host}");
        }
    }

    /// Each host has its own record, found again whatever the case of its name.
    #[test]
    fn the_scheme_found_is_kept_per_host() {
        let host = "scheme-test.invalid:5000";
        *known_scheme(host).lock().unwrap() = Some(Scheme::Https);
        assert_eq!(
            *known_scheme("SCHEME-TEST.invalid:5000").lock().unwrap(),
            Some(Scheme::Https)
        );
        assert_eq!(
            *known_scheme("scheme-test.invalid:5001").lock().unwrap(),
            None
        );
    }
}
