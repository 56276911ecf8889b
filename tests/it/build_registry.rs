//! `lambda-image build` against real distribution registries (Debian's `docker-registry`):
//! pulling the stand-in base from one, pushing the function image to another repository or
//! another registry, read back with skopeo. The registry's access log proves what went over the
//! wire: base layers mounted (not uploaded) within a registry, streamed and verified across
//! registries, nothing uploaded on a re-push, nothing downloaded with a warm cache, and no more
//! than one PATCH per new layer (a layer streamed as it is compressed: `streaming`).

use std::path::Path;
use std::process::{Command, Output};

use crate::support::proxy::{HeldPut, ProxyBehaviour, TestProxy};
use crate::support::registry::{RegistryAuth, RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;
use base64::Engine;
use serde_json::Value;

const USER: &str = "lambda";
const PASSWORD: &str = "pa55-w0rd-secret";
const BASE_REPOSITORY: &str = "lambda/base";

fn with_bootstraps<'a>(args: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(rest);
    all
}

/// A registry holding the stand-in base at `lambda/base:al2023`.
fn registry_with_base(options: RegistryOptions) -> TestRegistry {
    let registry = TestRegistry::start(options);
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    registry
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap()
}

fn all_base_layers() -> Vec<String> {
    let mut layers: Vec<String> = fixtures()
        .base_layer_digests
        .values()
        .flatten()
        .cloned()
        .collect();
    layers.sort();
    layers.dedup();
    layers
}

/// Completed uploads (the PUT that finishes one, answered 201) of the blob with this digest
/// into `repository`.
fn uploads_of(registry: &TestRegistry, repository: &str, digest: &str) -> usize {
    let path = format!("/v2/{repository}/blobs/uploads/");
    let digest = format!("digest=sha256%3A{}", hex(digest));
    registry
        .requests()
        .iter()
        .filter(|entry| {
            entry.method == "PUT"
                && entry.status == 201
                && entry.uri.contains(&path)
                && entry.uri.contains(&digest)
        })
        .count()
}

fn assert_exit(output: &Output, code: i32, expected_in_stderr: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    for expected in expected_in_stderr {
        assert!(
            stderr.contains(expected),
            "stderr lacks `{expected}`:\n{stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn assert_no_secret(output: &Output) {
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(PASSWORD), "the password leaked:\n{text}");
        assert!(
            !text.contains("cGE1NS13MHJkLXNlY3JldA") && !text.contains("bGFtYmRhOnBhNTU"),
            "the password leaked base64-encoded:\n{text}"
        );
    }
}

