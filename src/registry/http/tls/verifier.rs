//! The server-certificate verifier: webpki's, which also accepts a certificate configured as
//! trusted as it is (still checking its names and dates), and records what it refused, with
//! what the certificate says ([`CertificateFacts`], read with x509-parser).
//!
//! Not here: the words for a refusal (see [`super::explain`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// The last server certificate the verifier refused, for [`super::explain()`].
#[derive(Debug, Default)]
pub struct Rejections(Mutex<Option<Rejection>>);

impl Rejections {
    /// Takes the last rejection (then there is none until the next).
    pub fn take(&self) -> Option<Rejection> {
        self.0.lock().ok().and_then(|mut last| last.take())
    }

    fn record(&self, rejection: Rejection) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(rejection);
        }
    }
}

/// A server certificate the verifier refused, and why.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The name the client connected to (host name or IP address, no port).
    pub server_name: String,
    /// webpki's reason, or the reason found for a certificate configured as trusted.
    pub error: CertificateError,
    /// What the server's certificate says (`None` when it cannot be parsed).
    pub certificate: Option<CertificateFacts>,
    /// How many intermediate certificates the server sent after its own.
    pub intermediates: usize,
    /// Why some system CA certificates could not be read, e.g. a missing `SSL_CERT_FILE`.
    pub unread_roots: Vec<String>,
}

/// What a certificate says, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFacts {
    /// The subject as `CN=…, O=…`.
    pub subject: String,
    /// The issuer, same form.
    pub issuer: String,
    /// X.509 version: 1 or 3 (a certificate made by `openssl x509 -req` without extensions is 1).
    pub version: u32,
    /// `basicConstraints CA:TRUE`.
    pub ca: bool,
    /// The subjectAltName DNS names and IP addresses.
    pub names: Vec<String>,
    /// The subject's common names (which no modern client matches a host name against).
    pub common_names: Vec<String>,
    /// notBefore and notAfter, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
}

impl CertificateFacts {
    /// Reads a DER certificate; `None` when it is not one x509-parser can read.
    pub fn from_der(der: &[u8]) -> Option<CertificateFacts> {
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, certificate) = X509Certificate::from_der(der).ok()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = certificate.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            names.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let common_names = certificate
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
            .collect();
        Some(CertificateFacts {
            subject: certificate.subject().to_string(),
            issuer: certificate.issuer().to_string(),
            version: certificate.version().0 + 1,
            ca: certificate.is_ca(),
            names,
            common_names,
            not_before: certificate.validity().not_before.timestamp(),
            not_after: certificate.validity().not_after.timestamp(),
        })
    }

    /// Whether the certificate names itself as its issuer.
    pub fn self_signed(&self) -> bool {
        self.subject == self.issuer
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// What a verifier trusts: webpki's verifier over the CA certificates, and every certificate
/// configured as trusted, which is accepted as it is (see the module docs).
#[derive(Debug)]
pub(super) struct Trust {
    /// `None` when there is no CA certificate at all: every certificate is then refused.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    /// Every certificate configured as trusted (system roots, `SSL_CERT_FILE`, certs.d `*.crt`).
    trusted: HashSet<Vec<u8>>,
    /// Why some system CA certificates could not be read (`SSL_CERT_FILE` missing, …).
    unread_roots: Vec<String>,
}

impl Trust {
    /// webpki's verifier with `roots`, accepting the certificates of `trusted` (DER) as they
    /// are; `unread_roots` are told when a certificate is refused.
    pub(super) fn new(
        provider: &Arc<CryptoProvider>,
        roots: RootCertStore,
        trusted: HashSet<Vec<u8>>,
        unread_roots: Vec<String>,
    ) -> Result<Trust> {
        let webpki = if roots.is_empty() {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|error| {
                        Error::registry(format!("cannot set up TLS verification: {error}"))
                            .hint("check SSL_CERT_FILE and the system CA certificates")
                    })?,
            )
        };
        Ok(Trust {
            webpki,
            trusted,
            unread_roots,
        })
    }
}

impl Trust {
    /// The certificates trusted as they are.
    pub(super) fn trusted_certificates(&self) -> &HashSet<Vec<u8>> {
        &self.trusted
    }

    /// Why some system CA certificates could not be read.
    pub(super) fn unread(&self) -> &[String] {
        &self.unread_roots
    }
}

/// Makes a verifier's [`Trust`] when the first server certificate is to be verified; an error
/// is the message of the handshake failure.
pub(super) type TrustSource =
    Box<dyn Fn() -> std::result::Result<Arc<Trust>, String> + Send + Sync>;

/// webpki's verifier, which also accepts a server certificate configured as trusted as it is
/// (see the module docs), and records what it refused. Its [`Trust`] is made when the first
/// server certificate is verified, so that a client that never does TLS reads no CA
/// certificate.
pub(super) struct RegistryVerifier {
    trust: OnceLock<std::result::Result<Arc<Trust>, String>>,
    source: TrustSource,
    algorithms: WebPkiSupportedAlgorithms,
    rejections: Arc<Rejections>,
}

