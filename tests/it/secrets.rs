//! Secrets never show, and tokens are asked for no more than needed.
//!
//! Against a real distribution registry with token auth (the token server of
//! `support/registries/token.rs`), with a known password given through `--creds`, `config.json` `auths`
//! and a `docker-credential-*` helper, `lambda-image` runs successful pushes and failures
//! (wrong password, registry down, helper failure) with `RUST_LOG=debug` set, in text and
//! `--json`. Neither stdout nor stderr may contain the password, `USER:PASSWORD` or the
//! password in base64, or any bearer token (a JWT: it always starts with `eyJ`, base64 of `{"`).
//!
//! Token requests are recorded by the token server: the base repository gets `pull` only, the
//! target `pull,push`, and nothing else is asked for. `--creds` never reaches the base's
//! registry when that is another host.

use crate::hostile_input::fake_registry;

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::support::registry::{RegistryAuth, RegistryOptions, TestRegistry};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const USER: &str = "lambda";
const PASSWORD: &str = "Secr3t-for-secrets-test";
const BASE_REPOSITORY: &str = "lambda/base";

/// Every form in which a secret could leak.
fn forbidden() -> Vec<String> {
    vec![
        PASSWORD.to_owned(),
        format!("{USER}:{PASSWORD}"),
        STANDARD.encode(format!("{USER}:{PASSWORD}")),
        STANDARD.encode(PASSWORD),
        // A JWT (bearer token from the token server) starts with base64 of `{"`.
        "eyJ".to_owned(),
    ]
}

fn assert_no_secret(scenario: &str, output: &Output) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        for secret in forbidden() {
            assert!(
                !text.contains(&secret),
                "{scenario}: {stream} contains {secret:?}:\n{text}"
            );
        }
        assert!(!text.contains("panicked"), "{scenario}: {text}");
    }
}

/// An isolated HOME, docker config, cache and helper directory.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("secrets-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home/.docker")).unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write_docker_config(&self, config: &serde_json::Value) {
        std::fs::write(self.path("home/.docker/config.json"), config.to_string()).unwrap();
    }

    fn write_helper(&self, script: &str) {
        let helper = self.path("bin/docker-credential-secret");
        std::fs::write(&helper, script).unwrap();
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&helper, executable).unwrap();
    }

    /// `lambda-image VERB ARGS` with `RUST_LOG=debug` and nothing of the machine's credentials.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = lambda_image();
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap()
        );
        command
            .args(args)
            .env("RUST_LOG", "debug")
            .env("HOME", self.path("home"))
            .env("DOCKER_CONFIG", self.path("home/.docker"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("PATH", path)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("SSL_CERT_FILE");
        command
    }

    /// `build` of the amd64 fixture on `base`, with `rest` appended.
    fn build(&self, base: &str, rest: &[&str]) -> Command {
        let bootstrap = fixtures().bootstrap_amd64.display().to_string();
        let cache = self.path("cache").display().to_string();
        let mut args = vec![
            "build",
            "--cache-dir",
            &cache,
            "--bootstrap",
            &bootstrap,
            "--base",
            base,
        ];
        args.extend_from_slice(rest);
        self.command(&args)
    }
}

fn token_registry_with_base() -> TestRegistry {
    let registry = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::token(USER, PASSWORD),
        ..RegistryOptions::default()
    });
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    registry
}

/// The scopes of the token requests made since `since`, each request's sorted.
fn scopes_since(registry: &TestRegistry, since: usize) -> Vec<Vec<String>> {
    registry.token_requests()[since..]
        .iter()
        .map(|request| {
            let mut scopes = request.scopes.clone();
            scopes.sort();
            scopes
        })
        .collect()
}

fn expect(scenario: &str, output: &Output, code: i32, fragment: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "{scenario}:\n{stderr}");
    assert!(
        stderr.contains(fragment),
        "{scenario}: no {fragment:?} in:\n{stderr}"
    );
    assert_no_secret(scenario, output);
}

