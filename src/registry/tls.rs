//! TLS for one registry host, set up the way docker, podman and skopeo users set it up: the
//! rustls client configuration (trusted roots, the server-certificate verifier, a client
//! certificate) and the words for a certificate that fails.
//!
//! Trust comes from the system's CA certificates, read once per process with
//! `rustls-native-certs` (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), plus the
//! `certs.d` directory of the host ([`CERTS_DIRECTORIES`]), read as docker documents it
//! (<https://docs.docker.com/engine/security/certificates/>): `*.crt` files are CA
//! certificates, and a `*.cert` file with the `*.key` of the same name is a client certificate
//! for a registry that requires mutual TLS (the first pair by file name, docker's directory
//! before containers'; a `.cert` or `.key` left alone is an error naming both files, as in
//! docker). Keys are PEM: PKCS#8, PKCS#1 RSA or SEC1 EC, unencrypted.
//!
//! The verifier is webpki's, with one exception that Go's `crypto/x509` (so docker, skopeo,
//! podman) also makes: a server certificate that is byte for byte one of the certificates
//! configured as trusted (a system root, one in `SSL_CERT_FILE`, a certs.d `*.crt`) is
//! accepted even when webpki would refuse it as an end entity (the self-signed `CA:TRUE`
//! certificate of Docker's guide, `CaUsedAsEndEntity`); its host name (subjectAltName) and
//! validity dates are still checked, and the handshake signatures still verified.
//!
//! A refused certificate is recorded ([`Rejections`]) so that [`explain`] can name the real
//! cause; [`explain_answer`] does the same for a TLS front end's HTTP page (nginx).
//!
//! Not here: choosing HTTPS or plain HTTP, proxies, or retrying (see [`super::client`] and
//! [`super::retry`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::error::{Error, Result};

/// Where docker and podman look for a registry's certificates: `DIR/HOST[:PORT]/`.
pub const CERTS_DIRECTORIES: [&str; 2] = ["/etc/docker/certs.d", "/etc/containers/certs.d"];

/// The TLS set-up for one registry host.
pub struct HostTls {
    /// The rustls configuration, for `reqwest::ClientBuilder::use_preconfigured_tls`.
    pub config: ClientConfig,
    /// The client certificate offered to the server (a certs.d `*.cert` file), if any.
    pub client_certificate: Option<PathBuf>,
    /// What the verifier saw when it last refused a server certificate.
    pub rejections: Arc<Rejections>,
}

/// The last server certificate the verifier refused, for [`explain`].
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

/// The system's CA certificates, read once per process.
struct SystemRoots {
    certificates: Vec<CertificateDer<'static>>,
    /// Why some could not be read (e.g. an `SSL_CERT_FILE` that does not exist).
    errors: Vec<String>,
}

fn system_roots() -> &'static SystemRoots {
    static ROOTS: OnceLock<SystemRoots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        SystemRoots {
            certificates: loaded.certs,
            errors: loaded.errors.iter().map(ToString::to_string).collect(),
        }
    })
}

/// The crypto provider reqwest would use: the process default if one is installed, else ring
/// (reqwest's `rustls-tls-native-roots` feature selects ring).
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// The TLS set-up for `host` (`name[:port]` as in image references), from the system roots and
/// the host's directory in each of [`CERTS_DIRECTORIES`].
///
/// Errors: a certs.d file that cannot be read or holds no usable certificate or key, a
/// `*.cert` without its `*.key` (or the reverse), a key that does not match its certificate,
/// or no CA certificate at all on this machine.
pub fn host_tls(host: &str) -> Result<HostTls> {
    let directories: Vec<PathBuf> = CERTS_DIRECTORIES
        .iter()
        .map(|directory| Path::new(directory).join(host))
        .collect();
    host_tls_from(&directories)
}

