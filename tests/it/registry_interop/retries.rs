//! Registry interop: retries, upload sessions on another host, and errors that say what to do
//! (see tests/it/registry_interop/mod.rs).
//!
//! Each test runs `lambda-image build` against the real distribution registry, behind
//! [`TestProxy`] where a registry behaviour has to be played (a `/v2/` that answers 503, an
//! upload service behind a front end, a registry that refuses a manifest media type), or with
//! the token server told to fail ([`crate::support::token::TokenServer::fail_next`]).

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use super::common::{assert_exit, assert_no_secret};
use crate::support::proxy::{ProxyBehaviour, TestProxy};
use crate::support::registry::free_port;
use crate::support::registry::{RegistryAuth, RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;

const USER: &str = "lambda";
const PASSWORD: &str = "pa55-w0rd-secret";
const BASE_REPOSITORY: &str = "lambda/base";

/// A registry holding the stand-in base at `lambda/base:al2023`.
fn registry_with_base(options: RegistryOptions) -> TestRegistry {
    let registry = TestRegistry::start(options);
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    registry
}

/// Both bootstraps, then `rest`.
fn args<'a>(bootstraps: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = bootstraps.iter().map(String::as_str).collect();
    all.extend_from_slice(rest);
    all
}

/// The hint line of an error output.
fn hint_of(stderr: &str) -> &str {
    stderr
        .split_once("hint:")
        .map_or("", |(_, hint)| hint.trim())
}

/// The first `GET /v2/` (the ping) answered 503, or 429 with a plain-text body as Docker Hub's
/// front end does (docker/hub-feedback#1907: "login attempt to https://registry-1.docker.io/v2/
/// failed with status: 429 Too Many Requests", "Too Many Requests (HAP429)."), is retried like
/// any request; before, the ping retried only transport failures.
#[test]
fn ping_answering_503_or_429_is_retried() {
    let registry = registry_with_base(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let behaviours = [
        ProxyBehaviour::Fail {
            status: 503,
            times: 2,
            path_contains: "GET /v2/".into(),
            retry_after: None,
        },
        ProxyBehaviour::Answer {
            status: 429,
            body: "Too Many Requests (HAP429).\n".into(),
            times: 1,
            path_contains: "GET /v2/".into(),
        },
    ];
    for (number, behaviour) in behaviours.into_iter().enumerate() {
        let proxy = TestProxy::start(&registry.url(), behaviour);
        let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
        let tag = format!("v{number}");
        let target = proxy.reference(&format!("fn:{tag}"));
        let output = run_unchecked(
            &mut scratch.build(&args(&bootstraps, &["--base", &base, "--tag", &target])),
        );
        assert_exit(&output, 0, &[]);
        // The failures went to the ping itself: the first requests of the run.
        let requests = proxy.requests();
        let injected = proxy.injected();
        assert!(injected >= 1);
        for (method, target, status) in &requests[..injected] {
            assert_eq!((method.as_str(), target.as_str()), ("GET", "/v2/"));
            assert!([503, 429].contains(status), "{requests:?}");
        }
        assert_eq!(requests[injected], ("GET".into(), "/v2/".into(), 200));
        assert!(registry.tags("fn", registry.credentials()).contains(&tag));
    }
}

/// A token service answering 429 with `Retry-After`, in seconds and as an HTTP-date (RFC 9110
/// section 10.2.3), is asked again after that wait (docker/hub-feedback#2204: "failed to fetch
/// oauth token: unexpected status: 429 Too Many Requests"). Before, a token request was sent
/// once.
#[test]
fn token_service_answering_429_with_retry_after_is_asked_again_after_the_wait() {
    let registry = registry_with_base(RegistryOptions {
        auth: RegistryAuth::token(USER, PASSWORD),
        ..RegistryOptions::default()
    });
    let token_server = registry.token_server().unwrap();
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let creds = format!("{USER}:{PASSWORD}");

    // 2 s as seconds; 5 s ahead as a date, which is 3 to 5 s ahead when the build reads it
    // (whole seconds, and the build takes a moment to get there). The usual backoff would be
    // 0.5 s.
    let in_five_seconds = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
    let forms = [("2".to_owned(), 1900), (in_five_seconds, 1500)];
    for (number, (retry_after, at_least)) in forms.into_iter().enumerate() {
        let before = token_server.requests().len();
        token_server.fail_next(429, 1, Some(&retry_after));
        let target = registry.reference(&format!("fn:v{number}"));
        let output = run_unchecked(&mut scratch.build(&args(
            &bootstraps,
            &["--base", &base, "--tag", &target, "--creds", &creds],
        )));
        assert_exit(&output, 0, &[]);
        assert_no_secret(&output, &[PASSWORD]);
        let requests = &token_server.requests()[before..];
        assert_eq!(requests[0].status, 429, "{requests:?}");
        assert_eq!(requests[1].status, 200, "{requests:?}");
        assert!(requests[1].authenticated);
        let waited = requests[1].received - requests[0].received;
        assert!(
            waited >= Duration::from_millis(at_least),
            "Retry-After: {retry_after} was not waited for: {waited:?}"
        );
        assert!(waited < Duration::from_secs(6), "{waited:?}");
        assert!(
            registry
                .tags("fn", registry.credentials())
                .contains(&format!("v{number}"))
        );
    }

    // A token service that keeps failing: a bounded number of tries, then an error naming it
    // as the registry's token service. Four for each repository: the new layers go up while the
    // base is resolved, so the target's repository asks for its token beside the base's.
    token_server.fail_next(503, 1000, None);
    let before = token_server.requests().len();
    let target = registry.reference("fn:v9");
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--creds", &creds],
    )));
    let realm = registry.token_realm().unwrap();
    let realm_host = realm
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let stderr = assert_exit(
        &output,
        6,
        &[
            "503 Service Unavailable",
            "after 4 tries",
            &format!("{realm_host} is the token service of registry"),
        ],
    );
    assert_no_secret(&output, &[PASSWORD]);
    assert_eq!(token_server.requests().len() - before, 8, "{stderr}");
    assert!(
        !registry
            .tags("fn", registry.credentials())
            .contains(&"v9".to_owned())
    );
}