#[test]
fn no_secret_in_any_output_of_pushes_and_failures() {
    let registry = token_registry_with_base();
    let scratch = Scratch::new();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let creds = format!("{USER}:{PASSWORD}");
    let wrong = format!("{USER}:{PASSWORD}-wrong");
    let target = registry.reference("fn:v1");

    let output = run(&mut scratch.build(&base, &["--tag", &target, "--creds", &creds, "--json"]));
    assert_no_secret("--creds, --json", &output);
    let output = run(&mut scratch.build(&base, &["--tag", &target, "--creds", &creds]));
    assert_no_secret("--creds, text", &output);
    let output = run_unchecked(&mut scratch.build(&base, &["--tag", &target, "--creds", &wrong]));
    expect(
        "--creds, wrong password",
        &output,
        6,
        "refused the credentials",
    );

    let auth = STANDARD.encode(&creds);
    scratch.write_docker_config(&serde_json::json!({"auths": {registry.host(): {"auth": auth}}}));
    let output = run(&mut scratch.build(&base, &["--tag", &target, "--json"]));
    assert_no_secret("auths, --json", &output);
    let auth = STANDARD.encode(&wrong);
    scratch.write_docker_config(&serde_json::json!({"auths": {registry.host(): {"auth": auth}}}));
    let output = run_unchecked(&mut scratch.build(&base, &["--tag", &target, "--json"]));
    expect(
        "auths, wrong password",
        &output,
        6,
        "refused the credentials",
    );

    scratch.write_docker_config(&serde_json::json!({"credHelpers": {registry.host(): "secret"}}));
    scratch.write_helper(&format!(
        "#!/bin/sh\nprintf '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n"
    ));
    let output = run(&mut scratch.build(&base, &["--tag", &target, "--json"]));
    assert_no_secret("helper, --json", &output);
    // A helper that fails after printing the credentials: its JSON is never quoted.
    scratch.write_helper(&format!(
        "#!/bin/sh\nprintf '{{\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\nexit 1\n"
    ));
    let output = run_unchecked(&mut scratch.build(&base, &["--tag", &target]));
    expect("helper fails", &output, 6, "docker-credential-secret");
    // A helper answering garbage that holds the secret: not quoted either.
    scratch.write_helper(&format!("#!/bin/sh\necho 'Secret={PASSWORD}'\n"));
    let output = run_unchecked(&mut scratch.build(&base, &["--tag", &target, "--json"]));
    expect("helper garbage", &output, 6, "not shown");

    // The registry down, with credentials in hand.
    scratch.write_docker_config(&serde_json::json!({}));
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down_target = format!("127.0.0.1:{down}/fn:v1");
    let output = run_unchecked(&mut scratch.build(
        &base,
        &[
            "--tag",
            &down_target,
            "--creds",
            &creds,
            "--base-creds",
            &creds,
        ],
    ));
    expect("registry down", &output, 6, "connect");

    let output = run(&mut scratch.command(&["check", "--creds", &creds, "--json", &target]));
    assert_no_secret("check, --json", &output);
}

#[test]
fn tokens_are_asked_for_the_narrowest_scopes() {
    let registry = token_registry_with_base();
    let scratch = Scratch::new();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let creds = format!("{USER}:{PASSWORD}");

    // Push within the registry: a token per repository (pull on the base, pull,push on the
    // target), and one for mounting the base's layers into the target (both).
    let before = registry.token_requests().len();
    let target = registry.reference("lambda/fn:v1");
    run(&mut scratch.build(&base, &["--tag", &target, "--creds", &creds]));
    let mut scopes = scopes_since(&registry, before);
    scopes.sort();
    assert_eq!(
        scopes,
        [
            vec!["repository:lambda/base:pull"],
            vec![
                "repository:lambda/base:pull",
                "repository:lambda/fn:pull,push"
            ],
            vec!["repository:lambda/fn:pull,push"],
        ],
        "pushing"
    );

    // Only reading the base (to a local output): pull, nothing else.
    let before = registry.token_requests().len();
    let layout = scratch.path("layout");
    let output = format!("oci:{}:v1", layout.display());
    run(&mut scratch.build(&base, &["--output", &output, "--base-creds", &creds]));
    assert_eq!(
        scopes_since(&registry, before),
        [["repository:lambda/base:pull"]],
        "pulling the base"
    );

    // `check` reads: pull only.
    let before = registry.token_requests().len();
    let image = registry.reference("lambda/fn:v1");
    run(&mut scratch.command(&["check", "--creds", &creds, &image]));
    let scopes = scopes_since(&registry, before);
    assert!(!scopes.is_empty());
    assert!(
        scopes
            .iter()
            .all(|request| request == &["repository:lambda/fn:pull"]),
        "check: {scopes:?}"
    );
}

