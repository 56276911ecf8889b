//! How every command ends: the one path from a command's result to stdout, stderr and the exit
//! status, so that all commands share the exit-code table of [`crate::error`] and the `--json`
//! rule for CI: the exit status is non-zero exactly when stdout's JSON object has an `"error"`
//! member, whose `exit_code` equals it.
//!
//! - Success: the report on stdout (text, or one JSON object on one line), exit 0.
//! - A report that stands for a failure (`check` with error findings, `invoke` whose function
//!   failed): the report on stdout as on success, with `--json` its `"error"` member added; the
//!   error line on stderr; the failure's exit code.
//! - An error without a report: with `--json`, `{"error":{…}}` on stdout; in text mode nothing
//!   on stdout. In both modes the human `lambda-image: error: …` line (and hint) on stderr.
//! - A command-line error (clap) when `--json` is on the command line: the error object with
//!   kind `usage`, exit 2, and clap's own text on stderr; `--help` and `--version` unchanged.
//! - Interrupted (SIGINT, SIGTERM) before the end: the error of kind `interrupted`, as for any
//!   error, exit 128 + the signal ([`interrupted`]); never a second object after a report.
//! - stdout that cannot be written (a full disk, a closed descriptor): `cannot write to
//!   stdout` on stderr and exit 1 (a failure's own code is kept); a broken pipe (`| head`) is
//!   not an error ([`emit`]).

use std::ffi::OsString;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::error::{Error, ErrorKind, ErrorReport, Result};

/// What a command ran to: its report, and the failure the report stands for, if any.
#[derive(Debug)]
pub struct Finished {
    /// stdout in text mode (empty for none): the report for people, or the bytes the function
    /// answered `invoke` with, which need not be UTF-8.
    pub text: Vec<u8>,
    /// The report as one JSON object on one line (no newline), `"error"` member included when
    /// there is a failure; `None` for a command without a JSON report (`serve`).
    pub json: Option<String>,
    /// The failure the report stands for: decides the exit status.
    pub failure: Option<Error>,
}

impl Finished {
    /// A report with nothing to say (`serve` after a clean stop).
    pub fn nothing() -> Self {
        Self {
            text: Vec::new(),
            json: None,
            failure: None,
        }
    }

    /// A successful command whose output is text only, with no JSON form (`completions`, `man`).
    pub fn text(text: String) -> Self {
        Self {
            text: text.into_bytes(),
            json: None,
            failure: None,
        }
    }

    /// A successful report, already rendered both ways.
    pub fn success(text: String, json: String) -> Self {
        Self {
            text: text.into_bytes(),
            json: Some(json),
            failure: None,
        }
    }

    /// `report` (a struct: serialized as a JSON object) with `failure`, when there is one, as
    /// its last member `"error"`; `text` is the same report for people.
    pub fn report<T: Serialize>(report: &T, text: Vec<u8>, failure: Option<Error>) -> Self {
        #[derive(Serialize)]
        struct WithError<'a, T> {
            #[serde(flatten)]
            report: &'a T,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<ErrorReport<'a>>,
        }
        let json = serde_json::to_string(&WithError {
            report,
            error: failure.as_ref().map(Error::report),
        })
        .expect("a report always serializes");
        Self {
            text,
            json: Some(json),
            failure,
        }
    }
}

/// What the process writes and exits with.
#[derive(Debug, PartialEq, Eq)]
pub struct Exit {
    pub stdout: Vec<u8>,
    /// The human error line(s) for stderr, without the final newline.
    pub stderr: Option<String>,
    pub code: u8,
}

/// The one mapping from a command's result to what the process writes and its exit status.
pub fn finish(result: Result<Finished>, json: bool) -> Exit {
    let (stdout, failure) = match result {
        Ok(Finished {
            text: _,
            json: Some(report),
            failure,
        }) if json => ((report + "\n").into_bytes(), failure),
        Ok(Finished { text, failure, .. }) => (text, failure),
        Err(error) if json => ((error.to_json() + "\n").into_bytes(), Some(error)),
        Err(error) => (Vec::new(), Some(error)),
    };
    Exit {
        stdout,
        stderr: failure
            .as_ref()
            .map(|error| format!("lambda-image: error: {error}")),
        code: failure.map_or(0, |error| error.kind().exit_code()),
    }
}

/// Set by the program, before Rust's start-up replaces a closed standard descriptor with
/// `/dev/null`, when descriptor 1 was closed (`>&-`): stdout cannot be written then.
pub static STDOUT_WAS_CLOSED: AtomicBool = AtomicBool::new(false);

