//! The image runs: `lambda-image build` puts a function on the stand-in provided.al2023 base,
//! umoci unpacks the image, runc runs its own `Entrypoint` + `Cmd` (`/lambda-entrypoint.sh
//! bootstrap`) on the host network, and the bootstrap inside talks to `lambda-image serve
//! --external`, which `curl` invokes. For amd64 with the real echo function; for arm64 with a
//! busybox-wget runtime under qemu-user-static (skipped, saying why, when binfmt_misc cannot
//! run aarch64 executables). Needs root (runc); skipped with the reason otherwise.

use std::path::Path;

use crate::support::functions::echo_function;
use crate::support::local_lambda::{Serve, curl_post};
use crate::support::runc::{Container, cannot_run_containers, qemu_aarch64_binfmt, unpack_bundle};
use crate::support::*;
use serde_json::{Value, json};

/// A runtime in busybox sh: it answers each event with the machine it runs on, its handler
/// and the event. Uses only busybox applets, so it runs on the stand-in base.
const BUSYBOX_RUNTIME: &str = r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  busybox wget -q -S -O /tmp/event "$api/invocation/next" 2>/tmp/headers || exit 1
  id=$(busybox grep -i 'Lambda-Runtime-Aws-Request-Id' /tmp/headers | busybox cut -d: -f2 | busybox tr -d ' \r')
  answer="{\"machine\":\"$(busybox uname -m)\",\"handler\":\"$_HANDLER\",\"event\":$(busybox cat /tmp/event)}"
  busybox wget -q -O /dev/null --post-data "$answer" "$api/invocation/$id/response" || exit 1
done
"#;

/// Builds `bootstrap` (`[ARCH=]PATH`) on the stand-in base into `work/layout:fn`, unpacks it
/// into `work/bundle` for a runtime served by `serve`, and starts it under runc.
fn run_image(work: &Path, bootstrap: &str, serve: &Serve) -> (Value, Container) {
    let layout = work.join("layout");
    run(lambda_image().args([
        "build",
        "--quiet",
        "--bootstrap",
        bootstrap,
        "--base",
        &base_reference(),
        "--output",
        &format!("oci:{}:fn", layout.display()),
    ]));
    // The environment serve --external says an external runtime needs.
    let stderr = serve.stderr();
    let environment: Vec<(String, String)> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("  ")?.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    assert!(
        environment
            .iter()
            .any(|(key, value)| key == "AWS_LAMBDA_RUNTIME_API"
                && *value == serve.address.to_string()),
        "serve --external prints the Runtime API address:\n{stderr}"
    );
    let bundle = work.join("bundle");
    let config = unpack_bundle(&format!("{}:fn", layout.display()), &bundle, &environment);
    assert_eq!(
        config["process"]["args"],
        json!(["/lambda-entrypoint.sh", "bootstrap"]),
        "the image's Entrypoint + Cmd"
    );
    let id = format!(
        "lambda-image-test-{}-{}",
        std::process::id(),
        work.file_name().unwrap().to_string_lossy()
    );
    let container = Container::start(&bundle, &id);
    (config, container)
}

fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("image-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

#[test]
fn the_amd64_image_runs_under_runc_and_answers_curl_through_serve_external() {
    if let Some(reason) = cannot_run_containers() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the amd64 image is run on x86_64 hosts only");
        return;
    }
    let work = workdir();
    let serve = Serve::start(&["--external", "--timeout", "10"]);
    let (_config, container) =
        run_image(work.path(), &echo_function().display().to_string(), &serve);

    let first = curl_post(&serve.invocations_url(), r#"{"from": "the image"}"#);
    assert_eq!(
        first.status,
        200,
        "{}\n--- container ---\n{}",
        serve.stderr(),
        container.log()
    );
    let first = first.json();
    assert_eq!(first["echo"], json!({"from": "the image"}));
    assert_eq!(
        first["handler"], "bootstrap",
        "_HANDLER from the image's Cmd, set by its entrypoint"
    );
    assert_eq!(first["function"], "test_function");
    assert_eq!(
        first["environment"]["LAMBDA_TASK_ROOT"], "/var/task",
        "from the image config"
    );
    assert_eq!(
        first["environment"]["PATH"],
        BASE_ENV[2].trim_start_matches("PATH=")
    );
    let second = curl_post(&serve.invocations_url(), r#"{"from": "the image, again"}"#).json();
    assert_eq!(
        second["pid"], first["pid"],
        "the container's runtime stays warm"
    );
    assert_eq!(second["invocation"], 2);
    drop(container);
    assert!(serve.stop().success());
}

#[test]
fn the_arm64_image_runs_under_qemu_user_emulation() {
    if let Some(reason) = cannot_run_containers() {
        eprintln!("skipped: {reason}");
        return;
    }
    if let Err(reason) = qemu_aarch64_binfmt() {
        eprintln!("skipped: cannot run arm64 code here: {reason}");
        return;
    }
    let work = workdir();
    let runtime = work.path().join("bootstrap.sh");
    std::fs::write(&runtime, BUSYBOX_RUNTIME).unwrap();
    let serve = Serve::start(&["--external", "--timeout", "20"]);
    let (_config, container) =
        run_image(work.path(), &format!("arm64={}", runtime.display()), &serve);

    let answer = curl_post(&serve.invocations_url(), r#"{"arch": "arm64"}"#);
    assert_eq!(
        answer.status,
        200,
        "{}\n--- container ---\n{}",
        serve.stderr(),
        container.log()
    );
    assert_eq!(
        answer.json(),
        json!({"machine": "aarch64", "handler": "bootstrap", "event": {"arch": "arm64"}}),
        "the arm64 busybox answered, under qemu"
    );
    drop(container);
    assert!(serve.stop().success());
}