/// A registry name that does not resolve fails at once, saying so, instead of being tried four
/// times over 3.5 s; the hint fits the role of the host.
#[test]
fn unresolvable_registry_fails_once_saying_the_name_does_not_resolve() {
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    // RFC 6761: `.invalid` never resolves.
    let host = "no-such-registry.invalid";

    let target = format!("{host}/fn:v1");
    let started = Instant::now();
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base_reference(), "--tag", &target],
    )));
    let took = started.elapsed();
    let stderr = assert_exit(
        &output,
        6,
        &[&format!("the name {host} could not be resolved"), "DNS"],
    );
    assert!(!stderr.contains("tries"), "{stderr}");
    assert!(
        took < Duration::from_secs(3),
        "retried for {took:?}:\n{stderr}"
    );
    let hint = hint_of(&stderr);
    assert!(hint.contains(&format!("spelling of {host}")), "{hint}");
    assert!(hint.contains("pushed"), "{hint}");

    let base = format!("{host}/lambda/base:al2023");
    let layout = scratch.path("layout");
    let output_ref = format!("oci:{}:v1", layout.display());
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base, "--output", &output_ref],
    )));
    let stderr = assert_exit(&output, 6, &["could not be resolved"]);
    assert!(hint_of(&stderr).contains("base pull"), "{stderr}");
}