/// Held, never released, by whichever thread ends the process first: the main thread with the
/// command's result ([`emit`]) or the signal watcher ([`interrupted`]), so that stdout never
/// gets both a report and an interruption's error.
static ENDING: Mutex<()> = Mutex::new(());

/// Takes [`ENDING`] for the rest of the process.
fn take_the_end() {
    std::mem::forget(ENDING.lock().unwrap_or_else(|poison| poison.into_inner()));
}

/// Writes `exit` (the error line to stderr, then stdout) and returns the exit status: `exit.code`,
/// or 1 when stdout cannot be written for a reason other than a broken pipe (then also
/// `lambda-image: error: cannot write to stdout: …` on stderr; a failure keeps its own code).
/// Once called, an interruption prints nothing more.
pub fn emit(exit: &Exit) -> u8 {
    take_the_end();
    write_exit(exit)
}

/// [`emit`], by the thread that already holds [`ENDING`].
fn write_exit(exit: &Exit) -> u8 {
    if let Some(line) = &exit.stderr {
        crate::emulator::log::write_line(line);
    }
    after_writing_stdout(write_stdout(&exit.stdout), exit.code)
}

/// The exit status once stdout was written with `written`, for a command that would exit with
/// `code`: `code`, or 1 (a failure keeps its own code) when the write failed for a reason other
/// than a broken pipe, said on stderr as `lambda-image: error: cannot write to stdout: …`.
pub fn after_writing_stdout(written: std::io::Result<()>, code: u8) -> u8 {
    match written {
        Ok(()) => code,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => code,
        Err(error) => {
            crate::emulator::log::write_line(&format!(
                "lambda-image: error: cannot write to stdout: {error}"
            ));
            if code == 0 { 1 } else { code }
        }
    }
}

/// Writes all of `bytes` to stdout and flushes; nothing to write is never an error.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    stdout_is_open()?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