#[test]
fn registry_push_of_two_architectures_mounts_the_base_and_tags_index_and_each_architecture() {
    let registry = registry_with_base(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = registry.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target, "--json"]);

    let output = run(&mut scratch.build(&args));
    let report = json_of(&output);
    let (amd64, arm64) = (
        report_image_digest(&report, "amd64"),
        report_image_digest(&report, "arm64"),
    );
    for (arch, digest) in [("amd64", &amd64), ("arm64", &arm64)] {
        let image = report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|image| image["architecture"] == arch)
            .unwrap();
        assert_eq!(
            image["reference"],
            format!("{}/fn@{digest}", registry.host())
        );
    }
    assert_eq!(report["base"]["digest"], fixtures().base_digest);

    // The tag is the index; each architecture has its own tag; digests are what was reported.
    let index_raw = registry.skopeo_inspect_raw("fn:v1");
    let index: Value = serde_json::from_str(&index_raw).unwrap();
    assert_eq!(index["mediaType"], MEDIA_TYPE_INDEX);
    assert_eq!(
        report["index"]["digest"],
        format!("sha256:{}", sha256_hex(index_raw.as_bytes()))
    );
    let listed: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["digest"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [amd64.as_str(), arm64.as_str()]);
    for (tag, digest) in [("fn:v1-amd64", &amd64), ("fn:v1-arm64", &arm64)] {
        let raw = registry.skopeo_inspect_raw(tag);
        assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), *digest);
        let manifest: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST);
    }
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64"]
    );

    // Base layers were mounted from lambda/base, never uploaded; only the two new layers may
    // have been streamed, in one PATCH each.
    for layer in all_base_layers() {
        assert!(
            registry.count_requests("POST", &format!("mount=sha256%3A{}", hex(&layer))) >= 1,
            "base layer {layer} was not mounted:\n{}",
            registry.log()
        );
        assert_eq!(
            uploads_of(&registry, "fn", &layer),
            0,
            "base layer {layer} was uploaded"
        );
    }
    let patches = registry
        .requests()
        .into_iter()
        .filter(|entry| entry.method == "PATCH" && entry.user_agent.starts_with("lambda-image/"))
        .count();
    assert!(patches <= 2, "more than one PATCH per new layer");
    let stderr = stderr_of(&output);
    assert!(stderr.contains("mounted "), "{stderr}");
    assert!(stderr.contains("pushed "), "{stderr}");

    // A real client reads the whole image back, verifying every blob.
    let copy = scratch.path("copied");
    registry.skopeo_copy_from("fn:v1", &format!("oci:{}:v1", copy.display()));
    let copied_index = read_json(copy.join("index.json"));
    assert_eq!(
        copied_index["manifests"][0]["digest"],
        report["index"]["digest"]
    );

    // The same build again: same digests, the new layers from the layer cache (not compressed
    // again), and not one blob upload started.
    let uploads_before = registry.count_requests("POST", "/blobs/uploads/");
    let again = json_of(&run(&mut scratch.build(&args)));
    for (first, second) in report["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["images"].as_array().unwrap())
    {
        assert_eq!(first["digest"], second["digest"]);
        assert_eq!(first["references"], second["references"]);
        assert_eq!(first["layer"]["digest"], second["layer"]["digest"]);
        assert_eq!(
            (&first["layer"]["cached"], &second["layer"]["cached"]),
            (&Value::Bool(false), &Value::Bool(true))
        );
    }
    assert_eq!(again["index"], report["index"]);
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads/"),
        uploads_before,
        "a re-push uploaded blobs:\n{}",
        registry.log()
    );
}

#[test]
fn registry_push_of_one_architecture_tags_its_manifest_and_no_arch_tags_is_honoured() {
    let registry = registry_with_base(RegistryOptions::default());
    let scratch = Scratch::new();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let amd64_bootstrap = fixtures().bootstrap_amd64.display().to_string();
    let single = registry.reference("single:v1");
    let report = json_of(&run(&mut scratch.build(&[
        "--bootstrap",
        &amd64_bootstrap,
        "--base",
        &base,
        "--tag",
        &single,
        "--json",
    ])));
    assert!(report["index"].is_null(), "{report}");
    let raw = registry.skopeo_inspect_raw("single:v1");
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        report_image_digest(&report, "amd64")
    );
    assert_eq!(registry.tags("single", registry.credentials()), ["v1"]);

    // Several tags, one with --no-arch-tags: each tag names the index, no TAG-ARCH tags.
    let bootstraps = both_bootstrap_args();
    let first = registry.reference("multi:v2");
    let second = registry.reference("multi:latest");
    let args = with_bootstraps(
        &bootstraps,
        &[
            "--base",
            &base,
            "--tag",
            &first,
            "--tag",
            &second,
            "--no-arch-tags",
            "--json",
        ],
    );
    let report = json_of(&run(&mut scratch.build(&args)));
    assert_eq!(
        registry.tags("multi", registry.credentials()),
        ["latest", "v2"]
    );
    let v2 = registry.skopeo_inspect_raw("multi:v2");
    assert_eq!(v2, registry.skopeo_inspect_raw("multi:latest"));
    assert_eq!(
        report["index"]["digest"],
        format!("sha256:{}", sha256_hex(v2.as_bytes()))
    );
}

