//! `invoke --image` and `serve --image`: the built image run the way Lambda runs it, with no
//! container runtime. Images are built by `lambda-image build` on the stand-in provided.al2023
//! base (or changed afterwards with umoci, as users change images with other tools), read from
//! an OCI layout or from the distribution registry, and run as root (no user namespace) and as
//! `nobody` (an unprivileged user namespace), each where this machine allows it.
//!
//! What is checked from inside comes from a probe runtime in busybox sh that answers every
//! event with what it sees: its uid and gid, whether `/`, `/var/task` and `/tmp` take a write,
//! the size of `/tmp`, its pid, hostname, working directory, capabilities and how many
//! processes it can see.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::functions::echo_function;
use crate::support::local_lambda::{Serve, curl_post};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::runc::qemu_aarch64_binfmt;
use crate::support::*;

mod interrupted;

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
  answer="{\"uid\":$(busybox id -u),\"gid\":$(busybox id -g),\"root\":\"$root\",\"task\":\"$task\",\"tmp\":\"$tmp\",\"tmp_kb\":$tmp_kb,\"fill\":\"$fill\",\"pid\":$$,\"hostname\":\"$(busybox hostname)\",\"cwd\":\"$(pwd)\",\"caps\":\"$caps\",\"processes\":$processes,\"secret\":\"$secret\",\"handler\":\"$_HANDLER\",\"event\":$(busybox cat /tmp/event)}"
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
}