impl std::fmt::Debug for RegistryVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RegistryVerifier")
            .field("trust", &self.trust.get())
            .finish_non_exhaustive()
    }
}

impl RegistryVerifier {
    /// A verifier whose [`Trust`] `source` makes when it is first needed.
    pub(super) fn lazy(
        provider: &Arc<CryptoProvider>,
        source: TrustSource,
        rejections: Arc<Rejections>,
    ) -> RegistryVerifier {
        RegistryVerifier {
            trust: OnceLock::new(),
            source,
            algorithms: provider.signature_verification_algorithms,
            rejections,
        }
    }

    /// webpki's verifier with `roots`, accepting the certificates of `trusted` (DER) as they are.
    #[cfg(test)]
    pub(super) fn new(
        provider: &Arc<CryptoProvider>,
        roots: RootCertStore,
        trusted: HashSet<Vec<u8>>,
        rejections: Arc<Rejections>,
    ) -> Result<RegistryVerifier> {
        let trust = Arc::new(Trust::new(provider, roots, trusted, Vec::new())?);
        let verifier = Self::lazy(provider, Box::new(|| Err("unused".into())), rejections);
        let _ = verifier.trust.set(Ok(trust));
        Ok(verifier)
    }

    /// The trust, made now if it was not yet.
    pub(super) fn trust(&self) -> std::result::Result<&Trust, rustls::Error> {
        match self.trust.get_or_init(|| (self.source)()) {
            Ok(trust) => Ok(trust),
            Err(message) => Err(rustls::Error::General(message.clone())),
        }
    }

    /// Whether the trust has been made (a certificate was verified).
    #[cfg(test)]
    pub(super) fn trust_made(&self) -> bool {
        self.trust.get().is_some()
    }
}