#[test]
fn registry_base_on_another_registry_is_streamed_verified_and_cached() {
    let source = registry_with_base(RegistryOptions::default());
    let target = TestRegistry::start(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = source.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let first = target.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &first, "--json"]);
    let report = json_of(&run(&mut scratch.build(&args)));

    // Each base layer came from the source once and went up to the target once.
    for layer in all_base_layers() {
        assert_eq!(
            source.count_requests("GET", &format!("/blobs/{layer}")),
            1,
            "{}",
            source.log()
        );
        assert_eq!(uploads_of(&target, "fn", &layer), 1, "{}", target.log());
    }
    let copy = scratch.path("copied");
    target.skopeo_copy_from("fn:v1", &format!("oci:{}:v1", copy.display()));
    assert_eq!(
        read_json(copy.join("index.json"))["manifests"][0]["digest"],
        report["index"]["digest"]
    );

    // Warm cache: another target repository, and a local layout, need no base layer download.
    let layer_gets = source.count_requests("GET", "/blobs/");
    let second = target.reference("other:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &second]);
    run(&mut scratch.build(&args));
    let layout = scratch.path("layout");
    let output = format!("oci:{}:v1", layout.display());
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--output", &output]);
    run(&mut scratch.build(&args));
    assert_eq!(
        source.count_requests("GET", "/blobs/"),
        layer_gets,
        "a warm cache still downloaded blobs:\n{}",
        source.log()
    );
    skopeo(&["inspect", &format!("oci:{}:v1-arm64", layout.display())]);
}

#[test]
fn registry_basic_auth_credentials_from_flag_config_json_and_helper() {
    let registry = registry_with_base(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        ..RegistryOptions::default()
    });
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));

    // No credentials: refused, clearly, with nothing tagged.
    let target = registry.reference("fn:anonymous");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(&output, 6, &["wants credentials", "--creds"]);

    // Wrong password: refused, no secret shown, nothing tagged.
    let wrong = format!("{USER}:{PASSWORD}-wrong");
    let args = with_bootstraps(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--creds", &wrong],
    );
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(&output, 6, &["refused the credentials"]);
    assert_no_secret(&output);
    assert!(!stderr_of(&output).contains("-wrong"));
    assert!(registry.tags("fn", registry.credentials()).is_empty());

    // --creds.
    let creds = format!("{USER}:{PASSWORD}");
    let target = registry.reference("fn:flag");
    let args = with_bootstraps(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--creds", &creds],
    );
    let output = run(&mut scratch.build(&args));
    assert_no_secret(&output);

    // config.json `auths`.
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}").as_bytes());
    let config = serde_json::json!({"auths": {registry.host(): {"auth": auth}}});
    std::fs::write(scratch.path("docker/config.json"), config.to_string()).unwrap();
    let target = registry.reference("fn:auths");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    let output = run(&mut scratch.build(&args));
    assert_no_secret(&output);

    // A credential helper named by credHelpers, found on PATH.
    let helpers = scratch.path("helpers");
    std::fs::create_dir_all(&helpers).unwrap();
    let asked = scratch.path("helper-asked");
    write_executable(
        &helpers.join("docker-credential-test"),
        &format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread server\necho \"$server\" >> {}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            asked.display()
        ),
    );
    let config = serde_json::json!({"credHelpers": {registry.host(): "test"}});
    std::fs::write(scratch.path("docker/config.json"), config.to_string()).unwrap();
    let target = registry.reference("fn:helper");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    let path = format!("{}:{}", helpers.display(), std::env::var("PATH").unwrap());
    let output = run(scratch.build(&args).env("PATH", path));
    assert_no_secret(&output);
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        registry.host(),
        "the helper was not asked for this registry"
    );
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        [
            "flag",
            "flag-amd64",
            "flag-arm64",
            "helper",
            "helper-amd64",
            "helper-arm64",
            "auths",
            "auths-amd64",
            "auths-arm64"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
}

