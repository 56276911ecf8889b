//! Self-tests of the registry test infrastructure in `tests/support/registries/registry.rs`: with the
//! real distribution registry (Debian's `docker-registry`) and skopeo, for anonymous plain
//! HTTP, basic auth over plain HTTP, TLS, basic auth over TLS and token auth over TLS, they
//! push the stand-in base image, read it back digest-for-digest, check that the access-log
//! counting sees blob uploads (and none on an identical re-push), that wrong credentials are
//! refused, and that the registry process is gone once the `TestRegistry` is dropped.
//!
//! Token auth also gets: the scopes a mounting push asks for, tokens that really expire after
//! the configured TTL (checked with raw requests, as skopeo caches tokens for at least 60 s),
//! what the JWT holds, and anonymous pull-only tokens.
//!
//! The proxy of `tests/support/registries/proxy.rs` (test names contain "proxy") is proved with skopeo
//! (pass-through push and pull, a corrupt blob, blobs redirected to another host, injected
//! 503/429 answers, reset connections) and with a keep-alive reqwest client (HEAD, chunked
//! upload through rewritten `Location`s).

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::proxy::{ProxyBehaviour, RedirectedRequest, TestProxy};
use crate::support::registry::{
    AccessLogEntry, RegistryAuth, RegistryOptions, TOKEN_ISSUER, TOKEN_SERVICE, TestRegistry,
    parse_access_log_line,
};
use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

const USER: &str = "lambda";
const PASSWORD: &str = "s3cret-pass";
const REPOSITORY: &str = "lambda/base:al2023";

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
    registry.skopeo_copy_to(&base_reference(), REPOSITORY);
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
    registry.skopeo_copy_to(&base_reference(), REPOSITORY);
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

/// Drops `registry` and checks that its process and listener are gone, and its token
/// server's listener too.
fn stop_and_check(registry: TestRegistry) {
    let pid = registry.pid();
    let host = registry.host();
    let dir = registry.dir().to_path_buf();
    let token_host = registry.token_realm().map(|realm| {
        let rest = realm.strip_prefix("http://").expect("an http:// realm");
        rest.split('/').next().unwrap().to_string()
    });
    drop(registry);
    if let Some(token_host) = token_host {
        assert!(
            TcpStream::connect(&token_host).is_err(),
            "token server {token_host} still accepts connections after drop"
        );
    }
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
/// The refused pushes to `lambda/denied` reached the registry (401) and stored nothing.
fn assert_denied_repository_untouched(registry: &TestRegistry) {
    assert_eq!(registry.count_requests("PUT", "/v2/lambda/denied/"), 0);
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.uri.starts_with("/v2/lambda/denied/") && r.status == 401),
        "{:#?}",
        registry.requests()
    );
}

/// `skopeo inspect --raw` of the pushed base with `creds` (None: anonymous), whatever the outcome.
fn skopeo_inspect_raw_as(registry: &TestRegistry, creds: Option<(&str, &str)>) -> Output {
    let mut inspect = Command::new("skopeo");
    inspect
        .args(["inspect", "--raw"])
        .args(registry.skopeo_flags("", creds))
        .arg(format!("docker://{}", registry.reference(REPOSITORY)));
    run_unchecked(&mut inspect)
}

fn check_credentials_enforced(registry: &TestRegistry) {
    for creds in [
        Some((USER, "wrong-password")),
        Some(("nobody", PASSWORD)),
        None,
    ] {
        let output =
            registry.skopeo_copy_to_with_creds(&base_reference(), "lambda/denied:x", creds);
        assert!(!output.status.success(), "push with {creds:?} succeeded");
        assert!(
            stderr_of(&output).contains("authentication required"),
            "push with {creds:?}: {}",
            stderr_of(&output)
        );
    }
    assert_denied_repository_untouched(registry);

    let output = skopeo_inspect_raw_as(registry, Some((USER, "wrong-password")));
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
        ..RegistryOptions::default()
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
        ..RegistryOptions::default()
    });
    check_tls_needs_our_ca(&registry);
    stop_and_check(registry);
}

