//! Registry interop: TLS as users set it up (see tests/it/registry_interop/mod.rs). Certificates are made
//! with the openssl CLI the way guides and bug reports make them (Docker's self-signed `CA:TRUE`
//! certificate, a self-signed `CA:FALSE` one, a CA and a leaf, a client certificate for a
//! registry that requires one), served by the real registry, and trusted the way users trust
//! them: `SSL_CERT_FILE`, `/etc/docker/certs.d/HOST:PORT/` and `/etc/containers/certs.d/…`.
//! The certs.d directories written here are for this test's registry port only and are removed
//! after.
//!
//! Not here: the harness's own TLS set-up (tests/it/build_registry.rs) and plain-HTTP fallback.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::registry::{RegistryOptions, TestRegistry, TlsFiles};
use crate::support::scratch::Scratch;
use crate::support::{base_reference, both_bootstrap_args, run, run_unchecked, stderr_of};

/// A directory of keys and certificates made with the openssl CLI.
struct Pki {
    dir: tempfile::TempDir,
}

/// `openssl ca` settings for certificates with chosen dates (OpenSSL 3.0's `req` and `x509`
/// take only a positive `-days`).
const CA_CNF: &str = "\
[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
copy_extensions = copy
[policy_any]
commonName = supplied
";

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("pki-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::write(dir.path().join("ca.cnf"), CA_CNF).unwrap();
        std::fs::write(dir.path().join("index.txt"), "").unwrap();
        std::fs::write(dir.path().join("serial"), "01\n").unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        run(Command::new("openssl")
            .current_dir(self.dir.path())
            .args(args));
    }

    /// Writes `NAME.ext` with these extension lines, for `-extfile`.
    fn extensions(&self, name: &str, lines: &[&str]) -> String {
        let file = format!("{name}.ext");
        std::fs::write(self.path(&file), lines.join("\n") + "\n").unwrap();
        file
    }

    /// Docker's guide for a registry with a self-signed certificate: `openssl req -newkey
    /// rsa:4096 -nodes -sha256 -x509 -days 365 -addext "subjectAltName = …"`; openssl's default
    /// `v3_ca` section makes it `CA:TRUE`. Returns `NAME.crt` and `NAME.key`.
    fn docker_guide(&self, name: &str, subject_alt_name: &str) -> (PathBuf, PathBuf) {
        let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
        let san = format!("subjectAltName = {subject_alt_name}");
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:4096",
            "-nodes",
            "-sha256",
            "-x509",
            "-days",
            "365",
            "-subj",
            "/CN=myregistry.local",
            "-addext",
            &san,
            "-keyout",
            &key,
            "-out",
            &crt,
        ]);
        (self.path(&crt), self.path(&key))
    }

    /// A self-signed certificate that is not a CA (`basicConstraints = CA:FALSE`).
    fn self_signed_end_entity(&self, name: &str, subject_alt_name: &str) -> (PathBuf, PathBuf) {
        let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
        let san = format!("subjectAltName = {subject_alt_name}");
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "365",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "basicConstraints = critical, CA:FALSE",
            "-addext",
            &san,
            "-keyout",
            &key,
            "-out",
            &crt,
        ]);
        (self.path(&crt), self.path(&key))
    }

    /// A CA: `openssl req -x509` with openssl's default `v3_ca` extensions.
    fn ca(&self, name: &str, subject: &str) -> PathBuf {
        let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "365",
            "-subj",
            subject,
            "-keyout",
            &key,
            "-out",
            &crt,
        ]);
        self.path(&crt)
    }

    /// A key (`NAME.key`, PKCS#8 P-256) and its certificate request for `subject`.
    fn request(&self, name: &str, subject: &str) -> (String, PathBuf) {
        let (csr, key) = (format!("{name}.csr"), format!("{name}.key"));
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            &key,
            "-out",
            &csr,
        ]);
        (csr, self.path(&key))
    }

    /// `openssl x509 -req` signing `csr` with CA `ca` into `NAME.crt`, with these extension
    /// lines (none: openssl makes an X.509 version 1 certificate).
    fn sign(&self, ca: &str, csr: &str, name: &str, extensions: &[&str]) -> PathBuf {
        let crt = format!("{name}.crt");
        let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "365",
            "-out",
            &crt,
        ];
        let ext;
        if !extensions.is_empty() {
            ext = self.extensions(name, extensions);
            args.extend(["-extfile", &ext]);
        }
        self.openssl(&args);
        self.path(&crt)
    }

    /// `openssl ca` signing `csr` into `NAME.crt`, valid from `start` to `end`
    /// (`YYYYMMDDHHMMSSZ`); `ca: None` signs it with its own key (`-selfsign`).
    /// An intermediate CA `name` (`subject`), issued by the CA `issuer`.
    fn intermediate(&self, issuer: &str, name: &str, subject: &str) -> PathBuf {
        let (csr, _) = self.request(name, subject);
        self.sign(
            issuer,
            &csr,
            name,
            &[
                "basicConstraints = critical, CA:TRUE",
                "keyUsage = critical, keyCertSign, cRLSign",
            ],
        )
    }

    /// `name`: the PEM files `parts` one after the other (a certificate and its chain).
    fn concatenate(&self, name: &str, parts: &[&Path]) -> PathBuf {
        let bytes: Vec<u8> = parts
            .iter()
            .flat_map(|part| std::fs::read(part).unwrap())
            .collect();
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn sign_dated(
        &self,
        ca: Option<&str>,
        csr: &str,
        key: &Path,
        name: &str,
        (start, end): (&str, &str),
        extensions: &[&str],
    ) -> PathBuf {
        let crt = format!("{name}.crt");
        let ext = self.extensions(name, extensions);
        let key = key.to_str().unwrap();
        let (ca_crt, ca_key) = ca.map_or((String::new(), String::new()), |ca| {
            (format!("{ca}.crt"), format!("{ca}.key"))
        });
        let mut args = vec!["ca", "-batch", "-config", "ca.cnf", "-notext"];
        match ca {
            Some(_) => args.extend(["-cert", &ca_crt, "-keyfile", &ca_key]),
            None => args.extend(["-selfsign", "-keyfile", key]),
        }
        args.extend([
            "-in",
            csr,
            "-startdate",
            start,
            "-enddate",
            end,
            "-extfile",
            &ext,
            "-out",
            &crt,
        ]);
        self.openssl(&args);
        self.path(&crt)
    }
}

