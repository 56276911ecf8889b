//! `lambda-image invoke` and `lambda-image serve` with a real `lambda_runtime` function (the
//! echo function of `tests/functions/echo`), shell-script bootstraps, the real `curl`, and a
//! plain HTTP client playing the runtime. The image tests (runc, qemu) are in
//! `tests/it/invoke_image.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::functions::echo_function;
use crate::support::local_lambda::{Serve, curl_post};
use crate::support::*;
use serde_json::{Value, json};

/// Runs `lambda-image invoke --bootstrap BOOTSTRAP ARGS`, with `stdin` as its input.
fn invoke(bootstrap: &str, args: &[&str], stdin: &[u8]) -> Output {
    with_stdin(
        lambda_image()
            .args(["invoke", "--bootstrap", bootstrap])
            .args(args)
            .env_remove("AWS_REGION")
            .env("AWS_DEFAULT_REGION", "eu-central-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST")
            .env("HOME", "/home/not-for-the-function"),
        stdin,
    )
}

fn echo() -> String {
    echo_function().display().to_string()
}

fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .expect("lambda-image exits, it is not killed")
}

/// The one JSON document on stdout.
fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON document ({error}):\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(output)
        )
    })
}

/// The JSON after `prefix` on a line of stderr.
fn stderr_json(output: &Output, prefix: &str) -> Value {
    let stderr = stderr_of(output);
    let line = stderr
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
}