#[test]
fn registry_errors_are_clear_and_tag_nothing() {
    let registry = registry_with_base(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let target = registry.reference("fn:v1");

    // Missing tag, missing repository: the base is the problem (exit 4).
    for missing in [
        registry.reference(&format!("{BASE_REPOSITORY}:no-such-tag")),
        registry.reference("no/such/repository:al2023"),
    ] {
        let args = with_bootstraps(&bootstraps, &["--base", &missing, "--tag", &target]);
        let output = run_unchecked(&mut scratch.build(&args));
        assert_exit(&output, 4, &["does not exist", &missing]);
    }

    // A registry that is down.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("127.0.0.1:{down}/{BASE_REPOSITORY}:{BASE_TAG}");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(&output, 6, &[&format!("127.0.0.1:{down}"), "connect"]);

    // A --tag with a digest, and no destination at all, are usage errors.
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let by_digest = format!("{}@{}", registry.reference("fn"), fixtures().base_digest);
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &by_digest]);
    assert_exit(
        &run_unchecked(&mut scratch.build(&args)),
        2,
        &["give a tag"],
    );
    let args = with_bootstraps(&bootstraps, &["--base", &base]);
    assert_exit(
        &run_unchecked(&mut scratch.build(&args)),
        2,
        &["--tag", "--output"],
    );

    // Malformed credentials: a usage error that does not quote the value.
    for flag in ["--creds", "--base-creds"] {
        let malformed = format!(":{PASSWORD}");
        let args = with_bootstraps(
            &bootstraps,
            &["--base", &base, "--tag", &target, flag, &malformed],
        );
        let output = run_unchecked(&mut scratch.build(&args));
        assert_exit(&output, 2, &[flag, "USER:PASSWORD"]);
        assert_no_secret(&output);
    }

    assert!(registry.tags("fn", registry.credentials()).is_empty());
}

#[test]
fn registry_over_tls_needs_its_ca_from_ssl_cert_file_or_certs_d() {
    let registry = registry_with_base(RegistryOptions {
        tls: true,
        ..RegistryOptions::default()
    });
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = registry.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);

    // Unknown CA: a TLS error naming the fix, not a fall-back to plain HTTP.
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(&output, 6, &["TLS", "certs.d", "SSL_CERT_FILE"]);
    assert!(registry.tags("fn", registry.credentials()).is_empty());

    // SSL_CERT_FILE.
    let ca = registry.ca_cert().unwrap();
    run(scratch.build(&args).env("SSL_CERT_FILE", ca));
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64"]
    );

    // /etc/docker/certs.d/HOST:PORT/ca.crt (the port is unique to this registry).
    let certs_d = Path::new("/etc/docker/certs.d").join(registry.host());
    std::fs::create_dir_all(&certs_d).unwrap();
    std::fs::copy(ca, certs_d.join("ca.crt")).unwrap();
    let target = registry.reference("fn:v2");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    let output = run_unchecked(&mut scratch.build(&args));
    std::fs::remove_dir_all(&certs_d).unwrap();
    assert_exit(&output, 0, &[]);
}

