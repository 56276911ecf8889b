//! Pushing to ECR with nothing but AWS credentials: `lambda-image build` gets the registry
//! password from ECR `GetAuthorizationToken` (moto's server as the ECR API, called through the
//! real AWS SDK), and a real distribution registry, reached under an ECR host name, accepts
//! exactly moto's token. Also: the region of the call, the token kept for its lifetime and
//! renewed when the registry says it expired, ECR's error answers explained, and
//! `public.ecr.aws`-style anonymous token pulls that never involve AWS credentials.
//!
//! Needs root (a mount namespace for a private `/etc/hosts`, see `support::ecr`) and the moto
//! virtualenv `tests/run.sh` installs. Built only with the `ecr` feature (the default): without
//! it, ECR is an ordinary registry and these tests do not apply.
#![cfg(feature = "ecr")]

use std::path::Path;
use std::process::{Command, Output};

use crate::support::ecr::{ACCOUNT, MOTO_PASSWORD, MotoEcr, ecr_command, ecr_host_name};
use crate::support::proxy::{ProxyBehaviour, TestProxy};
use crate::support::registry::{RegistryAuth, RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::{self, *};
use base64::Engine;
use serde_json::Value;

/// What ECR answers a request with an expired token (see `shared/lambda-facts.md`).
const EXPIRED_ANSWER: &str = r#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#;

/// A registry that takes moto's token as its password, as ECR takes the real one.
fn registry_taking_moto_tokens() -> TestRegistry {
    TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::basic("AWS", MOTO_PASSWORD),
        ..RegistryOptions::default()
    })
}

/// `lambda-image build` of both fixture bootstraps on the stand-in base, pushed to
/// `HOST:PORT/fn:v1` where HOST is the ECR name for `region` and PORT is `port`.
fn build_to_ecr(
    scratch: &Scratch,
    moto: Option<&MotoEcr>,
    region: &str,
    port: u16,
    extra: &[&str],
) -> Command {
    let host = format!("{}:{port}", ecr_host_name(region));
    let mut command = ecr_command(
        Path::new(env!("CARGO_BIN_EXE_lambda-image")),
        &[&ecr_host_name(region)],
        &scratch.path("home"),
        moto,
    );
    command
        .arg("build")
        .arg("--cache-dir")
        .arg(scratch.cache())
        .args(both_bootstrap_args())
        .args(["--base", &base_reference()])
        .args(["--tag", &format!("{host}/fn:v1")])
        .args(["--insecure-registry", &host, "--json"])
        .args(extra);
    command
}

/// [`build_to_ecr`] in us-east-1 with nothing extra, run to success.
fn push_to_us_east_1(scratch: &Scratch, moto: &MotoEcr, port: u16) -> Output {
    run(&mut build_to_ecr(
        scratch,
        Some(moto),
        "us-east-1",
        port,
        &[],
    ))
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(output)
        )
    })
}

/// The image index `fn:v1` in the registry, read back with skopeo, is the one built.
fn assert_pushed(registry: &TestRegistry, report: &Value) {
    let raw = registry.skopeo_inspect_raw("fn:v1");
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        report["index"]["digest"].as_str().unwrap()
    );
}

/// Neither moto's password nor the `AWS:password` pair, plain or base64, reaches the output.
fn assert_token_not_shown(output: &Output) {
    let pair = format!("AWS:{MOTO_PASSWORD}");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        for secret in [MOTO_PASSWORD, &pair, &encoded] {
            assert!(!text.contains(secret), "the ECR token leaked:\n{text}");
        }
    }
}

fn assert_failed(output: &Output, code: i32, expected: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "stderr lacks `{text}`:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The builds run with --json: stdout is the error object, and nothing else.
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not one JSON object ({error}): {:?}",
                output.stdout
            )
        });
    assert_eq!(report["error"]["kind"], "registry", "{report}");
    assert_eq!(report["error"]["exit_code"], code, "{report}");
    assert_eq!(report.as_object().unwrap().len(), 1, "{report}");
}

