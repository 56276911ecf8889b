//! `lambda-image invoke`: run a bootstrap, or an image the way Lambda runs it (`--image`, see
//! [`super::image_function`]), once against a local Lambda Runtime API, deliver one event, print
//! the answer.
//!
//! stdout carries only the function's response (or, with `--json`, one [`InvokeReport`]
//! object); the bootstrap's own stdout and stderr (its logs) and lambda-image's messages go to
//! stderr. The exit code is the outcome's, from the table of [`crate::error`]: 0 answered,
//! 8 function error, 9 the function could not start (init error, or exited before answering),
//! 10 timeout (the bootstrap's process group is killed) or the event never asked for; before
//! anything runs, 2 for bad flags or an unreadable or too large event and 3 for a bootstrap
//! (or an image's architecture) that cannot run here; with `--image`, 4 and 6 for an image that
//! cannot be read, 7 for one with nothing to run, 1 when the kernel refuses the sandbox.

use std::io::{IsTerminal, Read};

use clap::{ArgGroup, Args};
use serde::Serialize;

use super::function::{FunctionArgs, LocalFunction, Runtime, bind_loopback, runnable_bootstrap};
use super::image_function::{ImageArgs, prepare};
use super::outcome::Finished;
use crate::bootstrap::BootstrapSpec;
use crate::emulator::execution_environment::{INIT_LIMIT, Outcome};
use crate::emulator::http::HttpServer;
use crate::emulator::invocation::{Event, EventPayload, MAX_REQUEST_BYTES};
use crate::emulator::invoke_endpoint::{routes, timeout_message};
use crate::emulator::log::log_line;
use crate::error::{Error, ErrorKind, Result};
use crate::sandbox;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("runtime").required(true).args(["bootstrap", "image"])))]
pub struct InvokeArgs {
    /// The bootstrap to run (ARCH=PATH for a #! script, as for build).
    #[arg(long, value_name = "[ARCH=]PATH")]
    pub bootstrap: Option<BootstrapSpec>,

    #[command(flatten)]
    pub image: ImageArgs,

    /// The event: JSON, or @FILE to read it from FILE (@- : stdin). Default: read it from stdin.
    #[arg(long, value_name = "JSON|@FILE")]
    pub event: Option<String>,

    #[command(flatten)]
    pub function: FunctionArgs,

    /// Print the outcome as one JSON object on stdout:
    /// {"outcome", "request_id", "response"}, plus "error" when it is not a response.
    #[arg(long)]
    pub json: bool,
}

/// What `invoke --json` prints: how the invocation ended and what the function posted.
#[derive(Debug, Serialize)]
pub struct InvokeReport {
    /// `response`, `function_error`, `init_error`, `exited` or `timeout` (an invocation the
    /// bootstrap never asked for within the init limit included).
    pub outcome: &'static str,
    /// The request id the function was given (`Lambda-Runtime-Aws-Request-Id`).
    pub request_id: String,
    /// What the function posted, as Lambda's Invoke API returns it as the payload: the
    /// response, or the error document of a function or init error. A JSON value when the
    /// bytes parse as JSON, else a string (lossy UTF-8); `null` when it posted nothing
    /// (exited, timeout).
    pub response: serde_json::Value,
}

