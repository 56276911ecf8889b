//! The emulator behaves like Lambda (`invoke` and `serve`): the payload limits at their exact
//! boundaries, a streamed response that fails half-way, an init longer than Lambda's 10 s, and
//! the same event for the same input in both commands.
//!
//! The functions are real: the `lambda_runtime` streaming function of `tests/functions/stream`,
//! and custom runtimes written the way the Lambda guide's tutorial writes one (`sh` and `curl`
//! against `$AWS_LAMBDA_RUNTIME_API`), which make exact sizes and slow inits easy.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::scratch;
use crate::support::functions::{echo_function, stream_function};
use crate::support::local_lambda::{Serve, curl_post};
use crate::support::{lambda_image, run, stderr_of, with_stdin};

/// Lambda's largest synchronous response: "Response payload size exceeded maximum allowed
/// payload size (6291556 bytes)".
const MAX_RESPONSE: usize = 6_291_556;
/// Lambda's synchronous request limit: "Request must be smaller than 6291456 bytes for the
/// InvokeFunction operation".
const REQUEST_LIMIT: usize = 6_291_456;

/// A custom runtime in `sh` + `curl`: after `sleep $INIT_SLEEP` (init), it answers every event
/// with `$RESPONSE_SIZE` bytes of `a` when that is set, else with the event's own bytes. It logs
/// what it received and what the Runtime API answered to its post.
const SH_RUNTIME: &str = r#"#!/bin/sh
set -u
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
sleep "${INIT_SLEEP:-0}"
DIR=$(mktemp -d)
while true; do
  curl -sS -D "$DIR/head" -o "$DIR/event" "$API/invocation/next" || exit 1
  ID=$(tr -d '\r' < "$DIR/head" | sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p')
  echo "runtime: received $(wc -c < "$DIR/event") bytes" >&2
  if [ -n "${RESPONSE_SIZE:-}" ]; then
    head -c "$RESPONSE_SIZE" /dev/zero | tr '\0' a > "$DIR/response"
  else
    cp "$DIR/event" "$DIR/response"
  fi
  echo "runtime: the API answered $(curl -sS -X POST --data-binary @"$DIR/response" "$API/invocation/$ID/response")" >&2
done
"#;

/// A custom runtime that streams two chunks and ends the chunked body with real HTTP trailers
/// carrying a JSON error, the way aws-lambda-go reports an error read from a handler's stream
/// (aws/aws-lambda-go#495).
const TRAILER_RUNTIME: &str = r#"#!/usr/bin/env python3
import os, socket
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
def call(raw):
    connection = socket.create_connection((host, int(port)))
    connection.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    return data
head = call(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n")
request_id = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
              if line.lower().startswith(b"lambda-runtime-aws-request-id:")][0]
# base64 of {"errorMessage":"disk full","errorType":"StreamFailure"}
body = (b"6\r\nhello \r\n6\r\nworld \r\n0\r\n"
        b"Lambda-Runtime-Function-Error-Type: StreamFailure\r\n"
        b"Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiJkaXNrIGZ1bGwiLCJlcnJvclR5cGUiOiJTdHJlYW1GYWlsdXJlIn0=\r\n\r\n")
answer = call(b"POST /2018-06-01/runtime/invocation/" + request_id + b"/response HTTP/1.1\r\n"
              b"Host: api\r\nTransfer-Encoding: chunked\r\n"
              b"Lambda-Runtime-Function-Response-Mode: streaming\r\n"
              b"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n" + body)
print("runtime: the API answered", answer.split(b"\r\n")[0].decode(), flush=True)
import time
time.sleep(60)
"#;

fn script(directory: &Path, name: &str, text: &str) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `ARCH=PATH`, as `invoke` and `serve` take a `#!` script.
fn script_spec(path: &Path) -> String {
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    format!("{arch}={}", path.display())
}

fn invoke(bootstrap: &str, args: &[&str], stdin: &[u8]) -> Output {
    with_stdin(
        lambda_image()
            .args(["invoke", "--bootstrap", bootstrap])
            .args(args),
        stdin,
    )
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// `curl` posting the file `body` to `url`: the status, the response head and the body bytes.
fn post_file(url: &str, body: &Path) -> (u16, String, Vec<u8>) {
    let directory = body.parent().unwrap();
    let head = directory.join("response.head");
    let output = directory.join("response.body");
    let status = run(Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "120"])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg("--dump-header")
        .arg(&head)
        .arg("--output")
        .arg(&output)
        .args(["--write-out", "%{http_code}"])
        .arg(url));
    let status = String::from_utf8_lossy(&status.stdout).parse().unwrap();
    (
        status,
        std::fs::read_to_string(head).unwrap(),
        std::fs::read(output).unwrap(),
    )
}