/// An error (EBADF) when descriptor 1 was closed at start ([`STDOUT_WAS_CLOSED`]).
pub fn stdout_is_open() -> std::io::Result<()> {
    if STDOUT_WAS_CLOSED.load(Ordering::Relaxed) {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(())
}

/// The error of a command stopped by `signal` (`killed`: a bootstrap was running and was
/// killed); `outputs`: the command writes outputs, which the hint says are never left
/// half-written.
pub fn interruption(signal: i32, killed: bool, outputs: bool) -> Error {
    let name = crate::emulator::signals::signal_name(signal);
    let mut message = format!("interrupted by {name}");
    if killed {
        message.push_str("; the bootstrap was killed");
    }
    let mut hint = if outputs {
        "run the command again; no output is left half-written (outputs are renamed into place \
         only when complete, and the temporary files of this run were removed)"
            .to_owned()
    } else {
        "run the command again".to_owned()
    };
    // A change already sent to Lambda goes on without the tool: say so.
    if let Some(sent) = crate::deploy::flow::sent_so_far() {
        message.push_str(&format!(" after a change was sent to Lambda ({sent})"));
        let name = crate::deploy::flow::first_sent().unwrap_or_else(|| "NAME".to_owned());
        hint = format!(
            "look at the function (aws lambda get-function --function-name {name}) before \
             deploying again: Lambda finishes a change it was sent"
        );
    }
    Error::new(
        ErrorKind::Interrupted {
            signal: u8::try_from(signal).unwrap_or(u8::MAX - 128),
        },
        message,
    )
    .hint(hint)
}

/// Ends the process as interrupted by `signal`: kills the running bootstrap, if any, removes
/// the run's temporary files and directories ([`crate::temporary`]), then reports the error of [`interruption`] as every error is reported (with `json`, the error
/// object on stdout), exit 128 + the signal. Does nothing but wait when the command has already
/// started to print its result (which then ends the process).
pub fn interrupted(signal: i32, outputs: bool, json: bool) -> ! {
    // First, so that the command, seeing its bootstrap die, cannot report that instead.
    take_the_end();
    let killed = crate::emulator::signals::kill_running_bootstrap();
    crate::temporary::remove_all();
    let exit = finish(Err(interruption(signal, killed, outputs)), json);
    let code = write_exit(&exit);
    std::process::exit(code.into())
}

/// Whether `--json` is on the command line (`arguments` without the program name), before a
/// lone `--`: such a command line wants its clap errors as a JSON error object too. `--json=…`
/// (`--json=yes`, which clap refuses, since the flag takes no value) asks for JSON as well.
pub fn json_requested(arguments: impl IntoIterator<Item = OsString>) -> bool {
    arguments
        .into_iter()
        .take_while(|argument| argument != "--")
        .any(|argument| argument == "--json" || argument.as_encoded_bytes().starts_with(b"--json="))
}

/// `error` with every value it quotes (the invalid value, an unexpected argument or
/// subcommand, and its tips) shown without anything that could be a password: clap quotes the
/// value it refuses, `invalid value 'alice:s3cret@host/x' for '--tag <REF>'`, in its own text
/// and in ours (the JSON object is rendered from the same error).
///
/// A value with credentials is shown as [`crate::reference::registry::shown`] does
/// (`alice:***@host/x`); any other `@` not followed by a digest hides what is before it
/// (`***@rest`). An unexpected argument or unrecognized subcommand with a `:` (a stray
/// `USER:PASS`) is shown as `USER:***`. Every other context value and tip that quotes such a
/// value has it replaced the same way.
pub fn without_credentials(mut error: clap::Error) -> clap::Error {
    use clap::builder::StyledStr;
    use clap::error::{ContextKind, ContextValue};
    let stray = matches!(
        error.kind(),
        clap::error::ErrorKind::UnknownArgument | clap::error::ErrorKind::InvalidSubcommand
    );
    // The values clap quotes, each with how it is shown.
    let mut replacements: Vec<(String, String)> = Vec::new();
    for (kind, value) in error.context() {
        let texts: Vec<&String> = match value {
            ContextValue::String(text) => vec![text],
            ContextValue::Strings(texts) => texts.iter().collect(),
            _ => continue,
        };
        let stray_kind = stray
            && matches!(
                kind,
                ContextKind::InvalidArg | ContextKind::InvalidSubcommand
            );
        for text in texts {
            if let Some(redacted) = redacted_value(text, stray_kind) {
                replacements.push((text.clone(), redacted));
            }
        }
    }
    if replacements.is_empty() {
        return error;
    }
    // Longest first, so that a value containing another is replaced whole.
    replacements.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
    let replace = |text: &str| {
        replacements
            .iter()
            .fold(text.to_owned(), |text, (from, to)| text.replace(from, to))
    };
    let rewritten: Vec<_> = error
        .context()
        .filter_map(|(kind, value)| {
            let value = match value {
                ContextValue::String(text) => ContextValue::String(replace(text)),
                ContextValue::Strings(texts) => {
                    ContextValue::Strings(texts.iter().map(|text| replace(text)).collect())
                }
                ContextValue::StyledStr(text) => {
                    ContextValue::StyledStr(StyledStr::from(replace(&text.to_string())))
                }
                ContextValue::StyledStrs(texts) => ContextValue::StyledStrs(
                    texts
                        .iter()
                        .map(|text| StyledStr::from(replace(&text.to_string())))
                        .collect(),
                ),
                _ => return None,
            };
            Some((kind, value))
        })
        .collect();
    for (kind, value) in rewritten {
        error.insert(kind, value);
    }
    error
}

/// How [`without_credentials`] shows one quoted value; None when it is shown as it is.
/// `stray`: the value is an unexpected argument or subcommand.
fn redacted_value(text: &str, stray: bool) -> Option<String> {
    use crate::reference::registry::{is_digest_like, redact_credentials};
    if let Some(redacted) = redact_credentials(text) {
        return Some(redacted);
    }
    if let Some((_, after)) = text.rsplit_once('@')
        && !is_digest_like(after)
    {
        return Some(format!("***@{after}"));
    }
    if stray && let Some((before, _)) = text.split_once(':') {
        return Some(format!("{before}:***"));
    }
    None
}

/// A clap error as the JSON error object (kind `usage`, exit 2): clap's message without its
/// `error: ` prefix, its tips as the hint, and no usage block.
pub fn clap_error(error: &clap::Error) -> Error {
    let rendered = error.render().to_string();
    let mut message = None;
    let mut tips = Vec::new();
    for block in rendered.split("\n\n") {
        let block = block.trim();
        if message.is_none() {
            message = Some(block.strip_prefix("error: ").unwrap_or(block).to_owned());
        } else if let Some(tip) = block.strip_prefix("tip: ") {
            tips.push(tip.to_owned());
        }
    }
    let hint = if tips.is_empty() {
        "see `lambda-image --help`, or --help after the command".to_owned()
    } else {
        tips.join("; ")
    };
    Error::new(ErrorKind::Usage, message.unwrap_or_default()).hint(hint)
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
