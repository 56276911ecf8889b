//! The words for a TLS failure reaching a registry: the real cause (from what the verifier
//! refused, the alert the server sent, or a TLS front end's HTTP page) and what to do.
//!
//! Not here: deciding whether a certificate is trusted (see [`super::verifier`]).

use std::path::Path;

use rustls::CertificateError;

use super::verifier::{CertificateFacts, Rejection};

/// Why a TLS connection to a registry failed, and what to do: the cause (a sentence to add to
/// the error message, when there is more to say than rustls's words) and the hint.
#[derive(Debug, PartialEq, Eq)]
pub struct Explanation {
    pub cause: Option<String>,
    pub hint: String,
}

impl Explanation {
    /// What to say after `TLS: `: the cause in words first, then the TLS library's own
    /// `description` in parentheses, for searching; the description alone without a cause.
    pub fn said(&self, description: &str) -> String {
        match &self.cause {
            Some(cause) => format!("{cause} ({description})"),
            None => description.to_owned(),
        }
    }
}

/// Explains a TLS failure reaching `host` (`name[:port]`): from what the verifier refused
/// (`rejection`), else from rustls's `description` of the failure (alerts the server sent).
/// `client_certificate` is the certs.d `*.cert` offered, if any.
pub fn explain(
    host: &str,
    description: &str,
    rejection: Option<&Rejection>,
    client_certificate: Option<&Path>,
) -> Explanation {
    let install_ca = format!(
        "put the CA certificate in /etc/docker/certs.d/{host}/ca.crt (or /etc/containers/certs.d/{host}/ca.crt), or point SSL_CERT_FILE at it"
    );
    if let Some(rejection) = rejection {
        let mut explanation = explain_rejection(host, rejection, &install_ca);
        let about_trust = !matches!(
            rejection.error,
            CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }
                | CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
        );
        if about_trust && !rejection.unread_roots.is_empty() {
            let unread = format!(
                "; some CA certificates could not be read: {}",
                rejection.unread_roots.join("; ")
            );
            explanation.cause = Some(explanation.cause.unwrap_or_default() + &unread);
            explanation
                .hint
                .push_str("; check SSL_CERT_FILE and SSL_CERT_DIR");
        }
        return explanation;
    }
    let alert = description
        .split("received fatal alert: ")
        .nth(1)
        .map(|rest| rest.split([' ', ':', ',', ')']).next().unwrap_or(rest));
    // rustls: "received corrupt message of type InvalidContentType".
    if description.contains("InvalidContentType") {
        return Explanation {
            cause: None,
            hint: format!(
                "{host} may speak only plain HTTP; if you trust the network, allow that with --insecure-registry {host}"
            ),
        };
    }
    match (alert, client_certificate) {
        (Some("CertificateRequired"), _)
        | (Some("BadCertificate" | "CertificateUnknown" | "UnknownCA"), None) => {
            client_certificate_missing(host)
        }
        (
            Some(
                alert @ ("BadCertificate"
                | "UnsupportedCertificate"
                | "CertificateRevoked"
                | "CertificateExpired"
                | "CertificateUnknown"
                | "UnknownCA"
                | "AccessDenied"),
            ),
            Some(certificate),
        ) => client_certificate_refused(certificate, alert),
        _ => Explanation {
            cause: None,
            hint: format!("if the registry uses a private CA, {install_ca}"),
        },
    }
}

/// Explains an HTTP answer from a TLS front end (nginx with `ssl_verify_client on`) that wanted
/// a client certificate: a 400 whose page says "No required SSL certificate was sent" (none
/// given) or "The SSL certificate error" (refused). `None` for any other answer.
pub fn explain_answer(
    host: &str,
    status: u16,
    body: &str,
    client_certificate: Option<&Path>,
) -> Option<Explanation> {
    if status != 400 {
        return None;
    }
    let page = |phrase: &str, explanation: Explanation| Explanation {
        cause: explanation
            .cause
            .map(|cause| format!("\"{phrase}\": {cause}")),
        hint: explanation.hint,
    };
    const MISSING: &str = "No required SSL certificate was sent";
    const REFUSED: &str = "The SSL certificate error";
    if body.contains(MISSING) {
        return Some(page(MISSING, client_certificate_missing(host)));
    }
    match client_certificate {
        Some(certificate) if body.contains(REFUSED) => Some(page(
            REFUSED,
            client_certificate_refused(certificate, "HTTP 400"),
        )),
        _ => None,
    }
}

fn client_certificate_missing(host: &str) -> Explanation {
    Explanation {
        cause: Some(format!(
            "the registry requires a client certificate (mutual TLS), and none is configured for {host}"
        )),
        hint: format!(
            "put the client certificate in /etc/docker/certs.d/{host}/client.cert and its key in /etc/docker/certs.d/{host}/client.key (PEM)"
        ),
    }
}

fn client_certificate_refused(certificate: &Path, reason: &str) -> Explanation {
    Explanation {
        cause: Some(format!(
            "the registry refused the client certificate {} ({reason})",
            certificate.display()
        )),
        hint: "check that the client certificate is signed by a CA the registry trusts for clients (distribution's tls.clientcas), is still valid, and is meant for client authentication (extendedKeyUsage clientAuth, if it has one)".to_owned(),
    }
}

