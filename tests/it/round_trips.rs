//! Round trips before the push: the scheme of a registry that may use plain HTTP is found with
//! one plain `GET /v2/` (no TLS attempt against a plain-HTTP registry), once per host and run;
//! CA certificates are read only for HTTPS; a base's architectures are read side by side.
//!
//! What is on the wire is read by servers in front of the real registry: [`TcpFront`] records
//! the first byte of every connection (`0x16` starts a TLS handshake), and [`TestProxy`] with
//! `HoldBaseGets` holds each answer for a while and records when each request came and was
//! answered, so that requests sent together overlap and requests sent one after another do not
//! (no timing threshold).
//!
//! Public reports these situations come from: a plain-HTTP registry answering a TLS attempt
//! with HTTP (distribution/distribution#1929, moby/moby#28091: "server gave HTTP response to
//! HTTPS client"), a run waiting on an HTTPS port that drops packets before falling back
//! (GoogleContainerTools/kaniko#1933, google/go-containerregistry#1002), an HTTPS-only
//! registry named as insecure (moby/buildkit#4300), nginx's page for plain HTTP on its TLS
//! port (SUSE/Portus#1508; nginx in front of the registry is also tested in
//! tests/it/registry_interop/tls.rs), and TLS servers that close the connection instead.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::forward_proxy::{hosts_file, with_hosts};
use crate::support::proxy::{HeldGet, ProxyBehaviour, TestProxy};
use crate::support::registry::{RegistryOptions, TestRegistry, TlsFiles};
use crate::support::scratch::Scratch;
use crate::support::tcp_front::{PlainHttp, TLS_HANDSHAKE, TcpFront};
use crate::support::*;

const BASE_REPOSITORY: &str = "lambda/base";
/// A name for the registry that is not loopback (`.test` is reserved for testing, RFC 2606).
const NAME: &str = "registry.round-trips.test";

/// A registry holding the stand-in base at `lambda/base:al2023`.
fn registry_with_base(options: RegistryOptions) -> TestRegistry {
    let registry = TestRegistry::start(options);
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    registry
}

/// `lambda-image build` of both bootstraps on `HOST/lambda/base:al2023`, pushed to
/// `HOST/fn:TAG`, with `extra` arguments and environment.
fn build(
    scratch: &Scratch,
    host: &str,
    tag: &str,
    extra: &[&str],
    env: &[(&str, &Path)],
) -> Command {
    let base = format!("{host}/{BASE_REPOSITORY}:{BASE_TAG}");
    let target = format!("{host}/fn:{tag}");
    let bootstraps = both_bootstrap_args();
    let mut args: Vec<&str> = bootstraps.iter().map(String::as_str).collect();
    args.extend(["--base", &base, "--tag", &target]);
    args.extend_from_slice(extra);
    let mut command = scratch.build(&args);
    for (variable, value) in env {
        command.env(variable, value);
    }
    command
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr:\n{}",
        stderr_of(output)
    );
}

/// A plain-HTTP registry, on loopback and named with `--insecure-registry`, is spoken to in
/// plain HTTP from the first byte: no connection starts with a TLS handshake.
#[test]
fn a_plain_http_registry_sees_no_tls_handshake() {
    let registry = registry_with_base(RegistryOptions::default());
    let front = TcpFront::start(registry.port(), PlainHttp::Forward);
    let scratch = Scratch::new();

    let output = run_unchecked(&mut build(&scratch, &front.host(), "loopback", &[], &[]));
    assert_exit(&output, 0);
    let first = front.first_bytes();
    assert!(!first.is_empty());
    assert!(!first.contains(&TLS_HANDSHAKE), "first bytes: {first:x?}");

    let hosts = hosts_file(&scratch.path(""), &[NAME]);
    let named = format!("{NAME}:{}", front.port());
    let before = front.first_bytes().len();
    let command = build(
        &scratch,
        &named,
        "named",
        &["--insecure-registry", &named],
        &[],
    );
    let output = run_unchecked(&mut with_hosts(&command, &hosts));
    assert_exit(&output, 0);
    let first = front.first_bytes();
    assert!(first.len() > before);
    assert!(!first.contains(&TLS_HANDSHAKE), "first bytes: {first:x?}");
    let tags = registry.tags("fn", None);
    assert!(tags.contains(&"loopback".to_owned()) && tags.contains(&"named".to_owned()));
}

