//! Self-tests of the registry test infrastructure in `tests/support/registry.rs`: with the
//! real distribution registry (Debian's `docker-registry`) and skopeo, for anonymous plain
//! HTTP, basic auth over plain HTTP, TLS and basic auth over TLS, they push the stand-in base
//! image, read it back digest-for-digest, check that the access-log counting sees blob
//! uploads (and none on an identical re-push), that wrong credentials are refused, and that
//! the registry process is gone once the `TestRegistry` is dropped.

mod support;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use support::registry::{
    AccessLogEntry, RegistryAuth, RegistryOptions, TestRegistry, parse_access_log_line,
};
use support::*;

const USER: &str = "lambda";
const PASSWORD: &str = "s3cret-pass";
const REPOSITORY: &str = "lambda/base:al2023";

fn base_source() -> String {
    let layout = fixtures()
        .base_layout
        .to_str()
        .expect("fixture path must be UTF-8");
    format!("oci:{layout}:{BASE_TAG}")
}

/// Distinct blobs (layers and configs) of the base image: what a first push uploads.
fn base_blob_count() -> usize {
    let f = fixtures();
    let blobs: BTreeSet<&String> = f
        .base_layer_digests
        .values()
        .flatten()
        .chain(f.base_configs.values())
        .collect();
    blobs.len()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("registry_selftest-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("creating a temporary directory")
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts a registry with `options` and runs the checks common to all configurations;
/// returns it for configuration-specific checks.
fn start_push_and_check(options: RegistryOptions) -> TestRegistry {
    let registry = TestRegistry::start(options);
    assert!(
        registry
            .log()
            .contains(&format!("listening on {}", registry.host())),
        "{}",
        registry.log()
    );
    assert!(
        registry.requests().is_empty(),
        "readiness probes must not be counted: {:?}",
        registry.requests()
    );

    // First push: every distinct blob is uploaded, then two manifests and the index.
    registry.skopeo_copy_to(&base_source(), REPOSITORY);
    let uploads = registry.count_requests("PUT", "/blobs/uploads/");
    assert!(
        uploads > 0,
        "no blob upload in the log:\n{}",
        registry.log()
    );
    assert_eq!(uploads, base_blob_count(), "{:#?}", registry.requests());
    // The index is the last request of the push: counting right after skopeo exits sees it.
    assert_eq!(registry.count_requests("PUT", "/manifests/"), 3);
    assert_eq!(
        registry.count_requests("PUT", "/v2/lambda/base/manifests/al2023"),
        1
    );

    // Read back: the stored index is byte-for-byte the one of the layout.
    let raw = registry.skopeo_inspect_raw(REPOSITORY);
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        fixtures().base_digest
    );
    let by_digest = registry.skopeo_inspect_raw(&format!("lambda/base@{}", fixtures().base_digest));
    assert_eq!(by_digest, raw);

    // Identical re-push: skopeo finds every blob with HEAD and uploads nothing.
    let heads_before = registry.count_requests("HEAD", "/blobs/");
    let posts_before = registry.count_requests("POST", "/blobs/uploads/");
    registry.skopeo_copy_to(&base_source(), REPOSITORY);
    assert_eq!(
        registry.count_requests("PUT", "/blobs/uploads/"),
        uploads,
        "a re-push must not upload blobs: {:#?}",
        registry.requests()
    );
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads/"),
        posts_before
    );
    assert!(registry.count_requests("HEAD", "/blobs/") > heads_before);

    // Pull back into a fresh layout.
    let dir = tempdir();
    let pulled = dir.path().join("pulled");
    registry.skopeo_copy_from(REPOSITORY, &format!("oci:{}:{BASE_TAG}", pulled.display()));
    let descriptor = layout_descriptor(&pulled, BASE_TAG).expect("pulled layout has the tag");
    assert_eq!(descriptor["digest"], fixtures().base_digest.as_str());

    registry
}

/// Drops `registry` and checks that its process and listener are gone.
fn stop_and_check(registry: TestRegistry) {
    let pid = registry.pid();
    let host = registry.host();
    let dir = registry.dir().to_path_buf();
    drop(registry);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "registry process {pid} still exists after drop"
    );
    assert!(
        TcpStream::connect(&host).is_err(),
        "{host} still accepts connections after drop"
    );
    assert!(!dir.exists(), "{} not removed", dir.display());
}

/// Wrong and missing credentials are refused, for pushes and pulls.
fn check_credentials_enforced(registry: &TestRegistry) {
    for creds in [
        Some((USER, "wrong-password")),
        Some(("nobody", PASSWORD)),
        None,
    ] {
        let output = registry.skopeo_copy_to_with_creds(&base_source(), "lambda/denied:x", creds);
        assert!(!output.status.success(), "push with {creds:?} succeeded");
        assert!(
            stderr_of(&output).contains("authentication required"),
            "push with {creds:?}: {}",
            stderr_of(&output)
        );
    }
    assert_eq!(registry.count_requests("PUT", "/v2/lambda/denied/"), 0);
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.uri.starts_with("/v2/lambda/denied/") && r.status == 401),
        "{:#?}",
        registry.requests()
    );

    let mut inspect = Command::new("skopeo");
    inspect
        .args(["inspect", "--raw"])
        .args(registry.skopeo_flags("", Some((USER, "wrong-password"))))
        .arg(format!("docker://{}", registry.reference(REPOSITORY)));
    let output = run_unchecked(&mut inspect);
    assert!(
        !output.status.success(),
        "pull with a wrong password succeeded"
    );
    assert!(
        stderr_of(&output).contains("authentication required"),
        "{}",
        stderr_of(&output)
    );
}

