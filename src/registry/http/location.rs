//! Where an upload session lives, and whether a registry's credentials may go there.
//!
//! A `POST …/blobs/uploads/` answers `202` with a `Location` for the session, absolute or
//! relative. It is resolved against the URL that *answered* (after any redirect: an upload
//! service behind a front end), as RFC 9110 section 10.2.2 says a `Location` reference is, with
//! RFC 3986 section 5 reference resolution. Credentials go only to the registry's own host and
//! port, the rule reqwest applies to redirects (and docker's and go-containerregistry's
//! transports to every request): an upload host elsewhere gets no `Authorization`.
//!
//! Not here: sending anything ([`crate::registry::push`]), or which header to send ([`super::client`]).

use reqwest::Url;

/// The URL of an upload session: `location` (a `Location` header value, absolute or relative)
/// resolved against `answered`, the URL of the response that carried it. Errors when
/// `location` is not a URL reference, or resolves to a scheme other than `http`/`https`.
pub fn resolve_location(answered: &Url, location: &str) -> Result<Url, LocationError> {
    let url = answered
        .join(location.trim())
        .map_err(|error| LocationError::NotAReference(error.to_string()))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        scheme => Err(LocationError::Scheme(scheme.to_owned())),
    }
}

/// Why a `Location` is not usable for an upload; Display says it after "is not usable: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationError {
    /// Not a URL reference at all, with the URL parser's reason.
    NotAReference(String),
    /// It resolves to a URL of this scheme, not `http` or `https`.
    Scheme(String),
}

impl std::fmt::Display for LocationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocationError::NotAReference(error) => write!(f, "{error}"),
            LocationError::Scheme(scheme) => write!(f, "its scheme is {scheme}, not http or https"),
        }
    }
}

impl std::error::Error for LocationError {}

/// Whether `url` is on the same host and port as `registry` (the port as written or the
/// scheme's default), so that the registry's credentials may be sent to it.
pub fn same_authority(url: &Url, registry: &Url) -> bool {
    url.host_str() == registry.host_str()
        && url.port_or_known_default() == registry.port_or_known_default()
}

/// Whether `resolved` (an upload session's URL) drops from HTTPS, which `answered` used, to
/// plain HTTP on a host that is not loopback: a registry behind a proxy that ends TLS and does
/// not say so (distribution/distribution#479). A blob is not sent that way.
pub fn downgrades_to_plain_http(answered: &Url, resolved: &Url) -> bool {
    answered.scheme() == "https"
        && resolved.scheme() == "http"
        && !super::scheme::allows_plain_http(&authority(resolved), &[])
}

/// `host[:port]` of `url`, for messages.
pub fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => url.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn relative_locations_resolve_against_the_url_that_answered() {
        let answered = url("http://localhost:6000/v2/fn/blobs/uploads/");
        assert_eq!(
            resolve_location(&answered, "/v2/fn/blobs/uploads/u-1?_state=s").unwrap(),
            url("http://localhost:6000/v2/fn/blobs/uploads/u-1?_state=s")
        );
        assert_eq!(
            resolve_location(&answered, "u-2").unwrap(),
            url("http://localhost:6000/v2/fn/blobs/uploads/u-2")
        );
        assert_eq!(
            resolve_location(&answered, " //upload.example/s/3 ").unwrap(),
            url("http://upload.example/s/3")
        );
        assert_eq!(
            resolve_location(&answered, "https://upload.example:8443/s/4?sig=x").unwrap(),
            url("https://upload.example:8443/s/4?sig=x")
        );
    }

    #[test]
    fn locations_that_are_not_http_are_refused() {
        let answered = url("https://r.example/v2/fn/blobs/uploads/");
        assert!(resolve_location(&answered, "ftp://r.example/x").is_err());
        assert!(resolve_location(&answered, "http://[::1").is_err());
    }

    #[test]
    fn credentials_go_to_the_same_host_and_port_only() {
        let registry = url("https://r.example");
        assert!(same_authority(
            &url("https://r.example:443/v2/x"),
            &registry
        ));
        assert!(same_authority(&url("https://r.example/v2/x"), &registry));
        assert!(!same_authority(
            &url("https://r.example:5000/v2/x"),
            &registry
        ));
        assert!(!same_authority(&url("http://r.example/v2/x"), &registry));
        assert!(!same_authority(
            &url("https://upload.r.example/v2/x"),
            &registry
        ));
        let loopback = url("http://127.0.0.1:5000");
        assert!(!same_authority(
            &url("http://localhost:5000/v2/"),
            &loopback
        ));
        assert!(same_authority(&url("http://127.0.0.1:5000/v2/"), &loopback));
    }

    #[test]
    fn a_drop_from_https_to_plain_http_is_seen_except_on_loopback() {
        let answered = url("https://r.example/v2/fn/blobs/uploads/");
        assert!(downgrades_to_plain_http(
            &answered,
            &url("http://r.example/v2/fn/blobs/uploads/u")
        ));
        assert!(!downgrades_to_plain_http(
            &answered,
            &url("https://upload.example/u")
        ));
        assert!(!downgrades_to_plain_http(
            &answered,
            &url("http://127.0.0.1:5000/u")
        ));
        let plain = url("http://127.0.0.1:5000/v2/fn/blobs/uploads/");
        assert!(!downgrades_to_plain_http(
            &plain,
            &url("http://r.example/u")
        ));
    }

    #[test]
    fn authority_keeps_an_explicit_port() {
        assert_eq!(authority(&url("http://localhost:6000/x")), "localhost:6000");
        assert_eq!(authority(&url("https://r.example/x")), "r.example");
        assert_eq!(authority(&url("https://r.example:443/x")), "r.example");
    }
}