#[test]
fn a_probe_sees_what_lambda_enforces_as_root_and_through_a_user_namespace() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let image = build_image(
        work.path(),
        "probe",
        &[format!("{}={}", host_architecture(), probe.display())],
        &[],
    );
    let cache = cache_dir(work.path());
    let cache_flag = cache.to_str().unwrap();

    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache_flag,
        "--ephemeral-storage",
        "600",
        "--event",
        r#"{"probe": 1}"#,
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(report["outcome"], "response");
    let answer = &report["response"];
    assert_lambda_like(answer, 600, "as root");
    assert_eq!(answer["event"], json!({"probe": 1}));
    assert!(
        stderr_of(&output).contains("unpacked"),
        "{}",
        stderr_of(&output)
    );

    // The second run finds the tree in the cache. aws/aws-sam-cli#6570: /tmp is as large as
    // the ephemeral storage, so a function that writes more fails here as on Lambda.
    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache_flag,
        "--event",
        r#"{"fill": 1}"#,
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("cached"),
        "{}",
        stderr_of(&output)
    );
    let answer = &report["response"];
    assert_lambda_like(answer, 512, "as root, default storage");
    assert!(
        answer["fill"]
            .as_str()
            .unwrap_or_default()
            .contains("No space left on device"),
        "600 MB do not fit in 512 MB of /tmp: {answer}"
    );

    if !can_run_as_nobody() {
        eprintln!("skipped the user-namespace half: setpriv cannot run a command as nobody here");
        return;
    }
    let home = work.path().join("nobody-home");
    let (output, report) = invoke_as_nobody(
        &[
            "--image",
            &image,
            "--cache-dir",
            cache_flag,
            "--event",
            "{}",
        ],
        &home,
    );
    let stderr = stderr_of(&output);
    if stderr.contains("user namespace") && !output.status.success() {
        eprintln!("skipped the user-namespace half: {stderr}");
        return;
    }
    assert!(output.status.success(), "{stderr}");
    assert_lambda_like(&report["response"], 512, "as nobody, in a user namespace");
    // Found by trying it: the cache shared with root holds root's trees, and nobody cannot
    // write beside them; the tree is then unpacked for the run alone, with a warning.
    assert!(stderr.contains("temporary directory"), "{stderr}");

    // nobody's own (default) cache.
    std::fs::create_dir_all(&home).unwrap();
    run(Command::new("chown").arg("65534:65534").arg(&home));
    let (output, report) = invoke_as_nobody(&["--image", &image, "--event", "{}"], &home);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_lambda_like(&report["response"], 512, "as nobody, its own cache");
    assert!(home.join(".cache/lambda-image/rootfs").is_dir(), "{stderr}");
    let (output, _) = invoke_as_nobody(&["--image", &image, "--event", "{}"], &home);
    assert!(
        stderr_of(&output).contains("cached"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn the_echo_function_answers_invoke_image_from_a_layout_and_serve_image_from_a_registry() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the echo function is built for x86_64 hosts' images here");
        return;
    }
    let work = workdir();
    let echo = echo_function().display().to_string();
    let image = build_image(
        work.path(),
        "echo",
        std::slice::from_ref(&echo),
        &["--env", "ECHO_EXTRA=from-build"],
    );
    let cache = cache_dir(work.path());

    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--env",
        "AWS_LAMBDA_FUNCTION_NAME=image_fn",
        "--event",
        r#"{"from": "the layout"}"#,
    ]);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let answer = &report["response"];
    assert_eq!(answer["echo"], json!({"from": "the layout"}));
    assert_eq!(answer["function"], "image_fn");
    assert_eq!(answer["handler"], "bootstrap");
    assert_eq!(
        answer["environment"]["ECHO_EXTRA"], "from-build",
        "the image's Env"
    );
    assert_eq!(answer["environment"]["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(
        answer["environment"]["PATH"],
        BASE_ENV[2].trim_start_matches("PATH="),
        "the image's PATH"
    );
    assert!(
        stderr.contains("START RequestId"),
        "the emulator's log lines: {stderr}"
    );
    assert!(stderr.contains("REPORT RequestId"), "{stderr}");

    // The same function, pushed to the distribution registry and served from there.
    let registry = TestRegistry::start(RegistryOptions::default());
    let target = registry.reference("fn:v1");
    run(lambda_image().args([
        "build",
        "--quiet",
        "--base",
        &base_reference(),
        "--bootstrap",
        &echo,
        "--tag",
        &target,
    ]));
    let cache_flag = cache.to_str().unwrap().to_owned();
    let serve = Serve::start(&[
        "--image",
        &target,
        "--cache-dir",
        &cache_flag,
        "--timeout",
        "10",
    ]);
    let first = curl_post(&serve.invocations_url(), r#"{"from": "the registry"}"#);
    assert_eq!(first.status, 200, "{}", serve.stderr());
    let first = first.json();
    assert_eq!(first["echo"], json!({"from": "the registry"}));
    let second = curl_post(&serve.invocations_url(), r#"{"again": true}"#).json();
    assert_eq!(second["pid"], first["pid"], "warm between invocations");
    assert_eq!(second["invocation"], 2);
    assert!(serve.stop().success());
}

#[test]
fn a_dynamic_bootstrap_runs_on_the_images_glibc_and_a_library_only_the_image_has() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the glibc files included are the x86_64 host's");
        return;
    }
    let work = workdir();
    // libgreet.so exists only in the image (/var/task/lib, on the base's LD_LIBRARY_PATH); the
    // bootstrap is linked against it and glibc, and then execs the probe runtime with busybox.
    let library_source = work.path().join("greet.c");
    std::fs::write(
        &library_source,
        "const char *greeting(void) { return \"greetings from the image\"; }\n",
    )
    .unwrap();
    let library = work.path().join("libgreet.so");
    run(Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&library_source));
    let source = work.path().join("bootstrap.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n#include <unistd.h>\nconst char *greeting(void);\n\
         int main(void) {\n  fprintf(stderr, \"%s\\n\", greeting());\n  fflush(stderr);\n  \
         execl(\"/bin/sh\", \"sh\", \"/var/task/probe.sh\", (char *)0);\n  perror(\"execl\");\n  return 1;\n}\n",
    )
    .unwrap();
    let bootstrap = work.path().join("bootstrap");
    run(Command::new("gcc")
        .arg("-o")
        .arg(&bootstrap)
        .arg(&source)
        .arg(format!("-L{}", work.path().display()))
        .arg("-lgreet"));
    let probe = probe_script(work.path());
    let includes = [
        format!("{}:/var/task/lib/libgreet.so", library.display()),
        format!("{}:/var/task/probe.sh", probe.display()),
        "/lib/x86_64-linux-gnu/libc.so.6:/lib64/libc.so.6".to_owned(),
        "/lib64/ld-linux-x86-64.so.2:/lib64/ld-linux-x86-64.so.2".to_owned(),
    ];
    let mut extra: Vec<&str> = Vec::new();
    for include in &includes {
        extra.extend(["--include", include]);
    }
    let image = build_image(
        work.path(),
        "dynamic",
        &[bootstrap.display().to_string()],
        &extra,
    );
    let cache = cache_dir(work.path());
    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--event",
        r#"{"dynamic": true}"#,
    ]);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("greetings from the image"), "{stderr}");
    assert_eq!(report["response"]["event"], json!({"dynamic": true}));
    assert_eq!(report["response"]["uid"], 993);
}