#[test]
fn a_push_to_ecr_gets_its_password_from_get_authorization_token_once() {
    let moto = MotoEcr::start(Some(12 * 3600));
    let registry = registry_taking_moto_tokens();
    let scratch = Scratch::new();
    // With every log level on: the AWS SDK's tracing must not print the token either.
    let mut command = build_to_ecr(&scratch, Some(&moto), "us-east-1", registry.port(), &[]);
    command.env("RUST_LOG", "trace");
    let output = run(&mut command);
    assert_pushed(&registry, &json_of(&output));
    assert_eq!(moto.call_regions(), ["us-east-1"]);
    assert_eq!(moto.calls()[0]["account"], ACCOUNT);
    assert_token_not_shown(&output);
}

#[test]
fn the_token_is_asked_in_the_hosts_region_unless_region_is_given() {
    // AWS_REGION names another region, as in a pipeline that deploys elsewhere: the token must
    // still come from the registry's own region.
    let cases: [(&str, &[&str], Option<&str>, &str); 4] = [
        ("eu-central-1", &[], Some("us-west-2"), "eu-central-1"),
        ("cn-north-1", &[], None, "cn-north-1"),
        ("us-east-1", &["--region", "eu-west-1"], None, "eu-west-1"),
        ("ap-southeast-2", &[], None, "ap-southeast-2"),
    ];
    let registry = registry_taking_moto_tokens();
    for (host_region, flags, aws_region, expected) in cases {
        let moto = MotoEcr::start(Some(3600));
        let scratch = Scratch::new();
        let mut command = build_to_ecr(&scratch, Some(&moto), host_region, registry.port(), flags);
        if let Some(aws_region) = aws_region {
            command.env("AWS_REGION", aws_region);
        }
        let output = run(&mut command);
        assert_pushed(&registry, &json_of(&output));
        assert_eq!(
            moto.call_regions(),
            [expected],
            "host region {host_region}, flags {flags:?}, AWS_REGION {aws_region:?}"
        );
    }
}

/// A proxy in front of `registry` that gives `status` and `body` to the first request
/// matching `path_contains`.
fn answering_proxy(registry: &TestRegistry, status: u16, body: &str, path: &str) -> TestProxy {
    TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Answer {
            status,
            body: body.to_owned(),
            times: 1,
            path_contains: path.to_owned(),
        },
    )
}

#[test]
fn an_expired_token_answer_gets_a_new_token_and_the_push_completes() {
    for status in [401, 403] {
        let moto = MotoEcr::start(Some(12 * 3600));
        let registry = registry_taking_moto_tokens();
        let proxy = answering_proxy(&registry, status, EXPIRED_ANSWER, "PUT /v2/fn/manifests/");
        let scratch = Scratch::new();
        let output = push_to_us_east_1(&scratch, &moto, proxy.port());
        assert_eq!(proxy.injected(), 1, "{status}");
        assert_pushed(&registry, &json_of(&output));
        // The cached token was fresh for 12 hours, yet the registry said it expired: asked again.
        assert_eq!(moto.calls().len(), 2, "{status}: {}", stderr_of(&output));
    }
}

#[test]
fn a_token_is_reused_until_it_nears_expiry() {
    // A registry asking to authenticate again (a plain 401, not "expired") gets the same,
    // still fresh token: one call. moto's own tokens arrive already expired (2015), so there
    // the same 401 makes a second call.
    let unauthorized =
        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
    for (ttl, expected_calls) in [(Some(12 * 3600), 1), (None, 2)] {
        let moto = MotoEcr::start(ttl);
        let registry = registry_taking_moto_tokens();
        let proxy = answering_proxy(&registry, 401, unauthorized, "PUT /v2/fn/manifests/");
        let scratch = Scratch::new();
        let output = push_to_us_east_1(&scratch, &moto, proxy.port());
        assert_eq!(proxy.injected(), 1);
        assert_pushed(&registry, &json_of(&output));
        assert_eq!(moto.calls().len(), expected_calls, "token lifetime {ttl:?}");
    }
}