/// `DIR/HOST/` with some files, removed on drop (the port in HOST is this test's own).
struct CertsD {
    path: PathBuf,
}

impl CertsD {
    fn install(directory: &str, registry: &TestRegistry, files: &[(&str, &Path)]) -> CertsD {
        CertsD::install_for(directory, &registry.host(), files)
    }

    /// For `host` (`127.0.0.1:PORT`, a port of this test's own).
    fn install_for(directory: &str, host: &str, files: &[(&str, &Path)]) -> CertsD {
        let path = Path::new(directory).join(host);
        std::fs::create_dir_all(&path).unwrap();
        for (name, source) in files {
            std::fs::copy(source, path.join(name)).unwrap();
        }
        CertsD { path }
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";
const CONTAINERS_CERTS_D: &str = "/etc/containers/certs.d";

fn registry_serving(certificate: &Path, key: &Path, client_cas: &[&Path]) -> TestRegistry {
    TestRegistry::start(RegistryOptions {
        tls_files: Some(TlsFiles {
            certificate: certificate.to_owned(),
            key: key.to_owned(),
            client_cas: client_cas.iter().map(|ca| ca.to_path_buf()).collect(),
        }),
        ..RegistryOptions::default()
    })
}

/// `lambda-image build` of the stand-in base pushed to `fn:TAG`, with `SSL_CERT_FILE` if given.
fn push(registry: &TestRegistry, tag: &str, ssl_cert_file: Option<&Path>) -> Output {
    push_to(&registry.host(), tag, ssl_cert_file)
}

/// [`push`] to `host` (a proxy in front of a registry).
fn push_to(host: &str, tag: &str, ssl_cert_file: Option<&Path>) -> Output {
    let scratch = Scratch::new();
    let base = base_reference();
    let target = format!("{host}/fn:{tag}");
    let mut args = both_bootstrap_args();
    args.extend(["--base".into(), base, "--tag".into(), target]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = scratch.build(&args);
    if let Some(file) = ssl_cert_file {
        command.env("SSL_CERT_FILE", file);
    }
    run_unchecked(&mut command)
}

/// The build succeeded and the registry stored the manifest tagged `tag`.
fn assert_pushed(output: &Output, registry: &TestRegistry, tag: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    let tagged = registry.requests().iter().any(|request| {
        request.method == "PUT"
            && request.uri == format!("/v2/fn/manifests/{tag}")
            && request.status == 201
    });
    assert!(tagged, "no manifest PUT for {tag}; stderr:\n{stderr}");
}

/// The build failed as a registry error (exit 6) whose stderr has every `expected` string, and
/// nothing was tagged `tag`.
fn assert_refused(output: &Output, registry: &TestRegistry, tag: &str, expected: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(6), "stderr:\n{stderr}");
    for expected in expected {
        assert!(
            stderr.contains(expected),
            "stderr lacks `{expected}`:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let manifests = registry
        .requests()
        .iter()
        .filter(|request| request.uri == format!("/v2/fn/manifests/{tag}"))
        .count();
    assert_eq!(manifests, 0, "{stderr}");
}

/// Docker's guide (docs.docker.com, "Use self-signed certificates" for a registry): the registry
/// serves `domain.crt`, a self-signed `CA:TRUE` certificate, and users trust that same file as
/// `certs.d/HOST:PORT/ca.crt`, through `SSL_CERT_FILE`, or appended to the system bundle
/// (moby/moby#15227). rustls/webpki refuse a CA as an end entity (`CaUsedAsEndEntity`, reported
/// in rustls/webpki#205 and lightningnetwork/lnd#5450 with the same openssl command); docker,
/// skopeo and podman accept it.
#[test]
fn docker_guide_self_signed_ca_certificate_is_trusted_where_users_install_it() {
    let pki = Pki::new();
    let (crt, key) = pki.docker_guide("domain", "IP:127.0.0.1");
    let registry = registry_serving(&crt, &key, &[]);
    let host = registry.host();

    // Not installed: named as the CA certificate the server presents, with where to put it.
    let output = push(&registry, "untrusted", None);
    assert_refused(
        &output,
        &registry,
        "untrusted",
        &[
            "CN=myregistry.local",
            "is a CA certificate (CA:TRUE) that the server presents as its own",
            &format!("not configured as trusted for {host}"),
            &format!(
                "install exactly the certificate file the registry serves as /etc/docker/certs.d/{host}/ca.crt"
            ),
        ],
    );

    let output = push(&registry, "ssl-cert-file", Some(&crt));
    assert_pushed(&output, &registry, "ssl-cert-file");

    // Appended to (a copy of) the system bundle, as moby/moby#15227 did with `tee -a`.
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.extend(std::fs::read(&crt).unwrap());
    let bundle_path = pki.path("ca-certificates.crt");
    std::fs::write(&bundle_path, bundle).unwrap();
    let output = push(&registry, "system-bundle", Some(&bundle_path));
    assert_pushed(&output, &registry, "system-bundle");

    let installed = CertsD::install(DOCKER_CERTS_D, &registry, &[("ca.crt", &crt)]);
    let output = push(&registry, "docker-certs-d", None);
    drop(installed);
    assert_pushed(&output, &registry, "docker-certs-d");

    let installed = CertsD::install(CONTAINERS_CERTS_D, &registry, &[("ca.crt", &crt)]);
    let output = push(&registry, "containers-certs-d", None);
    drop(installed);
    assert_pushed(&output, &registry, "containers-certs-d");
}

/// A certificate trusted as it is still has to name the host and be within its dates.
#[test]
fn a_certificate_trusted_as_it_is_still_needs_the_right_name_and_dates() {
    let pki = Pki::new();
    let (crt, key) = pki.docker_guide("elsewhere", "IP:10.1.2.3");
    let registry = registry_serving(&crt, &key, &[]);
    let output = push(&registry, "v1", Some(&crt));
    assert_refused(
        &output,
        &registry,
        "v1",
        &["is for 10.1.2.3, not 127.0.0.1"],
    );
    drop(registry);

    // Docker's guide certificate, but long expired.
    let (csr, key) = pki.request("old", "/CN=myregistry.local");
    let crt = pki.sign_dated(
        None,
        &csr,
        &key,
        "old",
        ("20200101000000Z", "20200201000000Z"),
        &[
            "basicConstraints = critical, CA:TRUE",
            "subjectAltName = IP:127.0.0.1",
        ],
    );
    let registry = registry_serving(&crt, &key, &[]);
    let installed = CertsD::install(DOCKER_CERTS_D, &registry, &[("ca.crt", &crt)]);
    let output = push(&registry, "v1", None);
    drop(installed);
    assert_refused(
        &output,
        &registry,
        "v1",
        &[
            "has expired (valid from 2020-01-01 00:00:00 UTC to 2020-02-01 00:00:00 UTC",
            "this machine's clock",
        ],
    );
}

/// A self-signed certificate that is not a CA (`CA:FALSE`), as many how-tos make it.
#[test]
fn self_signed_end_entity_certificate() {
    let pki = Pki::new();
    let (crt, key) = pki.self_signed_end_entity("registry", "IP:127.0.0.1");
    let registry = registry_serving(&crt, &key, &[]);
    let host = registry.host();

    let output = push(&registry, "untrusted", None);
    assert_refused(
        &output,
        &registry,
        "untrusted",
        &[
            "(CN=127.0.0.1) is self-signed and not trusted here",
            &format!("/etc/docker/certs.d/{host}/ca.crt"),
        ],
    );

    let installed = CertsD::install(DOCKER_CERTS_D, &registry, &[("ca.crt", &crt)]);
    let output = push(&registry, "trusted", None);
    drop(installed);
    assert_pushed(&output, &registry, "trusted");
}

/// A private CA and a server certificate it signed: the CA is what gets installed.
#[test]
fn private_ca_and_leaf_certificate() {
    let pki = Pki::new();
    let ca = pki.ca("ca", "/CN=Example Private CA");
    let (csr, key) = pki.request("leaf", "/CN=127.0.0.1");
    let leaf = pki.sign("ca", &csr, "leaf", &["subjectAltName = IP:127.0.0.1"]);
    let registry = registry_serving(&leaf, &key, &[]);

    let output = push(&registry, "untrusted", None);
    assert_refused(
        &output,
        &registry,
        "untrusted",
        &[
            "is issued by CN=Example Private CA, a CA that is not trusted here",
            "the CA's certificate, not the server's",
        ],
    );

    // Trusting the leaf itself (what some users try) works too, as with Go's crypto/x509.
    let output = push(&registry, "leaf-trusted", Some(&leaf));
    assert_pushed(&output, &registry, "leaf-trusted");

    let installed = CertsD::install(DOCKER_CERTS_D, &registry, &[("ca.crt", &ca)]);
    let output = push(&registry, "ca-trusted", None);
    drop(installed);
    assert_pushed(&output, &registry, "ca-trusted");

    // Harbor's guide also copies the server's own certificate and key there, as
    // `HOST.cert` + `HOST.key`: a pair, offered only to a registry that asks for one.
    let host = registry.host();
    let installed = CertsD::install(
        DOCKER_CERTS_D,
        &registry,
        &[
            ("ca.crt", &ca),
            (&format!("{host}.cert"), &leaf),
            (&format!("{host}.key"), &key),
        ],
    );
    let output = push(&registry, "harbor-layout", None);
    drop(installed);
    assert_pushed(&output, &registry, "harbor-layout");
}

/// Server certificates made wrong the ways bug reports show, each named for what it is:
/// version 1 from `openssl x509 -req` without extensions, a common name but no subjectAltName
/// (Go 1.15 dropped the CN fallback: "x509: certificate relies on legacy Common Name field" in
/// goharbor/harbor#16971 and rancher/rke2#775), another host's name, and an expired certificate.
#[test]
fn server_certificates_made_wrong_are_explained() {
    let pki = Pki::new();
    let ca = pki.ca("ca", "/CN=Example Private CA");
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "version1",
            &[],
            &[
                "X.509 version 1 certificate (made by `openssl x509 -req` without extensions)",
                "subjectAltName = IP:127.0.0.1",
            ],
        ),
        (
            "cn-only",
            &["basicConstraints = CA:FALSE"],
            &[
                "has no subjectAltName, only the common name 127.0.0.1",
                "-addext \"subjectAltName = IP:127.0.0.1\"",
            ],
        ),
        (
            "other-name",
            &["subjectAltName = DNS:registry.example.com"],
            &["is for registry.example.com, not 127.0.0.1"],
        ),
    ];
    for (name, extensions, expected) in cases {
        let (csr, key) = pki.request(name, "/CN=127.0.0.1");
        let crt = pki.sign("ca", &csr, name, extensions);
        let registry = registry_serving(&crt, &key, &[]);
        let output = push(&registry, "v1", Some(&ca));
        assert_refused(&output, &registry, "v1", expected);
    }

    let (csr, key) = pki.request("expired", "/CN=127.0.0.1");
    let crt = pki.sign_dated(
        Some("ca"),
        &csr,
        &key,
        "expired",
        ("20200101000000Z", "20200201000000Z"),
        &["subjectAltName = IP:127.0.0.1"],
    );
    let registry = registry_serving(&crt, &key, &[]);
    let output = push(&registry, "v1", Some(&ca));
    assert_refused(
        &output,
        &registry,
        "v1",
        &[
            "has expired (valid from 2020-01-01 00:00:00 UTC to 2020-02-01 00:00:00 UTC",
            "the registry's certificate has expired (or this machine's clock is wrong): renew it",
        ],
    );
}

/// A registry that requires a client certificate (distribution's `http.tls.clientcas`), with
/// docker's `certs.d/HOST:PORT/client.cert` + `client.key`, keys in each PEM form openssl writes.
#[test]
fn mutual_tls_client_certificate_from_certs_d() {
    let pki = Pki::new();
    let ca = pki.ca("ca", "/CN=Example Private CA");
    let (csr, server_key) = pki.request("server", "/CN=127.0.0.1");
    let server = pki.sign("ca", &csr, "server", &["subjectAltName = IP:127.0.0.1"]);
    let client_ca = pki.ca("client-ca", "/CN=Example Client CA");
    let registry = registry_serving(&server, &server_key, &[&client_ca]);
    let host = registry.host();

    // No client certificate.
    let installed = CertsD::install(DOCKER_CERTS_D, &registry, &[("ca.crt", &ca)]);
    let output = push(&registry, "none", None);
    drop(installed);
    assert_refused(
        &output,
        &registry,
        "none",
        &[
            &format!(
                "requires a client certificate (mutual TLS), and none is configured for {host}"
            ),
            &format!("/etc/docker/certs.d/{host}/client.cert"),
            &format!("/etc/docker/certs.d/{host}/client.key"),
        ],
    );

    // The key in PKCS#8 (openssl's default), PKCS#1 RSA and SEC1 EC forms.
    pki.openssl(&["genrsa", "-traditional", "-out", "rsa.key", "2048"]);
    pki.openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec.key",
    ]);
    let client_auth = ["extendedKeyUsage = clientAuth"];
    let (pkcs8_csr, pkcs8_key) = pki.request("pkcs8", "/CN=builder");
    for (name, csr, key) in [
        ("pkcs8", pkcs8_csr, pkcs8_key),
        ("rsa", "rsa.csr".to_owned(), pki.path("rsa.key")),
        ("ec", "ec.csr".to_owned(), pki.path("ec.key")),
    ] {
        if name != "pkcs8" {
            pki.openssl(&[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                "/CN=builder",
                "-out",
                &csr,
            ]);
        }
        let header = std::fs::read_to_string(&key).unwrap();
        let expected_header = match name {
            "pkcs8" => "BEGIN PRIVATE KEY",
            "rsa" => "BEGIN RSA PRIVATE KEY",
            _ => "BEGIN EC PRIVATE KEY",
        };
        assert!(header.contains(expected_header), "{name}: {header}");
        let cert = pki.sign("client-ca", &csr, &format!("{name}-client"), &client_auth);
        let installed = CertsD::install(
            DOCKER_CERTS_D,
            &registry,
            &[
                ("ca.crt", &ca),
                ("client.cert", &cert),
                ("client.key", &key),
            ],
        );
        let output = push(&registry, name, None);
        drop(installed);
        assert_pushed(&output, &registry, name);
    }

