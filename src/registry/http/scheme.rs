//! Which scheme a registry host is spoken to in: HTTPS, or plain HTTP for loopback hosts and
//! those named with `--insecure-registry`; where a registry's API is served; and telling a TLS
//! port's answer to plain HTTP apart.
//!
//! Not here: trying the schemes ([`super::ping`]).

use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header::WWW_AUTHENTICATE;

/// Go's answer to plain HTTP on a TLS port.
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