#[test]
fn registry_basic_auth_over_tls() {
    let registry = start_push_and_check(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        tls: true,
        ..RegistryOptions::default()
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
    a.skopeo_copy_to(&base_reference(), REPOSITORY);
    assert!(a.count_requests("PUT", "/blobs/uploads/") > 0);
    assert_eq!(b.count_requests("PUT", "/blobs/uploads/"), 0);
    stop_and_check(a);
    // b has storage of its own and still runs after a is gone.
    b.skopeo_copy_to(&base_reference(), REPOSITORY);
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
    registry.skopeo_copy_to(&base_reference(), REPOSITORY);
    let uploads = registry.count_requests("PUT", "/blobs/uploads/");
    registry.skopeo_copy_to(&base_reference(), "lambda/fn:v1");
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

fn token_options(tls: bool) -> RegistryOptions {
    RegistryOptions {
        auth: RegistryAuth::token(USER, PASSWORD),
        tls,
        ..RegistryOptions::default()
    }
}

/// A reqwest client that follows no redirect, trusting `ca` (PEM) if given.
fn http_client(ca: Option<&Path>) -> reqwest::blocking::Client {
    let mut builder =
        reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    builder.build().expect("building a reqwest client")
}

fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {response:?}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// `GET` on the registry's token realm for `scopes` as `creds` (`None`: anonymous):
/// the status and the JSON answer.
fn fetch_token(
    registry: &TestRegistry,
    client: &reqwest::blocking::Client,
    scopes: &[&str],
    creds: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut query = vec![("service", TOKEN_SERVICE)];
    query.extend(scopes.iter().map(|scope| ("scope", *scope)));
    let mut request = client
        .get(registry.token_realm().expect("a token registry"))
        .query(&query);
    if let Some((user, password)) = creds {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().expect("asking the token server");
    let status = response.status().as_u16();
    let body = response.bytes().expect("reading the token server's answer");
    (
        status,
        serde_json::from_slice(&body).expect("a JSON answer"),
    )
}

/// Part `index` (0 header, 1 claims) of a JWT, decoded without verification.
fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// Wrong credentials are refused by the token server, anonymous tokens grant nothing.
fn check_token_credentials_enforced(registry: &TestRegistry) {
    let before = registry.token_requests().len();
    for creds in [Some((USER, "wrong-password")), Some(("nobody", PASSWORD))] {
        let output =
            registry.skopeo_copy_to_with_creds(&base_reference(), "lambda/denied:x", creds);
        assert!(!output.status.success(), "push with {creds:?} succeeded");
        assert!(
            stderr_of(&output).contains("unable to retrieve auth token: invalid username/password"),
            "push with {creds:?}: {}",
            stderr_of(&output)
        );
    }
    let output = registry.skopeo_copy_to_with_creds(&base_reference(), "lambda/denied:x", None);
    assert!(!output.status.success(), "anonymous push succeeded");
    assert!(
        stderr_of(&output).contains("requested access to the resource is denied"),
        "anonymous push: {}",
        stderr_of(&output)
    );
    let tokens = &registry.token_requests()[before..];
    assert!(tokens.iter().all(|t| !t.authenticated), "{tokens:#?}");
    for user in [USER, "nobody"] {
        assert!(
            tokens
                .iter()
                .any(|t| t.user.as_deref() == Some(user) && t.status == 401),
            "no refused token request for {user}: {tokens:#?}"
        );
    }
    assert!(
        tokens
            .iter()
            .any(|t| t.user.is_none() && t.status == 200 && t.granted.is_empty()),
        "no anonymous token: {tokens:#?}"
    );
    assert_denied_repository_untouched(registry);

    // Anonymous pulls are refused too.
    let output = skopeo_inspect_raw_as(registry, None);
    assert!(!output.status.success(), "anonymous pull succeeded");
    assert!(
        stderr_of(&output).contains("authentication required"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn registry_token_auth_over_tls() {
    let registry = start_push_and_check(token_options(true));
    assert_eq!(registry.credentials(), Some((USER, PASSWORD)));
    let realm = registry
        .token_realm()
        .expect("a token registry has a realm");
    assert!(
        realm.starts_with("http://127.0.0.1:") && realm.ends_with("/token"),
        "{realm}"
    );

    // The registry challenges with the token server's realm and service.
    let client = http_client(registry.ca_cert());
    let response = client
        .get(format!("{}/v2/", registry.url()))
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        header(&response, "WWW-Authenticate"),
        format!("Bearer realm=\"{realm}\",service=\"{TOKEN_SERVICE}\"")
    );

    // skopeo pushed and pulled with tokens it got for the right credentials.
    let tokens = registry.token_requests();
    assert!(!tokens.is_empty());
    for token in &tokens {
        assert!(
            token.authenticated
                && token.status == 200
                && token.method == "GET"
                && token.service.as_deref() == Some(TOKEN_SERVICE)
                && token.account.as_deref() == Some(USER)
                && token.user.as_deref() == Some(USER)
                && token.granted == token.scopes,
            "{token:#?}"
        );
    }
    for scopes in [
        ["repository:lambda/base:pull,push"],
        ["repository:lambda/base:pull"],
    ] {
        assert!(
            tokens.iter().any(|t| t.scopes == scopes),
            "no token request for {scopes:?}: {tokens:#?}"
        );
    }

    check_token_credentials_enforced(&registry);
    check_tls_needs_our_ca(&registry);
    stop_and_check(registry);
}

#[test]
fn registry_token_requests_record_the_scopes_of_a_mounting_push() {
    // Without TLS this time: token auth works over plain HTTP too.
    let registry = TestRegistry::start(token_options(false));
    registry.skopeo_copy_to(&base_reference(), REPOSITORY);
    registry.skopeo_copy_to(&base_reference(), "lambda/fn:v1");
    let tokens = registry.token_requests();
    // To mount the base layers skopeo asks for push on the target and pull on the source,
    // in one request with two `scope` parameters.
    assert!(
        tokens.iter().any(|t| t.authenticated
            && t.scopes
                == [
                    "repository:lambda/fn:pull,push",
                    "repository:lambda/base:pull"
                ]
            && t.granted == t.scopes),
        "{tokens:#?}"
    );
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.uri.contains("from=lambda%2Fbase") && r.status == 201),
        "no mount: {:#?}",
        registry.requests()
    );
    stop_and_check(registry);
}

#[test]
fn registry_token_expires_after_its_ttl() {
    const TTL: u64 = 3;
    let registry = TestRegistry::start(RegistryOptions {
        token_ttl: Some(Duration::from_secs(TTL)),
        ..token_options(false)
    });
    registry.skopeo_copy_to(&base_reference(), REPOSITORY);
    let client = http_client(None);
    let manifest_url = format!("{}/v2/lambda/base/manifests/{BASE_TAG}", registry.url());
    let get_manifest = |token: &str| {
        client
            .get(&manifest_url)
            .header("Accept", MEDIA_TYPE_INDEX)
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    let pull = ["repository:lambda/base:pull"];

    let asked = Instant::now();
    let (status, answer) = fetch_token(&registry, &client, &pull, Some((USER, PASSWORD)));
    assert_eq!(status, 200, "{answer}");
    let token = answer["token"].as_str().expect("a token").to_string();
    assert_eq!(answer["access_token"], token.as_str());
    assert_eq!(answer["expires_in"], TTL);
    let issued_at = humantime::parse_rfc3339(answer["issued_at"].as_str().unwrap()).unwrap();
    let now = SystemTime::now();
    assert!(issued_at <= now && issued_at + Duration::from_secs(5) > now);

    let header_part = jwt_part(&token, 0);
    assert_eq!(header_part["alg"], "ES256");
    assert_eq!(header_part["x5c"].as_array().map(Vec::len), Some(1));
    let claims = jwt_part(&token, 1);
    assert_eq!(claims["iss"], TOKEN_ISSUER);
    assert_eq!(claims["aud"], TOKEN_SERVICE, "a string, not an array");
    assert_eq!(claims["sub"], USER);
    assert_eq!(
        claims["access"],
        serde_json::json!([{"type": "repository", "name": "lambda/base", "actions": ["pull"]}])
    );
    // exp is backdated by distribution's 60 s leeway, so that the TTL is what it enforces.
    let iat = claims["iat"].as_i64().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    let ttl = TTL as i64;
    assert!(
        exp == iat + ttl - 60 || exp == iat + ttl + 1 - 60,
        "{claims}"
    );
    assert!(claims["nbf"].as_i64().unwrap() <= iat);
    let epoch_now = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((epoch_now - 5..=epoch_now).contains(&iat), "{claims}");

    let fresh = get_manifest(&token);
    assert_eq!(fresh.status(), 200, "fresh token refused");
    assert!(
        asked.elapsed() < Duration::from_secs(TTL),
        "too slow to test expiry"
    );

    // Past the TTL (plus the rounding up to whole seconds, plus a margin) it is refused.
    std::thread::sleep(Duration::from_secs(TTL + 2).saturating_sub(asked.elapsed()));
    let expired = get_manifest(&token);
    assert_eq!(expired.status(), 401, "expired token accepted");
    let challenge = header(&expired, "WWW-Authenticate");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        registry.log().contains("token not to be used after"),
        "{}",
        registry.log()
    );
    // A new token works again.
    let (_, answer) = fetch_token(&registry, &client, &pull, Some((USER, PASSWORD)));
    assert_eq!(
        get_manifest(answer["token"].as_str().unwrap()).status(),
        200
    );

    // Anonymous tokens grant nothing: the registry says the scope is insufficient.
    let (status, answer) = fetch_token(&registry, &client, &pull, None);
    assert_eq!(status, 200, "{answer}");
    let anonymous = answer["token"].as_str().unwrap();
    assert_eq!(jwt_part(anonymous, 1)["access"], serde_json::json!([]));
    assert_eq!(jwt_part(anonymous, 1)["sub"], "");
    let denied = get_manifest(anonymous);
    assert_eq!(denied.status(), 401);
    let challenge = header(&denied, "WWW-Authenticate");
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"repository:lambda/base:pull\""),
        "{challenge}"
    );

    // Bad credentials and an unknown service get no token.
    let (status, answer) = fetch_token(&registry, &client, &pull, Some((USER, "wrong")));
    assert_eq!(status, 401, "{answer}");
    let wrong_service = client
        .get(registry.token_realm().unwrap())
        .query(&[("service", "elsewhere"), ("scope", pull[0])])
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .unwrap();
    assert_eq!(wrong_service.status(), 400);

    let tokens = registry.token_requests();
    let raw: Vec<(Option<&str>, bool, u16)> = tokens
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(|t| (t.user.as_deref(), t.authenticated, t.status))
        .collect();
    assert_eq!(
        raw,
        [
            (Some(USER), true, 200),
            (Some(USER), true, 200),
            (None, false, 200),
            (Some(USER), false, 401),
            (Some(USER), true, 400),
        ],
        "{tokens:#?}"
    );
    assert_eq!(tokens.last().unwrap().service.as_deref(), Some("elsewhere"));
    assert_eq!(tokens.last().unwrap().account, None);
    stop_and_check(registry);
}

#[test]
fn registry_token_anonymous_pull_option() {
    let registry = TestRegistry::start(RegistryOptions {
        anonymous_pull: true,
        ..token_options(false)
    });
    registry.skopeo_copy_to(&base_reference(), REPOSITORY);

    let mut inspect = Command::new("skopeo");
    inspect
        .args(["inspect", "--raw"])
        .args(registry.skopeo_flags("", None))
        .arg(format!("docker://{}", registry.reference(REPOSITORY)));
    let raw = run(&mut inspect).stdout;
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw)),
        fixtures().base_digest
    );

    let output = registry.skopeo_copy_to_with_creds(&base_reference(), "lambda/anon:x", None);
    assert!(!output.status.success(), "anonymous push succeeded");
    assert!(
        stderr_of(&output).contains("requested access to the resource is denied"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(registry.count_requests("PUT", "/v2/lambda/anon/"), 0);

    let anonymous: Vec<_> = registry
        .token_requests()
        .into_iter()
        .filter(|t| t.user.is_none())
        .collect();
    assert!(
        anonymous
            .iter()
            .any(|t| t.granted == ["repository:lambda/base:pull"]),
        "{anonymous:#?}"
    );
    assert!(
        anonymous.iter().any(|t| t
            .scopes
            .contains(&"repository:lambda/anon:pull,push".to_string())
            && t.granted == ["repository:lambda/anon:pull"]),
        "{anonymous:#?}"
    );
    stop_and_check(registry);
}

/// `skopeo copy --all --preserve-digests` of the base from `proxy` into a fresh layout
/// (`<dir>/pulled`, tag [`BASE_TAG`]), with `extra` copy flags; whatever its outcome.
fn skopeo_pull_through(
    proxy: &TestProxy,
    creds: Option<(&str, &str)>,
    extra: &[&str],
) -> (Output, tempfile::TempDir) {
    let dir = tempdir();
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
        .args(extra)
        .args(proxy.skopeo_flags("src-", creds))
        .arg(format!("docker://{}", proxy.reference(REPOSITORY)))
        .arg(format!(
            "oci:{}:{BASE_TAG}",
            dir.path().join("pulled").display()
        ));
    (run_unchecked(&mut cmd), dir)
}

/// The layout `skopeo_pull_through` wrote holds the base image.
fn assert_pulled_base(output: &Output, dir: &tempfile::TempDir) {
    assert!(
        output.status.success(),
        "pull failed: {}",
        stderr_of(output)
    );
    let pulled: PathBuf = dir.path().join("pulled");
    let descriptor = layout_descriptor(&pulled, BASE_TAG).expect("pulled layout has the tag");
    assert_eq!(descriptor["digest"], fixtures().base_digest.as_str());
}

fn first_layer_digest() -> String {
    fixtures()
        .base_layer_digests
        .values()
        .next()
        .and_then(|layers| layers.first())
        .expect("the base has layers")
        .clone()
}

/// A registry with the base pushed (directly), and the basic-auth credentials if `basic`.
fn registry_with_base(basic: bool) -> TestRegistry {
    let registry = TestRegistry::start(RegistryOptions {
        auth: if basic {
            RegistryAuth::basic(USER, PASSWORD)
        } else {
            RegistryAuth::None
        },
        ..RegistryOptions::default()
    });
    registry.skopeo_copy_to(&base_reference(), REPOSITORY);
    registry
}

#[test]
fn proxy_passes_a_skopeo_push_and_pull_through() {
    let registry = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        ..RegistryOptions::default()
    });
    let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::PassThrough);
    assert_eq!(proxy.url(), format!("http://{}", proxy.host()));
    assert_ne!(proxy.host(), registry.host());
    assert_eq!(proxy.upstream(), registry.url());

    let mut push = Command::new("skopeo");
    push.args(["--insecure-policy", "copy", "--all", "--preserve-digests"])
        .args(proxy.skopeo_flags("dest-", registry.credentials()))
        .arg(base_reference())
        .arg(format!("docker://{}", proxy.reference(REPOSITORY)));
    run(&mut push);
    // Every upload step went through the proxy: distribution's absolute upload Locations
    // were rewritten to the proxy's address.
    let uploads = proxy.count_requests("PUT", "/blobs/uploads/");
    assert_eq!(uploads, base_blob_count(), "{:#?}", proxy.requests());
    assert!(proxy.count_requests("PATCH", "/blobs/uploads/") > 0);

    let (output, dir) = skopeo_pull_through(&proxy, registry.credentials(), &[]);
    assert_pulled_base(&output, &dir);

    // The registry saw exactly what the proxy forwarded, and the proxy answered the same.
    let mut forwarded: Vec<(String, String, u16)> = proxy.requests();
    let mut seen: Vec<(String, String, u16)> = registry
        .requests()
        .into_iter()
        .map(|r| (r.method, r.uri, r.status))
        .collect();
    forwarded.sort();
    seen.sort();
    assert_eq!(forwarded, seen);
    assert!(forwarded.iter().any(|(_, _, status)| *status == 401));

    let host = proxy.host();
    drop(proxy);
    assert!(
        TcpStream::connect(&host).is_err(),
        "{host} still accepts connections after drop"
    );
}