    // client.cert without client.key: both named.
    let cert = pki.path("ec-client.crt");
    let installed = CertsD::install(
        DOCKER_CERTS_D,
        &registry,
        &[("ca.crt", &ca), ("client.cert", &cert)],
    );
    let output = push(&registry, "unpaired", None);
    drop(installed);
    assert_refused(
        &output,
        &registry,
        "unpaired",
        &[&format!(
            "/etc/docker/certs.d/{host}/client.cert has no /etc/docker/certs.d/{host}/client.key"
        )],
    );

    // A client certificate from a CA the registry does not trust.
    let (csr, key) = pki.request("stranger", "/CN=builder");
    let stranger = pki.sign("ca", &csr, "stranger", &client_auth);
    let installed = CertsD::install(
        DOCKER_CERTS_D,
        &registry,
        &[
            ("ca.crt", &ca),
            ("client.cert", &stranger),
            ("client.key", &key),
        ],
    );
    let output = push(&registry, "stranger", None);
    drop(installed);
    assert_refused(
        &output,
        &registry,
        "stranger",
        &[
            "the registry refused the client certificate",
            "client.cert",
            "tls.clientcas",
        ],
    );
}

/// A root CA, an intermediate and a leaf (distribution/distribution#2458: "both the intermediate
/// and domain cert are installed"): the registry serving its chain with only the root trusted,
/// or serving the leaf alone with the root and the intermediate trusted, works; the leaf alone
/// with only the root trusted names the missing intermediate.
#[test]
fn intermediate_ca_served_in_the_chain_or_trusted_beside_the_root() {
    let pki = Pki::new();
    let root = pki.ca("root", "/CN=Example Root CA");
    let intermediate = pki.intermediate("root", "intermediate", "/CN=Example Intermediate CA");
    let (csr, key) = pki.request("leaf", "/CN=127.0.0.1");
    let leaf = pki.sign(
        "intermediate",
        &csr,
        "leaf",
        &["subjectAltName = IP:127.0.0.1"],
    );
    let chain_path = pki.concatenate("chain.crt", &[&leaf, &intermediate]);

    let registry = registry_serving(&chain_path, &key, &[]);
    let installed = CertsD::install(DOCKER_CERTS_D, &registry, &[("ca.crt", &root)]);
    let output = push(&registry, "chain", None);
    drop(installed);
    assert_pushed(&output, &registry, "chain");
    drop(registry);

    let registry = registry_serving(&leaf, &key, &[]);
    let output = push(&registry, "leaf-only", Some(&root));
    assert_refused(
        &output,
        &registry,
        "leaf-only",
        &[
            "is issued by CN=Example Intermediate CA, a CA that is not trusted here",
            "intermediate",
        ],
    );
    let installed = CertsD::install(
        DOCKER_CERTS_D,
        &registry,
        &[("root.crt", &root), ("intermediate.crt", &intermediate)],
    );
    let output = push(&registry, "both-trusted", None);
    drop(installed);
    assert_pushed(&output, &registry, "both-trusted");
}