/// The pid the echo function printed at start (`echo function pid N`).
fn echo_pid(stderr: &str) -> u32 {
    stderr
        .lines()
        .find_map(|line| line.strip_prefix("echo function pid "))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("the echo function did not start:\n{stderr}"))
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
fn process_is_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| stat.contains(") Z "))
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn script(directory: &Path, name: &str, text: &str) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn invoke_prints_the_functions_answer_and_gives_it_lambdas_environment() {
    let event = json!({"hello": "world", "n": [1, 2, 3]});
    let before = epoch_ms();
    let output = invoke(
        &echo(),
        &[
            "--event",
            &event.to_string(),
            "--handler",
            "my.handler",
            "--memory",
            "512",
            "--env",
            "ECHO_EXTRA=from --env",
        ],
        b"",
    );
    assert_eq!(code(&output), 0, "{}", stderr_of(&output));
    let answer = stdout_json(&output);
    assert_eq!(answer["echo"], event);
    assert_eq!(answer["handler"], "my.handler");
    assert_eq!(answer["function"], "test_function");
    assert_eq!(answer["invocation"], 1);
    assert_eq!(
        answer["invoked_function_arn"],
        "arn:aws:lambda:eu-central-1:012345678912:function:test_function"
    );
    // Delivered between `before` and now, with the default timeout of 3 s.
    let deadline = answer["deadline_ms"].as_u64().unwrap();
    assert!(
        deadline >= before + 3_000 && deadline <= epoch_ms() + 3_000,
        "{deadline}"
    );

    let environment = &answer["environment"];
    assert_eq!(environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(environment["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(environment["AWS_REGION"], "eu-central-1");
    assert_eq!(environment["AWS_DEFAULT_REGION"], "eu-central-1");
    assert_eq!(environment["AWS_ACCESS_KEY_ID"], "AKIDLOCALTEST");
    assert_eq!(environment["ECHO_EXTRA"], "from --env");
    assert_eq!(environment["TZ"], ":UTC");
    assert_eq!(
        environment["LAMBDA_RUNTIME_DIR"],
        Path::new(&echo()).parent().unwrap().to_str().unwrap()
    );
    assert!(
        environment["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(
        environment.get("HOME"),
        None,
        "the caller's environment is not passed on"
    );

    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("echo function pid"),
        "the function's logs go to stderr:\n{stderr}"
    );
    assert!(stderr.contains("REPORT RequestId: "), "{stderr}");
}

#[test]
fn invoke_reads_the_event_from_a_file_or_from_stdin() {
    let directory = tempfile::tempdir().unwrap();
    let event_file = directory.path().join("event.json");
    std::fs::write(&event_file, br#"{"from": "file"}"#).unwrap();
    let from_file = invoke(
        &echo(),
        &["--event", &format!("@{}", event_file.display())],
        b"",
    );
    assert_eq!(code(&from_file), 0, "{}", stderr_of(&from_file));
    assert_eq!(stdout_json(&from_file)["echo"], json!({"from": "file"}));

    let from_stdin = invoke(&echo(), &[], br#"{"from": "stdin"}"#);
    assert_eq!(code(&from_stdin), 0, "{}", stderr_of(&from_stdin));
    assert_eq!(stdout_json(&from_stdin)["echo"], json!({"from": "stdin"}));

    // `@-` is stdin, as curl spells it, not a file named `-`.
    let at_dash = invoke(&echo(), &["--event", "@-"], br#"{"from": "@-"}"#);
    assert_eq!(code(&at_dash), 0, "{}", stderr_of(&at_dash));
    assert_eq!(stdout_json(&at_dash)["echo"], json!({"from": "@-"}));
}

#[test]
fn a_handler_error_exits_8_with_the_error_json_on_stderr() {
    let output = invoke(
        &echo(),
        &["--event", r#"{"fail": "the cake is a lie"}"#],
        b"",
    );
    assert_eq!(code(&output), 8, "{}", stderr_of(&output));
    assert!(output.stdout.is_empty(), "stdout carries only responses");
    let error = stderr_json(&output, "lambda-image: error: function error: ");
    assert_eq!(error["errorMessage"], "the cake is a lie");
    assert!(
        error["errorType"]
            .as_str()
            .is_some_and(|kind| !kind.is_empty()),
        "{error}"
    );
}

#[test]
fn an_init_error_exits_9_and_shows_what_the_bootstrap_said() {
    let output = invoke(
        &echo(),
        &["--event", "{}", "--env", "ECHO_FAIL_INIT=1"],
        b"",
    );
    assert_eq!(code(&output), 9, "{}", stderr_of(&output));
    assert!(output.stdout.is_empty());
    let error = stderr_json(&output, "lambda-image: error: init error: ");
    assert_eq!(
        error,
        json!({"errorMessage": "ECHO_FAIL_INIT is set", "errorType": "EchoInitError"})
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("echo function: init failed: ECHO_FAIL_INIT is set"),
        "{stderr}"
    );

    // A runtime that panics at init says nothing to the API: it exits before answering.
    let panicked = invoke(
        &echo(),
        &["--event", "{}", "--env", "ECHO_FAIL_INIT=panic"],
        b"",
    );
    assert_eq!(code(&panicked), 9, "{}", stderr_of(&panicked));
    let stderr = stderr_of(&panicked);
    assert!(
        stderr.contains("ECHO_FAIL_INIT=panic"),
        "the panic message is shown:\n{stderr}"
    );
    assert!(
        stderr.contains("Runtime exited with error: exit status 101"),
        "{stderr}"
    );
}

#[test]
fn a_bootstrap_that_exits_without_answering_exits_9() {
    let directory = tempfile::tempdir().unwrap();
    let quitter = script(
        directory.path(),
        "bootstrap",
        "#!/bin/sh\necho 'no runtime loop here' >&2\nexit 0\n",
    );
    let output = invoke(
        &format!("amd64={}", quitter.display()),
        &["--event", "{}"],
        b"",
    );
    assert_eq!(code(&output), 9, "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("no runtime loop here"), "{stderr}");
    assert!(
        stderr.contains(
            "the bootstrap exited before answering: Runtime exited without providing a reason"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
}

#[test]
fn a_timeout_kills_the_bootstrap_and_exits_10() {
    let bootstrap = echo(); // built (once) before the clock starts
    let started = Instant::now();
    let output = invoke(
        &bootstrap,
        &["--timeout", "1", "--event", r#"{"sleep_ms": 30000}"#],
        b"",
    );
    let elapsed = started.elapsed();
    assert_eq!(code(&output), 10, "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("Task timed out after 1.00 seconds"),
        "{stderr}"
    );
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    assert!(
        process_is_gone(echo_pid(&stderr)),
        "the timed-out bootstrap still runs"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_no_panic() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing.json");
    let cases: Vec<(Vec<String>, &str)> = vec![
        // An event that is not JSON is delivered unchanged, as the RIE and `serve` do it
        // (tests/it/lambda_fidelity/emulator.rs); it is not bad input.
        (
            vec!["--event".into(), format!("@{}", missing.display())],
            "cannot read the event file",
        ),
        (
            vec!["--env".into(), "AWS_LAMBDA_RUNTIME_API=1.2.3.4:1".into()],
            "cannot be set",
        ),
        (
            vec!["--memory".into(), "64".into()],
            "outside Lambda's range",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = invoke(&echo(), &args, b"{}");
        let stderr = stderr_of(&output);
        assert_eq!(code(&output), 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("lambda-image: error: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("echo function pid"),
            "{stderr}"
        );
    }
    let no_bootstrap = invoke(
        &directory.path().join("nothing").display().to_string(),
        &["--event", "{}"],
        b"",
    );
    assert_eq!(code(&no_bootstrap), 3, "a rejected bootstrap, as in build");
    assert!(stderr_of(&no_bootstrap).contains("does not exist"));
    let zero_timeout = invoke(&echo(), &["--timeout", "0"], b"{}");
    assert_eq!(code(&zero_timeout), 2, "clap's usage errors are 2 as well");
}

#[test]
fn a_bootstrap_for_another_architecture_is_refused_with_a_qemu_hint() {
    let (host_arch, foreign, foreign_name) = if cfg!(target_arch = "x86_64") {
        ("x86_64", &fixtures().bootstrap_arm64, "qemu-aarch64")
    } else {
        ("arm64", &fixtures().bootstrap_amd64, "qemu-x86_64")
    };
    let registered = std::fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/{foreign_name}"))
        .is_ok_and(|state| state.starts_with("enabled"));
    let output = invoke(&foreign.display().to_string(), &["--event", "{}"], b"");
    let stderr = stderr_of(&output);
    // Run through qemu it starts and exits without answering (9); refused, it is a rejected
    // bootstrap (3).
    assert_eq!(code(&output), if registered { 9 } else { 3 }, "{stderr}");
    if registered {
        // binfmt_misc runs it through qemu: the fixture prints and exits without answering.
        assert!(stderr.contains("hello from bootstrap"), "{stderr}");
        assert!(stderr.contains("exited before answering"), "{stderr}");
    } else {
        assert!(stderr.contains("cannot run here"), "{stderr}");
        assert!(
            stderr.contains(&format!("this machine is {host_arch}")),
            "{stderr}"
        );
        assert!(stderr.contains("qemu-user-static"), "{stderr}");
    }
}

#[test]
fn serve_answers_curl_with_the_bootstrap_kept_warm() {
    let serve = Serve::start(&["--bootstrap", &echo(), "--handler", "served.handler"]);
    let url = serve.invocations_url();
    let first = curl_post(&url, r#"{"call": 1}"#);
    let second = curl_post(&url, r#"{"call": 2}"#);
    assert_eq!(
        (first.status, second.status),
        (200, 200),
        "{}",
        serve.stderr()
    );
    let (first, second) = (first.json(), second.json());
    assert_eq!(first["echo"], json!({"call": 1}));
    assert_eq!(second["echo"], json!({"call": 2}));
    assert_eq!(first["handler"], "served.handler");
    assert_eq!(
        first["pid"], second["pid"],
        "one warm bootstrap served both"
    );
    assert_eq!(
        (first["invocation"].as_u64(), second["invocation"].as_u64()),
        (Some(1), Some(2))
    );

    let failed = curl_post(&url, r#"{"fail": "nope"}"#);
    assert_eq!(
        failed.status, 200,
        "function errors are 200, as the RIE answers them"
    );
    assert_eq!(
        failed.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(failed.json()["errorMessage"], "nope");

    let pid = first["pid"].as_u64().unwrap() as u32;
    let status = serve.stop();
    assert!(status.success(), "serve exits 0 on SIGTERM: {status}");
    assert!(process_is_gone(pid), "the bootstrap outlived serve");
}

#[test]
fn serve_starts_a_fresh_bootstrap_after_a_timeout() {
    let serve = Serve::start(&["--bootstrap", &echo(), "--timeout", "1"]);
    let url = serve.invocations_url();
    let warm = curl_post(&url, "{}").json();
    let timed_out = curl_post(&url, r#"{"sleep_ms": 30000}"#);
    assert_eq!(timed_out.status, 200);
    assert_eq!(timed_out.body, "Task timed out after 1.00 seconds");
    let fresh = curl_post(&url, "{}").json();
    assert_ne!(fresh["pid"], warm["pid"], "a new bootstrap answered");
    assert_eq!(fresh["invocation"], 1);
    assert!(process_is_gone(warm["pid"].as_u64().unwrap() as u32));
}

#[test]
fn the_runtime_api_checks_request_ids_like_lambda() {
    let serve = Serve::start(&["--external", "--timeout", "30"]);
    let api = format!("http://{}/2018-06-01/runtime", serve.address);
    let url = serve.invocations_url();
    let invoker = std::thread::spawn(move || curl_post(&url, r#"{"from": "curl"}"#));

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let next = client.get(format!("{api}/invocation/next")).send().unwrap();
    assert_eq!(next.status(), 200);
    let header = |name: &str| next.headers()[name].to_str().unwrap().to_owned();
    let request_id = header("Lambda-Runtime-Aws-Request-Id");
    let deadline: u128 = header("Lambda-Runtime-Deadline-Ms").parse().unwrap();
    assert!(header("Lambda-Runtime-Invoked-Function-Arn").ends_with(":function:test_function"));
    assert!(header("Lambda-Runtime-Trace-Id").starts_with("Root=1-"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(
        deadline > now + 20_000 && deadline <= now + 30_000,
        "deadline = now + --timeout"
    );
    assert_eq!(next.text().unwrap(), r#"{"from": "curl"}"#);
    let init_error = client
        .post(format!("{api}/init/error"))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(
        init_error.status(),
        403,
        "init is over once the runtime took an event"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&init_error.text().unwrap()).unwrap()["errorType"],
        "InvalidStateTransition"
    );

    let post = |id: &str, body: &str| {
        let response = client
            .post(format!("{api}/invocation/{id}/response"))
            .body(body.to_owned())
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_str::<Value>(&response.text().unwrap()).unwrap(),
        )
    };
    let invalid = json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"});
    assert_eq!(post("not-the-request-id", "{}"), (400, invalid.clone()));
    assert_eq!(
        post(&request_id, r#"{"answered": true}"#),
        (202, json!({"status": "OK"}))
    );
    assert_eq!(
        post(&request_id, r#"{"twice": true}"#),
        (400, invalid),
        "a second answer is refused"
    );

    let answer = invoker.join().unwrap();
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({"answered": true}))
    );
}