/// [`host_tls`] with the certs.d directories given.
pub fn host_tls_from(directories: &[PathBuf]) -> Result<HostTls> {
    let provider = provider();
    let system = system_roots();
    let mut roots = RootCertStore::empty();
    let mut trusted: HashSet<Vec<u8>> = HashSet::new();
    for certificate in &system.certificates {
        // Like reqwest: a system certificate webpki cannot use as a root is skipped.
        if roots.add(certificate.clone()).is_ok() {
            trusted.insert(certificate.to_vec());
        }
    }
    let mut client = None;
    for directory in directories {
        let files = CertsDirectory::read(directory)?;
        for path in &files.cas {
            for certificate in read_ca_file(path)? {
                roots.add(certificate.clone()).map_err(|error| {
                    bad_file(path, &format!("its certificate cannot be a CA: {error}"))
                        .hint("it must be a PEM file of CA certificates")
                })?;
                trusted.insert(certificate.to_vec());
            }
        }
        if client.is_none() {
            client = files.client;
        }
    }
    let rejections = Arc::new(Rejections::default());
    let mut verifier = RegistryVerifier::new(&provider, roots, trusted, rejections.clone())?;
    // Not an error here: a plain-HTTP registry needs no CA. Told when a certificate is refused.
    verifier.unread_roots = system.errors.clone();
    let verifier = Arc::new(verifier);
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::registry(format!("cannot set up TLS: {error}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let (mut config, client_certificate) = match client {
        None => (builder.with_no_client_auth(), None),
        Some(pair) => {
            let (chain, key) = pair.load()?;
            let config = builder.with_client_auth_cert(chain, key).map_err(|error| {
                Error::registry(format!(
                    "cannot use client certificate {} with key {}: {error}",
                    pair.cert.display(),
                    pair.key.display()
                ))
                .hint("the key must be the private key of that certificate")
            })?;
            (config, Some(pair.cert))
        }
    };
    // What reqwest sets for an HTTP/1-only client.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(HostTls {
        config,
        client_certificate,
        rejections,
    })
}

/// The files of one certs.d directory that matter.
#[derive(Debug, Default, PartialEq, Eq)]
struct CertsDirectory {
    /// `*.crt`: CA certificates, sorted.
    cas: Vec<PathBuf>,
    /// The first `*.cert` + `*.key` pair, by file name.
    client: Option<ClientPair>,
}

#[derive(Debug, PartialEq, Eq)]
struct ClientPair {
    cert: PathBuf,
    key: PathBuf,
}

impl CertsDirectory {
    /// Lists `directory` (absent: nothing). A `NAME.cert` without `NAME.key`, or the reverse, is
    /// an error naming both (as docker's `ReadCertsDirectory` has it).
    fn read(directory: &Path) -> Result<CertsDirectory> {
        let Ok(listing) = std::fs::read_dir(directory) else {
            return Ok(CertsDirectory::default());
        };
        let mut paths: Vec<PathBuf> = listing
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        paths.sort();
        let has = |path: &Path| paths.iter().any(|other| other == path);
        let mut found = CertsDirectory::default();
        for path in &paths {
            match path.extension().and_then(|ext| ext.to_str()) {
                Some("crt") => found.cas.push(path.clone()),
                Some("cert") => {
                    let key = path.with_extension("key");
                    if !has(&key) {
                        return Err(unpaired(path, &key));
                    }
                    if found.client.is_none() {
                        found.client = Some(ClientPair {
                            cert: path.clone(),
                            key,
                        });
                    }
                }
                Some("key") => {
                    let cert = path.with_extension("cert");
                    if !has(&cert) {
                        return Err(unpaired(path, &cert));
                    }
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

fn unpaired(present: &Path, missing: &Path) -> Error {
    Error::registry(format!(
        "{} has no {}: a client certificate needs both files",
        present.display(),
        missing.display()
    ))
    .hint("put the client certificate in NAME.cert and its private key in NAME.key (docker's client.cert and client.key), or remove the one left alone")
}

fn bad_file(path: &Path, why: &str) -> Error {
    Error::registry(format!("cannot use {}: {why}", path.display()))
}

/// The certificates of a PEM file of CA certificates.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).map_err(|error| {
        bad_file(path, &error.to_string()).hint("it must be a readable PEM file of CA certificates")
    })?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| {
            bad_file(path, &error.to_string()).hint("it must be a PEM file of CA certificates")
        })?;
    if certificates.is_empty() {
        return Err(bad_file(path, "it holds no PEM certificate")
            .hint("it must be a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)"));
    }
    Ok(certificates)
}

impl ClientPair {
    /// The certificate chain and private key (PKCS#8, PKCS#1 RSA or SEC1 EC, PEM).
    fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let pem = std::fs::read(&self.cert).map_err(|error| {
            bad_file(&self.cert, &error.to_string()).hint("it must be a readable PEM certificate")
        })?;
        let chain = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|error| {
                bad_file(&self.cert, &error.to_string()).hint("it must be a PEM certificate")
            })?;
        if chain.is_empty() {
            return Err(bad_file(&self.cert, "it holds no PEM certificate")
                .hint("it must be a PEM certificate (-----BEGIN CERTIFICATE-----)"));
        }
        let key_pem = std::fs::read(&self.key).map_err(|error| {
            bad_file(&self.key, &error.to_string()).hint("it must be a readable PEM private key")
        })?;
        // The parser's own words are left out: they may quote the file, which holds a secret.
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED") {
                bad_file(&self.key, "the private key is encrypted")
                    .hint("store it unencrypted, e.g. `openssl pkey -in client.key -out client.key.plain`, and keep the file readable by you only")
            } else {
                bad_file(&self.key, "no PEM private key found")
                    .hint("it must be a PEM private key: PKCS#8 (BEGIN PRIVATE KEY), RSA (BEGIN RSA PRIVATE KEY) or EC (BEGIN EC PRIVATE KEY)")
            }
        })?;
        Ok((chain, key))
    }
}