/// Runs the invocation; its outcome is the report, and the failure when it is not a response.
pub fn run(args: &InvokeArgs) -> Result<Finished> {
    if args.image.password_stdin.password_stdin && reads_stdin(args.event.as_deref()) {
        return Err(Error::usage(
            "--password-stdin reads the password from stdin, which otherwise carries the event",
        )
        .hint("give the event with --event JSON or --event @FILE"));
    }
    let payload = read_event(args.event.as_deref())?;
    let listener = bind_loopback(0)?;
    let runtime = runtime(args.bootstrap.as_ref(), &args.image, &args.function)?;
    let image = matches!(runtime, Runtime::Image(_));
    let LocalFunction {
        listener,
        mut environment,
        api,
        ..
    } = args.function.local_function(runtime, listener)?;
    let timeout = args.function.timeout();
    let _server = HttpServer::start(listener, routes(api, None))?;
    environment.start()?;
    let report = environment.invoke(Event {
        payload,
        ..Event::default()
    })?;
    environment.stop();

    let (outcome, body, failure) = match report.outcome {
        Outcome::Response { body, .. } => ("response", Some(body), None),
        Outcome::FunctionError { body } => {
            let error = Error::new(
                ErrorKind::FunctionError,
                format!("function error: {}", String::from_utf8_lossy(&body)),
            );
            ("function_error", Some(body), Some(error))
        }
        Outcome::InitError { body } => {
            let error = Error::new(
                ErrorKind::InitError,
                format!("init error: {}", String::from_utf8_lossy(&body)),
            )
            .hint("the bootstrap reported that it could not start; its own output is above");
            ("init_error", Some(body), Some(error))
        }
        Outcome::Exited { reason, code } => {
            let error = Error::new(ErrorKind::InitError, exited_message(image, code, &reason))
                .hint(exited_hint(image, code));
            ("exited", None, Some(error))
        }
        Outcome::TimedOut => {
            let error = Error::new(
                ErrorKind::Timeout,
                format!(
                    "{} (--timeout {}); the bootstrap and every process it started were killed",
                    timeout_message(timeout),
                    timeout.as_secs()
                ),
            )
            .hint("raise --timeout (Lambda allows up to 900 seconds)");
            ("timeout", None, Some(error))
        }
        Outcome::NotTaken => {
            let error = Error::new(
                ErrorKind::Timeout,
                format!(
                    "the bootstrap did not ask for the event within {} s (Lambda's limit for init) and was killed",
                    INIT_LIMIT.as_secs()
                ),
            )
            .hint("a bootstrap must call GET http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next once ready");
            ("timeout", None, Some(error))
        }
    };
    // In text mode stdout carries the response only, ended by a newline.
    let text = match (&body, &failure) {
        (Some(body), None) => {
            let mut text = body.clone();
            if !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            text
        }
        _ => Vec::new(),
    };
    let report = InvokeReport {
        outcome,
        request_id: report.request_id,
        response: body.map_or(serde_json::Value::Null, |body| payload_value(&body)),
    };
    Ok(Finished::report(&report, text, failure))
}

/// The bootstrap (checked to run here), or the image (opened and unpacked), that runs the
/// function; clap makes sure one of them is given.
pub fn runtime(
    bootstrap: Option<&BootstrapSpec>,
    image: &ImageArgs,
    function: &FunctionArgs,
) -> Result<Runtime> {
    image.refuse_without_image()?;
    match (bootstrap, &image.image) {
        (Some(bootstrap), _) => Ok(Runtime::Bootstrap(runnable_bootstrap(bootstrap)?)),
        (None, Some(reference)) => Ok(Runtime::Image(Box::new(prepare(
            image,
            reference,
            function.handler.as_deref(),
        )?))),
        (None, None) => Ok(Runtime::External),
    }
}

/// The message for a runtime that exited before answering (`reason`: its exit status or
/// signal): for an image run, the sandbox's own statuses for a working directory it cannot enter
/// ([`sandbox::INVALID_WORKING_DIR`]) or a sandbox it cannot set up ([`sandbox::SETUP_FAILED`])
/// say that the entrypoint never ran; anything else is the runtime's own exit.
fn exited_message(image: bool, code: Option<i32>, reason: &str) -> String {
    match code {
        Some(sandbox::INVALID_WORKING_DIR) if image => format!(
            "the image's entrypoint never ran: its working directory could not be entered \
             ({reason})"
        ),
        Some(sandbox::SETUP_FAILED) if image => {
            format!("the image's entrypoint never ran: the sandbox could not be set up ({reason})")
        }
        _ => format!(
            "the {} exited before answering: {reason}",
            if image {
                "image's entrypoint"
            } else {
                "bootstrap"
            }
        ),
    }
}