#[test]
fn proxy_serves_a_keep_alive_reqwest_client() {
    let registry = registry_with_base(false);
    let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::PassThrough);
    let client = http_client(None);

    // HEAD keeps the Content-Length of the GET, and the connection stays usable after it.
    let layer = first_layer_digest();
    let bytes = read_blob(&fixtures().base_layout, &layer);
    let blob_url = format!("{}/v2/lambda/base/blobs/{layer}", proxy.url());
    for _ in 0..2 {
        let head = client.head(&blob_url).send().unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(header(&head, "Content-Length"), bytes.len().to_string());
        assert_eq!(header(&head, "Docker-Content-Digest"), layer);
        let get = client.get(&blob_url).send().unwrap();
        assert_eq!(get.status(), 200);
        assert_eq!(get.bytes().unwrap(), bytes);
    }

    // An upload with a chunked body (a reader of unknown length), through the proxy.
    let data = pseudo_random_bytes(7, 300_000);
    let digest = format!("sha256:{}", sha256_hex(&data));
    let post = client
        .post(format!("{}/v2/lambda/upload/blobs/uploads/", proxy.url()))
        .send()
        .unwrap();
    assert_eq!(post.status(), 202);
    let location = header(&post, "Location");
    assert!(location.starts_with(&proxy.url()), "{location}");
    let patch = client
        .patch(&location)
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            data.clone(),
        )))
        .send()
        .unwrap();
    assert_eq!(patch.status(), 202);
    let location = header(&patch, "Location");
    assert!(location.starts_with(&proxy.url()), "{location}");
    let put = client
        .put(format!("{location}&digest={digest}"))
        .send()
        .unwrap();
    assert_eq!(put.status(), 201);
    let uploaded = client
        .get(format!("{}/v2/lambda/upload/blobs/{digest}", proxy.url()))
        .send()
        .unwrap();
    assert_eq!(uploaded.bytes().unwrap(), data);
    assert_eq!(registry.count_requests("PATCH", "/v2/lambda/upload/"), 1);
    assert_eq!(proxy.count_requests("PATCH", "/v2/lambda/upload/"), 1);
}