/// Verifying the server certificate against the system CAs fails: the registry really
/// speaks TLS with our own CA.
fn check_tls_needs_our_ca(registry: &TestRegistry) {
    let ca = registry.ca_cert().expect("a TLS registry has a CA");
    let pem = std::fs::read_to_string(ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let files: Vec<_> = std::fs::read_dir(registry.cert_dir().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["ca.crt"]);
    assert!(registry.url().starts_with("https://"));

    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=true"]);
    if let Some((user, password)) = registry.credentials() {
        cmd.arg(format!("--creds={user}:{password}"));
    }
    cmd.arg(format!("docker://{}", registry.reference(REPOSITORY)));
    let output = run_unchecked(&mut cmd);
    assert!(
        !output.status.success(),
        "TLS verification without our CA succeeded"
    );
    assert!(
        stderr_of(&output).contains("certificate signed by unknown authority"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn registry_plain_http_without_auth() {
    let registry = start_push_and_check(RegistryOptions::default());
    assert_eq!(registry.ca_cert(), None);
    assert_eq!(registry.credentials(), None);
    assert!(registry.url().starts_with("http://"));
    stop_and_check(registry);
}

#[test]
fn registry_basic_auth_over_plain_http() {
    // distribution 2.8 accepts htpasswd auth without TLS, and skopeo sends the credentials
    // over plain HTTP once told --tls-verify=false.
    let registry = start_push_and_check(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        tls: false,
    });
    assert_eq!(registry.credentials(), Some((USER, PASSWORD)));
    check_credentials_enforced(&registry);
    stop_and_check(registry);
}

#[test]
fn registry_tls_without_auth() {
    let registry = start_push_and_check(RegistryOptions {
        auth: RegistryAuth::None,
        tls: true,
    });
    check_tls_needs_our_ca(&registry);
    stop_and_check(registry);
}

#[test]
fn registry_basic_auth_over_tls() {
    let registry = start_push_and_check(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        tls: true,
    });
    check_credentials_enforced(&registry);
    check_tls_needs_our_ca(&registry);
    stop_and_check(registry);
}

#[test]
fn registry_instances_run_side_by_side_on_different_ports() {
    let a = TestRegistry::start(RegistryOptions::default());
    let b = TestRegistry::start(RegistryOptions::default());
    assert_ne!(a.host(), b.host());
    a.skopeo_copy_to(&base_source(), REPOSITORY);
    assert!(a.count_requests("PUT", "/blobs/uploads/") > 0);
    assert_eq!(b.count_requests("PUT", "/blobs/uploads/"), 0);
    stop_and_check(a);
    // b has storage of its own and still runs after a is gone.
    b.skopeo_copy_to(&base_source(), REPOSITORY);
    assert_eq!(
        b.count_requests("PUT", "/blobs/uploads/"),
        base_blob_count()
    );
    stop_and_check(b);
}

#[test]
fn registry_push_to_a_second_repository_mounts_the_layers() {
    // skopeo remembers where it pushed layers (its blob info cache) and mounts them into
    // another repository of the same registry instead of uploading them again. It does not
    // do that for config blobs: those are uploaded again.
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_source(), REPOSITORY);
    let uploads = registry.count_requests("PUT", "/blobs/uploads/");
    registry.skopeo_copy_to(&base_source(), "lambda/fn:v1");
    let mounted: BTreeSet<String> = registry
        .requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.uri.starts_with("/v2/lambda/fn/blobs/uploads/?")
                && r.uri.contains("from=lambda%2Fbase")
                && r.status == 201
        })
        .map(|r| {
            let (_, digest) = r.uri.split_once("mount=sha256%3A").expect("a mount");
            format!("sha256:{}", &digest[..64])
        })
        .collect();
    let layers: BTreeSet<String> = fixtures()
        .base_layer_digests
        .values()
        .flatten()
        .cloned()
        .collect();
    assert_eq!(mounted, layers, "{:#?}", registry.requests());
    assert_eq!(
        registry.count_requests("PUT", "/v2/lambda/fn/blobs/uploads/"),
        fixtures().base_configs.len(),
        "{:#?}",
        registry.requests()
    );
    assert_eq!(
        registry.count_requests("PUT", "/blobs/uploads/"),
        uploads + fixtures().base_configs.len()
    );
    stop_and_check(registry);
}

#[test]
fn registry_access_log_lines_parse() {
    let line = r#"127.0.0.1 - - [21/Nov/2026:06:44:47 +0000] "PUT /v2/fn/blobs/uploads/af87?_state=Cw0O&digest=sha256%3Acc15 HTTP/1.1" 201 0 "" "skopeo/1.9.3""#;
    assert_eq!(
        parse_access_log_line(line),
        Some(AccessLogEntry {
            method: "PUT".to_string(),
            uri: "/v2/fn/blobs/uploads/af87?_state=Cw0O&digest=sha256%3Acc15".to_string(),
            status: 201,
            user_agent: "skopeo/1.9.3".to_string(),
        })
    );
    let logrus = r#"time="2026-11-21T06:44:13.43195412Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/ http.response.status=200"#;
    assert_eq!(parse_access_log_line(logrus), None);
    assert_eq!(parse_access_log_line(""), None);
}
