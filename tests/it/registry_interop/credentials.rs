//! Registry interop: credentials (see tests/it/registry_interop/mod.rs). Where credentials come from
//! and when they are looked up, against the real registry with token auth: `auths` entries
//! keyed by namespace (`podman login HOST/NS`), a `credsStore` helper that is not installed, a
//! token service that grants one scope per request (Harbor), refusals that are about
//! permissions rather than credentials, and `--username NAME --password-stdin`.
//!
//! Not here: the lookup rules one by one (unit tests in src/credentials/), ECR
//! (tests/it/ecr.rs).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use super::common::{assert_exit, assert_no_secret};
use crate::support::registry::free_port;
use crate::support::registry::{NamespaceUser, RegistryAuth, RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-pa55-secret";
const ALICE_PASSWORD: &str = "alice-team-a-secret";
const BOB_PASSWORD: &str = "bob-team-b-secret";
const BASE_REPOSITORY: &str = "lambda/base";

/// A token-auth registry (admin may do anything) with `options`, holding the stand-in base at
/// `base_repository:al2023`.
fn token_registry(options: RegistryOptions, base_repository: &str) -> TestRegistry {
    let registry = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::token(ADMIN, ADMIN_PASSWORD),
        ..options
    });
    registry.skopeo_copy_to(&base_reference(), &format!("{base_repository}:{BASE_TAG}"));
    registry
}

/// `build` with both bootstraps and `args`, isolated from the machine by `scratch`.
fn build(scratch: &Scratch, args: &[&str]) -> Command {
    let bootstraps = both_bootstrap_args();
    let mut all: Vec<&str> = bootstraps.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    scratch.build(&all)
}

/// `lambda-image ARGS` with the same isolation as [`Scratch::build`].
fn command(scratch: &Scratch, args: &[&str]) -> Command {
    let mut command = lambda_image();
    command
        .args(args)
        .arg("--cache-dir")
        .arg(scratch.cache())
        .env("DOCKER_CONFIG", scratch.path("docker"))
        .env("HOME", scratch.path(""))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SSL_CERT_FILE");
    command
}

fn auth(user: &str, password: &str) -> serde_json::Value {
    json!({ "auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")) })
}

fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, value.to_string()).unwrap();
}

/// `podman login HOST/team-a` and `podman login HOST/team-b` as two users leave two namespace
/// keys in auth.json (containers-auth.json(5)); the host key holds a third, wrong, user. Each
/// repository gets its namespace's user, and the other namespace's secret is never sent: the
/// build pulls `team-a/base` as alice and pushes `team-b/fn` as bob. Before namespace keys were
/// used, the host entry went everywhere and the token service refused it. As in
/// containers/podman#17816 (a path in the login key must not be discarded).
#[test]
fn namespace_keyed_entries_go_to_their_namespace_only() {
    let registry = token_registry(
        RegistryOptions {
            namespace_users: vec![
                NamespaceUser {
                    user: "alice".into(),
                    password: ALICE_PASSWORD.into(),
                    namespace: "team-a".into(),
                },
                NamespaceUser {
                    user: "bob".into(),
                    password: BOB_PASSWORD.into(),
                    namespace: "team-b".into(),
                },
            ],
            ..RegistryOptions::default()
        },
        "team-a/base",
    );
    let scratch = Scratch::new();
    let host = registry.host();
    let auth_file = scratch.path("auth.json");
    write_json(
        &auth_file,
        &json!({ "auths": {
            host.clone(): auth("nobody", "wrong-host-wide-secret"),
            format!("{host}/team-a"): auth("alice", ALICE_PASSWORD),
            format!("{host}/team-b"): auth("bob", BOB_PASSWORD),
        }}),
    );
    let base = registry.reference(&format!("team-a/base:{BASE_TAG}"));
    let target = registry.reference("team-b/fn:v1");
    let before = registry.token_requests().len();
    let output =
        run(build(&scratch, &["--base", &base, "--tag", &target])
            .env("REGISTRY_AUTH_FILE", &auth_file));
    assert_no_secret(
        &output,
        &[ALICE_PASSWORD, BOB_PASSWORD, "wrong-host-wide-secret"],
    );
    let requests = registry.token_requests().split_off(before);
    assert_eq!(
        registry.tags("team-b/fn", Some((ADMIN, ADMIN_PASSWORD))),
        ["v1", "v1-amd64", "v1-arm64"]
    );
    assert!(!requests.is_empty());
    for request in &requests {
        let user = request.user.as_deref();
        assert_ne!(user, Some("nobody"), "the host entry was used: {request:?}");
        assert!(request.authenticated, "{request:?}");
        // Alice's secret only ever asks for team-a; every request for team-b is Bob's (a
        // mount into team-b asks, with Bob's secret, for pull on team-a too: that is refused,
        // and the layers are uploaded instead).
        let for_team_b = request
            .scopes
            .iter()
            .any(|s| s.starts_with("repository:team-b/"));
        match user {
            Some("alice") => assert!(
                request
                    .scopes
                    .iter()
                    .all(|s| s.starts_with("repository:team-a/")),
                "alice's secret went with another namespace's scope: {request:?}"
            ),
            Some("bob") => assert!(for_team_b, "bob's secret went for team-a only: {request:?}"),
            _ => panic!("unexpected token request {request:?}"),
        }
    }
    assert!(
        requests
            .iter()
            .any(|r| r.user.as_deref() == Some("alice") && r.granted == r.scopes),
        "{requests:?}"
    );
}