impl ServerCertVerifier for RegistryVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let trust = self.trust()?;
        let verdict = match &trust.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Err(CertificateError::UnknownIssuer.into()),
        };
        let error = match verdict {
            Ok(verified) => return Ok(verified),
            Err(rustls::Error::InvalidCertificate(error)) => error,
            Err(other) => return Err(other),
        };
        let facts = CertificateFacts::from_der(end_entity);
        let error = if trust.trusted.contains(end_entity.as_ref()) {
            match check_trusted_as_is(end_entity, facts.as_ref(), server_name, now) {
                Ok(()) => return Ok(ServerCertVerified::assertion()),
                Err(error) => error,
            }
        } else {
            error
        };
        self.rejections.record(Rejection {
            server_name: server_name.to_str().into_owned(),
            error: error.clone(),
            certificate: facts,
            intermediates: intermediates.len(),
            unread_roots: trust.unread_roots.clone(),
        });
        Err(rustls::Error::InvalidCertificate(error))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        // What webpki's verifier does, with the same algorithms: no trust needed.
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The checks left for a server certificate that is itself configured as trusted: it names
/// `server_name` in its subjectAltName (webpki's name check) and `now` is within its validity
/// dates. Its signature chain needs no check: the certificate is the trust anchor.
fn check_trusted_as_is(
    end_entity: &CertificateDer<'_>,
    facts: Option<&CertificateFacts>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> std::result::Result<(), CertificateError> {
    let Some(facts) = facts else {
        return Err(CertificateError::BadEncoding);
    };
    let now_seconds = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let time = |seconds: i64| {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            seconds.max(0).unsigned_abs(),
        ))
    };
    if now_seconds < facts.not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: time(facts.not_before),
        });
    }
    if now_seconds > facts.not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: time(facts.not_after),
        });
    }
    let parsed = ParsedCertificate::try_from(end_entity).map_err(|error| match error {
        rustls::Error::InvalidCertificate(error) => error,
        _ => CertificateError::BadEncoding,
    })?;
    verify_server_name(&parsed, server_name).map_err(|error| match error {
        rustls::Error::InvalidCertificate(error) => error,
        _ => CertificateError::NotValidForName,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::http::tls::explain::tests::explained;
    use crate::registry::http::tls::provider;
    use crate::registry::http::tls::test_certificates::*;

    /// A verifier whose roots are `roots`; `trusted_as_is` says whether they are also trusted as
    /// they are.
    fn verifier(roots: &[&str], trusted_as_is: bool) -> RegistryVerifier {
        let mut store = RootCertStore::empty();
        let mut trusted = HashSet::new();
        for pem in roots {
            store.add(der(pem)).unwrap();
            if trusted_as_is {
                trusted.insert(der(pem).to_vec());
            }
        }
        RegistryVerifier::new(&provider(), store, trusted, Arc::default()).unwrap()
    }

    #[test]
    fn certificate_facts_are_read_from_der() {
        let guide = CertificateFacts::from_der(&der(GUIDE_CRT)).unwrap();
        assert_eq!(
            guide,
            CertificateFacts {
                subject: "CN=registry.local".into(),
                issuer: "CN=registry.local".into(),
                version: 3,
                ca: true,
                names: vec!["127.0.0.1".into(), "registry.local".into()],
                common_names: vec!["registry.local".into()],
                not_before: GUIDE_NOT_BEFORE,
                not_after: GUIDE_NOT_AFTER,
            }
        );
        assert!(guide.self_signed());
        let v1 = CertificateFacts::from_der(&der(V1_CRT)).unwrap();
        assert_eq!((v1.version, v1.ca), (1, false));
        assert!(v1.names.is_empty());
        assert_eq!(v1.common_names, ["127.0.0.1"]);
        assert!(CertificateFacts::from_der(b"not a certificate").is_none());
        let issued = CertificateFacts {
            issuer: "CN=Some CA".into(),
            ..guide
        };
        assert!(!issued.self_signed());
        assert_eq!(ip_from_bytes(&[10, 0, 0, 1]), Some([10, 0, 0, 1].into()));
        assert_eq!(
            ip_from_bytes(&[0; 16]),
            Some(std::net::Ipv6Addr::UNSPECIFIED.into())
        );
        assert_eq!(ip_from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn a_certificate_trusted_as_it_is_is_accepted_for_its_names_within_its_dates() {
        let verifier = verifier(&[GUIDE_CRT], true);
        let guide = der(GUIDE_CRT);
        let verify = |server: &str, now: i64| {
            verifier.verify_server_cert(&guide, &[], &name(server), &[], at(now))
        };
        for (server, now) in [
            ("127.0.0.1", GUIDE_NOT_BEFORE),
            ("registry.local", GUIDE_NOT_AFTER),
            ("127.0.0.1", GUIDE_NOT_BEFORE + 3600),
        ] {
            assert!(verify(server, now).is_ok(), "{server} at {now}");
        }
        assert!(verifier.rejections.take().is_none());
        let refused = |server: &str, now: i64| {
            let error = verify(server, now).unwrap_err();
            let rejection = verifier.rejections.take().expect("a rejection recorded");
            assert_eq!(rejection.server_name, server);
            assert_eq!(
                rejection.certificate.as_ref().unwrap().subject,
                "CN=registry.local"
            );
            (format!("{error:?}"), rejection.error)
        };
        let (_, error) = refused("127.0.0.1", GUIDE_NOT_AFTER + 1);
        assert!(
            matches!(error, CertificateError::ExpiredContext { .. }),
            "{error:?}"
        );
        let (_, error) = refused("127.0.0.1", GUIDE_NOT_BEFORE - 1);
        assert!(
            matches!(error, CertificateError::NotValidYetContext { .. }),
            "{error:?}"
        );
        let (_, error) = refused("10.0.0.1", GUIDE_NOT_BEFORE);
        assert!(
            matches!(error, CertificateError::NotValidForNameContext { .. }),
            "{error:?}"
        );
        let (_, error) = refused("other.local", GUIDE_NOT_BEFORE);
        assert!(
            matches!(error, CertificateError::NotValidForNameContext { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_ca_certificate_not_trusted_as_it_is_is_refused_as_webpki_refuses_it() {
        // A root, but not configured as trusted as it is (and the other way round).
        for verifier in [verifier(&[GUIDE_CRT], false), verifier(&[V1_CRT], true)] {
            let error = verifier
                .verify_server_cert(
                    &der(GUIDE_CRT),
                    &[],
                    &name("127.0.0.1"),
                    &[],
                    at(GUIDE_NOT_BEFORE),
                )
                .unwrap_err();
            let rejection = verifier.rejections.take().unwrap();
            assert!(
                format!("{error:?} {:?}", rejection.error).contains("CaUsedAsEndEntity")
                    || matches!(rejection.error, CertificateError::UnknownIssuer),
                "{error:?}"
            );
            assert!(rejection.certificate.unwrap().ca);
        }
        // No root at all: still refused, still explained.
        let empty = RegistryVerifier::new(
            &provider(),
            RootCertStore::empty(),
            HashSet::new(),
            Arc::default(),
        )
        .unwrap();
        assert!(empty.trust().unwrap().webpki.is_none());
        empty
            .verify_server_cert(
                &der(GUIDE_CRT),
                &[],
                &name("127.0.0.1"),
                &[],
                at(GUIDE_NOT_BEFORE),
            )
            .unwrap_err();
        assert!(matches!(
            empty.rejections.take().unwrap().error,
            CertificateError::UnknownIssuer
        ));
        assert!(!empty.supported_verify_schemes().is_empty());
    }

    #[test]
    fn a_version_1_certificate_trusted_as_it_is_is_refused_for_its_version() {
        let verifier = verifier(&[V1_CRT], true);
        verifier
            .verify_server_cert(
                &der(V1_CRT),
                &[],
                &name("127.0.0.1"),
                &[],
                at(GUIDE_NOT_BEFORE),
            )
            .unwrap_err();
        let rejection = verifier.rejections.take().unwrap();
        assert!(
            format!("{:?}", rejection.error).contains("UnsupportedCertVersion"),
            "{:?}",
            rejection.error
        );
        let (cause, _) = explained(&rejection);
        assert!(cause.contains("X.509 version 1 certificate"), "{cause}");
    }
}