#[test]
fn ecr_error_answers_say_what_to_do() {
    let region = "us-east-1";
    let cases = [
        (
            "PUT /v2/fn/manifests/",
            400,
            r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag 'v1' already exists in the 'fn' repository and cannot be overwritten because the tag is immutable."}]}"#.to_owned(),
            vec![
                "put manifest fn",
                "TAG_INVALID",
                "immutable",
                "aws ecr put-image-tag-mutability --repository-name fn",
            ],
        ),
        (
            "POST /v2/fn/blobs/uploads/",
            404,
            format!(r#"{{"errors":[{{"code":"NAME_UNKNOWN","message":"The repository with name 'fn' does not exist in the registry with id '{ACCOUNT}'"}}]}}"#),
            vec![
                "NAME_UNKNOWN",
                "aws ecr create-repository --repository-name fn --region us-east-1",
            ],
        ),
        (
            "POST /v2/fn/blobs/uploads/",
            403,
            format!(r#"{{"errors":[{{"code":"DENIED","message":"User: arn:aws:sts::{ACCOUNT}:assumed-role/ci/session is not authorized to perform: ecr:InitiateLayerUpload on resource: arn:aws:ecr:us-east-1:{ACCOUNT}:repository/fn because no identity-based policy allows the ecr:InitiateLayerUpload action"}}]}}"#),
            vec!["not allowed ecr:InitiateLayerUpload on the ECR repository fn", "IAM policy"],
        ),
        (
            "PUT /v2/fn/manifests/",
            403,
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#.to_owned(),
            vec!["not allowed ecr:PutImage"],
        ),
    ];
    for (path, status, body, expected) in cases {
        let moto = MotoEcr::start(Some(3600));
        let registry = registry_taking_moto_tokens();
        let proxy = answering_proxy(&registry, status, &body, path);
        let scratch = Scratch::new();
        let output = run_unchecked(&mut build_to_ecr(
            &scratch,
            Some(&moto),
            region,
            proxy.port(),
            &[],
        ));
        assert_eq!(proxy.injected(), 1, "{path} {status}");
        assert_failed(&output, 6, &expected);
        // Nothing was tagged.
        assert_eq!(registry.count_requests("PUT", "/v2/fn/manifests/v1"), 0);
    }
}

#[test]
fn without_aws_credentials_the_error_says_how_to_give_them() {
    let registry = registry_taking_moto_tokens();
    let scratch = Scratch::new();
    let output = run_unchecked(&mut build_to_ecr(
        &scratch,
        None,
        "us-east-1",
        registry.port(),
        &[],
    ));
    assert_failed(
        &output,
        6,
        &[
            "cannot get ECR credentials for account 123456789012 in us-east-1",
            "no AWS credentials were found",
            "AWS_ACCESS_KEY_ID",
            "--creds AWS:$(aws ecr get-login-password",
        ],
    );
    assert_eq!(registry.count_requests("PUT", "/v2/fn/"), 0);
}

#[test]
fn a_saved_credential_comes_first_and_is_replaced_when_ecr_says_it_expired_but_creds_is_not() {
    let moto = MotoEcr::start(Some(3600));
    let registry = registry_taking_moto_tokens();
    let host = |port: u16| format!("{}:{port}", ecr_host_name("us-east-1"));
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("AWS:{MOTO_PASSWORD}"));
    let write_config = |scratch: &Scratch, port: u16| {
        let docker = scratch.path("home").join("docker");
        std::fs::create_dir_all(&docker).unwrap();
        let config = serde_json::json!({ "auths": { host(port): { "auth": auth } } });
        std::fs::write(docker.join("config.json"), config.to_string()).unwrap();
    };

    // A saved token that works: no call to ECR at all.
    let scratch = Scratch::new();
    write_config(&scratch, registry.port());
    let output = push_to_us_east_1(&scratch, &moto, registry.port());
    assert_pushed(&registry, &json_of(&output));
    assert!(moto.calls().is_empty(), "{:?}", moto.calls());

    // The saved token has expired (docker login 12 hours ago): a new one from ECR, whether the
    // refusal says so (a manifest PUT) or cannot (a HEAD has no body).
    for (status, body, path) in [
        (403, EXPIRED_ANSWER, "PUT /v2/fn/manifests/"),
        (403, "", "HEAD /v2/fn/blobs/"),
        (401, "", "HEAD /v2/fn/blobs/"),
    ] {
        let calls_before = moto.calls().len();
        let proxy = answering_proxy(&registry, status, body, path);
        let scratch = Scratch::new();
        write_config(&scratch, proxy.port());
        let output = push_to_us_east_1(&scratch, &moto, proxy.port());
        assert_eq!(proxy.injected(), 1);
        assert_pushed(&registry, &json_of(&output));
        assert_eq!(moto.calls().len(), calls_before + 1, "{status} {path}");
        assert!(
            stderr_of(&output).contains(
                "as it refuses an expired token; using a new token from ECR GetAuthorizationToken"
            ),
            "{}",
            stderr_of(&output)
        );
        assert_token_not_shown(&output);
    }

    // `--creds` is what the user asked for: never replaced; tried once more, then the refusal
    // is the error. The two architectures' manifests go up side by side, each tried twice.
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Answer {
            status: 403,
            body: EXPIRED_ANSWER.to_owned(),
            times: 4,
            path_contains: "PUT /v2/fn/manifests/".to_owned(),
        },
    );
    let scratch = Scratch::new();
    let creds = format!("AWS:{MOTO_PASSWORD}");
    let calls_before = moto.calls().len();
    let output = run_unchecked(&mut build_to_ecr(
        &scratch,
        Some(&moto),
        "us-east-1",
        proxy.port(),
        &["--creds", &creds],
    ));
    assert_failed(
        &output,
        6,
        &[
            "put manifest fn",
            "token has expired",
            "aws ecr get-login-password --region us-east-1",
        ],
    );
    assert_eq!(moto.calls().len(), calls_before);
    assert_eq!(
        proxy.injected(),
        4,
        "each manifest PUT tried twice, no more"
    );
    assert_token_not_shown(&output);
}

