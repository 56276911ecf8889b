//! Unit tests of [`super`] (registry/http/tls/explain.rs).

use super::*;
use crate::registry::http::tls::test_certificates::*;
use std::sync::Arc;

fn rejection(error: CertificateError, facts: Option<CertificateFacts>) -> Rejection {
    Rejection {
        server_name: "127.0.0.1".into(),
        error,
        certificate: facts,
        intermediates: 1,
        unread_roots: Vec::new(),
    }
}

fn guide_facts() -> CertificateFacts {
    CertificateFacts::from_der(&der(GUIDE_CRT)).unwrap()
}

const HOST: &str = "127.0.0.1:5000";

pub(crate) fn explained(rejection: &Rejection) -> (String, String) {
    let explanation = explain(HOST, "invalid peer certificate", Some(rejection), None);
    (explanation.cause.unwrap_or_default(), explanation.hint)
}

#[test]
fn refused_server_certificates_are_explained_by_their_real_cause() {
    let ca_as_leaf = CertificateError::Other(rustls::OtherError(Arc::new(std::io::Error::other(
        "CaUsedAsEndEntity",
    ))));
    let (cause, hint) = explained(&rejection(ca_as_leaf, Some(guide_facts())));
    assert!(
        cause.contains("(CN=registry.local) is a CA certificate (CA:TRUE)"),
        "{cause}"
    );
    assert!(
        cause.contains("not configured as trusted for 127.0.0.1:5000"),
        "{cause}"
    );
    assert!(hint.contains("install exactly the certificate file the registry serves as /etc/docker/certs.d/127.0.0.1:5000/ca.crt"), "{hint}");

    let self_signed = CertificateFacts {
        ca: false,
        ..guide_facts()
    };
    let (cause, hint) = explained(&rejection(
        CertificateError::UnknownIssuer,
        Some(self_signed),
    ));
    assert!(
        cause.ends_with("(CN=registry.local) is self-signed and not trusted here"),
        "{cause}"
    );
    assert!(hint.contains("exactly the certificate file"), "{hint}");

    let issued = CertificateFacts {
        issuer: "CN=Corp CA".into(),
        ..guide_facts()
    };
    let (cause, hint) = explained(&rejection(CertificateError::UnknownIssuer, Some(issued)));
    assert!(
        cause.contains("is issued by CN=Corp CA, a CA that is not trusted here"),
        "{cause}"
    );
    assert!(hint.contains("if you trust that CA, put the CA certificate in /etc/docker/certs.d/127.0.0.1:5000/ca.crt"), "{hint}");
    assert!(hint.contains("not the server's"), "{hint}");
    assert!(!hint.contains("intermediate"), "{hint}");
    let issued = CertificateFacts {
        issuer: "CN=Corp Intermediate".into(),
        ..guide_facts()
    };
    let alone = Rejection {
        intermediates: 0,
        ..rejection(CertificateError::UnknownIssuer, Some(issued))
    };
    let (_, hint) = explained(&alone);
    assert!(hint.contains("if CN=Corp Intermediate is an intermediate CA, the registry should send it after its own certificate"), "{hint}");
    let (cause, _) = explained(&rejection(CertificateError::UnknownIssuer, None));
    assert!(
        cause.contains("issued by a CA that is not trusted"),
        "{cause}"
    );

    let other_names = CertificateFacts {
        names: vec!["registry.example.com".into(), "10.0.0.9".into()],
        ..guide_facts()
    };
    let (cause, hint) = explained(&rejection(
        CertificateError::NotValidForName,
        Some(other_names),
    ));
    assert!(
        cause.contains("is for registry.example.com, 10.0.0.9, not 127.0.0.1"),
        "{cause}"
    );
    assert!(hint.contains("subjectAltName = IP:127.0.0.1"), "{hint}");
    let cn_only = CertificateFacts {
        names: vec![],
        ..guide_facts()
    };
    let (cause, hint) = explained(&rejection(CertificateError::NotValidForName, Some(cn_only)));
    assert!(
        cause.contains("has no subjectAltName, only the common name registry.local"),
        "{cause}"
    );
    assert!(
        hint.contains("-addext \"subjectAltName = IP:127.0.0.1\""),
        "{hint}"
    );
    let nameless = CertificateFacts {
        names: vec![],
        common_names: vec![],
        ..guide_facts()
    };
    let (cause, _) = explained(&rejection(
        CertificateError::NotValidForName,
        Some(nameless),
    ));
    assert!(cause.contains("names no host"), "{cause}");

    let (cause, hint) = explained(&rejection(CertificateError::Expired, Some(guide_facts())));
    assert!(cause.contains("has expired (valid from 2026-11-30 10:01:41 UTC to 2126-11-06 10:01:41 UTC; this machine's clock says"), "{cause}");
    assert!(
        hint.contains("renew") && hint.contains("clock is wrong"),
        "{hint}"
    );
    let (cause, hint) = explained(&rejection(
        CertificateError::NotValidYet,
        Some(guide_facts()),
    ));
    assert!(
        cause.contains("is not valid yet (valid from 2026-11-30"),
        "{cause}"
    );
    assert!(hint.contains("clock"), "{hint}");
    let (cause, _) = explained(&rejection(CertificateError::Expired, None));
    assert_eq!(cause, "the server's certificate has expired");

    let v1 = CertificateFacts::from_der(&der(V1_CRT)).unwrap();
    let (cause, hint) = explained(&rejection(CertificateError::UnknownIssuer, Some(v1)));
    assert!(cause.contains("X.509 version 1 certificate"), "{cause}");
    assert!(
        hint.contains("-extfile") && hint.contains("subjectAltName = IP:127.0.0.1"),
        "{hint}"
    );

    // Another webpki error passed on as `Other` is not taken for a CA used as a server's.
    let other = CertificateError::Other(rustls::OtherError(Arc::new(std::io::Error::other(
        "UnsupportedCriticalExtension",
    ))));
    let (cause, hint) = explained(&rejection(other, Some(guide_facts())));
    assert_eq!(cause, "");
    assert!(hint.contains("private CA"), "{hint}");

    let (cause, hint) = explained(&rejection(
        CertificateError::BadSignature,
        Some(guide_facts()),
    ));
    assert_eq!(cause, "");
    assert!(hint.contains("private CA"), "{hint}");
}