#[test]
fn a_file_deleted_in_a_later_layer_by_another_tool_is_gone() {
    // A layer made by umoci that deletes a file of an earlier layer holds a whiteout
    // (`.wh.secret`); unpackers that skip whiteouts let deleted files come back
    // (opencontainers/umoci#224, concourse/registry-image-resource#284).
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let secret = work.path().join("secret");
    std::fs::write(&secret, "deleted later").unwrap();
    let include = format!("{}:/var/task/secret", secret.display());
    let image = build_image(
        work.path(),
        "whiteout",
        &[format!("{}={}", host_architecture(), probe.display())],
        &["--include", &include],
    );
    let layout = image
        .trim_start_matches("oci:")
        .trim_end_matches(":fn")
        .to_owned();
    let cache = cache_dir(work.path());
    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--event",
        "{}",
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        report["response"]["secret"], "ok",
        "there before the deletion"
    );

    let bundle = work.path().join("bundle");
    umoci(&[
        "unpack",
        "--rootless",
        "--image",
        &format!("{layout}:fn"),
        bundle.to_str().unwrap(),
    ]);
    std::fs::remove_file(bundle.join("rootfs/var/task/secret")).unwrap();
    umoci(&[
        "repack",
        "--image",
        &format!("{layout}:deleted"),
        bundle.to_str().unwrap(),
    ]);
    let (output, report) = invoke(&[
        "--image",
        &format!("oci:{layout}:deleted"),
        "--cache-dir",
        cache.to_str().unwrap(),
        "--event",
        "{}",
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        report["response"]["secret"]
            .as_str()
            .unwrap_or_default()
            .contains("No such file"),
        "the whiteout removed it: {}",
        report["response"]
    );
}

#[test]
fn the_arm64_image_of_an_index_runs_under_qemu() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    if let Err(reason) = qemu_aarch64_binfmt() {
        eprintln!("skipped: cannot run arm64 code here: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let image = build_image(
        work.path(),
        "both",
        &[
            format!("amd64={}", probe.display()),
            format!("arm64={}", probe.display()),
        ],
        &[],
    );
    let cache = cache_dir(work.path());
    let (output, report) = invoke(&[
        "--image",
        &image,
        "--arch",
        "arm64",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--timeout",
        "30",
        "--event",
        r#"{"arch": "arm64"}"#,
    ]);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(report["response"]["event"], json!({"arch": "arm64"}));
    assert_eq!(report["response"]["uid"], 993);
    assert!(stderr.contains("(arm64)"), "{stderr}");
}