#[test]
fn proxy_corrupt_blob_makes_skopeo_pull_fail_with_a_digest_error() {
    let registry = registry_with_base(false);
    let layer = first_layer_digest();
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::CorruptBlob {
            digest_hex: layer.strip_prefix("sha256:").unwrap().to_string(),
        },
    );

    // Same length and headers, one byte different.
    let client = http_client(None);
    let path = format!("/v2/lambda/base/blobs/{layer}");
    let direct = client
        .get(format!("{}{path}", registry.url()))
        .send()
        .unwrap();
    let proxied = client.get(format!("{}{path}", proxy.url())).send().unwrap();
    assert_eq!(proxied.status(), 200);
    for name in ["Content-Length", "Docker-Content-Digest", "Content-Type"] {
        assert_eq!(header(&proxied, name), header(&direct, name), "{name}");
    }
    let (direct, proxied) = (direct.bytes().unwrap(), proxied.bytes().unwrap());
    assert_eq!(direct.len(), proxied.len());
    let differing = direct.iter().zip(&proxied).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 1);

    let (output, _dir) = skopeo_pull_through(&proxy, None, &[]);
    assert!(!output.status.success(), "pull of a corrupt blob succeeded");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("Digest did not match") && stderr.contains(&layer),
        "{stderr}"
    );
}