#[test]
fn registry_with_token_auth_over_tls_gets_scoped_tokens_and_mounts_the_base() {
    let registry = registry_with_base(RegistryOptions {
        auth: RegistryAuth::token(USER, PASSWORD),
        tls: true,
        ..RegistryOptions::default()
    });
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = registry.reference("lambda/fn:v1");
    let ca = registry.ca_cert().unwrap().to_owned();

    // Wrong password: the token service refuses; no secret shown, nothing tagged.
    let wrong = format!("{USER}:{PASSWORD}-wrong");
    let args = with_bootstraps(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--creds", &wrong],
    );
    let output = run_unchecked(scratch.build(&args).env("SSL_CERT_FILE", &ca));
    assert_exit(&output, 6, &["refused the credentials"]);
    assert_no_secret(&output);
    assert!(
        registry
            .tags("lambda/fn", registry.credentials())
            .is_empty()
    );

    let creds = format!("{USER}:{PASSWORD}");
    let args = with_bootstraps(
        &bootstraps,
        &[
            "--base", &base, "--tag", &target, "--creds", &creds, "--json",
        ],
    );
    let token_requests_before = registry.token_requests().len();
    let output = run(scratch.build(&args).env("SSL_CERT_FILE", &ca));
    let requests = registry.token_requests();
    assert_no_secret(&output);
    let report = json_of(&output);
    assert_eq!(
        registry.tags("lambda/fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64"]
    );
    let raw = registry.skopeo_inspect_raw("lambda/fn:v1");
    assert_eq!(
        report["index"]["digest"],
        format!("sha256:{}", sha256_hex(raw.as_bytes()))
    );

    // Tokens per repository, all authenticated: pull on the base, push on the target, and
    // for the mounts one token for both (the base's layers are mounted, not uploaded).
    let ours = &requests[token_requests_before..];
    assert!(ours.iter().all(|request| request.authenticated), "{ours:?}");
    let asked = |scopes: &[&str]| {
        ours.iter().any(|request| {
            let mut asked = request.scopes.clone();
            asked.sort();
            asked == scopes
        })
    };
    assert!(asked(&["repository:lambda/base:pull"]), "{ours:?}");
    assert!(asked(&["repository:lambda/fn:pull,push"]), "{ours:?}");
    assert!(
        asked(&[
            "repository:lambda/base:pull",
            "repository:lambda/fn:pull,push"
        ]),
        "{ours:?}"
    );
    for layer in all_base_layers() {
        assert_eq!(
            uploads_of(&registry, "lambda/fn", &layer),
            0,
            "{layer} uploaded"
        );
    }

    // config.json `auths` work with token auth too, and a re-push uploads nothing.
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}").as_bytes());
    let config =
        serde_json::json!({"auths": {format!("https://{}", registry.host()): {"auth": auth}}});
    std::fs::write(scratch.path("docker/config.json"), config.to_string()).unwrap();
    let uploads_before = registry.count_requests("POST", "/blobs/uploads/");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    run(scratch.build(&args).env("SSL_CERT_FILE", &ca));
    assert_eq!(
        registry.count_requests("POST", "/blobs/uploads/"),
        uploads_before
    );
}

#[test]
fn registry_token_is_refreshed_when_it_expires_mid_push() {
    // Tokens live 1 s; the proxy fails the first manifest PUTs with 503 so that the retries
    // outlast the token, and the registry's next answer is 401.
    let registry = registry_with_base(RegistryOptions {
        auth: RegistryAuth::token(USER, PASSWORD),
        token_ttl: Some(std::time::Duration::from_secs(1)),
        ..RegistryOptions::default()
    });
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Fail {
            status: 503,
            times: 2,
            path_contains: "PUT /v2/fn/manifests/".into(),
            retry_after: None,
        },
    );
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("fn:v1");
    let creds = format!("{USER}:{PASSWORD}");
    let args = with_bootstraps(
        &bootstraps,
        &["--base", &base, "--tag", &target, "--creds", &creds],
    );
    let output = run(&mut scratch.build(&args));
    assert_no_secret(&output);
    assert_eq!(proxy.injected(), 2);
    let unauthorized = registry
        .requests()
        .into_iter()
        .filter(|entry| entry.status == 401 && entry.user_agent.starts_with("lambda-image/"))
        .count();
    assert!(
        unauthorized >= 1,
        "no expired token was refused:\n{}",
        registry.log()
    );
    assert!(
        registry.token_requests().len() >= 2,
        "the token was not refreshed: {:?}",
        registry.token_requests()
    );
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64"]
    );
}

#[test]
fn registry_corrupt_base_blob_is_refused_and_nothing_is_tagged_or_cached() {
    let source = registry_with_base(RegistryOptions::default());
    let corrupt = fixtures().base_layer_digests["arm64"][0].clone();
    let proxy = TestProxy::start(
        &source.url(),
        ProxyBehaviour::CorruptBlob {
            digest_hex: hex(&corrupt).to_owned(),
        },
    );
    let target = TestRegistry::start(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));

    // Streamed to another registry: the upload is abandoned before it completes.
    let tag = target.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &tag]);
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(&output, 4, &[hex(&corrupt), "does not match"]);
    assert!(target.tags("fn", target.credentials()).is_empty());
    assert_eq!(
        uploads_of(&target, "fn", &corrupt),
        0,
        "the corrupt blob was accepted:\n{}",
        target.log()
    );
    assert!(
        !scratch
            .cache()
            .join("blobs/sha256")
            .join(hex(&corrupt))
            .exists()
    );

    // Written locally: no layout appears.
    let layout = scratch.path("layout");
    let output_ref = format!("oci:{}:v1", layout.display());
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--output", &output_ref]);
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(&output, 4, &["does not match"]);
    assert!(!layout.exists());
}