/// webpki's verifier, which also accepts a server certificate configured as trusted as it is
/// (see the module docs), and records what it refused.
#[derive(Debug)]
struct RegistryVerifier {
    /// `None` when there is no CA certificate at all: every certificate is then refused.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    /// Every certificate configured as trusted (system roots, `SSL_CERT_FILE`, certs.d `*.crt`).
    trusted: HashSet<Vec<u8>>,
    rejections: Arc<Rejections>,
    /// Why some system CA certificates could not be read (`SSL_CERT_FILE` missing, …).
    unread_roots: Vec<String>,
}

impl RegistryVerifier {
    /// webpki's verifier with `roots`, accepting the certificates of `trusted` (DER) as they are.
    fn new(
        provider: &Arc<CryptoProvider>,
        roots: RootCertStore,
        trusted: HashSet<Vec<u8>>,
        rejections: Arc<Rejections>,
    ) -> Result<RegistryVerifier> {
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
        Ok(RegistryVerifier {
            webpki,
            algorithms: provider.signature_verification_algorithms,
            trusted,
            rejections,
            unread_roots: Vec::new(),
        })
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
        let verdict = match &self.webpki {
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
        let error = if self.trusted.contains(end_entity.as_ref()) {
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
            unread_roots: self.unread_roots.clone(),
        });
        Err(rustls::Error::InvalidCertificate(error))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        match &self.webpki {
            Some(webpki) => webpki.verify_tls12_signature(message, cert, dss),
            None => rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        match &self.webpki {
            Some(webpki) => webpki.verify_tls13_signature(message, cert, dss),
            None => rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms),
        }
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

/// Why a TLS connection to a registry failed, and what to do: the cause (a sentence to add to
/// the error message, when there is more to say than rustls's words) and the hint.
#[derive(Debug, PartialEq, Eq)]
pub struct Explanation {
    pub cause: Option<String>,
    pub hint: String,
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
mod tests {
    use super::*;

    /// Docker's guide's kind of certificate (self-signed, `CA:TRUE`), P-256, for 127.0.0.1 and
    /// registry.local, valid 2026-11-30 10:01:41 to 2126-11-06 10:01:41 UTC; made with
    /// `openssl req -x509 -newkey ec … -addext "subjectAltName = IP:127.0.0.1, DNS:registry.local"`.
    const GUIDE_CRT: &str = "-----BEGIN CERTIFICATE-----
MIIBqzCCAVCgAwIBAgIUb+qmy2qenqTGClhXNHgDWPR0aoswCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOcmVnaXN0cnkubG9jYWwwIBcNMjYxMTMwMTAwMTQxWhgPMjEy
NjExMDYxMDAxNDFaMBkxFzAVBgNVBAMMDnJlZ2lzdHJ5LmxvY2FsMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEb9O1cY/ykn5hxdCXXFNC8VnVqw2wsRgMGsmCtMQx
2rX7O3BBiE8VW9as+TqHrFDKKH8DElifM6EKcu2PUndVEaN0MHIwHQYDVR0OBBYE
FGsHgmQic+yzSm4jGVd1kZ8ymAeEMB8GA1UdIwQYMBaAFGsHgmQic+yzSm4jGVd1
kZ8ymAeEMA8GA1UdEwEB/wQFMAMBAf8wHwYDVR0RBBgwFocEfwAAAYIOcmVnaXN0
cnkubG9jYWwwCgYIKoZIzj0EAwIDSQAwRgIhAJDYGXV9zNl5r+PxzpCmJSfpg/H8
fnSxXu082kRh5SeGAiEAqEQK+INuNYpKOSNdZD1En+kkKfGkRw0GxkwSdf5KCX8=
-----END CERTIFICATE-----
";
    /// The key of [`GUIDE_CRT`], PKCS#8.
    const GUIDE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTn9vuq1BRAUto1Xk
D8hmSFGCPw/9rnUfwc5fk1RuNuKhRANCAARv07Vxj/KSfmHF0JdcU0LxWdWrDbCx
GAwayYK0xDHatfs7cEGITxVb1qz5OoesUMoofwMSWJ8zoQpy7Y9Sd1UR
-----END PRIVATE KEY-----
";
    /// A version 1 certificate for CN=127.0.0.1 (`openssl x509 -req -signkey`, no extensions).
    const V1_CRT: &str = "-----BEGIN CERTIFICATE-----
MIIBJDCBywIUTXWuPfaMWGLl6eKv7AhebMbD97QwCgYIKoZIzj0EAwIwFDESMBAG
A1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEzMDEwMDE0MVoYDzIxMjYxMTA2MTAwMTQx
WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AARW/QGj/lKokQKm617aiFU57WZZQwSOaFacqg+fzjuJINZU/1Zq9xmtLyctSDgH
PfGw6u643Vhwj1wcdqnTKrY7MAoGCCqGSM49BAMCA0gAMEUCIE8MLZhfRB+yuQUW
zqXWyORti8AqCIcK7G82XMPT6l66AiEArTjzahkNHJegFPMYmpkNe48BObuvhRnh
IZVQyjOC4XI=
-----END CERTIFICATE-----
";
    const GUIDE_NOT_BEFORE: i64 = 1_796_032_901; // 2026-11-30 10:01:41 UTC
    const GUIDE_NOT_AFTER: i64 = 4_949_632_901; // 2126-11-06 10:01:41 UTC

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn at(seconds: i64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds.unsigned_abs()))
    }

    fn name(name: &str) -> ServerName<'static> {
        ServerName::try_from(name.to_owned()).unwrap()
    }

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
        assert!(empty.webpki.is_none());
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

