//! TLS for one registry host, set up the way docker, podman and skopeo users set it up: the
//! rustls client configuration (trusted roots, the server-certificate verifier, a client
//! certificate) and the words for a certificate that fails.
//!
//! Trust comes from the system's CA certificates, read and parsed once per process with
//! `rustls-native-certs` (which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`) when the first
//! server certificate is verified (a run that speaks only plain HTTP reads none), plus the
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
//!
//! Its parts, one file each: `certs_d` reads the files, `verifier` checks server certificates
//! and keeps what it refused, `explain` turns a failure into a cause and a hint.

mod certs_d;
mod explain;
mod verifier;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, Result};
use certs_d::{CertsDirectory, bad_file, read_ca_file};
use verifier::{RegistryVerifier, Trust, TrustSource};

pub use explain::{Explanation, explain, explain_answer};
pub use verifier::{CertificateFacts, Rejection, Rejections};

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
    #[cfg(test)]
    verifier: Arc<RegistryVerifier>,
}
/// The system's CA certificates, read and parsed once per process, when the first server
/// certificate is verified: a run that speaks only plain HTTP reads none.
struct SystemRoots {
    /// The certificates webpki can use as roots (like reqwest, others are skipped).
    roots: RootCertStore,
    /// The trust of a host with no CA of its own: these roots alone.
    trust: Arc<Trust>,
}

/// How many times this process has read the system's CA certificates (at most once).
static SYSTEM_ROOTS_READ: AtomicUsize = AtomicUsize::new(0);

fn system_roots() -> std::result::Result<&'static SystemRoots, String> {
    static ROOTS: OnceLock<std::result::Result<SystemRoots, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            SYSTEM_ROOTS_READ.fetch_add(1, Ordering::Relaxed);
            let loaded = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let mut trusted: HashSet<Vec<u8>> = HashSet::new();
            for certificate in loaded.certs {
                if roots.add(certificate.clone()).is_ok() {
                    trusted.insert(certificate.to_vec());
                }
            }
            // Not an error here: told when a certificate is refused.
            let errors = loaded.errors.iter().map(ToString::to_string).collect();
            let trust = Trust::new(&provider(), roots.clone(), trusted, errors)
                .map_err(|error| error.message().to_owned())?;
            Ok(SystemRoots {
                roots,
                trust: Arc::new(trust),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
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
/// `*.cert` without its `*.key` (or the reverse), or a key that does not match its certificate.
/// The system roots are read when the first server certificate is verified (once per
/// process), not here: a host spoken to in plain HTTP needs none.
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
    // The host's own CAs, checked now so that a bad file is an error at once.
    let mut own = RootCertStore::empty();
    let mut own_trusted: HashSet<Vec<u8>> = HashSet::new();
    let mut client = None;
    for directory in directories {
        let files = CertsDirectory::read(directory)?;
        for path in &files.cas {
            for certificate in read_ca_file(path)? {
                own.add(certificate.clone()).map_err(|error| {
                    bad_file(path, &format!("its certificate cannot be a CA: {error}"))
                        .hint("it must be a PEM file of CA certificates")
                })?;
                own_trusted.insert(certificate.to_vec());
            }
        }
        if client.is_none() {
            client = files.client;
        }
    }
    let rejections = Arc::new(Rejections::default());
    let trust_provider = provider.clone();
    let source: TrustSource = Box::new(move || {
        let system = system_roots()?;
        if own.is_empty() {
            return Ok(Arc::clone(&system.trust));
        }
        let mut roots = system.roots.clone();
        roots.roots.extend(own.roots.iter().cloned());
        let mut trusted = system.trust_certificates().clone();
        trusted.extend(own_trusted.iter().cloned());
        let unread = system.trust.unread().to_vec();
        Trust::new(&trust_provider, roots, trusted, unread)
            .map(Arc::new)
            .map_err(|error| error.message().to_owned())
    });
    let verifier = Arc::new(RegistryVerifier::lazy(
        &provider,
        source,
        rejections.clone(),
    ));
    #[cfg(test)]
    let kept = Arc::clone(&verifier);
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
        #[cfg(test)]
        verifier: kept,
    })
}