#[test]
fn handshake_failures_without_a_refused_certificate_are_explained_from_the_alert() {
    let client = Path::new("/etc/docker/certs.d/127.0.0.1:5000/client.cert");
    let explain = |description: &str, client: Option<&Path>| {
        let explanation = explain(HOST, description, None, client);
        (explanation.cause.unwrap_or_default(), explanation.hint)
    };
    for alert in [
        "CertificateRequired",
        "BadCertificate",
        "CertificateUnknown",
        "UnknownCA",
    ] {
        let (cause, hint) = explain(
            &format!("connection error: received fatal alert: {alert}"),
            None,
        );
        assert!(cause.contains("requires a client certificate (mutual TLS), and none is configured for 127.0.0.1:5000"), "{alert}: {cause}");
        assert!(
            hint.contains("/etc/docker/certs.d/127.0.0.1:5000/client.cert")
                && hint.contains("client.key"),
            "{hint}"
        );
    }
    let (cause, _) = explain("received fatal alert: CertificateRequired", Some(client));
    assert!(cause.contains("requires a client certificate"), "{cause}");
    for alert in [
        "BadCertificate",
        "UnknownCA",
        "CertificateExpired",
        "AccessDenied",
    ] {
        let (cause, hint) = explain(
            &format!("x: received fatal alert: {alert}: y"),
            Some(client),
        );
        assert_eq!(
            cause,
            format!(
                "the registry refused the client certificate {} ({alert})",
                client.display()
            )
        );
        assert!(hint.contains("tls.clientcas"), "{hint}");
    }
    let (cause, hint) = explain("received fatal alert: HandshakeFailure", None);
    assert_eq!(cause, "");
    assert!(hint.contains("certs.d/127.0.0.1:5000/ca.crt"), "{hint}");
    let (cause, hint) = explain("received corrupt message of type InvalidContentType", None);
    assert_eq!(cause, "");
    assert!(
        hint.contains("--insecure-registry 127.0.0.1:5000"),
        "{hint}"
    );
}

#[test]
fn unread_system_certificates_are_named_when_trust_fails() {
    let unread = |error| Rejection {
        unread_roots: vec!["could not load PEM file \"/nowhere.pem\"".into()],
        ..rejection(error, Some(guide_facts()))
    };
    let (cause, hint) = explained(&unread(CertificateError::UnknownIssuer));
    assert!(
        cause.ends_with(
            "; some CA certificates could not be read: could not load PEM file \"/nowhere.pem\""
        ),
        "{cause}"
    );
    assert!(
        hint.ends_with("; check SSL_CERT_FILE and SSL_CERT_DIR"),
        "{hint}"
    );
    let (cause, hint) = explained(&unread(CertificateError::ExpiredContext {
        time: at(GUIDE_NOT_AFTER + 1),
        not_after: at(GUIDE_NOT_AFTER),
    }));
    assert!(!cause.contains("could not be read"), "{cause}");
    assert!(!hint.contains("SSL_CERT_DIR"), "{hint}");
    let (cause, _) = explained(&unread(CertificateError::NotValidForName));
    assert!(!cause.contains("could not be read"), "{cause}");
}

#[test]
fn nginx_client_certificate_pages_are_explained() {
    let client = Path::new("/etc/docker/certs.d/127.0.0.1:5000/client.cert");
    let missing =
        "<html><head><title>400 No required SSL certificate was sent</title></head></html>";
    let refused = "<html><head><title>400 The SSL certificate error</title></head></html>";
    let explanation = explain_answer(HOST, 400, missing, None).unwrap();
    assert_eq!(
        explanation.cause.unwrap(),
        "\"No required SSL certificate was sent\": the registry requires a client certificate (mutual TLS), and none is configured for 127.0.0.1:5000"
    );
    assert!(
        explanation
            .hint
            .contains("certs.d/127.0.0.1:5000/client.cert")
    );
    let explanation = explain_answer(HOST, 400, refused, Some(client)).unwrap();
    assert_eq!(
        explanation.cause.unwrap(),
        format!(
            "\"The SSL certificate error\": the registry refused the client certificate {} (HTTP 400)",
            client.display()
        )
    );
    assert!(explain_answer(HOST, 400, refused, None).is_none());
    assert!(explain_answer(HOST, 401, missing, None).is_none());
    assert!(explain_answer(HOST, 400, "{\"errors\":[]}", Some(client)).is_none());
}

#[test]
fn openssl_subject_alt_name_syntax_and_dates() {
    assert_eq!(san_entry("127.0.0.1"), "IP:127.0.0.1");
    assert_eq!(san_entry("::1"), "IP:::1");
    assert_eq!(san_entry("registry.local"), "DNS:registry.local");
    assert_eq!(utc(GUIDE_NOT_BEFORE), "2026-11-30 10:01:41 UTC");
    assert_eq!(utc(-5), "1970-01-01 00:00:00 UTC");
}