/// The hint for a runtime that exited before answering with exit status `code`: for an image
/// run, the statuses the sandbox's helper exits with when the entrypoint cannot start
/// ([`sandbox::CANNOT_EXECUTE`], [`sandbox::NOT_FOUND`]), when the image's working directory
/// cannot be entered ([`sandbox::INVALID_WORKING_DIR`]) or when the sandbox cannot be set up
/// ([`sandbox::SETUP_FAILED`]), each after a `lambda-image: …` line saying why, mean it never
/// ran; otherwise the runtime stopped asking for events.
fn exited_hint(image: bool, code: Option<i32>) -> &'static str {
    match code {
        Some(sandbox::CANNOT_EXECUTE | sandbox::NOT_FOUND) if image => {
            "a program could not be run (that exit status is the sandbox's, or a shell's): \
             either the image's entrypoint could not start, which a `lambda-image:` line above \
             explains and Lambda reports as Runtime.InvalidEntrypoint, or a script it runs (such \
             as /lambda-entrypoint.sh running /var/runtime/bootstrap) could not run a program, \
             which the shell's line above names; `lambda-image check` on the image finds a \
             bootstrap with Windows line endings, a missing interpreter or a file uid 993 cannot \
             read or execute"
        }
        Some(sandbox::INVALID_WORKING_DIR) if image => {
            "the image's working directory could not be entered, so its entrypoint never ran: \
             the line above says why; set WorkingDir in the image's config to a directory the \
             image has (such as /var/task: Dockerfile WORKDIR, or umoci config \
             --config.workingdir); Lambda reports such an image as Runtime.InvalidWorkingDir"
        }
        Some(sandbox::SETUP_FAILED) if image => {
            "the sandbox could not be set up, so the image's entrypoint never ran: the line \
             above says why"
        }
        _ => {
            "its own output is above; a bootstrap must keep asking for events \
             (GET /2018-06-01/runtime/invocation/next), as the Lambda runtime libraries do"
        }
    }
}