/// A client certificate issued by an intermediate CA, kept in `client.cert` with that
/// intermediate after it (genuinetools/reg#189: a registry that needs `ca.crt`, `client.cert`
/// and `client.key`, where curl works and a client without certs.d support fails with "tls:
/// handshake failure"). The registry trusts only the client root.
#[test]
fn mutual_tls_client_certificate_chain() {
    let pki = Pki::new();
    let ca = pki.ca("ca", "/CN=Example Private CA");
    let (csr, server_key) = pki.request("server", "/CN=127.0.0.1");
    let server = pki.sign("ca", &csr, "server", &["subjectAltName = IP:127.0.0.1"]);
    let client_root = pki.ca("client-root", "/CN=Example Client Root");
    let intermediate = pki.intermediate(
        "client-root",
        "client-intermediate",
        "/CN=Example Client Intermediate",
    );
    let (csr, client_key) = pki.request("client", "/CN=builder");
    let client = pki.sign(
        "client-intermediate",
        &csr,
        "client",
        &["extendedKeyUsage = clientAuth"],
    );
    let chain_path = pki.concatenate("client-chain.cert", &[&client, &intermediate]);
    let registry = registry_serving(&server, &server_key, &[&client_root]);

    let installed = CertsD::install(
        CONTAINERS_CERTS_D,
        &registry,
        &[
            ("ca.crt", &ca),
            ("client.cert", &chain_path),
            ("client.key", &client_key),
        ],
    );
    let output = push(&registry, "chain", None);
    drop(installed);
    assert_pushed(&output, &registry, "chain");
}