impl SystemRoots {
    fn trust_certificates(&self) -> &HashSet<Vec<u8>> {
        self.trust.trusted_certificates()
    }
}

#[cfg(test)]
pub(crate) mod test_certificates {
    //! Certificates made once with the openssl CLI, for the unit tests of this module's parts.
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    /// Docker's guide's kind of certificate (self-signed, `CA:TRUE`), P-256, for 127.0.0.1 and
    /// registry.local, valid 2026-11-30 10:01:41 to 2126-11-06 10:01:41 UTC; made with
    /// `openssl req -x509 -newkey ec … -addext "subjectAltName = IP:127.0.0.1, DNS:registry.local"`.
    pub const GUIDE_CRT: &str = "-----BEGIN CERTIFICATE-----
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
    pub const GUIDE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTn9vuq1BRAUto1Xk
D8hmSFGCPw/9rnUfwc5fk1RuNuKhRANCAARv07Vxj/KSfmHF0JdcU0LxWdWrDbCx
GAwayYK0xDHatfs7cEGITxVb1qz5OoesUMoofwMSWJ8zoQpy7Y9Sd1UR
-----END PRIVATE KEY-----
";
    /// A version 1 certificate for CN=127.0.0.1 (`openssl x509 -req -signkey`, no extensions).
    pub const V1_CRT: &str = "-----BEGIN CERTIFICATE-----
MIIBJDCBywIUTXWuPfaMWGLl6eKv7AhebMbD97QwCgYIKoZIzj0EAwIwFDESMBAG
A1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEzMDEwMDE0MVoYDzIxMjYxMTA2MTAwMTQx
WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AARW/QGj/lKokQKm617aiFU57WZZQwSOaFacqg+fzjuJINZU/1Zq9xmtLyctSDgH
PfGw6u643Vhwj1wcdqnTKrY7MAoGCCqGSM49BAMCA0gAMEUCIE8MLZhfRB+yuQUW
zqXWyORti8AqCIcK7G82XMPT6l66AiEArTjzahkNHJegFPMYmpkNe48BObuvhRnh
IZVQyjOC4XI=
-----END CERTIFICATE-----
";
    pub const GUIDE_NOT_BEFORE: i64 = 1_796_032_901; // 2026-11-30 10:01:41 UTC
    pub const GUIDE_NOT_AFTER: i64 = 4_949_632_901; // 2126-11-06 10:01:41 UTC

    pub fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    pub fn at(seconds: i64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds.unsigned_abs()))
    }

    pub fn name(name: &str) -> ServerName<'static> {
        ServerName::try_from(name.to_owned()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_certificates::*;
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    /// Setting up TLS for a host reads no system CA certificate; verifying the first server
    /// certificate reads them, once for the process, whatever the number of hosts; a host's
    /// certs.d CA is trusted beside them.
    #[test]
    fn system_roots_are_read_once_and_only_when_a_certificate_is_verified() {
        let certs_d = tempfile::tempdir().unwrap();
        std::fs::write(certs_d.path().join("ca.crt"), GUIDE_CRT).unwrap();
        let plain = host_tls_from(&[]).unwrap();
        let with_ca = host_tls_from(&[certs_d.path().to_owned()]).unwrap();
        assert!(!plain.verifier.trust_made() && !with_ca.verifier.trust_made());
        let verify = |tls: &HostTls| {
            tls.verifier.verify_server_cert(
                &der(GUIDE_CRT),
                &[],
                &name("127.0.0.1"),
                &[],
                at(GUIDE_NOT_BEFORE + 60),
            )
        };
        assert!(verify(&plain).is_err());
        assert!(verify(&with_ca).is_ok());
        let another = host_tls_from(&[]).unwrap();
        assert!(verify(&another).is_err());
        assert!(plain.verifier.trust_made() && with_ca.verifier.trust_made());
        assert_eq!(SYSTEM_ROOTS_READ.load(Ordering::Relaxed), 1);
    }
}