/// A TLS registry on loopback (which may use plain HTTP) is found to speak TLS by one plain
/// `GET /v2/`, answered with Go's `400` page; every later connection of the run, the other
/// sessions to the same host included, is TLS from its first byte.
#[test]
fn a_tls_registry_that_may_use_plain_http_is_probed_once_per_run() {
    let registry = registry_with_base(RegistryOptions {
        tls: true,
        ..RegistryOptions::default()
    });
    let front = TcpFront::start(registry.port(), PlainHttp::Forward);
    let scratch = Scratch::new();
    let ca = registry.ca_cert().unwrap();
    let output = run_unchecked(&mut build(
        &scratch,
        &front.host(),
        "v1",
        &[],
        &[("SSL_CERT_FILE", ca)],
    ));
    assert_exit(&output, 0);
    let first = front.first_bytes();
    let plain = first.iter().filter(|&&byte| byte != TLS_HANDSHAKE).count();
    assert_eq!((first[0], plain), (b'G', 1), "first bytes: {first:x?}");
    assert!(first.len() > 2, "first bytes: {first:x?}");
    assert!(registry.tags("fn", None).contains(&"v1".to_owned()));
}

/// TLS servers that do not answer plain HTTP with a page: the connection closed without a
/// byte (what OpenSSL 3's `openssl s_server` does), a TLS alert, or a reset. The host is spoken to in TLS all the same.
#[test]
fn tls_servers_that_close_or_alert_on_plain_http_are_spoken_to_in_tls() {
    let registry = registry_with_base(RegistryOptions {
        tls: true,
        ..RegistryOptions::default()
    });
    let ca = registry.ca_cert().unwrap();
    for (index, plain_http) in [PlainHttp::Close, PlainHttp::Alert, PlainHttp::Reset]
        .into_iter()
        .enumerate()
    {
        let front = TcpFront::start(registry.port(), plain_http);
        let scratch = Scratch::new();
        let tag = format!("v{index}");
        let output = run_unchecked(&mut build(
            &scratch,
            &front.host(),
            &tag,
            &[],
            &[("SSL_CERT_FILE", ca)],
        ));
        assert_exit(&output, 0);
        let first = front.first_bytes();
        assert_eq!(first[0], b'G', "{plain_http:?}: {first:x?}");
        assert!(
            first[1..].iter().all(|&byte| byte == TLS_HANDSHAKE),
            "{plain_http:?}: {first:x?}"
        );
        assert!(registry.tags("fn", None).contains(&tag), "{plain_http:?}");
    }
}

/// An HTTPS-only registry named with `--insecure-registry` is still spoken to in TLS
/// (moby/buildkit#4300), and its certificate still checked: one the client does not trust is
/// an error naming TLS, never a fall-back to plain HTTP.
#[test]
fn a_tls_registry_named_with_insecure_registry_keeps_tls_and_its_certificate_check() {
    let dir = tempfile::Builder::new()
        .prefix("round-trips-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let (certificate, key) = (
        dir.path().join("registry.crt"),
        dir.path().join("registry.key"),
    );
    let san = format!("subjectAltName = DNS:{NAME}");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={NAME}"),
            "-addext",
            &san,
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&certificate));
    let registry = registry_with_base(RegistryOptions {
        tls_files: Some(TlsFiles {
            certificate: certificate.clone(),
            key,
            client_cas: Vec::new(),
        }),
        ..RegistryOptions::default()
    });
    let scratch = Scratch::new();
    let hosts = hosts_file(&scratch.path(""), &[NAME]);
    let named = format!("{NAME}:{}", registry.port());
    let insecure = ["--insecure-registry", named.as_str()];

    // Not trusted: a TLS error, and nothing sent in plain HTTP beyond the first GET /v2/.
    let command = build(&scratch, &named, "untrusted", &insecure, &[]);
    let output = run_unchecked(&mut with_hosts(&command, &hosts));
    assert_exit(&output, 6);
    let stderr = stderr_of(&output);
    assert!(stderr.contains("TLS"), "{stderr}");
    // Docker users expect --insecure-registry to skip the certificate check: said it does not.
    assert!(
        stderr.contains("it does not turn off the certificate check"),
        "{stderr}"
    );
    let manifests = registry.count_requests("GET", "/manifests/");
    assert_eq!(manifests, 0, "{stderr}");

    let command = build(
        &scratch,
        &named,
        "trusted",
        &insecure,
        &[("SSL_CERT_FILE", &certificate)],
    );
    let output = run_unchecked(&mut with_hosts(&command, &hosts));
    assert_exit(&output, 0);
    assert!(registry.tags("fn", None).contains(&"trusted".to_owned()));
}