/// `--creds` is for the registries pushed to: a base on another registry (here one that, like
/// public.ecr.aws, hands out anonymous tokens) never gets it, nor does its token service.
#[test]
fn creds_never_reach_the_base_on_another_registry() {
    use fake_registry::{ANONYMOUS_TOKEN, FakeRegistry};
    let registry = token_registry_with_base();
    let token_service = FakeRegistry::empty();
    let base_registry = FakeRegistry::serving_base();
    base_registry.challenge(&format!(
        "Bearer realm=\"http://{}/token\",service=\"fake\"",
        token_service.host()
    ));
    let scratch = Scratch::new();
    let creds = format!("{USER}:{PASSWORD}");
    let base = format!("{}/lambda/base:al2023", base_registry.host());
    let target = registry.reference("fn:v1");
    let output = run(&mut scratch.build(&base, &["--tag", &target, "--creds", &creds]));
    assert_no_secret("base elsewhere", &output);

    let token_requests = token_service.seen();
    assert!(!token_requests.is_empty(), "no token was asked for");
    assert!(
        token_requests.iter().all(|r| r.authorization.is_none()),
        "--creds went to the base's token service: {token_requests:?}"
    );
    let anonymous = format!("Bearer {ANONYMOUS_TOKEN}");
    let base_requests = base_registry.seen();
    assert!(
        base_requests
            .iter()
            .all(|r| r.authorization.as_ref().is_none_or(|a| *a == anonymous)),
        "--creds went to the base's registry: {base_requests:?}"
    );
}

/// Credentials typed into a reference (`USER:PASS@HOST/…`, also after `https://`) are refused
/// (usage, exit 2) at every place a reference is read, without the password in either stream,
/// in text mode and with `--json`, and the message says where credentials go instead.
/// (scenario, arguments, mirror variable, what stderr says, how it shows the value)
type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a str>, &'a str, &'a str);