/// A push target that refuses connections and a base registry that does gets different hints:
/// the target's is about its host, port, proxy and network, the base's about building without
/// it (a kit from `base pull`, `--offline`). Before, both suggested a local base.
#[test]
fn dead_push_target_and_dead_base_registry_get_hints_for_their_role() {
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let dead = format!("127.0.0.1:{}", free_port());

    let target = format!("{dead}/fn:v1");
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base_reference(), "--tag", &target],
    )));
    let stderr = assert_exit(&output, 6, &[&dead, "connect failed", "after 4 tries"]);
    let hint = hint_of(&stderr);
    for expected in [&format!("host and port of {dead}"), "HTTPS_PROXY", "pushed"] {
        assert!(hint.contains(expected), "hint lacks {expected}: {hint}");
    }
    assert!(!hint.contains("oci:DIR"), "{hint}");

    let base = format!("{dead}/lambda/base:al2023");
    let layout = scratch.path("layout");
    let output_ref = format!("oci:{}:v1", layout.display());
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base, "--output", &output_ref],
    )));
    let stderr = assert_exit(&output, 6, &[&dead, "connect failed"]);
    let hint = hint_of(&stderr);
    for expected in ["base's registry", "base pull", "--offline"] {
        assert!(hint.contains(expected), "hint lacks {expected}: {hint}");
    }
    // The mirror variable stands only for public.ecr.aws/lambda, which this base is not.
    assert!(!hint.contains("LAMBDA_IMAGE_BASE_MIRROR"), "{hint}");
    assert!(!layout.exists());
}

/// An upload service behind a front end (containerd/containerd#11949): the `POST` that opens an
/// upload session is redirected (307) to another host, which answers with a *relative*
/// `Location` (distribution's `relativeurls`). The `PUT` goes to that host, not back to the
/// front end (which knows no sessions: `404 BLOB_UPLOAD_UNKNOWN`), and the blobs land.
#[test]
fn upload_session_redirected_to_another_host_with_a_relative_location_lands_there() {
    let registry = registry_with_base(RegistryOptions {
        relative_urls: true,
        ..RegistryOptions::default()
    });
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::RedirectUploads {
            upload_credentials: None,
        },
    );
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("fn:v1");
    let output =
        run_unchecked(&mut scratch.build(&args(&bootstraps, &["--base", &base, "--tag", &target])));
    assert_exit(&output, 0, &[]);
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64"]
    );
    let uploads: Vec<_> = proxy
        .redirected_requests()
        .into_iter()
        .filter(|request| request.method == "PUT" && request.status == 201)
        .collect();
    // Two new layers and two configs at least, each finished at the upload host.
    assert!(uploads.len() >= 4, "{uploads:?}");
    assert_eq!(
        proxy.count_requests("PUT", "/blobs/uploads/"),
        0,
        "an upload went back to the front end"
    );
    let mut copy = Command::new("skopeo");
    copy.args(["--insecure-policy", "copy", "--all"])
        .args(registry.skopeo_flags("src-", None))
        .arg(format!("docker://{}", registry.reference("fn:v1")))
        .arg(format!("oci:{}:v1", scratch.path("copy").display()));
    run(&mut copy);
}

/// The registry's credentials never reach an upload host other than the registry's own: one
/// that authenticates to the storage itself gets the blobs with no `Authorization` from us
/// (absolute `Location`s); one that wants the client's credentials gets a clear error.
#[test]
fn upload_host_elsewhere_never_gets_the_registry_credentials() {
    let registry = registry_with_base(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        ..RegistryOptions::default()
    });
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let creds = format!("{USER}:{PASSWORD}");

    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::RedirectUploads {
            upload_credentials: Some((USER.into(), PASSWORD.into())),
        },
    );
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("fn:v1");
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--creds", &creds],
    )));
    assert_exit(&output, 0, &[]);
    assert_no_secret(&output, &[PASSWORD]);
    let redirected = proxy.redirected_requests();
    assert!(
        redirected
            .iter()
            .any(|r| r.method == "PUT" && r.status == 201),
        "{redirected:?}"
    );
    assert!(
        redirected.iter().all(|request| !request.had_authorization),
        "Authorization went to the upload host: {redirected:?}"
    );
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64"]
    );

    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::RedirectUploads {
            upload_credentials: None,
        },
    );
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("other:v1");
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--creds", &creds],
    )));
    let upload_host = proxy.redirect_host().unwrap();
    assert_exit(
        &output,
        6,
        &[
            &format!("{upload_host}, where the registry sent the request, asks for credentials"),
            &format!("sent only to {}", proxy.host()),
        ],
    );
    assert_no_secret(&output, &[PASSWORD]);
    assert!(
        proxy
            .redirected_requests()
            .iter()
            .all(|request| !request.had_authorization)
    );
    assert!(registry.tags("other", registry.credentials()).is_empty());
}