#[test]
fn registry_blob_redirect_to_another_host_gets_no_authorization() {
    let registry = registry_with_base(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        ..RegistryOptions::default()
    });
    let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::RedirectBlobs);
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let layout = scratch.path("layout");
    let output_ref = format!("oci:{}:v1", layout.display());
    let creds = format!("{USER}:{PASSWORD}");
    let args = with_bootstraps(
        &bootstraps,
        &[
            "--base",
            &base,
            "--base-creds",
            &creds,
            "--output",
            &output_ref,
        ],
    );
    let output = run(&mut scratch.build(&args));
    assert_no_secret(&output);
    let redirected = proxy.redirected_requests();
    assert!(
        redirected.len() >= all_base_layers().len(),
        "blob downloads were not redirected: {redirected:?}"
    );
    assert!(
        redirected.iter().all(|request| !request.had_authorization),
        "Authorization was sent to another host: {redirected:?}"
    );
    skopeo(&["inspect", &format!("oci:{}:v1-amd64", layout.display())]);
}

#[test]
fn registry_transient_failures_are_retried_and_a_final_one_names_registry_step_and_status() {
    let registry = registry_with_base(RegistryOptions::default());
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();

    // 429 with Retry-After, then a reset connection: both survived.
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Fail {
            status: 429,
            times: 1,
            path_contains: "PUT /v2/fn/manifests/".into(),
            retry_after: Some(1),
        },
    );
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    run(&mut scratch.build(&args));
    assert_eq!(proxy.injected(), 1);
    let reset = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::ResetConnection {
            times: 1,
            path_contains: "/manifests/al2023".into(),
        },
    );
    let base = reset.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = reset.reference("fn:v2");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    run(&mut scratch.build(&args));
    assert_eq!(reset.injected(), 1);

    // A 503 that does not go away: a bounded number of tries, then a clear error, no tag.
    let broken = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Fail {
            status: 503,
            times: 1000,
            path_contains: "PUT /v2/fn/manifests/".into(),
            retry_after: None,
        },
    );
    let base = broken.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = broken.reference("fn:v3");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(
        &output,
        6,
        &[
            &broken.host(),
            "put manifest fn@sha256:",
            "503 Service Unavailable",
            "after 4 tries",
        ],
    );
    // Four tries for each of the two architectures' manifests, which go up side by side.
    assert_eq!(broken.injected(), 8);
    assert_eq!(
        registry.tags("fn", registry.credentials()),
        ["v1", "v1-amd64", "v1-arm64", "v2", "v2-amd64", "v2-arm64"]
    );
}

#[test]
fn registry_base_with_docker_media_types_gives_docker_images_and_tag_combines_with_output() {
    // The same base, converted by skopeo to a Docker manifest list and schema 2 manifests.
    let registry = TestRegistry::start(RegistryOptions::default());
    let mut command = Command::new("skopeo");
    command
        .args(["--insecure-policy", "copy", "--all", "--format", "v2s2"])
        .args(registry.skopeo_flags("dest-", None))
        .arg(base_reference())
        .arg(format!(
            "docker://{}",
            registry.reference("docker/base:al2023")
        ));
    run(&mut command);
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = format!("docker://{}", registry.reference("docker/base:al2023"));
    let target = registry.reference("docker/fn:v1");
    let layout = scratch.path("layout");
    let output_ref = format!("oci:{}:v1", layout.display());
    let args = with_bootstraps(
        &bootstraps,
        &[
            "--base",
            &base,
            "--tag",
            &target,
            "--output",
            &output_ref,
            "--json",
        ],
    );
    let report = json_of(&run(&mut scratch.build(&args)));

    let index: Value = serde_json::from_str(&registry.skopeo_inspect_raw("docker/fn:v1")).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let manifest: Value =
        serde_json::from_str(&registry.skopeo_inspect_raw("docker/fn:v1-arm64")).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
    // Written to both places, same digests; the registry's references come first (the digest
    // one is what a function's ImageUri takes), then the per-architecture tag, then the layout's.
    for image in report["images"].as_array().unwrap() {
        let arch = image["architecture"].as_str().unwrap();
        let digest = image["digest"].as_str().unwrap();
        assert_eq!(
            image["references"],
            serde_json::json!([
                format!("{}/docker/fn@{digest}", registry.host()),
                format!("{}/docker/fn:v1-{arch}", registry.host()),
                format!("oci:{}:v1-{arch}", layout.display()),
            ])
        );
        assert_eq!(
            layout_descriptor(&layout, &format!("v1-{arch}")).unwrap()["digest"],
            digest
        );
    }
}