/// A docker config copied from a Docker Desktop machine names `"credsStore": "desktop"`, and
/// this machine has no docker-credential-desktop (lux4rd0/grafana-loki-syslog-aio#16,
/// collabnix/selenium-docker-extension#1: `error getting credentials - err: exec:
/// "docker-credential-desktop": executable file not found`, even for public images). A
/// registry that needs no login for a pull (anonymous tokens) works, with one warning line
/// naming the helper and the file; a push there, a private registry, and an htpasswd (Basic)
/// registry fail with an error naming the helper. A credHelpers entry for the host that names
/// a missing helper stays an error even where no login is needed.
#[test]
fn a_missing_creds_store_is_a_warning_when_no_login_is_needed_and_an_error_when_one_is() {
    let public = token_registry(
        RegistryOptions {
            anonymous_pull: true,
            ..RegistryOptions::default()
        },
        BASE_REPOSITORY,
    );
    let scratch = Scratch::new();
    let config = scratch.path("docker/config.json");
    write_json(
        &config,
        &json!({"auths": {public.host(): {}}, "credsStore": "desktop"}),
    );
    let base = public.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let kit = format!("oci:{}:{BASE_TAG}", scratch.path("kit").display());

    let output = run(&mut command(
        &scratch,
        &["base", "pull", &base, "--output", &kit],
    ));
    let stderr = stderr_of(&output);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("docker-credential-desktop"),
        "{stderr}"
    );
    assert!(
        warnings[0].contains(&config.display().to_string()),
        "{stderr}"
    );

    // Pushing needs a login: an error naming the helper, and no warning contradicting it.
    let output = run_unchecked(&mut build(
        &scratch,
        &["--base", &kit, "--tag", &public.reference("fn:v1")],
    ));
    assert_exit(&output, 6, &["docker-credential-desktop", "credsStore"]);
    assert!(
        !stderr_of(&output).contains("warning"),
        "{}",
        stderr_of(&output)
    );

    // A private registry refuses anonymous tokens: the error names the helper.
    let private = token_registry(RegistryOptions::default(), BASE_REPOSITORY);
    write_json(&config, &json!({"credsStore": "desktop"}));
    let output = run_unchecked(&mut command(
        &scratch,
        &[
            "base",
            "pull",
            &private.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}")),
        ],
    ));
    assert_exit(&output, 6, &["docker-credential-desktop", "credsStore"]);

    // htpasswd: a Basic challenge means credentials are needed.
    let basic = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::basic(ADMIN, ADMIN_PASSWORD),
        ..RegistryOptions::default()
    });
    let output = run_unchecked(&mut command(
        &scratch,
        &["base", "pull", &basic.reference("lambda/base:al2023")],
    ));
    assert_exit(&output, 6, &["docker-credential-desktop"]);

    // A credHelpers entry for exactly this host is meant: its missing helper is an error.
    write_json(&config, &json!({"credHelpers": {public.host(): "absent"}}));
    let output = run_unchecked(&mut command(&scratch, &["base", "pull", &base]));
    assert_exit(&output, 6, &["docker-credential-absent", "credHelpers"]);
}