/// A run that speaks only plain HTTP reads no CA certificate: `SSL_CERT_FILE` is a FIFO, and
/// nobody opens it. A TLS run opens it once, for two HTTPS hosts.
#[test]
fn ca_certificates_are_read_only_for_https_and_once() {
    let scratch = Scratch::new();
    let fifo = scratch.path("roots.pem");
    run(Command::new("mkfifo").arg(&fifo));

    let plain = registry_with_base(RegistryOptions::default());
    let opened = FifoWriter::start(&fifo, String::new());
    let output = run_unchecked(&mut build(
        &scratch,
        &plain.host(),
        "plain",
        &[],
        &[("SSL_CERT_FILE", &fifo)],
    ));
    assert_eq!(
        opened.stop(),
        0,
        "SSL_CERT_FILE was read by a plain-HTTP run"
    );
    assert_exit(&output, 0);

    // Base and target on two TLS registries: two hosts, one read.
    let base = registry_with_base(RegistryOptions {
        tls: true,
        ..RegistryOptions::default()
    });
    let target = TestRegistry::start(RegistryOptions {
        tls: true,
        ..RegistryOptions::default()
    });
    let mut cas = std::fs::read_to_string(base.ca_cert().unwrap()).unwrap();
    cas.push_str(&std::fs::read_to_string(target.ca_cert().unwrap()).unwrap());
    let opened = FifoWriter::start(&fifo, cas);
    let bootstraps = both_bootstrap_args();
    let mut args: Vec<&str> = bootstraps.iter().map(String::as_str).collect();
    let base_reference = base.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target_reference = target.reference("fn:tls");
    args.extend(["--base", &base_reference, "--tag", &target_reference]);
    let output = run_unchecked(scratch.build(&args).env("SSL_CERT_FILE", &fifo));
    assert_eq!(opened.stop(), 1);
    assert_exit(&output, 0);
}

/// Writes `contents` to a FIFO each time a reader opens it, counting the readers: after each
/// write it waits until the reader has closed the FIFO (an open for writing that does not wait
/// fails with ENXIO once no reader has it open).
struct FifoWriter {
    path: std::path::PathBuf,
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl FifoWriter {
    fn start(path: &Path, contents: String) -> FifoWriter {
        use std::os::unix::fs::OpenOptionsExt;
        use std::sync::atomic::Ordering;
        let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (fifo, stop) = (path.to_owned(), std::sync::Arc::clone(&stopping));
        let thread = std::thread::spawn(move || {
            let mut opens = 0;
            loop {
                // Blocks until a reader opens the FIFO.
                let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                if stop.load(Ordering::SeqCst) {
                    return opens;
                }
                opens += 1;
                let _ = std::io::Write::write_all(&mut writer, contents.as_bytes());
                drop(writer);
                // Until that reader is gone.
                while std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&fifo)
                    .is_ok()
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        });
        FifoWriter {
            path: path.to_owned(),
            stopping,
            thread,
        }
    }

    /// Stops the writer (opening the FIFO once to wake it); how many times a reader opened it.
    fn stop(self) -> usize {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::fs::File::open(&self.path);
        self.thread.join().unwrap()
    }
}

/// `received` to `answered` of `a` and of `b` overlap: `b` was sent before `a` was answered
/// and the other way round.
fn overlap(a: &HeldGet, b: &HeldGet) -> bool {
    a.received < b.answered && b.received < a.answered
}

/// After the index, the base's two manifests are asked for together, and so are its two
/// configs: each answer held by the proxy, the second request still comes before the first
/// is answered. Before, each waited for the one before it (six GETs in a row).
#[test]
fn the_base_architectures_are_read_side_by_side() {
    let registry = registry_with_base(RegistryOptions::default());
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::HoldBaseGets {
            millis: 1500,
            path_contains: format!("/v2/{BASE_REPOSITORY}/"),
        },
    );
    let scratch = Scratch::new();
    let output = run_unchecked(&mut build(&scratch, &proxy.host(), "v1", &[], &[]));
    assert_exit(&output, 0);
    let held = proxy.held_gets();
    let fixtures = fixtures();
    let of = |digests: &std::collections::BTreeMap<String, String>, kind: &str| -> Vec<HeldGet> {
        held.iter()
            .filter(|get| {
                digests
                    .values()
                    .any(|digest| get.target.ends_with(&format!("/{kind}/{digest}")))
            })
            .cloned()
            .collect()
    };
    let manifests = of(&fixtures.base_manifests, "manifests");
    let configs = of(&fixtures.base_configs, "blobs");
    assert_eq!((manifests.len(), configs.len()), (2, 2), "{held:#?}");
    assert!(overlap(&manifests[0], &manifests[1]), "{held:#?}");
    assert!(overlap(&configs[0], &configs[1]), "{held:#?}");
}
