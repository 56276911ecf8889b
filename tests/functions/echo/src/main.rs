//! The echo function: a real `lambda_runtime` function that lambda-image's tests invoke.
//!
//! It answers every event with `{"echo": <event>, "handler": $_HANDLER, "function":
//! $AWS_LAMBDA_FUNCTION_NAME, "pid": <its pid>, "invocation": <1, 2, … in this process>,
//! "request_id", "deadline_ms", "environment": {…}}`, so a test can tell which process answered
//! and what environment it was given. An event `{"fail": "message"}` makes the handler return an
//! error with that message; `{"sleep_ms": N}` makes it sleep N milliseconds first.
//!
//! At start it prints `echo function pid <pid>` on stderr. With `ECHO_FAIL_INIT=1` it reports an
//! init error to the Runtime API (`POST /runtime/init/error`, as runtimes do when the function
//! cannot start) and exits 1; with `ECHO_FAIL_INIT=panic` it panics before contacting the API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// Environment variables reported back in every answer.
const REPORTED_VARIABLES: [&str; 16] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
    "LANG",
    "PATH",
    "HOME",
    "ECHO_EXTRA",
];

static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // One write, so the line is not split by lambda-image's own lines on the same stderr.
    let _ = std::io::stderr()
        .write_all(format!("echo function pid {}\n", std::process::id()).as_bytes());
    match std::env::var("ECHO_FAIL_INIT").as_deref() {
        Ok("1") => {
            report_init_error("ECHO_FAIL_INIT is set");
            eprintln!("echo function: init failed: ECHO_FAIL_INIT is set");
            std::process::exit(1);
        }
        Ok("panic") => panic!("echo function: ECHO_FAIL_INIT=panic"),
        _ => {}
    }
    lambda_runtime::run(service_fn(echo)).await
}

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.into());
    }
    if let Some(milliseconds) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(milliseconds)).await;
    }
    let invocation = INVOCATIONS.fetch_add(1, Ordering::SeqCst) + 1;
    let environment: serde_json::Map<String, Value> = REPORTED_VARIABLES
        .iter()
        .filter_map(|name| Some((name.to_string(), Value::from(std::env::var(name).ok()?))))
        .collect();
    Ok(json!({
        "echo": payload,
        "handler": std::env::var("_HANDLER").ok(),
        "function": std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
        "pid": std::process::id(),
        "invocation": invocation,
        "request_id": context.request_id,
        "deadline_ms": context.deadline,
        "invoked_function_arn": context.invoked_function_arn,
        "environment": environment,
    }))
}

/// Posts `{"errorMessage", "errorType"}` to `/runtime/init/error` over plain HTTP/1.1.
fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = json!({ "errorMessage": message, "errorType": "EchoInitError" }).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.EchoInitError\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = TcpStream::connect(&api) {
        let _ = stream.write_all(request.as_bytes());
        let _ = stream.read_to_end(&mut Vec::new());
    }
}