#[test]
fn public_ecr_style_token_pulls_are_anonymous_and_never_ask_aws() {
    // public.ecr.aws hands anonymous pull tokens out from its token endpoint; a registry with
    // token auth and anonymous pull behaves the same. Reached under the public.ecr.aws name,
    // with AWS credentials and moto present: nothing may go to ECR's API, and the token request
    // must carry no credential.
    let public = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::token("reader", "reader-password"),
        anonymous_pull: true,
        ..RegistryOptions::default()
    });
    public.skopeo_copy_to(&base_reference(), "lambda/provided:al2023");
    let moto = MotoEcr::start(Some(3600));
    let target = TestRegistry::start(RegistryOptions::default());
    let public_host = format!("public.ecr.aws:{}", public.port());
    // Builds from the public base to `fn:TAG`; returns the token requests the build made.
    let build_from_public = |tag: &str, extra: &[&str]| {
        let scratch = Scratch::new();
        let mut command = ecr_command(
            Path::new(env!("CARGO_BIN_EXE_lambda-image")),
            &["public.ecr.aws"],
            &scratch.path("home"),
            Some(&moto),
        );
        command
            .arg("build")
            .arg("--cache-dir")
            .arg(scratch.cache())
            .args(both_bootstrap_args())
            .args(["--base", &format!("{public_host}/lambda/provided:al2023")])
            .args(["--tag", &target.reference(&format!("fn:{tag}"))])
            .args(["--insecure-registry", &public_host, "--json"])
            .args(extra);
        let seeded = public.token_requests().len();
        let output = run(&mut command);
        assert_eq!(json_of(&output)["base"]["digest"], fixtures().base_digest);
        let token_requests = public.token_requests().split_off(seeded);
        assert!(!token_requests.is_empty());
        token_requests
    };

    let anonymous = build_from_public("v1", &[]);
    assert!(
        anonymous.iter().all(|request| !request.authenticated),
        "{anonymous:?}"
    );
    // With credentials given for it, they go to the token endpoint.
    let with_credentials = build_from_public("v2", &["--base-creds", "reader:reader-password"]);
    assert!(
        with_credentials.iter().all(|request| request.authenticated),
        "{with_credentials:?}"
    );
    assert!(moto.calls().is_empty(), "{:?}", moto.calls());
}