#[test]
fn credentials_typed_into_a_reference_are_refused_without_showing_them() {
    let scratch = Scratch::new();
    let at = format!("{USER}:{PASSWORD}@127.0.0.1:5056");
    let with_credentials = format!("{at}/mirror/lambda/provided:al2023");
    let with_scheme = format!("https://{with_credentials}");
    let target = format!("{at}/fn:v1");
    let output = format!("oci:{}", scratch.path("out").display());
    let kit = format!("oci:{}", scratch.path("kit").display());
    let mirror = format!("{at}/mirror/lambda");
    let local = base_reference();
    // Credentials without a repository path after them: no digest, still credentials.
    let bare_host = format!("{USER}:{PASSWORD}@127.0.0.1");
    let bare_port = format!("{USER}:{PASSWORD}@127.0.0.1:5302");
    let bare = format!("{USER}:{PASSWORD}@");
    // A docker-archive NAME:TAG holding credentials.
    let archive = format!("docker-archive:f.tar:{USER}:{PASSWORD}@h/x:v1");
    let stray = format!("{USER}:{PASSWORD}");
    let stray_subcommand = format!("{USER}:{PASSWORD}@localhost");
    let insecure = format!("https://{USER}:{PASSWORD}@h");
    const CREDENTIALS: &str = "a reference cannot carry credentials (USER:PASS@)";
    const NAME_TAG: &str = "is not a NAME:TAG";
    const HOST_PORT: &str = "expected HOST[:PORT]";
    let masked = format!("{USER}:***@");
    let masked_stray = format!("'{USER}:***'");
    let cases: Vec<Case> = vec![
        (
            "build --base",
            vec!["--base", &with_credentials, "-o", "oci:x"],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "build --base https://",
            vec!["--base", &with_scheme, "-o", "oci:x"],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "build --tag",
            vec!["--base", &local, "--tag", &target],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "build --output",
            vec!["--base", &local, "-o", &target],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "check IMAGE",
            vec!["check", &target],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "base pull BASE",
            vec!["base", "pull", &with_credentials, "--output", &kit],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "base verify",
            vec!["base", "verify", &target],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "the mirror variable: base list",
            vec!["base", "list"],
            Some(&mirror),
            CREDENTIALS,
            &masked,
        ),
        (
            "the mirror variable: build",
            vec!["--base", "provided.al2023", "-o", &output],
            Some(&mirror),
            CREDENTIALS,
            &masked,
        ),
        // USER:PASS@HOST[:PORT] and USER:PASS@, at every entry point.
        (
            "check USER:PASS@HOST",
            vec!["check", &bare_host],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "build --tag USER:PASS@HOST:PORT",
            vec!["--base", &local, "--tag", &bare_port],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "build --base USER:PASS@HOST:PORT",
            vec!["--base", &bare_port, "-o", "oci:x"],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "build --output USER:PASS@",
            vec!["--base", &local, "-o", &bare],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "check --base USER:PASS@HOST",
            vec!["check", "--bootstrap", "b", "--base", &bare_host],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "base pull USER:PASS@HOST:PORT",
            vec!["base", "pull", &bare_port, "--output", &kit],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "base pull --output USER:PASS@HOST:PORT",
            vec!["base", "pull", "provided.al2023", "--output", &bare_port],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "base verify USER:PASS@",
            vec!["base", "verify", &bare],
            None,
            CREDENTIALS,
            &masked,
        ),
        (
            "the mirror variable USER:PASS@HOST:PORT",
            vec!["base", "list"],
            Some(&bare_port),
            CREDENTIALS,
            &masked,
        ),
        (
            "the mirror variable USER:PASS@",
            vec!["base", "list"],
            Some(&bare),
            CREDENTIALS,
            &masked,
        ),
        // A docker-archive's NAME:TAG.
        (
            "check docker-archive",
            vec!["check", &archive],
            None,
            NAME_TAG,
            "***@h/x:v1",
        ),
        (
            "build --output docker-archive",
            vec!["--base", &local, "-o", &archive],
            None,
            NAME_TAG,
            "***@h/x:v1",
        ),
        (
            "build --base docker-archive",
            vec!["--base", &archive, "-o", "oci:x"],
            None,
            NAME_TAG,
            "***@h/x:v1",
        ),
        (
            "base pull docker-archive",
            vec!["base", "pull", &archive, "--output", &kit],
            None,
            NAME_TAG,
            "***@h/x:v1",
        ),
        (
            "base verify docker-archive",
            vec!["base", "verify", &archive],
            None,
            "is a docker-archive",
            "***@h/x:v1",
        ),
        // A stray USER:PASS: an unexpected argument, an unrecognized subcommand.
        (
            "check IMAGE USER:PASS",
            vec!["check", "127.0.0.1:5302/fn:v1", &stray],
            None,
            "unexpected argument",
            &masked_stray,
        ),
        (
            "USER:PASS@HOST as subcommand",
            vec![&stray_subcommand],
            None,
            "unrecognized subcommand",
            &masked,
        ),
        // --insecure-registry with credentials, on each command that takes it.
        (
            "build --insecure-registry",
            vec![
                "--base",
                &local,
                "-o",
                "oci:x",
                "--insecure-registry",
                &insecure,
            ],
            None,
            HOST_PORT,
            &masked,
        ),
        (
            "check --insecure-registry",
            vec!["check", "x:v1", "--insecure-registry", &insecure],
            None,
            HOST_PORT,
            &masked,
        ),
        (
            "base pull --insecure-registry",
            vec![
                "base",
                "pull",
                "provided.al2023",
                "--insecure-registry",
                &insecure,
            ],
            None,
            HOST_PORT,
            &masked,
        ),
    ];
    let bootstrap = fixtures().bootstrap_amd64.display().to_string();
    for (name, args, mirror, fragment, shown) in &cases {
        for json in [false, true] {
            let mut args: Vec<&str> = args.clone();
            // `build` cases start at the flags.
            if args[0].starts_with('-') {
                args.splice(0..0, ["build", "--bootstrap", &bootstrap]);
            }
            if json {
                args.push("--json");
            }
            let mut command = scratch.command(&args);
            if let Some(mirror) = mirror {
                command.env("LAMBDA_IMAGE_BASE_MIRROR", mirror);
            }
            let result = command.output().unwrap();
            let scenario = format!("{name} (json: {json})");
            expect(&scenario, &result, 2, fragment);
            let stderr = stderr_of(&result);
            assert!(
                stderr.contains(shown),
                "{scenario}: no {shown:?} in {stderr}"
            );
            if *fragment == CREDENTIALS {
                assert!(stderr.contains("--creds"), "{scenario}: {stderr}");
                assert!(!stderr.contains("digest"), "{scenario}: {stderr}");
            }
            if json {
                let stdout = String::from_utf8_lossy(&result.stdout);
                let object: serde_json::Value = serde_json::from_str(&stdout)
                    .unwrap_or_else(|error| panic!("{scenario}: {error}: {stdout}"));
                assert_eq!(object["error"]["kind"], "usage", "{scenario}");
                let message = object["error"]["message"].as_str().unwrap();
                assert!(message.contains(fragment), "{scenario}: {message}");
            }
        }
    }
}