/// A JSON string event of exactly `size` bytes.
fn json_event(path: &Path, size: usize) -> PathBuf {
    let mut event = Vec::with_capacity(size);
    event.push(b'"');
    event.resize(size - 1, b'e');
    event.push(b'"');
    std::fs::write(path, event).unwrap();
    path.to_path_buf()
}

fn error_json(stderr: &str) -> Value {
    let line = stderr
        .lines()
        .find_map(|line| line.strip_prefix("lambda-image: error: function error: "))
        .unwrap_or_else(|| panic!("no function error in:\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
}

// DataBiosphere/azul#8258: a response just past 6291556 bytes fails on Lambda, one under it
// passes; lambda-image refused everything past 6291456 (6 MiB), 100 bytes too early.
#[test]
fn a_response_of_exactly_6291556_bytes_passes_and_one_byte_more_is_lambdas_error() {
    let directory = scratch();
    let runtime = script_spec(&script(directory.path(), "bootstrap", SH_RUNTIME));

    let size = format!("RESPONSE_SIZE={MAX_RESPONSE}");
    let largest = invoke(&runtime, &["--env", &size, "--event", "{}"], b"");
    assert_eq!(code(&largest), 0, "{}", stderr_of(&largest));
    // `invoke` ends stdout with a newline when the response has none.
    assert_eq!(largest.stdout.len(), MAX_RESPONSE + 1);
    assert!(
        largest.stdout[..MAX_RESPONSE]
            .iter()
            .all(|&byte| byte == b'a')
    );

    let size = format!("RESPONSE_SIZE={}", MAX_RESPONSE + 1);
    let too_large = invoke(&runtime, &["--env", &size, "--event", "{}"], b"");
    let stderr = stderr_of(&too_large);
    assert_eq!(code(&too_large), 8, "a function error: {stderr}");
    assert!(too_large.stdout.is_empty());
    let error = error_json(&stderr);
    assert_eq!(error["errorType"], "Function.ResponseSizeTooLarge");
    assert_eq!(
        error["errorMessage"],
        "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
    );

    // `serve` answers the invoker the way the Invoke API does; its bootstrap stays warm, so
    // what the runtime itself was told shows in its log: the RIE's 413.
    let serve = Serve::start(&["--bootstrap", &runtime, "--env", &size]);
    let answer = curl_post(&serve.invocations_url(), "{}");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(answer.json()["errorType"], "Function.ResponseSizeTooLarge");
    let told = r#"runtime: the API answered {"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#;
    let stderr = serve.stderr_with(told);
    assert!(stderr.contains(told), "{stderr}");
}

// pelmers/streetwarp-web#14: Lambda refuses a request with "Request must be smaller than
// 6291456 bytes for the InvokeFunction operation"; lambda-image said so but let exactly 6291456
// bytes through.
#[test]
fn a_request_of_6291456_bytes_is_refused_as_the_message_says_in_invoke_and_serve() {
    let directory = scratch();
    let runtime = script_spec(&script(directory.path(), "bootstrap", SH_RUNTIME));
    let largest = json_event(&directory.path().join("largest.json"), REQUEST_LIMIT - 1);
    let refused = json_event(&directory.path().join("refused.json"), REQUEST_LIMIT);
    let argument = |path: &Path| format!("@{}", path.display());

    let passed = invoke(&runtime, &["--event", &argument(&largest)], b"");
    assert_eq!(code(&passed), 0, "{}", stderr_of(&passed));
    assert_eq!(passed.stdout.len(), REQUEST_LIMIT - 1 + 1);
    assert!(stderr_of(&passed).contains(&format!("runtime: received {} bytes", REQUEST_LIMIT - 1)));

    let too_large = invoke(&runtime, &["--event", &argument(&refused)], b"");
    let stderr = stderr_of(&too_large);
    assert_eq!(code(&too_large), 2, "{stderr}");
    assert!(
        stderr.contains("is 6291456 bytes")
            && stderr.contains(
                "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
            ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("runtime: received"),
        "nothing is delivered: {stderr}"
    );

    let serve = Serve::start(&["--bootstrap", &runtime]);
    let (status, _, body) = post_file(&serve.invocations_url(), &largest);
    assert_eq!((status, body.len()), (200, REQUEST_LIMIT - 1));
    let (status, _, body) = post_file(&serve.invocations_url(), &refused);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 413);
    assert_eq!(error["errorType"], "RequestEntityTooLargeException");
    assert_eq!(
        error["errorMessage"],
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    );
}

// aws/aws-lambda-rust-runtime#696 (errors in a streamed response reported with the error
// trailers): the real `lambda_runtime` streaming API failing after two chunks. lambda-image
// returned the half stream, error lines included, as a success.
#[test]
fn a_lambda_runtime_stream_that_fails_half_way_ends_the_invoke_as_a_function_error() {
    let stream = stream_function().display().to_string();
    let started = Instant::now();
    let failed = invoke(
        &stream,
        &[
            "--timeout",
            "20",
            "--event",
            r#"{"chunks": 2, "fail": "the disk is full"}"#,
        ],
        b"",
    );
    let stderr = stderr_of(&failed);
    assert_eq!(code(&failed), 8, "a function error: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "ended at once, not by the timeout"
    );
    assert!(
        failed.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&failed.stdout)
    );
    let error = error_json(&stderr);
    assert_eq!(error["errorType"], "Runtime.StreamError");
    assert_eq!(error["errorMessage"], "the disk is full");

    // A stream that ends well is still the function's answer, chunk after chunk.
    let streamed = invoke(&stream, &["--event", r#"{"chunks": 3}"#], b"");
    assert_eq!(code(&streamed), 0, "{}", stderr_of(&streamed));
    let stdout = String::from_utf8_lossy(&streamed.stdout);
    assert!(
        stdout.ends_with("chunk 1\nchunk 2\nchunk 3\n"),
        "{stdout:?}"
    );

    let serve = Serve::start(&["--bootstrap", &stream, "--timeout", "20"]);
    let answer = curl_post(
        &serve.invocations_url(),
        r#"{"chunks": 1, "fail": "the disk is full"}"#,
    );
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("X-Amz-Function-Error").as_deref(),
        Some("Unhandled")
    );
    assert_eq!(answer.json()["errorType"], "Runtime.StreamError");
    assert_eq!(answer.json()["errorMessage"], "the disk is full");
    let ok = curl_post(&serve.invocations_url(), r#"{"chunks": 2}"#);
    assert_eq!(ok.status, 200);
    assert!(ok.body.ends_with("chunk 1\nchunk 2\n"), "{:?}", ok.body);
    assert!(ok.header("X-Amz-Function-Error").is_none());
}

// aws/aws-lambda-go#495: the error comes as real HTTP trailers after the last chunk. The
// runtime got "400 Error while decoding chunks" and the invoke waited for its timeout.
#[test]
fn a_stream_ending_in_http_error_trailers_is_a_function_error_at_once() {
    let directory = scratch();
    let runtime = script_spec(&script(directory.path(), "bootstrap", TRAILER_RUNTIME));
    let started = Instant::now();
    let failed = invoke(&runtime, &["--timeout", "20", "--event", "{}"], b"");
    let stderr = stderr_of(&failed);
    assert_eq!(code(&failed), 8, "a function error: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "ended at once: {stderr}"
    );
    let error = error_json(&stderr);
    assert_eq!(error["errorType"], "StreamFailure");
    assert_eq!(error["errorMessage"], "disk full");
}

/// `invoke` and `serve` with a bootstrap whose init takes `init_seconds`, under `--timeout
/// timeout`: `invoke`'s output, and `serve`'s answer to curl, side by side (both take as long).
fn slow_init(init_seconds: u32, timeout: u32) -> (Output, (u16, String), String) {
    let directory = scratch();
    let runtime = script_spec(&script(directory.path(), "bootstrap", SH_RUNTIME));
    let init = format!("INIT_SLEEP={init_seconds}");
    let timeout = timeout.to_string();
    let args = ["--timeout", timeout.as_str(), "--env", init.as_str()];
    let served = std::thread::scope(|scope| {
        let served = scope.spawn(|| {
            let mut serve_args = vec!["--bootstrap", runtime.as_str()];
            serve_args.extend(args);
            let serve = Serve::start(&serve_args);
            let answer = curl_post(&serve.invocations_url(), r#"{"slow": "init"}"#);
            (
                (answer.status, answer.body),
                serve.stderr_with("Phase: invoke"),
            )
        });
        let mut invoke_args = args.to_vec();
        invoke_args.extend(["--event", r#"{"slow": "init"}"#]);
        let invoked = invoke(&runtime, &invoke_args, b"");
        (invoked, served.join().unwrap())
    });
    let (invoked, (answer, serve_stderr)) = served;
    (invoked, answer, serve_stderr)
}

// localstack/localstack#8878: an environment "timed out during startup" locally while Lambda
// would have retried the init. Lambda gives init 10 s, then retries it within the first
// invocation under the function's timeout: 12 s of init with a 30 s timeout succeeds.
#[test]
fn an_init_of_12_s_is_retried_within_a_30_s_timeout_and_succeeds() {
    let (invoked, (status, body), serve_stderr) = slow_init(12, 30);
    let stderr = stderr_of(&invoked);
    assert_eq!(code(&invoked), 0, "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&invoked.stdout),
        "{\"slow\": \"init\"}\n"
    );
    assert!(
        stderr.contains("INIT_REPORT Init Duration: 10000")
            && stderr.contains("Phase: init\tStatus: timeout"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Phase: invoke\tStatus: success"),
        "{stderr}"
    );
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"slow": "init"}"#),
        "{serve_stderr}"
    );
    assert!(
        serve_stderr.contains("Phase: init\tStatus: timeout"),
        "{serve_stderr}"
    );
}

// `serve` starts the bootstrap before any invocation. One that became ready only after 12 s,
// while idle, overran Lambda's init limit all the same: the first invocation retries its init.
#[test]
fn serve_retries_an_init_that_finished_late_while_idle() {
    let directory = scratch();
    let runtime = script_spec(&script(directory.path(), "bootstrap", SH_RUNTIME));
    let serve = Serve::start(&[
        "--bootstrap",
        &runtime,
        "--timeout",
        "30",
        "--env",
        "INIT_SLEEP=12",
    ]);
    std::thread::sleep(Duration::from_secs(13));
    let started = Instant::now();
    let answer = curl_post(&serve.invocations_url(), r#"{"late": true}"#);
    let stderr = serve.stderr_with("Phase: invoke");
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, r#"{"late": true}"#),
        "{stderr}"
    );
    assert!(stderr.contains("Phase: init\tStatus: timeout"), "{stderr}");
    assert!(
        stderr.contains("Phase: invoke\tStatus: success"),
        "{stderr}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(12),
        "the init ran again"
    );
}

// The retried init still has only the function's timeout: 12 s of init with a 5 s timeout
// times out, as on Lambda.
#[test]
fn an_init_longer_than_the_timeout_still_times_out() {
    let (invoked, (status, body), serve_stderr) = slow_init(12, 5);
    let stderr = stderr_of(&invoked);
    assert_eq!(code(&invoked), 10, "{stderr}");
    assert!(
        stderr.contains("Task timed out after 5.00 seconds"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Phase: invoke\tStatus: timeout"),
        "{stderr}"
    );
    assert!(!stderr.contains("runtime: received"), "{stderr}");
    assert_eq!(
        (status, body.as_str()),
        (200, "Task timed out after 5.00 seconds"),
        "{serve_stderr}"
    );
}

// aws/aws-lambda-runtime-interface-emulator: its invoke handler hands the body on unread, JSON
// or not. `serve` delivered an empty body as nothing while `invoke` delivered `{}`, and `invoke`
// refused what `serve` passed on.
#[test]
fn invoke_and_serve_deliver_the_same_event_for_empty_and_non_json_input() {
    let directory = scratch();
    let runtime = script_spec(&script(directory.path(), "bootstrap", SH_RUNTIME));
    let serve = Serve::start(&["--bootstrap", &runtime]);
    for (input, expected) in [
        ("", "{}"),
        ("hello, not JSON", "hello, not JSON"),
        ("<event id=\"1\"/>", "<event id=\"1\"/>"),
        (r#"{"a": [1, 2]}"#, r#"{"a": [1, 2]}"#),
    ] {
        let invoked = invoke(&runtime, &[], input.as_bytes());
        let stderr = stderr_of(&invoked);
        assert_eq!(code(&invoked), 0, "{input:?}: {stderr}");
        let delivered = String::from_utf8_lossy(&invoked.stdout);
        let delivered = delivered.strip_suffix('\n').unwrap_or(&delivered);
        let served = curl_post(&serve.invocations_url(), input);
        assert_eq!(served.status, 200, "{input:?}");
        assert_eq!(delivered, expected, "invoke, {input:?}");
        assert_eq!(served.body, expected, "serve, {input:?}");
        let warned = stderr.contains("is not JSON");
        assert_eq!(
            warned,
            serde_json::from_str::<Value>(input).is_err() && !input.is_empty(),
            "a warning for input that is not JSON, only: {stderr}"
        );
    }
    let stderr = serve.stderr_with("the event is not JSON");
    assert!(stderr.contains("the event is not JSON"), "{stderr}");
}

// The other side of the init limit: a bootstrap that was ready in time and waited idle longer
// than 10 s is warm, not retried.
#[test]
fn serve_keeps_a_bootstrap_that_was_ready_in_time_warm_past_10_s() {
    let echo = echo_function().display().to_string();
    let serve = Serve::start(&["--bootstrap", &echo]);
    std::thread::sleep(Duration::from_secs(11));
    let first = curl_post(&serve.invocations_url(), "{}");
    let second = curl_post(&serve.invocations_url(), "{}");
    assert_eq!(
        (first.status, second.status),
        (200, 200),
        "{}",
        serve.stderr()
    );
    assert_eq!(first.json()["pid"], second.json()["pid"]);
    assert_eq!(second.json()["invocation"], 2, "{}", serve.stderr());
    assert!(
        !serve.stderr().contains("INIT_REPORT"),
        "{}",
        serve.stderr()
    );
}

/// Sends `raw` on a new connection to `address` and returns everything the server sends until
/// it closes the connection; `None` if it still has not after 20 s (the connection stayed open).
fn exchange(address: std::net::SocketAddr, raw: &[u8]) -> Option<String> {
    use std::io::Read;
    let mut connection = std::net::TcpStream::connect(address).unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    connection.write_all(raw).unwrap();
    let mut answer = Vec::new();
    match connection.read_to_end(&mut answer) {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => None,
        // Reset after the answer: the answer is what counts.
        Err(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
    }
}

// kazuho/Starlet#34, litespeedtech/openlitespeed#392: request smuggling through a request that
// carries both Content-Length and Transfer-Encoding. RFC 9112 section 6.3 lets chunked win, and
// the connection must then close so that what follows the chunked body is never run as a
// second invocation. The echo function counts its invocations, so a smuggled one shows.
#[test]
fn serve_runs_no_smuggled_invocation_and_refuses_broken_framing_with_a_clear_4xx() {
    let echo = echo_function().display().to_string();
    let serve = Serve::start(&["--bootstrap", &echo]);
    let path = "/2015-03-31/functions/function/invocations";
    let smuggling = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\
         Transfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n\
         POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let answer = exchange(serve.address, smuggling.as_bytes())
        .expect("the connection must close after a request with both framings");
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains("Connection: close"), "{answer}");

    for (fields_and_body, status, says) in [
        (
            "Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            501,
            "not implemented",
        ),
        (
            "Transfer-Encoding: chunked, identity\r\n\r\n{}",
            400,
            "does not end with chunked",
        ),
        ("Content-Length: +2\r\n\r\n{}", 400, "not a byte count"),
        (
            "Content-Length: 2\r\nContent-Length: 20\r\n\r\n{}",
            400,
            "disagree",
        ),
        (
            "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
            400,
            "does not fit in 64 bits",
        ),
        (
            "Transfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n",
            400,
            "bad chunk size",
        ),
        (
            "Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
            400,
            "not followed by CRLF",
        ),
    ] {
        let raw = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n{fields_and_body}");
        let answer = exchange(serve.address, raw.as_bytes())
            .unwrap_or_else(|| panic!("{fields_and_body:?}: the connection stayed open"));
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{fields_and_body:?}: {answer}"
        );
        assert!(answer.contains(says), "{fields_and_body:?}: {answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
    }
    let http_1_0 =
        format!("POST {path} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n");
    let answer = exchange(serve.address, http_1_0.as_bytes()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");

    // None of it ran the function: the next invocation is its second.
    let next = curl_post(&serve.invocations_url(), "{}");
    assert_eq!(next.status, 200, "{}", serve.stderr());
    assert_eq!(next.json()["invocation"], 2, "{}", serve.stderr());
}

// ethereum/hive#880 (slowloris): a client that sends its request a byte at a time, or opens
// connections and sends nothing, must not keep others from invoking. `serve` has a thread per
// connection, serves at most 64 connections at once (the 65th gets 503 at once instead of
// waiting unseen) and closes a connection whose request head has not come whole in 30 s.
#[test]
fn slow_and_idle_clients_do_not_stop_serve_from_answering_others() {
    let echo = echo_function().display().to_string();
    let serve = Serve::start(&["--bootstrap", &echo]);
    let address = serve.address;
    let slow = std::thread::spawn(move || {
        let mut connection = std::net::TcpStream::connect(address).unwrap();
        for byte in b"POST /2015-03-31/functions/function/invocations HTTP/1.1\r\n".iter() {
            if connection.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let started = Instant::now();
    let answered = curl_post(&serve.invocations_url(), "{\"key\":\"value\"}");
    assert_eq!(answered.status, 200, "{}", serve.stderr());
    assert!(started.elapsed() < Duration::from_secs(20));

    // 63 more idle connections fill the 64; the next one is told so at once.
    let idle: Vec<_> = (0..63)
        .map(|_| std::net::TcpStream::connect(address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let answer = exchange(
        address,
        b"POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    )
    .expect("a connection past the limit must be answered and closed at once");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("too many open connections"), "{answer}");
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = curl_post(&serve.invocations_url(), "{}");
        if again.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", again.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    slow.join().unwrap();
}

// `serve` listens on 127.0.0.1 only: another address of this machine is refused.
#[test]
fn serve_is_not_reachable_on_other_addresses_of_the_machine() {
    let echo = echo_function().display().to_string();
    let serve = Serve::start(&["--bootstrap", &echo]);
    assert!(serve.address.ip().is_loopback(), "{}", serve.address);
    let output = run(Command::new("hostname").arg("-I"));
    let Some(other) = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|address| address.parse::<std::net::IpAddr>().ok())
        .find(|address| !address.is_loopback())
    else {
        eprintln!("no non-loopback address on this machine; nothing more to check");
        return;
    };
    let refused = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::new(other, serve.address.port()),
        Duration::from_secs(5),
    );
    assert!(refused.is_err(), "serve answered on {other}");
}

// open-mercato/cezar#426: a web page the developer visits can POST to a server on loopback
// without a CORS preflight (`Content-Type: text/plain`), and would run the function with the
// AWS credentials `serve` passes it. The browser names the page in `Origin`; `serve` refuses
// such a request before it reaches the function, and the function's first invocation is the
// next one from curl.
#[test]
fn serve_refuses_an_invocation_sent_by_a_web_page_elsewhere() {
    let echo = echo_function().display().to_string();
    let serve = Serve::start(&["--bootstrap", &echo]);
    let output = run(Command::new("curl")
        .args(["--silent", "--show-error", "--include", "--max-time", "30"])
        .args(["-H", "Origin: https://attacker.example"])
        .args(["-H", "Content-Type: text/plain"])
        .args(["--data-binary", "{}"])
        .arg(serve.invocations_url()));
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    assert!(
        answer.contains("requests from web pages are refused"),
        "{answer}"
    );
    let next = curl_post(&serve.invocations_url(), "{}");
    assert_eq!(next.status, 200, "{}", serve.stderr());
    assert_eq!(next.json()["invocation"], 1, "{}", serve.stderr());
}

// aws/aws-lambda-base-images#26: an image for one architecture on a function of the other
// fails at the first invoke with `exec format error`. `invoke` and `serve` take `ARCH=` as
// `build` does, so one that contradicts the ELF is refused the same way, even on a machine
// that could run the ELF itself (natively, or through a qemu-user binfmt_misc handler).
#[test]
fn invoke_and_serve_refuse_an_architecture_the_elf_contradicts() {
    let fixtures = crate::support::fixtures();
    for (given, elf) in [
        ("arm64", &fixtures.bootstrap_amd64),
        ("amd64", &fixtures.bootstrap_arm64),
    ] {
        let spec = format!("{given}={}", elf.display());
        let invoked = invoke(&spec, &["--event", "{}"], b"");
        let stderr = stderr_of(&invoked);
        assert_eq!(code(&invoked), 3, "{spec}: {stderr}");
        assert!(
            stderr.contains(&format!("but it was given as {given}"))
                && stderr.contains("exec format error"),
            "{spec}: {stderr}"
        );
        let served = lambda_image()
            .args(["serve", "--port", "0", "--bootstrap", &spec])
            .output()
            .unwrap();
        assert_eq!(
            served.status.code(),
            Some(3),
            "{spec}: {}",
            stderr_of(&served)
        );
        assert!(
            stderr_of(&served).contains(&format!("but it was given as {given}")),
            "{spec}: {}",
            stderr_of(&served)
        );
    }
}