    fn explained(rejection: &Rejection) -> (String, String) {
        let explanation = explain(HOST, "invalid peer certificate", Some(rejection), None);
        (explanation.cause.unwrap_or_default(), explanation.hint)
    }

    #[test]
    fn refused_server_certificates_are_explained_by_their_real_cause() {
        let ca_as_leaf = CertificateError::Other(rustls::OtherError(Arc::new(
            std::io::Error::other("CaUsedAsEndEntity"),
        )));
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

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn certs_d_crt_files_are_cas_and_cert_key_pairs_are_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        assert_eq!(
            CertsDirectory::read(&path.join("absent")).unwrap(),
            CertsDirectory::default()
        );
        write(
            path,
            &[
                ("b.crt", GUIDE_CRT),
                ("a.crt", GUIDE_CRT),
                ("client.cert", GUIDE_CRT),
                ("client.key", GUIDE_KEY),
                ("z.cert", GUIDE_CRT),
                ("z.key", GUIDE_KEY),
                ("notes.txt", "x"),
            ],
        );
        let found = CertsDirectory::read(path).unwrap();
        assert_eq!(found.cas, [path.join("a.crt"), path.join("b.crt")]);
        assert_eq!(
            found.client,
            Some(ClientPair {
                cert: path.join("client.cert"),
                key: path.join("client.key")
            })
        );
        let (chain, _) = found.client.unwrap().load().unwrap();
        assert_eq!(chain, [der(GUIDE_CRT)]);

        std::fs::remove_file(path.join("client.key")).unwrap();
        let message = CertsDirectory::read(path).unwrap_err().message().to_owned();
        assert!(
            message.contains(&format!(
                "{} has no {}",
                path.join("client.cert").display(),
                path.join("client.key").display()
            )),
            "{message}"
        );
        std::fs::remove_file(path.join("z.cert")).unwrap();
        std::fs::remove_file(path.join("client.cert")).unwrap();
        let message = CertsDirectory::read(path).unwrap_err().message().to_owned();
        assert!(
            message.contains(&format!(
                "{} has no {}",
                path.join("z.key").display(),
                path.join("z.cert").display()
            )),
            "{message}"
        );
    }