#[test]
fn registry_that_will_not_mount_gets_an_upload_in_the_session_it_opened() {
    // As ECR without BLOB_MOUNTING: the mount request is answered 202 with an upload session.
    let registry = registry_with_base(RegistryOptions::default());
    let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::RefuseMounts);
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    run(&mut scratch.build(&args));
    let layers = all_base_layers();
    assert_eq!(proxy.injected(), layers.len());
    for layer in &layers {
        assert_eq!(uploads_of(&registry, "fn", layer), 1, "{}", registry.log());
    }
    // One session per blob: the 202 of the mount request was used, no second POST was made.
    let uploads_started = registry
        .requests()
        .into_iter()
        .filter(|entry| entry.method == "POST" && entry.uri.starts_with("/v2/fn/blobs/uploads/"))
        .count();
    let completed = registry
        .requests()
        .into_iter()
        .filter(|entry| entry.method == "PUT" && entry.uri.starts_with("/v2/fn/blobs/uploads/"))
        .count();
    assert_eq!(uploads_started, completed);
    let copy = scratch.path("copied");
    registry.skopeo_copy_from("fn:v1", &format!("oci:{}:v1", copy.display()));
}

#[test]
fn registry_default_base_is_provided_al2023() {
    let help = run_stdout(lambda_image().args(["build", "--help"]));
    assert!(
        help.contains("[default: public.ecr.aws/lambda/provided:al2023]"),
        "{help}"
    );
    // Short names (provided.al2023, provided.al2) are unit-tested in src/reference: expanding
    // them here would need public.ecr.aws.
}

fn write_executable(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Manifests and tags go up in waves, each one's `PUT`s side by side: every architecture's
/// manifest, then the index, then the per-architecture tags, then the index's tags, each wave
/// only after the one before. The index's tags never go beside the per-architecture ones: found
/// by this test, distribution then refuses the index now and then (`MANIFEST_BLOB_UNKNOWN`),
/// reading the revision link of a manifest that the tag `PUT` beside it is rewriting. Over a link
/// with delay, one `PUT` per round trip in a row (six for two architectures and one tag) is what
/// made the end of a push slow (issue 17). The proxy holds each manifest `PUT` for a while so
/// that `PUT`s sent together are seen to overlap; sent one after the other, none would.
#[test]
fn registry_push_puts_manifests_then_the_index_then_the_tags_each_wave_side_by_side() {
    let registry = registry_with_base(RegistryOptions::default());
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::HoldManifestPuts { millis: 300 },
    );
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    run(&mut scratch.build(&args));

    let puts = proxy.manifest_puts();
    let by_digest = |put: &&HeldPut| put.target.contains("/manifests/sha256:");
    let digests: Vec<&HeldPut> = puts.iter().filter(by_digest).collect();
    let tags: Vec<&HeldPut> = puts.iter().filter(|put| !by_digest(put)).collect();
    assert_eq!(
        digests.len(),
        3,
        "two manifests and the index by digest: {puts:#?}"
    );
    assert_eq!(tags.len(), 3, "v1, v1-amd64, v1-arm64: {puts:#?}");
    // The index is the by-digest PUT that started last; the two manifests came before it.
    let index = *digests.iter().max_by_key(|put| put.received).unwrap();
    let manifests: Vec<&HeldPut> = digests
        .iter()
        .copied()
        .filter(|put| !std::ptr::eq(*put, index))
        .collect();
    assert!(
        manifests[0].overlaps(manifests[1]),
        "the two architectures' manifests went one after the other: {puts:#?}"
    );
    for manifest in &manifests {
        assert!(
            manifest.answered <= index.received,
            "the index went up before a manifest it names was in: {puts:#?}"
        );
    }
    for tag in &tags {
        assert!(
            index.answered <= tag.received,
            "a tag went up before the index was in: {puts:#?}"
        );
    }
    let (arch_tags, index_tags): (Vec<&HeldPut>, Vec<&HeldPut>) = tags
        .iter()
        .partition(|put| put.target.ends_with("-amd64") || put.target.ends_with("-arm64"));
    assert_eq!((arch_tags.len(), index_tags.len()), (2, 1), "{puts:#?}");
    assert!(
        arch_tags[0].overlaps(arch_tags[1]),
        "the per-architecture tags went one after the other: {puts:#?}"
    );
    for arch_tag in &arch_tags {
        assert!(
            arch_tag.answered <= index_tags[0].received,
            "the index was tagged beside a per-architecture tag: {puts:#?}"
        );
    }
    assert_eq!(registry.tags("fn", None), ["v1", "v1-amd64", "v1-arm64"]);
}

