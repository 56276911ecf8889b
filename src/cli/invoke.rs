//! `lambda-image invoke`: run a bootstrap once against a local Lambda Runtime API, deliver one
//! event, print the answer.
//!
//! stdout carries only the function's response; the bootstrap's own stdout and stderr (its
//! logs) and lambda-image's messages go to stderr. Exit codes are the outcome's: 0 answered,
//! 1 function error, 2 the function could not start (init error, exited without answering, or
//! a bootstrap that cannot run here), 3 timeout (the bootstrap's process group is killed).

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use clap::Args;

use super::function::{FunctionArgs, LocalFunction, runnable_bootstrap};
use crate::bootstrap::BootstrapSpec;
use crate::emulator::execution_environment::{INIT_LIMIT, Outcome};
use crate::emulator::http::HttpServer;
use crate::emulator::invocation::{Event, EventPayload, MAX_REQUEST_BYTES};
use crate::emulator::invoke_endpoint::{routes, timeout_message};
use crate::emulator::log::log_line;
use crate::emulator::signals::exit_on_termination;
use crate::error::{Error, ErrorKind, Result};

/// Exit code: the function returned an error.
const EXIT_FUNCTION_ERROR: u8 = 1;
/// Exit code: the function could not start or exited before answering.
const EXIT_NOT_STARTED: u8 = 2;
/// Exit code: the function did not answer in time.
const EXIT_TIMED_OUT: u8 = 3;

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The bootstrap to run (ARCH=PATH for a #! script, as for build).
    #[arg(long, value_name = "[ARCH=]PATH")]
    pub bootstrap: BootstrapSpec,

    /// The event: JSON, or @FILE to read it from FILE. Default: read it from stdin.
    #[arg(long, value_name = "JSON|@FILE")]
    pub event: Option<String>,

    #[command(flatten)]
    pub function: FunctionArgs,
}

/// Runs the invocation and prints its outcome; returns the exit code.
pub fn run(args: &InvokeArgs) -> ExitCode {
    match invoke(args) {
        Ok(code) => code,
        Err(error) => {
            log_line!("lambda-image: error: {error}");
            // Outcome codes are fixed (1 function error, 3 timeout): a bootstrap that cannot
            // run at all is "could not start" (2), like bad flags.
            ExitCode::from(match error.kind() {
                ErrorKind::Usage | ErrorKind::Bootstrap => EXIT_NOT_STARTED,
                _ => 1,
            })
        }
    }
}

fn invoke(args: &InvokeArgs) -> Result<ExitCode> {
    let payload = read_event(args.event.as_deref())?;
    let bootstrap = runnable_bootstrap(&args.bootstrap)?;
    let LocalFunction {
        listener,
        mut environment,
        api,
        ..
    } = args.function.local_function(Some(bootstrap), 0)?;
    let timeout = args.function.timeout();
    let _server = HttpServer::start(listener, routes(api, None))?;
    exit_on_termination()?;
    environment.start()?;
    let report = environment.invoke(Event {
        payload,
        ..Event::default()
    })?;
    environment.stop();

    let failure = |message: String, hint: &str| {
        log_line!(
            "lambda-image: error: {}",
            Error::failure(message).hint(hint)
        );
    };
    let code = match report.outcome {
        Outcome::Response { mut body, .. } => {
            if !body.ends_with(b"\n") {
                body.push(b'\n');
            }
            // A closed stdout (e.g. `| head`) is not worth a panic.
            let _ = std::io::stdout().write_all(&body);
            return Ok(ExitCode::SUCCESS);
        }
        Outcome::FunctionError { body } => {
            log_line!(
                "lambda-image: function error: {}",
                String::from_utf8_lossy(&body)
            );
            EXIT_FUNCTION_ERROR
        }
        Outcome::InitError { body } => {
            log_line!(
                "lambda-image: init error: {}",
                String::from_utf8_lossy(&body)
            );
            log_line!(
                "  hint: the bootstrap reported that it could not start; its own output is above"
            );
            EXIT_NOT_STARTED
        }
        Outcome::Exited { reason } => {
            failure(
                format!("the bootstrap exited before answering: {reason}"),
                "its own output is above; a bootstrap must keep asking for events \
                 (GET /2018-06-01/runtime/invocation/next), as the Lambda runtime libraries do",
            );
            EXIT_NOT_STARTED
        }
        Outcome::TimedOut => {
            failure(
                format!(
                    "{} (--timeout {}); the bootstrap and every process it started were killed",
                    timeout_message(timeout),
                    timeout.as_secs()
                ),
                "raise --timeout (Lambda allows up to 900 seconds)",
            );
            EXIT_TIMED_OUT
        }
        Outcome::NotTaken => {
            failure(
                format!(
                    "the bootstrap did not ask for the event within {} s (Lambda's limit for init) and was killed",
                    INIT_LIMIT.as_secs()
                ),
                "a bootstrap must call GET http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next once ready",
            );
            EXIT_TIMED_OUT
        }
    };
    Ok(ExitCode::from(code))
}

/// The event bytes from `--event JSON`, `--event @FILE` or stdin, as [`EventPayload`] makes
/// them (the same rule as `serve`): empty input is the empty object, as for an Invoke call
/// without a payload; anything else is delivered unchanged, with a warning when it is not JSON.
/// Input of 6,291,456 bytes or more is refused, as Lambda's Invoke API refuses it
/// ([`MAX_REQUEST_BYTES`]).
fn read_event(argument: Option<&str>) -> Result<Vec<u8>> {
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
