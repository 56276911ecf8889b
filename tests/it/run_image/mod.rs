//! `invoke --image` and `serve --image`: the built image run the way Lambda runs it, with no
//! container runtime. Images are built by `lambda-image build` on the stand-in provided.al2023
//! base (or changed afterwards with umoci, as users change images with other tools), read from
//! an OCI layout or from the distribution registry, and run as root (no user namespace) and as
//! `nobody` (an unprivileged user namespace), each where this machine allows it.
//!
//! What is checked from inside comes from a probe runtime in busybox sh that answers every
//! event with what it sees: its uid and gid, whether `/`, `/var/task` and `/tmp` take a write,
//! the size of `/tmp`, its pid, hostname, working directory, capabilities, how many processes
//! it can see, and its limits on open files and processes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::functions::echo_function;
use crate::support::local_lambda::{Serve, curl_post};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::runc::qemu_aarch64_binfmt;
use crate::support::*;

mod cache;
mod functions;
mod interrupted;
mod refusals;
mod registries;
mod sandbox_view;
mod sources;
mod warm;

/// A runtime in busybox sh that reports what it sees from inside. An event holding `"fill"`
/// also writes 600 MB to /tmp first, and reports how that went.
const PROBE_RUNTIME: &str = r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
try() { if out=$("$@" 2>&1 >/dev/null); then echo ok; else echo "$out" | busybox tr -d '"\n'; fi; }
while true; do
  busybox wget -q -S -O /tmp/event "$api/invocation/next" 2>/tmp/headers || exit 1
  id=$(busybox grep -i 'Lambda-Runtime-Aws-Request-Id' /tmp/headers | busybox cut -d: -f2 | busybox tr -d ' \r')
  fill=none
  if busybox grep -q fill /tmp/event; then
    fill=$(try busybox dd if=/dev/zero of=/tmp/fill bs=1048576 count=600)
    busybox rm -f /tmp/fill
  fi
  root=$(try busybox touch /probe)
  task=$(try busybox touch /var/task/probe)
  tmp=$(try busybox touch /tmp/probe)
  tmp_kb=$(busybox df -k /tmp | busybox tail -n 1 | busybox awk '{print $2}')
  caps=$(busybox grep CapEff /proc/self/status | busybox awk '{print $2}')
  processes=$(busybox ls /proc | busybox grep -c '^[0-9]')
  secret=$(try busybox cat /var/task/secret)
  limits="$(ulimit -Sn) $(ulimit -Hn) $(ulimit -Su) $(ulimit -Hu)"
  answer="{\"uid\":$(busybox id -u),\"gid\":$(busybox id -g),\"root\":\"$root\",\"task\":\"$task\",\"tmp\":\"$tmp\",\"tmp_kb\":$tmp_kb,\"fill\":\"$fill\",\"pid\":$$,\"hostname\":\"$(busybox hostname)\",\"cwd\":\"$(pwd)\",\"caps\":\"$caps\",\"processes\":$processes,\"secret\":\"$secret\",\"limits\":\"$limits\",\"handler\":\"$_HANDLER\",\"event\":$(busybox cat /tmp/event)}"
  busybox wget -q -O /dev/null --post-data "$answer" "$api/invocation/$id/response" || exit 1
done
"#;

fn workdir() -> tempfile::TempDir {
    let work = tempfile::Builder::new()
        .prefix("run-image-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    // Readable by `nobody`, for the runs through a user namespace.
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    work
}

/// Why the sandbox cannot run here at all, if it cannot: `invoke --image` on an image that
/// does not exist fails before anything else only when the kernel refuses the namespaces.
fn cannot_run_images() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("images run on Linux only".to_owned());
    }
    None
}

/// Builds `bootstrap` (`[ARCH=]PATH` arguments) on the stand-in base into `DIR:fn`; returns
/// the `oci:DIR:fn` reference.
fn build_image(work: &Path, name: &str, bootstraps: &[String], extra: &[&str]) -> String {
    let layout = work.join(name);
    let mut command = lambda_image();
    command.args(["build", "--quiet", "--base", &base_reference()]);
    for bootstrap in bootstraps {
        command.args(["--bootstrap", bootstrap]);
    }
    command
        .args(extra)
        .args(["--output", &format!("oci:{}:fn", layout.display())]);
    run(&mut command);
    format!("oci:{}:fn", layout.display())
}