    #[test]
    fn unusable_certs_d_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        write(path, &[("empty.crt", "no PEM here\n")]);
        let error = host_tls_from(&[path.to_owned()]).err().unwrap();
        assert!(
            error
                .message()
                .contains("empty.crt: it holds no PEM certificate"),
            "{}",
            error.message()
        );
        std::fs::remove_file(path.join("empty.crt")).unwrap();

        let pair = ClientPair {
            cert: path.join("c.cert"),
            key: path.join("c.key"),
        };
        write(
            path,
            &[
                ("c.cert", GUIDE_CRT),
                (
                    "c.key",
                    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
                ),
            ],
        );
        let error = pair.load().err().unwrap();
        assert!(
            error.message().contains("the private key is encrypted"),
            "{}",
            error.message()
        );
        write(path, &[("c.key", "garbage")]);
        let error = pair.load().err().unwrap();
        assert!(
            error.message().contains("no PEM private key found"),
            "{}",
            error.message()
        );
        write(path, &[("c.cert", "garbage"), ("c.key", GUIDE_KEY)]);
        let error = pair.load().err().unwrap();
        assert!(
            error
                .message()
                .contains("c.cert: it holds no PEM certificate"),
            "{}",
            error.message()
        );

        // A key that is not the certificate's (SEC1 EC, `openssl ecparam -genkey -noout`).
        let other_key = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEII3dy/z/COLgq2aEUpHGyEOds0WyERkkrCJlfka+mjOLoAoGCCqGSM49
AwEHoUQDQgAEGgNQ/5L8QoUmb8cr2IwWanj1pEOQTKn8Yjq8RoBrSdV9eL/TgVpb
Iu4JWtWlk7zO9nrvyAWmrWBHxMZ22UAUqQ==
-----END EC PRIVATE KEY-----
";
        write(path, &[("c.cert", GUIDE_CRT), ("c.key", other_key)]);
        let error = host_tls_from(&[path.to_owned()]).err().unwrap();
        assert!(
            error.message().contains("cannot use client certificate"),
            "{}",
            error.message()
        );
        assert!(
            error.message().contains("KeyMismatch"),
            "{}",
            error.message()
        );
        assert!(
            error
                .hint_text()
                .unwrap()
                .contains("the private key of that certificate")
        );

        write(path, &[("c.key", GUIDE_KEY), ("ca.crt", GUIDE_CRT)]);
        let tls = host_tls_from(&[path.to_owned()]).unwrap();
        assert_eq!(tls.client_certificate, Some(path.join("c.cert")));
        assert_eq!(tls.config.alpn_protocols, [b"http/1.1".to_vec()]);
    }
}