#[test]
fn images_that_cannot_run_are_refused_with_what_to_do() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let image = build_image(
        work.path(),
        "one",
        &[format!("{}={}", host_architecture(), probe.display())],
        &[],
    );
    let cache = cache_dir(work.path());
    let cache_flag = cache.to_str().unwrap();

    // scratch is a base, not an image.
    let (output, _) = invoke(&["--image", "scratch", "--event", "{}"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("--base scratch"),
        "{}",
        stderr_of(&output)
    );

    // An architecture the image does not have.
    let other = if host_architecture() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let (output, _) = invoke(&[
        "--image",
        &image,
        "--arch",
        other,
        "--cache-dir",
        cache_flag,
        "--event",
        "{}",
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains(&format!("no linux/{other} image")),
        "{}",
        stderr_of(&output)
    );

    // No such layout.
    let (output, _) = invoke(&["--image", "oci:/nonexistent/layout:fn", "--event", "{}"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));

    // An entrypoint that is not in the image: the function cannot start (exit 9), and the
    // message says what Lambda reports.
    let layout = image
        .trim_start_matches("oci:")
        .trim_end_matches(":fn")
        .to_owned();
    umoci(&[
        "config",
        "--image",
        &format!("{layout}:fn"),
        "--tag",
        "missing",
        "--config.entrypoint",
        "/no/such/entrypoint",
    ]);
    let (output, report) = invoke(&[
        "--image",
        &format!("oci:{layout}:missing"),
        "--cache-dir",
        cache_flag,
        "--event",
        "{}",
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(9), "{stderr}");
    assert_eq!(report["outcome"], "exited", "{stderr}");
    assert!(stderr.contains("/no/such/entrypoint"), "{stderr}");
    assert!(stderr.contains("Runtime.InvalidEntrypoint"), "{stderr}");
    assert!(
        stderr.contains("hint: the image's entrypoint could not start")
            && !stderr.contains("keep asking for events"),
        "the hint fits an entrypoint that never ran: {stderr}"
    );

    // --ephemeral-storage outside Lambda's range, and image flags without --image.
    let (output, _) = invoke(&[
        "--image",
        &image,
        "--ephemeral-storage",
        "100",
        "--event",
        "{}",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let (output, _) = invoke(&[
        "--bootstrap",
        probe.to_str().unwrap(),
        "--arch",
        "arm64",
        "--event",
        "{}",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
}

/// A runtime in busybox sh that answers `{"count": N}`, N counting the events this process
/// answered (in its own `/tmp`, which a new sandbox starts empty): an event holding `"sleep"`
/// first sleeps 5 s, one holding `"crash"` makes it exit 3. With `MARKER` set, it starts
/// `busybox sleep $MARKER` in the background first, for finding what it left behind.
const COUNTING_RUNTIME: &str = r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
if [ -n "$MARKER" ]; then busybox sleep "$MARKER" & fi
while true; do
  busybox wget -q -S -O /tmp/event "$api/invocation/next" 2>/tmp/headers || exit 1
  id=$(busybox grep -i 'Lambda-Runtime-Aws-Request-Id' /tmp/headers | busybox cut -d: -f2 | busybox tr -d ' \r')
  if busybox grep -q sleep /tmp/event; then busybox sleep 5; fi
  if busybox grep -q crash /tmp/event; then exit 3; fi
  echo answered >> /tmp/answered
  count=$(busybox wc -l < /tmp/answered)
  busybox wget -q -O /dev/null --post-data "{\"count\":$count}" "$api/invocation/$id/response" || exit 1
done
"#;

/// `serve --image` of the counting runtime with `--timeout 1` and `extra` flags.
fn serve_counting(work: &Path, extra: &[&str]) -> Serve {
    let script = work.join("counting.sh");
    std::fs::write(&script, COUNTING_RUNTIME).unwrap();
    let image = build_image(
        work,
        "counting",
        &[format!("{}={}", host_architecture(), script.display())],
        &[],
    );
    let cache = cache_dir(work);
    let mut args = vec![
        "--image",
        &image,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--timeout",
        "1",
    ];
    args.extend_from_slice(extra);
    Serve::start(&args)
}

/// The `count` the counting runtime answered to `event`.
fn count_of(serve: &Serve, event: &str) -> Value {
    let answer = curl_post(&serve.invocations_url(), event);
    assert_eq!(answer.status, 200, "{event}: {}", serve.stderr());
    answer.json()["count"].clone()
}

#[test]
fn after_a_timeout_or_a_crash_the_restarted_sandbox_stays_warm() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let serve = serve_counting(work.path(), &[]);
    assert_eq!(count_of(&serve, r#""first""#), 1, "{}", serve.stderr());
    assert_eq!(count_of(&serve, r#""warm""#), 2, "{}", serve.stderr());

    // A restart happens while a request is served, on that request's thread, which ends after
    // it: the sandbox started then must outlive it (it died with it: every later request was
    // a cold start, after "exited while idle (signal: killed)").
    let timed_out = curl_post(&serve.invocations_url(), r#""sleep""#);
    assert!(
        timed_out.body.contains("Task timed out"),
        "{}",
        timed_out.body
    );
    assert_eq!(count_of(&serve, r#""cold""#), 1, "{}", serve.stderr());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        count_of(&serve, r#""warm""#),
        2,
        "the sandbox started after the timeout stays warm: {}",
        serve.stderr()
    );
    assert_eq!(count_of(&serve, r#""warm""#), 3, "{}", serve.stderr());

    let crashed = curl_post(&serve.invocations_url(), r#""crash""#);
    assert_eq!(crashed.status, 502, "{}", crashed.body);
    assert_eq!(count_of(&serve, r#""cold""#), 1, "{}", serve.stderr());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        count_of(&serve, r#""warm""#),
        2,
        "the sandbox started after the crash stays warm: {}",
        serve.stderr()
    );
    let stderr = serve.stderr();
    assert!(!stderr.contains("exited while idle"), "{stderr}");
    assert!(serve.stop().success());
}

#[test]
fn a_killed_serve_image_leaves_no_sandbox_process_behind() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let marker = "987655";
    let work = workdir();
    let serve = serve_counting(work.path(), &["--env", &format!("MARKER={marker}")]);
    // The first sandbox, from serve's start; a timeout; the second, from a request.
    assert_eq!(count_of(&serve, r#""first""#), 1, "{}", serve.stderr());
    let timed_out = curl_post(&serve.invocations_url(), r#""sleep""#);
    assert!(timed_out.body.contains("Task timed out"));
    assert_eq!(count_of(&serve, r#""cold""#), 1, "{}", serve.stderr());
    let left = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let command = std::fs::read(entry.path().join("cmdline")).ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // `busybox sleep MARKER` (serve's own command line holds MARKER too).
                let sleeping = format!("busybox\0sleep\0{marker}\0");
                (command == sleeping.as_bytes() && !stat.contains(") Z "))
                    .then(|| entry.file_name())
            })
            .count()
    };
    assert_eq!(left(), 1, "the sandbox's background process runs");
    serve.kill();
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        left() == 0
    });
    assert!(gone, "the sandbox outlived a SIGKILL of lambda-image");
}

/// This machine's architecture as the OCI names it.
fn host_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

#[test]
fn an_image_copied_by_skopeo_runs_from_a_docker_archive_and_an_oci_archive() {
    // skopeo writes the name of a docker-archive's image fully qualified
    // (`docker.io/my/fn:v1`) where `docker save` writes `my/fn:v1`; either spelling names it.
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let image = build_image(
        work.path(),
        "copied",
        &[format!("{}={}", host_architecture(), probe.display())],
        &[],
    );
    let docker_archive = work.path().join("with space").join("fn.tar");
    std::fs::create_dir_all(docker_archive.parent().unwrap()).unwrap();
    let oci_archive = work.path().join("fn-oci.tar");
    skopeo(&[
        "copy",
        "--quiet",
        &image,
        &format!("docker-archive:{}:my/fn:v1", docker_archive.display()),
    ]);
    skopeo(&[
        "copy",
        "--quiet",
        &image,
        &format!("oci-archive:{}:v1", oci_archive.display()),
    ]);
    let cache = cache_dir(work.path());
    for reference in [
        format!("docker-archive:{}:my/fn:v1", docker_archive.display()),
        format!(
            "docker-archive:{}:docker.io/my/fn:v1",
            docker_archive.display()
        ),
        format!("oci-archive:{}:v1", oci_archive.display()),
    ] {
        let (output, report) = invoke(&[
            "--image",
            &reference,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--event",
            r#"{"copied": true}"#,
        ]);
        assert!(
            output.status.success(),
            "{reference}: {}",
            stderr_of(&output)
        );
        assert_eq!(
            report["response"]["event"],
            json!({"copied": true}),
            "{reference}"
        );
    }
    let (output, _) = invoke(&[
        "--image",
        &format!("docker-archive:{}:my/other:v1", docker_archive.display()),
        "--event",
        "{}",
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("docker.io/my/fn:v1"),
        "names what it has: {stderr}"
    );
    assert!(stderr.contains("@N"), "{stderr}");
}
