//! Reading what went wrong: a registry's error answer (its JSON `errors`), a transport error
//! as one line with its causes, and telling TLS and DNS failures from the rest.
//!
//! Not here: what to tell the user about them ([`super::failure`], [`super::advice`]).

use reqwest::StatusCode;
use reqwest::blocking::Response;

use crate::error::Error;

/// `; none was found for it: NOTE; NOTE` from what was consulted and had no credential for a
/// repository ([`crate::credentials::Lookup::unmatched`]); empty when nothing was.
pub(super) fn unmatched_suffix(unmatched: &[String]) -> String {
    if unmatched.is_empty() {
        String::new()
    } else {
        format!("; no credential was found for it: {}", unmatched.join("; "))
    }
}

/// `error` with [`unmatched_suffix`] added to its message.
pub(super) fn with_unmatched(error: Error, unmatched: &[String]) -> Error {
    error.with_message_suffix(&unmatched_suffix(unmatched))
}

/// `error` with " (after N tries)" when the request was sent more than once.
pub(crate) fn after_tries(error: Error, tries: u32) -> Error {
    if tries > 1 {
        error.with_message_suffix(&format!(" (after {tries} tries)"))
    } else {
        error
    }
}

/// What an error answer said, read whole (it is small: at most [`ERROR_BODY_LIMIT`] is kept).
pub(super) struct Answer {
    pub(super) status: StatusCode,
    /// The request's URL path, e.g. `/v2/fn/manifests/v1`.
    pub(super) path: String,
    pub(super) body: String,
}

/// How much of an error answer's body is read.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

impl Answer {
    pub(super) fn read(response: Response) -> Answer {
        use std::io::Read;
        let status = response.status();
        let path = response.url().path().to_owned();
        let mut bytes = Vec::new();
        let _ = response.take(ERROR_BODY_LIMIT).read_to_end(&mut bytes);
        Answer {
            status,
            path,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }
}

/// `(code, message)` of each entry of a registry's JSON `errors` (none when the body is not
/// such JSON).
pub(crate) fn registry_errors(body: &str) -> Vec<(String, String)> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let Some(errors) = value.get("errors").and_then(|errors| errors.as_array()) else {
        return Vec::new();
    };
    errors
        .iter()
        .map(|error| {
            let text = |key: &str| error.get(key).and_then(|v| v.as_str()).unwrap_or("");
            (text("code").to_owned(), text("message").to_owned())
        })
        .collect()
}

/// ` (CODE: message)` from a registry's JSON error body, if it has one; an HTML page (a proxy's
/// or load balancer's error page) as its text, each piece once; else the body as it is. At most
/// 300 characters.
pub(crate) fn error_detail(body: &str) -> String {
    let errors = registry_errors(body);
    let text = if let Some(text) = html_text(body) {
        text
    } else if errors.is_empty() {
        body.trim().to_owned()
    } else {
        errors
            .iter()
            .map(|(code, message)| format!("{code}: {message}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if text.is_empty() {
        String::new()
    } else {
        let short: String = text.chars().take(300).collect();
        format!(" ({short})")
    }
}

/// The text of an HTML page, its pieces between tags trimmed and each given once, joined with
/// `; `: nginx's `413` page gives `413 Request Entity Too Large; nginx/1.22.1`. `None` when the
/// body is not HTML.
fn html_text(body: &str) -> Option<String> {
    let trimmed = body.trim_start();
    let opening: String = trimmed
        .chars()
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let starts_html = ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|start| opening.starts_with(start));
    if !starts_html {
        return None;
    }
    let mut pieces: Vec<String> = Vec::new();
    let mut rest = trimmed;
    while let Some(open) = rest.find('<') {
        let text = rest[..open]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !pieces.contains(&text) {
            pieces.push(text);
        }
        rest = match rest[open..].find('>') {
            Some(close) => &rest[open + close + 1..],
            None => "",
        };
    }
    let text = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    if !text.is_empty() && !pieces.contains(&text) {
        pieces.push(text);
    }
    Some(pieces.join("; "))
}

/// A transport error as one line: each cause once, without repeating reqwest's wrappers.
pub fn describe_transport_error(error: &reqwest::Error) -> String {
    crate::error::describe_error_chain(error)
}

/// Whether a failure is a host name that could not be resolved to an address: somewhere in the
/// error chain, hyper-util's connector error for a failed lookup (`dns error`) or the standard
/// library's `getaddrinfo` failure (`failed to lookup address information: …`, e.g. "Name or
/// service not known", or "Temporary failure in name resolution" with no DNS server at all).
pub fn is_dns_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        let text = current.to_string();
        if text == "dns error" || text.starts_with("failed to lookup address information") {
            return true;
        }
        source = current.source();
    }
    false
}

/// Whether a failure came from TLS (a handshake or certificate problem).
pub fn is_tls_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            // An io::Error wrapping another skips it in `source()`: look inside too (hyper-util
            // wraps rustls's InvalidData error in one of kind Other).
            let inner = io.get_ref();
            if io.kind() == std::io::ErrorKind::InvalidData
                || inner.is_some_and(|inner| {
                    inner.downcast_ref::<rustls::Error>().is_some()
                        || inner
                            .downcast_ref::<std::io::Error>()
                            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
                })
            {
                return true;
            }
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
mod html_tests {
    use super::*;

    #[test]
    fn an_html_error_page_is_given_as_its_text_each_piece_once() {
        let nginx = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n\
                     <center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n\
                     </body>\r\n</html>\r\n";
        assert_eq!(
            error_detail(nginx),
            " (413 Request Entity Too Large; nginx/1.22.1)"
        );
        assert_eq!(
            error_detail("<!DOCTYPE html><p>too   big</p>"),
            " (too big)"
        );
        assert_eq!(error_detail("plain words"), " (plain words)");
        assert_eq!(error_detail("<not html at all"), " (<not html at all)");
        assert_eq!(error_detail(""), "");
    }
}