/// A token service that honours only the first `scope=` of a request (goharbor/harbor#2411),
/// with the base and the target in two repositories of the same registry: each repository gets
/// its own token, the mount that would need both falls back to an upload, and the build
/// succeeds. Before, one token was asked for both scopes, the base's was not granted, and the
/// error said the registry "refused the credentials" that the token service had accepted.
#[test]
fn a_token_service_granting_one_scope_per_request_gets_one_repository_per_token() {
    let registry = token_registry(
        RegistryOptions {
            first_scope_only: true,
            namespace_users: vec![NamespaceUser {
                user: "carol".into(),
                password: "carol-other-secret".into(),
                namespace: "other".into(),
            }],
            ..RegistryOptions::default()
        },
        BASE_REPOSITORY,
    );
    let scratch = Scratch::new();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = registry.reference("lambda/fn:v1");
    let creds = format!("{ADMIN}:{ADMIN_PASSWORD}");
    let before = registry.token_requests().len();
    let output = run(&mut build(
        &scratch,
        &["--base", &base, "--tag", &target, "--creds", &creds],
    ));
    assert_no_secret(&output, &[ADMIN_PASSWORD]);
    let requests = registry.token_requests().split_off(before);
    assert_eq!(
        registry.tags("lambda/fn", Some((ADMIN, ADMIN_PASSWORD))),
        ["v1", "v1-amd64", "v1-arm64"]
    );
    for repository in ["lambda/base", "lambda/fn"] {
        assert!(
            requests.iter().any(|r| r.scopes.len() == 1
                && r.scopes[0].starts_with(&format!("repository:{repository}:"))
                && r.granted == r.scopes),
            "no token of its own for {repository}: {requests:?}"
        );
    }

    // Credentials the token service accepts, for an account without access to the target:
    // the error is about permission on that repository, never "refused the credentials".
    let output = run_unchecked(&mut build(
        &scratch,
        &[
            "--base",
            &base_reference(),
            "--tag",
            &registry.reference("lambda/denied:v1"),
            "--creds",
            "carol:carol-other-secret",
        ],
    ));
    assert_exit(
        &output,
        6,
        &[
            "accepted the credentials (from --creds)",
            "lambda/denied",
            "permission",
        ],
    );
    assert!(
        !stderr_of(&output).contains("refused the credentials"),
        "{}",
        stderr_of(&output)
    );
    assert_no_secret(&output, &["carol-other-secret", ADMIN_PASSWORD]);
}

