//! Images in a registry that wants credentials: `--creds`, or `--username` with the password
//! on stdin (never on the command line, where `ps` shows it); a wrong password refused without
//! showing it; and `serve --image` refusing a port in use before it pulls anything.

use std::io::Write;
use std::process::Stdio;

use crate::support::registry::RegistryAuth;

use super::*;

const USER: &str = "runner";
const PASSWORD: &str = "s3cret-Pw!";

/// `lambda-image invoke ARGS --json` with `stdin` written to its stdin.
fn invoke_with_stdin(args: &[&str], stdin: &str) -> (Output, Value) {
    let mut child = Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_lambda-image"))
        .arg("invoke")
        .args(args)
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

#[test]
fn a_registry_image_runs_with_the_password_on_stdin_and_a_wrong_one_is_refused_unshown() {
    // Found by trying it: the hint for missing credentials offered --username and
    // --password-stdin, which invoke and serve did not take.
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let registry = TestRegistry::start(RegistryOptions {
        auth: RegistryAuth::basic(USER, PASSWORD),
        ..RegistryOptions::default()
    });
    let target = registry.reference("fn:v1");
    let creds = format!("{USER}:{PASSWORD}");
    run(lambda_image().args([
        "build",
        "--quiet",
        "--base",
        &base_reference(),
        "--bootstrap",
        &format!("{}={}", host_architecture(), probe.display()),
        "--tag",
        &target,
        "--creds",
        &creds,
    ]));
    let cache = cache_dir(work.path());
    let cache_flag = cache.to_str().unwrap();

    let (output, _) = invoke_cached(&target, cache_flag);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("--password-stdin"), "{stderr}");

    let login = [
        "--image",
        &target,
        "--cache-dir",
        cache_flag,
        "--username",
        USER,
        "--password-stdin",
    ];
    let mut with_event = login.to_vec();
    with_event.extend(["--event", r#"{"logged": "in"}"#]);
    let (output, report) = invoke_with_stdin(&with_event, &format!("{PASSWORD}\n"));
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(report["response"]["event"], json!({"logged": "in"}));

    // stdin cannot carry both the password and the event.
    let (output, _) = invoke_with_stdin(&login, &format!("{PASSWORD}\n"));
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--event"), "{stderr}");

    let (output, report) = invoke_with_stdin(&with_event, "not-the-password\n");
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    assert!(!report.to_string().contains("not-the-password"), "{report}");
}

#[test]
fn serve_image_refuses_a_port_in_use_before_it_pulls_anything() {
    // Found by trying it: the image was pulled and unpacked first, and only then the port
    // refused; with a registry image the credentials error came instead of the port's.
    let work = workdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let cache = cache_dir(work.path());
    let output = run_unchecked(lambda_image().args([
        "serve",
        "--image",
        "127.0.0.1:9/no/such:image",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--port",
        &port,
    ]));
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert!(!cache.join("rootfs").exists(), "nothing unpacked");
}