#[test]
fn proxy_redirects_blobs_to_another_host_where_skopeo_sends_no_credentials() {
    let registry = registry_with_base(true);
    let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::RedirectBlobs);
    let redirect_host = proxy.redirect_host().expect("a redirect target");
    assert!(redirect_host.starts_with("localhost:"), "{redirect_host}");

    let (output, dir) = skopeo_pull_through(&proxy, registry.credentials(), &[]);
    assert_pulled_base(&output, &dir);

    // Every blob was answered with a redirect and fetched from the other host.
    let requests = proxy.requests();
    let blob_gets: Vec<&(String, String, u16)> = requests
        .iter()
        .filter(|(method, uri, _)| method == "GET" && uri.contains("/blobs/sha256:"))
        .collect();
    assert!(
        blob_gets.iter().all(|(_, _, status)| *status == 307),
        "{requests:#?}"
    );
    let redirected: BTreeSet<&str> = blob_gets.iter().map(|(_, uri, _)| uri.as_str()).collect();
    let fetched = proxy.redirected_requests();
    let fetched_paths: BTreeSet<&str> = fetched.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(fetched_paths, redirected);
    assert_eq!(fetched_paths.len(), base_blob_count());
    // skopeo (Go's net/http) drops Authorization on a redirect to another host name, while
    // the proxy got the credentials it passed on to the registry (basic auth: 200s).
    for request in &fetched {
        assert_eq!(
            (
                request.method.as_str(),
                request.had_authorization,
                request.status
            ),
            ("GET", false, 200),
            "{request:#?}"
        );
    }
    assert_eq!(
        registry
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.uri.contains("/blobs/sha256:") && r.status == 200)
            .count(),
        base_blob_count()
    );

    // A client that does send Authorization there is recorded as such.
    let path = format!("/v2/lambda/base/blobs/{}", first_layer_digest());
    let response = http_client(None)
        .get(format!("http://{redirect_host}{path}"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        proxy.redirected_requests().last(),
        Some(&RedirectedRequest {
            method: "GET".to_string(),
            path,
            had_authorization: true,
            status: 200,
        })
    );
}