/// A registry that refuses OCI manifests (400 `MANIFEST_INVALID`, as Quay did for some types:
/// openshift/oc-mirror#253, nerdctl#3838) gets an error naming the media type and suggesting
/// `--format docker`, which then works; one refusing Docker types with 415
/// (dotnet/sdk-container-builds#621) gets `--format oci`.
#[test]
fn registry_refusing_a_manifest_media_type_suggests_the_other_format() {
    let registry = registry_with_base(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();

    let no_oci = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::RefuseManifestTypes {
            status: 400,
            content_type_prefix: "application/vnd.oci.".into(),
        },
    );
    let base = no_oci.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = no_oci.reference("fn:v1");
    let output =
        run_unchecked(&mut scratch.build(&args(&bootstraps, &["--base", &base, "--tag", &target])));
    let stderr = assert_exit(
        &output,
        6,
        &[
            "MANIFEST_INVALID",
            "application/vnd.oci.image.manifest.v1+json",
        ],
    );
    assert!(hint_of(&stderr).contains("--format docker"), "{stderr}");
    assert!(registry.tags("fn", registry.credentials()).is_empty());
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--format", "docker"],
    )));
    assert_exit(&output, 0, &[]);
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64"]
    );

    let no_docker = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::RefuseManifestTypes {
            status: 415,
            content_type_prefix: "application/vnd.docker.".into(),
        },
    );
    let base = no_docker.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = no_docker.reference("fn:v2");
    let output = run_unchecked(&mut scratch.build(&args(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--format", "docker"],
    )));
    let stderr = assert_exit(
        &output,
        6,
        &[
            "415 Unsupported Media Type",
            "application/vnd.docker.distribution.manifest.v2+json",
        ],
    );
    assert!(hint_of(&stderr).contains("--format oci"), "{stderr}");
}

/// A rate limit or a failure that outlasts every try says what it means and what to do: found
/// by trying a registry that answers every manifest `PUT` with 429 (as Docker Hub's limits do,
/// docker/hub-feedback#2204) or 503 (docker/for-linux#744). Before, the error had no hint, and
/// named the manifest put by digest `fn:sha256:…` instead of `fn@sha256:…`.
#[test]
fn a_status_that_outlasts_the_retries_is_explained() {
    let registry = registry_with_base(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    for (status, hint) in [(429, "wait a while"), (503, "kept answering 503")] {
        let proxy = TestProxy::start(
            &registry.url(),
            ProxyBehaviour::Fail {
                status,
                times: 100,
                path_contains: "PUT /v2/fn/manifests/".into(),
                retry_after: Some(0),
            },
        );
        let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
        let target = proxy.reference("fn:v1");
        let output = run_unchecked(
            &mut scratch.build(&args(&bootstraps, &["--base", &base, "--tag", &target])),
        );
        let stderr = assert_exit(&output, 6, &["put manifest fn@sha256:", "(after 4 tries)"]);
        assert!(hint_of(&stderr).contains(hint), "{stderr}");
    }
    assert!(registry.tags("fn", registry.credentials()).is_empty());
}