/// nginx terminating TLS in front of a registry (Debian's `nginx`), as distribution's docs and
/// Harbor set it up, optionally requiring a client certificate (`ssl_verify_client on`).
struct Nginx {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Nginx {
    fn start(upstream: &str, certificate: &Path, key: &Path, client_ca: Option<&Path>) -> Nginx {
        let dir = tempfile::Builder::new()
            .prefix("nginx-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let port = crate::support::registry::free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let client_auth = client_ca.map_or(String::new(), |ca| {
            format!(
                "ssl_client_certificate {};\n    ssl_verify_client on;\n",
                ca.display()
            )
        });
        let config = format!(
            "worker_processes 1;
pid {pid};
error_log {error_log};
events {{ worker_connections 64; }}
http {{
  access_log {access_log};
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {certificate};
    ssl_certificate_key {key};
    {client_auth}
    client_max_body_size 0;
    chunked_transfer_encoding on;
    location / {{
      proxy_pass {upstream};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_request_buffering off;
      proxy_read_timeout 900;
    }}
  }}
}}
",
            pid = path("nginx.pid"),
            error_log = path("error.log"),
            access_log = path("access.log"),
            temp = dir.path().display(),
            certificate = certificate.display(),
            key = key.display(),
        );
        std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx not found: run `bash tests/run.sh`, which installs it");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                let _ = child.kill();
                panic!(
                    "nginx did not start: {}",
                    std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        Nginx { child, dir, port }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers, which SIGKILL would leave behind.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = self.dir.path();
    }
}