/// Two repositories, and the second refuses its tags: the per-architecture tags of the first
/// went up in the same wave and stay set, and the output says so (`tagged` lines before the
/// error) rather than leaving the user to find out. Found by trying the waves against an nginx
/// that refused tag `PUT`s for one repository.
#[test]
fn tags_set_before_another_repository_refused_its_tags_are_named() {
    let registry = registry_with_base(RegistryOptions::default());
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Fail {
            status: 403,
            times: 1000,
            path_contains: "PUT /v2/refusing/manifests/v1".into(),
            retry_after: None,
        },
    );
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let accepting = registry.reference("accepting:v1");
    let refusing = proxy.reference("refusing:v1");
    let args = with_bootstraps(
        &bootstraps,
        &["--base", &base, "--tag", &accepting, "--tag", &refusing],
    );
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(&output, 6, &["put manifest refusing:v1-", "403"]);
    let stderr = stderr_of(&output);
    let set = registry.tags("accepting", None);
    assert_eq!(
        set,
        ["v1-amd64", "v1-arm64"],
        "the index's tag waits for every wave"
    );
    for tag in set {
        assert!(
            stderr.contains(&format!("tagged   {accepting}-{}", &tag[3..])),
            "{tag} was set and not said:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains(&format!("tagged   {accepting}\n")),
        "{stderr}"
    );
}

/// A reverse proxy that limits request bodies (nginx's `client_max_body_size`, 1 MB unless set)
/// answers a layer's upload with `413` and an HTML page: the error gives the page's words, not
/// its markup, and says which limit to raise.
#[test]
fn a_proxy_body_size_limit_is_named_without_its_html() {
    let registry = registry_with_base(RegistryOptions::default());
    let page = "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n\
                <center><h1>413 Request Entity Too Large</h1></center>\r\n\
                <hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n";
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Answer {
            status: 413,
            body: page.to_owned(),
            times: 1000,
            path_contains: "PUT /v2/fn/blobs/uploads/".into(),
        },
    );
    let scratch = Scratch::new();
    let bootstraps = both_bootstrap_args();
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference("fn:v1");
    let args = with_bootstraps(&bootstraps, &["--base", &base, "--tag", &target]);
    let output = run_unchecked(&mut scratch.build(&args));
    assert_exit(
        &output,
        6,
        &[
            "413 Payload Too Large (413 Request Entity Too Large; nginx/1.22.1)",
            "client_max_body_size",
        ],
    );
    assert!(
        !stderr_of(&output).contains("<center>"),
        "{}",
        stderr_of(&output)
    );
}
