//! What a failure through a proxy means, worded for the user: a request the proxy refused (407,
//! a refused `CONNECT`), a proxy that could not be reached, or an answer from the proxy rather
//! than the registry. Messages name the proxy without its credentials, and how to bypass it.
//!
//! Not here: which proxy a request goes through ([`super::proxy`]).

use reqwest::{StatusCode, Url};

use super::error::{describe_transport_error, is_tls_error};
use super::proxy::{ProxyServer, ProxySettings};
use crate::error::Error;

/// How a proxied request failed at the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProxyFailure {
    /// The proxy answered 407 Proxy Authentication Required.
    AuthenticationRequired,
    /// The proxy refused the `CONNECT` (403, 502, ...) or closed the connection during it.
    TunnelRefused,
    /// The proxy could not be resolved or connected to.
    Unreachable,
    /// A plain-HTTP request through the proxy was answered with a server error, which may be
    /// the proxy's (it could not reach the host) as well as the registry's.
    UpstreamError,
}

/// Which proxy failure a transport error's description (see
/// [`describe_transport_error`]) shows, given that the request went through a
/// proxy. Errors after a connection was made (and TLS errors, which the caller handles first)
/// are not the proxy's.
pub(super) fn classify(description: &str, is_connect: bool) -> Option<ProxyFailure> {
    const AUTHENTICATION: [&str; 4] = [
        "proxy authorization required",
        // SOCKS5 (hyper-util's messages).
        "credentials not accepted",
        "server does not support user/pass authentication",
        "server implements authentication incorrectly",
    ];
    if AUTHENTICATION.iter().any(|text| description.contains(text)) {
        Some(ProxyFailure::AuthenticationRequired)
    } else if description.contains("tunnel error: unsuccessful")
        || description.contains("tunnel error: unexpected end of file")
        // A SOCKS5 server that answered the CONNECT command with a failure status.
        || (description.contains("SOCKS error: ")
            && !description.contains("SOCKS error: failed to create underlying connection"))
    {
        Some(ProxyFailure::TunnelRefused)
    } else if is_connect {
        Some(ProxyFailure::Unreachable)
    } else {
        None
    }
}

/// The error for a request to registry `registry` that got no answer because the proxy it went
/// through failed; None when the request was not proxied or the failure is not the proxy's (TLS
/// errors, and failures after connecting, are left to the caller). `fallback_url` is the URL to
/// judge when the error does not carry one.
pub fn transport_failure(
    registry: &str,
    operation: &str,
    fallback_url: &str,
    error: &reqwest::Error,
) -> Option<Error> {
    if is_tls_error(error) {
        return None;
    }
    let settings = ProxySettings::global().ok()?;
    let url = error
        .url()
        .cloned()
        .or_else(|| Url::parse(fallback_url).ok())?;
    let proxy = settings.proxy_for(&url)?;
    let description = describe_transport_error(error);
    let failure = classify(&description, error.is_connect() || error.is_timeout())?;
    Some(failure_error(
        settings,
        proxy,
        registry,
        operation,
        &url,
        failure,
        &description,
    ))
}

/// Whether a transport error is a proxy asking for credentials it did not get, or refusing the
/// ones it got (a `407` to `CONNECT`, a SOCKS5 authentication failure): asking again with the same
/// proxy URL cannot help, so it is not retried.
pub fn wants_other_credentials(error: &reqwest::Error) -> bool {
    let description = describe_transport_error(error);
    classify(&description, false) == Some(ProxyFailure::AuthenticationRequired)
}

/// The header every distribution-API answer carries; an answer with it came from a registry.
pub(super) const API_VERSION_HEADER: &str = "docker-distribution-api-version";

/// The error for an answer a plain-HTTP request sent through a proxy got that is likely the
/// proxy's own: `407` (the proxy wants credentials), or a 5xx without the registry API's
/// `Docker-Distribution-Api-Version` header (proxies answer 500, 502, 503 or 504 when they cannot
/// reach the host: tinyproxy 500, squid 503). None otherwise, and for HTTPS requests, whose
/// answers come through a tunnel from the registry itself.
pub fn status_failure(
    registry: &str,
    operation: &str,
    response: &reqwest::blocking::Response,
) -> Option<Error> {
    let url = response.url();
    if url.scheme() != "http" {
        return None;
    }
    let settings = ProxySettings::global().ok()?;
    let proxy = settings.proxy_for(url)?;
    let from_registry = response.headers().contains_key(API_VERSION_HEADER);
    let failure = classify_status(response.status(), from_registry)?;
    Some(failure_error(
        settings,
        proxy,
        registry,
        operation,
        url,
        failure,
        &response.status().to_string(),
    ))
}

/// Which proxy failure the status of a proxied plain-HTTP answer shows, if any.
pub(super) fn classify_status(status: StatusCode, from_registry: bool) -> Option<ProxyFailure> {
    match status.as_u16() {
        407 => Some(ProxyFailure::AuthenticationRequired),
        500 | 502 | 503 | 504 if !from_registry => Some(ProxyFailure::UpstreamError),
        _ => None,
    }
}

/// The message and hint for a proxy failure on a request to `url`.
pub(super) fn failure_error(
    settings: &ProxySettings,
    proxy: &ProxyServer,
    registry: &str,
    operation: &str,
    url: &Url,
    failure: ProxyFailure,
    detail: &str,
) -> Error {
    let host = url.host_str().unwrap_or_default();
    let target = match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let name = format!("the proxy {} (from {})", proxy.display(), proxy.variable());
    let bypass = format!(
        "to reach {host} without the proxy, add it to NO_PROXY: {}",
        settings.bypass_example(host.trim_start_matches('[').trim_end_matches(']'))
    );
    let variable = proxy.variable();
    let (what, hint) = match failure {
        ProxyFailure::AuthenticationRequired if proxy.has_credentials() => (
            format!("{name} refused the credentials in {variable}"),
            format!(
                "check the user name and password in {variable} (http://USER:PASS@HOST:PORT, \
                 with characters such as @ : / % percent-encoded); or {bypass}"
            ),
        ),
        ProxyFailure::AuthenticationRequired => (
            format!("{name} wants credentials"),
            format!(
                "put them in the proxy URL: {variable}={}://USER:PASS@{} (with characters such \
                 as @ : / % percent-encoded); or {bypass}",
                proxy.url.scheme(),
                proxy.address()
            ),
        ),
        ProxyFailure::TunnelRefused => (
            format!("{name} could not or would not connect to {target}"),
            format!(
                "the proxy may {}forbid that host or port (many allow CONNECT only to port 443), \
                 or cannot reach it itself: ask its administrator; or {bypass}",
                if proxy.has_credentials() {
                    format!("refuse the credentials in {variable}, ")
                } else {
                    String::new()
                }
            ),
        ),
        ProxyFailure::UpstreamError => (
            format!("answered through {name}, which may be unable to reach {target}"),
            format!(
                "check that the proxy can reach {target}, or that the registry is up; or {bypass}"
            ),
        ),
        ProxyFailure::Unreachable => (
            format!("cannot reach {name}"),
            format!("check that the proxy is up and that {variable} names it right; or {bypass}"),
        ),
    };
    Error::registry(format!(
        "registry {registry}: {operation} failed: {what} ({detail})"
    ))
    .hint(hint)
}