/// A credential source of the standard chain, set up in `home`: what to add to the
/// environment, and the access key id the ECR call must be signed with (`None`: a temporary key
/// moto makes, `ASIA…`).
struct ChainCase {
    name: &'static str,
    env: Vec<(&'static str, String)>,
    access_key: Option<&'static str>,
}

fn chain_cases(home: &Path, moto: &MotoEcr, container_url: &str) -> Vec<ChainCase> {
    std::fs::create_dir_all(home).unwrap();
    std::fs::write(
        home.join("aws-credentials"),
        "[ci]\naws_access_key_id = AKIAPROFILEPROFILE00\naws_secret_access_key = profile-secret\n",
    )
    .unwrap();
    std::fs::write(
        home.join("aws-config"),
        "[profile proc]\ncredential_process = echo '{\"Version\": 1, \"AccessKeyId\": \
         \"AKIAPROCESSPROCESS00\", \"SecretAccessKey\": \"process-secret\"}'\n",
    )
    .unwrap();
    let token_file = home.join("web-identity-token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJl",
    )
    .unwrap();
    vec![
        ChainCase {
            name: "a profile in the shared credentials file",
            env: vec![("AWS_PROFILE", "ci".to_owned())],
            access_key: Some("AKIAPROFILEPROFILE00"),
        },
        ChainCase {
            name: "credential_process in the config file",
            env: vec![("AWS_PROFILE", "proc".to_owned())],
            access_key: Some("AKIAPROCESSPROCESS00"),
        },
        ChainCase {
            name: "web identity (CI OIDC), through STS AssumeRoleWithWebIdentity",
            env: vec![
                ("AWS_ROLE_ARN", format!("arn:aws:iam::{ACCOUNT}:role/ci")),
                ("AWS_ROLE_SESSION_NAME", "ci".to_owned()),
                (
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    token_file.display().to_string(),
                ),
                ("AWS_ENDPOINT_URL_STS", moto.endpoint()),
            ],
            access_key: None,
        },
        ChainCase {
            name: "container credentials (ECS, EKS Pod Identity)",
            env: vec![(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                container_url.to_owned(),
            )],
            access_key: Some("AKIACONTAINERCONTAIN"),
        },
    ]
}

#[test]
fn credentials_come_from_every_source_of_the_standard_chain() {
    let moto = MotoEcr::start(Some(3600));
    let registry = registry_taking_moto_tokens();
    // The container credentials endpoint (what ECS and EKS Pod Identity serve).
    let container = support::http::HttpServer::start(
        "container-credentials",
        std::sync::Arc::new(|_request: &support::http::Request| {
            support::http::Reply::Send(support::http::Response::json(
                200,
                &serde_json::json!({
                    "AccessKeyId": "AKIACONTAINERCONTAIN",
                    "SecretAccessKey": "container-secret",
                    "Token": "container-session-token",
                    "Expiration": "2099-01-01T00:00:00Z",
                }),
            ))
        }),
    );
    let container_url = format!("http://127.0.0.1:{}/credentials", container.port());
    let scratch = Scratch::new();
    for case in chain_cases(&scratch.path("home"), &moto, &container_url) {
        let calls_before = moto.calls().len();
        let mut command = build_to_ecr(&scratch, Some(&moto), "us-east-1", registry.port(), &[]);
        // Only this case's source: no keys in the environment.
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        for (key, value) in &case.env {
            command.env(key, value);
        }
        let output = run_unchecked(&mut command);
        assert!(
            output.status.success(),
            "{}: {}",
            case.name,
            stderr_of(&output)
        );
        assert_pushed(&registry, &json_of(&output));
        let calls = moto.calls();
        assert_eq!(calls.len(), calls_before + 1, "{}", case.name);
        let access_key = calls.last().unwrap()["access_key"]
            .as_str()
            .unwrap()
            .to_owned();
        match case.access_key {
            Some(expected) => assert_eq!(access_key, expected, "{}", case.name),
            None => assert!(
                access_key.starts_with("ASIA"),
                "{}: {access_key}",
                case.name
            ),
        }
    }
}

#[test]
fn a_failing_get_authorization_token_is_explained() {
    let registry = registry_taking_moto_tokens();
    let cases: [(&str, &[&str]); 4] = [
        (
            "deny",
            &[
                "GetAuthorizationToken failed: access denied",
                "IAM action ecr:GetAuthorizationToken",
            ],
        ),
        ("no-data", &["answered with no authorizationData"]),
        (
            "not-base64",
            &["answered with an authorizationToken not in base64"],
        ),
        (
            "no-colon",
            &["answered with an authorizationToken without ':'"],
        ),
    ];
    for (answer, expected) in cases {
        let moto = MotoEcr::start_answering(Some(3600), Some(answer));
        let scratch = Scratch::new();
        let output = run_unchecked(&mut build_to_ecr(
            &scratch,
            Some(&moto),
            "us-east-1",
            registry.port(),
            &[],
        ));
        let mut expected = expected.to_vec();
        expected.push("account 123456789012 in us-east-1");
        assert_failed(&output, 6, &expected);
        // Asked once: a refusal or a malformed answer is not retried.
        assert_eq!(moto.calls().len(), 1, "{answer}");
        assert_eq!(registry.count_requests("PUT", "/v2/fn/"), 0);
    }
}
