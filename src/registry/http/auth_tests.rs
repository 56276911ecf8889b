//! Unit tests of [`super`] (registry/http/auth.rs).

use super::*;

/// A token service on HTTPS whose certificate is not trusted (Docker's guide's kind of
/// self-signed `CA:TRUE` certificate, served by a rustls server here) is explained as the
/// registry's own TLS failures are, and named as the token service.
#[test]
fn a_token_service_whose_certificate_is_refused_is_explained() {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use crate::registry::http::tls::test_certificates::{GUIDE_CRT, GUIDE_KEY};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(GUIDE_CRT.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(GUIDE_KEY.as_bytes()).unwrap(),
        )
        .unwrap();
    let server = Arc::new(server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let connection = rustls::ServerConnection::new(Arc::clone(&server)).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, stream);
            let _ = std::io::Read::read(&mut tls, &mut [0u8; 1024]);
        }
    });
    // No certs.d, and system roots that cannot hold this certificate.
    let host_tls = crate::registry::http::tls::host_tls_from(&[]).unwrap();
    let http = Client::builder()
        .no_proxy()
        .use_preconfigured_tls(host_tls.config.clone())
        .build()
        .unwrap();
    let realm = format!("https://127.0.0.1:{port}/token");
    let error = fetch_token(
        &http,
        TokenAsker {
            registry: "registry.example",
            credential_flag: Default::default(),
        },
        &realm,
        None,
        &["repository:fn:pull".to_owned()],
        None,
        &host_tls.rejections,
    )
    .unwrap_err();
    let message = error.message();
    assert!(
        message.contains(&format!("token service {realm}: TLS: ")),
        "{message}"
    );
    assert!(message.contains("CA:TRUE"), "{message}");
    let hint = error.hint_text().unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "127.0.0.1:{port} is the token service of registry registry.example"
        )),
        "{hint}"
    );
    assert!(hint.contains("certs.d/127.0.0.1:"), "{hint}");
}

#[test]
fn parses_bearer_challenges_with_quoted_commas() {
    let challenge = Challenge::parse(
        r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:fn:pull,push""#,
    );
    assert_eq!(
        challenge,
        Some(Challenge::Bearer {
            realm: "https://auth.example/token".into(),
            service: Some("registry.example".into()),
            scope: Some("repository:fn:pull,push".into()),
        })
    );
}

#[test]
fn parses_public_ecr_and_basic_challenges() {
    assert_eq!(
        Challenge::parse(
            r#"Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws""#
        ),
        Some(Challenge::Bearer {
            realm: "https://public.ecr.aws/token/".into(),
            service: Some("public.ecr.aws".into()),
            scope: Some("aws".into()),
        })
    );
    assert_eq!(
        Challenge::parse(r#"Basic realm="https://123.dkr.ecr.eu-west-1.amazonaws.com/""#),
        Some(Challenge::Basic)
    );
    assert_eq!(Challenge::parse("Negotiate"), None);
    assert_eq!(Challenge::parse("Bearer service=\"x\""), None);
}

#[test]
fn basic_header_is_base64_of_user_colon_password() {
    assert_eq!(basic_header("user", "pa:ss"), "Basic dXNlcjpwYTpzcw==");
}
