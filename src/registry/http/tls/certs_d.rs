//! The files of a certs.d directory (`/etc/docker/certs.d/HOST[:PORT]/`), as docker reads
//! them: `*.crt` CA certificates, and `*.cert` + `*.key` client certificate pairs (PEM).
//!
//! Not here: what is done with them (see the parent module).

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// The files of one certs.d directory that matter.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct CertsDirectory {
    /// `*.crt`: CA certificates, sorted.
    pub(super) cas: Vec<PathBuf>,
    /// The first `*.cert` + `*.key` pair, by file name.
    pub(super) client: Option<ClientPair>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct ClientPair {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
}

impl CertsDirectory {
    /// Lists `directory` (absent: nothing). A `NAME.cert` without `NAME.key`, or the reverse, is
    /// an error naming both (as docker's `ReadCertsDirectory` has it).
    pub(super) fn read(directory: &Path) -> Result<CertsDirectory> {
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

pub(super) fn bad_file(path: &Path, why: &str) -> Error {
    Error::registry(format!("cannot use {}: {why}", path.display()))
}

/// The certificates of a PEM file of CA certificates.
pub(super) fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
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
    pub(super) fn load(&self) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::http::tls::host_tls_from;
    use crate::registry::http::tls::test_certificates::*;

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