/// `aws ecr get-login-password | … --username AWS --password-stdin`: the password comes from
/// stdin, never from the command line, so `ps` (here /proc/PID/cmdline, read while the build
/// waits for stdin) does not show it; one trailing newline is removed. `base pull` and `check`
/// take the same flags.
#[test]
fn username_and_password_stdin_keep_the_secret_off_the_command_line() {
    let registry = token_registry(RegistryOptions::default(), BASE_REPOSITORY);
    let scratch = Scratch::new();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = registry.reference("fn:v1");
    let mut child = build(
        &scratch,
        &[
            "--base",
            &base,
            "--tag",
            &target,
            "--username",
            ADMIN,
            "--password-stdin",
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for the exec (the build blocks reading stdin), then read its argv as `ps` does.
    let cmdline_path = format!("/proc/{}/cmdline", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let cmdline = loop {
        let cmdline = std::fs::read(&cmdline_path).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("--password-stdin") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(cmdline.contains("--password-stdin"), "{cmdline}");
    assert!(!cmdline.contains(ADMIN_PASSWORD), "{cmdline}");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{ADMIN_PASSWORD}\r\n").as_bytes())
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, 0, &[]);
    assert_no_secret(&output, &[ADMIN_PASSWORD]);
    assert_eq!(
        registry.tags("fn", Some((ADMIN, ADMIN_PASSWORD))),
        ["v1", "v1-amd64", "v1-arm64"]
    );

    let kit = format!("oci:{}", scratch.path("kit").display());
    let output = with_stdin(
        &mut command(
            &scratch,
            &[
                "base",
                "pull",
                &target,
                "--output",
                &kit,
                "--username",
                ADMIN,
                "--password-stdin",
            ],
        ),
        format!("{ADMIN_PASSWORD}\n"),
    );
    assert_exit(&output, 0, &[]);
    let output = with_stdin(
        &mut command(
            &scratch,
            &["check", &target, "--username", ADMIN, "--password-stdin"],
        ),
        ADMIN_PASSWORD,
    );
    assert!(
        !stderr_of(&output).contains("credentials"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr_of(&output)
    );

    // A wrong password is refused by the token service, and not shown.
    let output = with_stdin(
        &mut command(
            &scratch,
            &[
                "base",
                "pull",
                &target,
                "--username",
                ADMIN,
                "--password-stdin",
            ],
        ),
        "wrong-stdin-secret\n",
    );
    // The refusal names the flags that gave the credential (not --creds, nor --base-creds,
    // which `base pull` does not have), says what to check, and quotes the token service.
    let stderr = assert_exit(
        &output,
        6,
        &[
            "refused the credentials",
            "check the user name and password",
        ],
    );
    assert_no_secret(&output, &["wrong-stdin-secret"]);
    assert!(!stderr.contains("--base-creds"), "{stderr}");
    let output = run_unchecked(&mut command(
        &scratch,
        &["check", &target, "--creds", "admin:wrong-creds-secret"],
    ));
    let stderr = assert_exit(&output, 6, &["refused the credentials"]);
    assert!(!stderr.contains("--base-creds"), "{stderr}");
    assert_no_secret(&output, &["wrong-creds-secret"]);
}

/// A refused credential is named by the flags that gave it, and `check` calls what it reads
/// "the image", not "the base": found by trying `--password-stdin`, `check --creds` and
/// `base pull` against an htpasswd registry as a new user would (before, a wrong password
/// given with `--password-stdin` was "from --creds", one given to `check --creds` was "from
/// --base-creds", a flag `check` does not have, and the hint said to give credentials).
#[test]
fn a_refused_credential_is_named_by_the_flag_that_gave_it() {
    let registry = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::basic(ADMIN, ADMIN_PASSWORD),
        ..RegistryOptions::default()
    });
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let scratch = Scratch::new();
    let base = registry.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = registry.reference("fn:v1");
    let secret = "wrong-flag-secret";

    let output = with_stdin(
        &mut build(
            &scratch,
            &[
                "--base",
                &base,
                "--tag",
                &target,
                "--username",
                ADMIN,
                "--password-stdin",
            ],
        ),
        format!("{secret}\n"),
    );
    assert_exit(
        &output,
        6,
        &[
            "refused the credentials (from --username/--password-stdin)",
            "check the user name and password",
        ],
    );
    assert_no_secret(&output, &[secret]);

    let wrong = format!("{ADMIN}:{secret}");
    let output = run_unchecked(&mut command(&scratch, &["check", &base, "--creds", &wrong]));
    let stderr = assert_exit(&output, 6, &["refused the credentials (from --creds)"]);
    assert!(!stderr.contains("--base-creds"), "{stderr}");
    assert_no_secret(&output, &[secret]);

    // What `check` reads is "the image": a missing tag, and a registry that is not there.
    let creds = format!("{ADMIN}:{ADMIN_PASSWORD}");
    let missing = registry.reference("lambda/none:v9");
    let output = run_unchecked(&mut command(
        &scratch,
        &["check", &missing, "--creds", &creds],
    ));
    let stderr = assert_exit(&output, 4, &[&format!("image {missing} does not exist")]);
    assert!(!stderr.contains("base "), "{stderr}");
    let dead = free_port();
    let output = run_unchecked(&mut command(
        &scratch,
        &["check", &format!("127.0.0.1:{dead}/fn:v1")],
    ));
    let stderr = assert_exit(
        &output,
        6,
        &[&format!("it holds the image 127.0.0.1:{dead}/fn:v1 (")],
    );
    assert!(!stderr.contains("--offline"), "{stderr}");
}

/// When a registry wants credentials and none fits the repository, the error says what was
/// looked at: `auths` entries of the host's other namespaces, a helper that had none. Found by a
/// new user's trial: a push to `HOST/other/fn` with only `HOST/team` in auth.json, or with a
/// credHelpers helper that answers "not found", got the generic "log in" hint alone.
#[test]
fn what_was_looked_up_is_named_when_no_credential_fits() {
    let registry = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::basic(ADMIN, ADMIN_PASSWORD),
        ..RegistryOptions::default()
    });
    let scratch = Scratch::new();
    let host = registry.host();
    let auth_file = scratch.path("auth.json");
    write_json(
        &auth_file,
        &json!({ "auths": { format!("{host}/team"): auth(ADMIN, ADMIN_PASSWORD) } }),
    );
    let output = run_unchecked(
        build(
            &scratch,
            &[
                "--base",
                &base_reference(),
                "--tag",
                &registry.reference("other/fn:v1"),
            ],
        )
        .env("REGISTRY_AUTH_FILE", &auth_file),
    );
    assert_exit(
        &output,
        6,
        &[
            "wants credentials",
            &format!("has auths entries only for {host}/team"),
        ],
    );
    assert_no_secret(&output, &[ADMIN_PASSWORD]);

    // A credential helper that has nothing for the host is named too.
    let helpers = scratch.path("helpers");
    std::fs::create_dir_all(&helpers).unwrap();
    let helper = helpers.join("docker-credential-empty");
    std::fs::write(
        &helper,
        "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    write_json(
        &scratch.path("docker/config.json"),
        &json!({ "credHelpers": { host.clone(): "empty" } }),
    );
    let path = format!(
        "{}:{}",
        helpers.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = run_unchecked(
        build(
            &scratch,
            &[
                "--base",
                &base_reference(),
                "--tag",
                &registry.reference("fn:v1"),
            ],
        )
        .env("PATH", path),
    );
    assert_exit(
        &output,
        6,
        &[
            "wants credentials",
            "docker-credential-empty (credHelpers in",
        ],
    );
}