/// The probe runtime built on the stand-in base for this machine's architecture, as
/// `work/NAME:fn`; returns its `oci:` reference.
fn probe_image(work: &Path, name: &str) -> String {
    let probe = probe_script(work);
    build_image(
        work,
        name,
        &[format!("{}={}", host_architecture(), probe.display())],
        &[],
    )
}

/// The OCI layout directory of an `oci:DIR:TAG` reference.
fn layout_of(image: &str) -> PathBuf {
    let (layout, _tag) = image.trim_start_matches("oci:").rsplit_once(':').unwrap();
    PathBuf::from(layout)
}

fn probe_script(work: &Path) -> PathBuf {
    let script = work.join("probe.sh");
    std::fs::write(&script, PROBE_RUNTIME).unwrap();
    script
}

fn cache_dir(work: &Path) -> PathBuf {
    let cache = work.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    cache
}

/// `invoke --image IMAGE --cache-dir CACHE --event {}` ([`invoke`]).
fn invoke_cached(image: &str, cache: &str) -> (Output, Value) {
    invoke(&["--image", image, "--cache-dir", cache, "--event", "{}"])
}

/// `lambda-image invoke ARGS --json`, as this user, within two minutes.
fn invoke(args: &[&str]) -> (Output, Value) {
    let output = run_unchecked(
        Command::new("timeout")
            .arg("120")
            .arg(env!("CARGO_BIN_EXE_lambda-image"))
            .arg("invoke")
            .args(args)
            .arg("--json")
            .stdin(std::process::Stdio::null()),
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// Whether `setpriv` can run commands as `nobody` here.
fn can_run_as_nobody() -> bool {
    Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "true",
        ])
        .status()
        .is_ok_and(|status| status.success())
}

/// `lambda-image invoke ARGS --json` as `nobody` (uid and gid 65534, no groups).
fn invoke_as_nobody(args: &[&str], home: &Path) -> (Output, Value) {
    let output = run_unchecked(
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(["timeout", "120"])
            .arg(env!("CARGO_BIN_EXE_lambda-image"))
            .arg("invoke")
            .args(args)
            .arg("--json")
            .env("HOME", home)
            .env_remove("XDG_CACHE_HOME")
            .stdin(std::process::Stdio::null()),
    );
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

/// What Lambda enforces, as the probe reports it (aws/aws-sam-cli#2895: a local run with a
/// writable filesystem hid bugs that only showed on Lambda; localstack/localstack#7722: the
/// function ran as root locally and as sbx_user1051 on Lambda).
fn assert_lambda_like(answer: &Value, tmp_mb: u64, context: &str) {
    assert_eq!(answer["uid"], 993, "{context}");
    assert_eq!(answer["gid"], 993, "{context}");
    assert_eq!(
        answer["caps"], "0000000000000000",
        "no capabilities: {context}"
    );
    for place in ["root", "task"] {
        let message = answer[place].as_str().unwrap_or_default();
        assert!(
            message.contains("Read-only file system"),
            "{place} must be read-only: {context}"
        );
    }
    assert_eq!(answer["tmp"], "ok", "{context}");
    assert_eq!(
        answer["tmp_kb"],
        tmp_mb * 1024,
        "/tmp is a tmpfs of the size asked: {context}"
    );
    assert_eq!(answer["hostname"], "localhost", "{context}");
    assert_eq!(
        answer["cwd"], "/var/task",
        "the image's WorkingDir: {context}"
    );
    assert_eq!(
        answer["handler"], "bootstrap",
        "Cmd, through the image's entrypoint: {context}"
    );
    assert_eq!(
        answer["pid"], 2,
        "the runtime is the namespace's second process, under its init: {context}"
    );
    assert!(
        answer["processes"].as_u64().is_some_and(|count| count < 10),
        "it sees its own processes only: {context}"
    );
    assert_eq!(
        answer["limits"], "1024 1024 1024 1024",
        "Lambda's 1,024 open files and processes, soft and hard: {context}"
    );
}

/// This machine's architecture as the OCI names it.
fn host_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}