fn explain_rejection(host: &str, rejection: &Rejection, install_ca: &str) -> Explanation {
    let server = &rejection.server_name;
    let facts = rejection.certificate.as_ref();
    let subject = facts.map_or_else(
        || "the server's certificate".to_owned(),
        |facts| format!("the server's certificate ({})", facts.subject),
    );
    let install_this = format!(
        "if you trust it, install exactly the certificate file the registry serves as /etc/docker/certs.d/{host}/ca.crt (or point SSL_CERT_FILE at it)"
    );
    if let Some(facts) = facts
        && facts.version < 3
    {
        return Explanation {
            cause: Some(format!(
                "{subject} is an X.509 version {} certificate (made by `openssl x509 -req` without extensions), which cannot name a host in subjectAltName",
                facts.version
            )),
            hint: format!(
                "reissue it as version 3 with a subjectAltName for {server}: add `-extfile` with `subjectAltName = {}` to `openssl x509 -req`",
                san_entry(server)
            ),
        };
    }
    match &rejection.error {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = facts.map(|facts| facts.names.clone()).unwrap_or_default();
            let common_names = facts
                .map(|facts| facts.common_names.clone())
                .unwrap_or_default();
            let (cause, hint) = if names.is_empty() && !common_names.is_empty() {
                (
                    format!(
                        "{subject} has no subjectAltName, only the common name {}, which TLS clients no longer match against host names",
                        common_names.join(", ")
                    ),
                    format!(
                        "the registry's certificate does not name {server} in a subjectAltName: reissue it with one, e.g. `-addext \"subjectAltName = {}\"`",
                        san_entry(server)
                    ),
                )
            } else if names.is_empty() {
                (
                    format!("{subject} names no host"),
                    format!(
                        "the registry's certificate does not name {server} in a subjectAltName: reissue it with one, e.g. `-addext \"subjectAltName = {}\"`",
                        san_entry(server)
                    ),
                )
            } else {
                (
                    format!("{subject} is for {}, not {server}", names.join(", ")),
                    format!(
                        "the registry's certificate does not name {server}: use a host name it has, or reissue it with `subjectAltName = {}`",
                        san_entry(server)
                    ),
                )
            };
            Explanation {
                cause: Some(cause),
                hint,
            }
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            let not_yet = matches!(
                rejection.error,
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
            );
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs());
            let dates = facts.map_or_else(String::new, |facts| {
                format!(
                    " (valid from {} to {}; this machine's clock says {})",
                    utc(facts.not_before),
                    utc(facts.not_after),
                    utc(i64::try_from(now).unwrap_or(i64::MAX))
                )
            });
            Explanation {
                cause: Some(if not_yet {
                    format!("{subject} is not valid yet{dates}")
                } else {
                    format!("{subject} has expired{dates}")
                }),
                hint: if not_yet {
                    "check this machine's clock, or reissue the certificate".to_owned()
                } else {
                    "the registry's certificate has expired (or this machine's clock is wrong): renew it"
                        .to_owned()
                },
            }
        }
        // webpki's `CaUsedAsEndEntity`, which rustls passes on as an `Other` error.
        CertificateError::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => {
            Explanation {
                cause: Some(format!(
                    "{subject} is a CA certificate (CA:TRUE) that the server presents as its own, and it is not configured as trusted for {host}"
                )),
                hint: install_this,
            }
        }
        CertificateError::UnknownIssuer if facts.is_some_and(CertificateFacts::self_signed) => {
            Explanation {
                cause: Some(format!("{subject} is self-signed and not trusted here")),
                hint: install_this,
            }
        }
        CertificateError::UnknownIssuer => {
            let issuer = facts.map(|facts| facts.issuer.clone());
            let mut hint = format!(
                "{} (the CA's certificate, not the server's)",
                install_ca.replacen("put", "if you trust that CA, put", 1)
            );
            if rejection.intermediates == 0 {
                hint.push_str(&format!(
                    "; if {} is an intermediate CA, the registry should send it after its own certificate (serve the full chain), or put it in that directory beside the root",
                    issuer.as_deref().unwrap_or("the issuer")
                ));
            }
            Explanation {
                cause: Some(match issuer {
                    Some(issuer) => {
                        format!("{subject} is issued by {issuer}, a CA that is not trusted here")
                    }
                    None => "the server's certificate is issued by a CA that is not trusted here"
                        .to_owned(),
                }),
                hint,
            }
        }
        _ => Explanation {
            cause: None,
            hint: format!("if the registry uses a private CA, {install_ca}"),
        },
    }
}

/// `IP:addr` or `DNS:name`, as openssl's subjectAltName syntax has it.
fn san_entry(server_name: &str) -> String {
    if server_name.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{server_name}")
    } else {
        format!("DNS:{server_name}")
    }
}

/// Seconds since the epoch as `2026-11-30 09:47:30 UTC`.
fn utc(seconds: i64) -> String {
    let seconds = seconds.max(0).unsigned_abs();
    let formatted = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds),
    )
    .to_string();
    formatted.replace('T', " ").replace('Z', " UTC")
}

#[cfg(test)]
#[path = "explain_tests.rs"]
pub(super) mod tests;
