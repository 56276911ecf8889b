//! The hint for a registry that wants credentials, or refuses them, names the flag that gives
//! credentials to that registry: `build`'s base registry takes `--base-creds` (its `--creds` go
//! to push targets only), a push target `--creds`, and the image `check` reads and the base
//! `base pull` copies `--creds` (their `--creds` are for it). The hint names the real host in
//! its `docker login HOST`, and following it works.
//!
//! Against the real distribution registry requiring a password (htpasswd), with the fixture
//! base copied into it under `mirror/lambda/provided:al2023` and named through
//! `LAMBDA_IMAGE_BASE_MIRROR`, as a network with a mirror does.

use std::process::{Command, Output};

use crate::support::registry::{RegistryAuth, RegistryOptions, TestRegistry};
use crate::support::*;
use serde_json::Value;

const USER: &str = "hints";
const PASSWORD: &str = "Right-password-for-hints";

struct Scene {
    dir: tempfile::TempDir,
    registry: TestRegistry,
}

impl Scene {
    fn new() -> Scene {
        let registry = TestRegistry::start(RegistryOptions {
            auth: RegistryAuth::basic(USER, PASSWORD),
            ..RegistryOptions::default()
        });
        registry.skopeo_copy_to(&base_reference(), "mirror/lambda/provided:al2023");
        let dir = tempfile::Builder::new()
            .prefix("credential-hints-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        Scene { dir, registry }
    }

    /// `lambda-image ARGS --json`, isolated from the machine's credentials, with the mirror set.
    fn run(&self, args: &[&str]) -> (Output, Value) {
        let mut command: Command = lambda_image();
        command
            .args(args)
            .arg("--json")
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env(
                "LAMBDA_IMAGE_BASE_MIRROR",
                format!("{}/mirror/lambda", self.registry.host()),
            );
        let output = run_unchecked(&mut command);
        let value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (output, value)
    }

    fn out(&self, name: &str) -> String {
        format!("oci:{}", self.dir.path().join(name).display())
    }
}

/// Checks that `output` is the registry error (6) whose hint names `flag` and not `other`, and
/// `docker login HOST`.
fn expect_hint(
    scenario: &str,
    scene: &Scene,
    (output, value): &(Output, Value),
    flag: &str,
    other: &str,
) {
    let context = format!(
        "{scenario}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        stderr_of(output)
    );
    assert_eq!(output.status.code(), Some(6), "{context}");
    let hint = value["error"]["hint"].as_str().expect(&context);
    assert!(hint.contains(flag), "{context}");
    assert!(!hint.contains(other), "{context}");
    let login = format!("docker login {}", scene.registry.host());
    assert!(hint.contains(&login), "{context}");
    assert!(stderr_of(output).contains(flag), "{context}");
}

#[test]
fn each_registry_role_is_told_the_flag_that_reaches_it() {
    let scene = Scene::new();
    let bootstrap = fixtures().bootstrap_amd64.display().to_string();
    let right = format!("{USER}:{PASSWORD}");
    let wrong = format!("{USER}:wrong-password");
    let base_creds = "--base-creds USER:PASS";
    let creds = "--creds USER:PASS";

    // build: the base's registry wants a password: --base-creds, not --creds.
    let out = scene.out("built");
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "-q", "--bootstrap", &bootstrap, "-o", &out];
        args.extend_from_slice(extra);
        scene.run(&args)
    };
    expect_hint(
        "build, base without creds",
        &scene,
        &build(&[]),
        base_creds,
        "--creds ",
    );
    expect_hint(
        "build, base with --creds (which go to push targets only)",
        &scene,
        &build(&["--creds", &right]),
        base_creds,
        "--creds ",
    );
    expect_hint(
        "build, base with a wrong --base-creds",
        &scene,
        &build(&["--base-creds", &wrong]),
        base_creds,
        "--creds ",
    );
    // Following the hint works.
    let (output, value) = build(&["--base-creds", &right]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(value["error"].is_null(), "{value}");

    // build: a push target wants a password: --creds.
    let target = scene.registry.reference("fn:v1");
    let local_base = base_reference();
    let push = |extra: &[&str]| {
        let mut args = vec![
            "build",
            "-q",
            "--bootstrap",
            &bootstrap,
            "--base",
            &local_base,
            "--tag",
            &target,
        ];
        args.extend_from_slice(extra);
        scene.run(&args)
    };
    expect_hint("build, push target", &scene, &push(&[]), creds, base_creds);
    expect_hint(
        "build, push target with --base-creds",
        &scene,
        &push(&["--base-creds", &right]),
        creds,
        base_creds,
    );

    // check IMAGE and base pull: their --creds are for what they read.
    let image = scene.registry.reference("mirror/lambda/provided:al2023");
    expect_hint(
        "check IMAGE",
        &scene,
        &scene.run(&["check", &image]),
        creds,
        base_creds,
    );
    expect_hint(
        "check IMAGE with a wrong --creds",
        &scene,
        &scene.run(&["check", &image, "--creds", &wrong]),
        creds,
        base_creds,
    );
    let kit = scene.out("kit");
    expect_hint(
        "base pull",
        &scene,
        &scene.run(&["base", "pull", "provided.al2023", "--output", &kit]),
        creds,
        base_creds,
    );
}

/// Host names are case-insensitive: `LOCALHOST:PORT` is loopback (plain HTTP), in the mirror
/// variable, `--base` and `--tag` alike, and the credentials for it are the host's.
#[test]
fn an_upper_case_loopback_host_is_loopback() {
    let scene = Scene::new();
    let bootstrap = fixtures().bootstrap_amd64.display().to_string();
    let right = format!("{USER}:{PASSWORD}");
    let upper = format!("LOCALHOST:{}", scene.registry.port());
    let base = format!("{upper}/mirror/lambda/provided:al2023");
    let tag = format!("{upper}/fn:upper");
    let mut command = lambda_image();
    command
        .args(["build", "-q", "--bootstrap", &bootstrap, "--base", &base])
        .args(["--base-creds", &right, "--tag", &tag, "--creds", &right])
        .env("HOME", scene.dir.path())
        .env("DOCKER_CONFIG", scene.dir.path().join("docker"))
        .env("XDG_CACHE_HOME", scene.dir.path().join("cache"))
        .env("LAMBDA_IMAGE_BASE_MIRROR", format!("{upper}/mirror/lambda"));
    run(&mut command);
    assert!(
        scene
            .registry
            .tags("fn", Some((USER, PASSWORD)))
            .contains(&"upper".to_owned())
    );
}