/// `body` as a JSON value when it parses as JSON, else as a string.
fn payload_value(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Whether the event comes from stdin: no `--event`, or `--event @-` (curl's spelling).
fn reads_stdin(argument: Option<&str>) -> bool {
    matches!(argument, None | Some("@-"))
}

/// The event bytes from `--event JSON`, `--event @FILE` or stdin (no `--event`, or `@-`), as [`EventPayload`] makes
/// them (the same rule as `serve`): empty input is the empty object, as for an Invoke call
/// without a payload; anything else is delivered unchanged, with a warning when it is not JSON.
/// Input of 6,291,456 bytes or more is refused, as Lambda's Invoke API refuses it
/// ([`MAX_REQUEST_BYTES`]).
fn read_event(argument: Option<&str>) -> Result<Vec<u8>> {
    let argument = if reads_stdin(argument) {
        None
    } else {
        argument
    };
    let (bytes, source) = match argument {
        Some(text) => match text.strip_prefix('@') {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|error| {
                    Error::usage(format!("cannot read the event file {path}: {error}"))
                        .hint("--event @FILE reads the event from FILE; without @, --event takes the JSON itself")
                })?;
                (bytes, format!("file {path}"))
            }
            None => (text.as_bytes().to_vec(), "--event".to_owned()),
        },
        None => {
            let mut stdin = std::io::stdin();
            if stdin.is_terminal() {
                log_line!(
                    "lambda-image: reading the event from stdin (end it with Ctrl-D), or pass --event JSON"
                );
            }
            let mut bytes = Vec::new();
            stdin.read_to_end(&mut bytes).map_err(|error| {
                Error::usage(format!("cannot read the event from stdin: {error}"))
            })?;
            (bytes, "stdin".to_owned())
        }
    };
    if bytes.len() >= MAX_REQUEST_BYTES {
        return Err(Error::usage(format!(
            "the event from {source} is {} bytes; Lambda's Invoke API takes events smaller than \
             {MAX_REQUEST_BYTES} bytes (RequestEntityTooLargeException: Request must be smaller \
             than {MAX_REQUEST_BYTES} bytes for the InvokeFunction operation)",
            bytes.len()
        ))
        .hint("pass a reference to the data instead (an S3 object key, for example)"));
    }
    let EventPayload { payload, not_json } = EventPayload::from_invoker(bytes);
    if let Some(error) = not_json {
        log_line!(
            "lambda-image: warning: the event from {source} is not JSON ({error}); it is delivered \
             unchanged, as the Runtime Interface Emulator does (Lambda's Invoke API would refuse it: \
             InvalidRequestContentException)"
        );
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_comes_from_stdin_without_event_or_with_at_dash() {
        assert!(reads_stdin(None));
        assert!(reads_stdin(Some("@-")));
        assert!(!reads_stdin(Some("@event.json")));
        assert!(!reads_stdin(Some("-")));
        assert!(!reads_stdin(Some("{}")));
    }

    #[test]
    fn an_image_whose_entrypoint_cannot_start_is_told_so_not_to_keep_asking_for_events() {
        for code in [sandbox::CANNOT_EXECUTE, sandbox::NOT_FOUND] {
            let hint = exited_hint(true, Some(code));
            assert!(
                hint.contains("entrypoint could not start") && hint.contains("lambda-image check"),
                "{code}: {hint}"
            );
            assert!(hint.contains("Runtime.InvalidEntrypoint"), "{code}: {hint}");
        }
        let working_dir = exited_hint(true, Some(sandbox::INVALID_WORKING_DIR));
        assert!(
            working_dir.contains("set WorkingDir")
                && working_dir.contains("Runtime.InvalidWorkingDir")
                && !working_dir.contains("InvalidEntrypoint"),
            "{working_dir}"
        );
        let setup = exited_hint(true, Some(sandbox::SETUP_FAILED));
        assert!(setup.contains("sandbox could not be set up"), "{setup}");
        let never_ran = exited_message(true, Some(sandbox::INVALID_WORKING_DIR), "exit status 122");
        assert!(never_ran.contains("never ran") && never_ran.contains("working directory"));
        let never_ran = exited_message(true, Some(sandbox::SETUP_FAILED), "exit status 125");
        assert!(never_ran.contains("never ran") && never_ran.contains("sandbox"));
        for (image, code, says) in [
            (true, Some(1), "image's entrypoint exited before answering"),
            (
                false,
                Some(sandbox::SETUP_FAILED),
                "bootstrap exited before answering",
            ),
            (
                false,
                Some(sandbox::INVALID_WORKING_DIR),
                "bootstrap exited before answering",
            ),
        ] {
            assert!(
                exited_message(image, code, "exit status").contains(says),
                "{code:?}"
            );
        }
        for (image, code) in [
            (true, Some(1)),
            (true, None),
            (false, Some(127)),
            (false, Some(sandbox::INVALID_WORKING_DIR)),
            (false, Some(sandbox::SETUP_FAILED)),
            (false, Some(sandbox::NOT_FOUND)),
        ] {
            assert!(exited_hint(image, code).contains("keep asking for events"));
        }
    }

    #[test]
    fn a_payload_is_json_when_it_parses_and_a_string_otherwise() {
        assert_eq!(
            payload_value(br#"{"a": [1]}"#),
            serde_json::json!({"a": [1]})
        );
        assert_eq!(payload_value(b"\"hi\""), serde_json::json!("hi"));
        assert_eq!(
            payload_value(b"plain text"),
            serde_json::json!("plain text")
        );
        assert_eq!(payload_value(b""), serde_json::json!(""));
    }

    #[test]
    fn empty_means_the_empty_object_and_other_events_pass_unchanged() {
        assert_eq!(read_event(Some(r#"{"a": 1}"#)).unwrap(), br#"{"a": 1}"#);
        assert_eq!(read_event(Some("  ")).unwrap(), b"{}");
        assert_eq!(read_event(Some("{oops")).unwrap(), b"{oops");
        let missing = read_event(Some("@/nonexistent/event.json")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("cannot read the event file /nonexistent/event.json")
        );
        assert!(missing.hint_text().is_some());
    }
}