#[test]
fn proxy_fail_injects_a_503_that_skopeo_does_not_retry() {
    let registry = registry_with_base(false);
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Fail {
            status: 503,
            times: 1,
            path_contains: "GET /v2/lambda/base/manifests/".to_string(),
            retry_after: None,
        },
    );
    let manifest_gets = registry.count_requests("GET", "/manifests/");

    // skopeo 1.9.3 retries neither in its registry client nor with --retry-times on a 503.
    let (output, _dir) = skopeo_pull_through(&proxy, None, &["--retry-times", "2"]);
    assert!(!output.status.success(), "pull through a 503 succeeded");
    assert!(
        stderr_of(&output).contains("503 Service Unavailable"),
        "{}",
        stderr_of(&output)
    );
    assert_eq!(proxy.injected(), 1);
    let manifest_requests: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|(_, uri, _)| uri.contains("/manifests/"))
        .collect();
    assert_eq!(
        manifest_requests,
        [(
            "GET".to_string(),
            format!("/v2/lambda/base/manifests/{BASE_TAG}"),
            503
        )]
    );
    // The injected answer never reached the registry.
    assert_eq!(registry.count_requests("GET", "/manifests/"), manifest_gets);

    // Only the first matching request fails.
    let (output, dir) = skopeo_pull_through(&proxy, None, &[]);
    assert_pulled_base(&output, &dir);
    assert_eq!(proxy.injected(), 1);
}