/// nginx requiring a client certificate in front of the registry (docker-archive/
/// docker-registry#167): nginx refuses a missing or unknown client certificate with an HTTP 400
/// page ("No required SSL certificate was sent", "The SSL certificate error"), not a TLS alert.
#[test]
fn client_certificate_required_by_nginx_in_front_of_the_registry() {
    let pki = Pki::new();
    let ca = pki.ca("ca", "/CN=Example Private CA");
    let (csr, server_key) = pki.request("server", "/CN=127.0.0.1");
    let server = pki.sign("ca", &csr, "server", &["subjectAltName = IP:127.0.0.1"]);
    let client_ca = pki.ca("client-ca", "/CN=Example Client CA");
    let registry = TestRegistry::start(RegistryOptions::default());
    let nginx = Nginx::start(&registry.url(), &server, &server_key, Some(&client_ca));
    let host = nginx.host();

    let installed = CertsD::install_for(DOCKER_CERTS_D, &host, &[("ca.crt", &ca)]);
    let output = push_to(&host, "none", None);
    drop(installed);
    assert_refused(
        &output,
        &registry,
        "none",
        &[
            "No required SSL certificate was sent",
            &format!(
                "requires a client certificate (mutual TLS), and none is configured for {host}"
            ),
            &format!("/etc/docker/certs.d/{host}/client.cert"),
        ],
    );

    let client_auth = ["extendedKeyUsage = clientAuth"];
    let (csr, stranger_key) = pki.request("stranger", "/CN=builder");
    let stranger = pki.sign("ca", &csr, "stranger", &client_auth);
    let installed = CertsD::install_for(
        DOCKER_CERTS_D,
        &host,
        &[
            ("ca.crt", &ca),
            ("client.cert", &stranger),
            ("client.key", &stranger_key),
        ],
    );
    let output = push_to(&host, "stranger", None);
    drop(installed);
    assert_refused(
        &output,
        &registry,
        "stranger",
        &["the registry refused the client certificate", "client.cert"],
    );

    let (csr, key) = pki.request("client", "/CN=builder");
    let client = pki.sign("client-ca", &csr, "client", &client_auth);
    let installed = CertsD::install_for(
        DOCKER_CERTS_D,
        &host,
        &[
            ("ca.crt", &ca),
            ("client.cert", &client),
            ("client.key", &key),
        ],
    );
    let output = push_to(&host, "v1", None);
    drop(installed);
    assert_pushed(&output, &registry, "v1");
}