#[test]
fn proxy_fail_with_retry_after_429_is_retried_by_skopeo() {
    let registry = registry_with_base(false);
    let behaviour = ProxyBehaviour::Fail {
        status: 429,
        times: 1,
        path_contains: "/manifests/".to_string(),
        retry_after: Some(1),
    };

    // What a client sees.
    let proxy = TestProxy::start(&registry.url(), behaviour.clone());
    let client = http_client(None);
    let url = format!("{}/v2/lambda/base/manifests/{BASE_TAG}", proxy.url());
    let first = client
        .get(&url)
        .header("Accept", MEDIA_TYPE_INDEX)
        .send()
        .unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(header(&first, "Retry-After"), "1");
    let body: Value = serde_json::from_slice(&first.bytes().unwrap()).unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    let second = client
        .get(&url)
        .header("Accept", MEDIA_TYPE_INDEX)
        .send()
        .unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(
        format!("sha256:{}", sha256_hex(&second.bytes().unwrap())),
        fixtures().base_digest
    );

    // skopeo's registry client waits for Retry-After and retries a 429 by itself.
    let proxy = TestProxy::start(&registry.url(), behaviour);
    let started = Instant::now();
    let (output, dir) = skopeo_pull_through(&proxy, None, &[]);
    assert_pulled_base(&output, &dir);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(proxy.injected(), 1);
    let tag = format!("/v2/lambda/base/manifests/{BASE_TAG}");
    let statuses: Vec<u16> = proxy
        .requests()
        .into_iter()
        .filter(|(_, uri, _)| *uri == tag)
        .map(|(_, _, status)| status)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn proxy_reset_connection_fails_a_skopeo_pull_until_it_retries() {
    let registry = registry_with_base(false);
    let layer = first_layer_digest();
    let blob_statuses = |proxy: &TestProxy| -> Vec<u16> {
        proxy
            .requests()
            .into_iter()
            .filter(|(_, uri, _)| uri.ends_with(&layer))
            .map(|(_, _, status)| status)
            .collect()
    };

    // Every GET of one layer is reset. (Go's net/http resends an idempotent request that
    // failed on a reused keep-alive connection, so skopeo may ask more than once.)
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::ResetConnection {
            times: 100,
            path_contains: layer.clone(),
        },
    );
    let (output, _dir) = skopeo_pull_through(&proxy, None, &[]);
    assert!(!output.status.success(), "pull through resets succeeded");
    assert!(
        stderr_of(&output).contains("connection reset by peer"),
        "{}",
        stderr_of(&output)
    );
    let statuses = blob_statuses(&proxy);
    assert!(
        !statuses.is_empty() && statuses.iter().all(|status| *status == 0),
        "{statuses:?}"
    );
    assert_eq!(proxy.injected(), statuses.len());

    // Once only: a retry (Go's own, or skopeo's --retry-times) gets the blob.
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::ResetConnection {
            times: 1,
            path_contains: layer.clone(),
        },
    );
    let (output, dir) = skopeo_pull_through(&proxy, None, &["--retry-times", "1"]);
    assert_pulled_base(&output, &dir);
    assert_eq!(proxy.injected(), 1);
    assert_eq!(blob_statuses(&proxy), [0, 200]);

    // Later requests pass; a raw client sees the reset as an error, not as an answer.
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::ResetConnection {
            times: 1,
            path_contains: "/blobs/".to_string(),
        },
    );
    let client = http_client(None);
    let url = format!(
        "{}/v2/lambda/base/blobs/{}",
        proxy.url(),
        first_layer_digest()
    );
    let error = client.get(&url).send().expect_err("a reset connection");
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    assert!(message.contains("reset by peer"), "{message}");
    let mut ok = client.get(&url).send().unwrap();
    let mut bytes = Vec::new();
    ok.read_to_end(&mut bytes).unwrap();
    assert_eq!(
        bytes,
        read_blob(&fixtures().base_layout, &first_layer_digest())
    );
}
