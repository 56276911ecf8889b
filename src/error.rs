//! The one error type every command returns, and the exit code each kind of failure maps to.
//!
//! Messages say what is wrong and, through [`Error::hint`], what to do about it. They never carry
//! a backtrace, and never carry credentials.
//!
//! The exit-code table (the README's; every command uses it, no command has codes of its own):
//!
//! | code | kind (`error.kind` in JSON) | meaning |
//! |---|---|---|
//! | 0 | – | success |
//! | 1 | `failure` | unexpected failure (I/O, internal) |
//! | 2 | `usage` | bad command line, bad flag value, unreadable or too large `invoke` event |
//! | 3 | `bootstrap` | a bootstrap was rejected (`build`, `zip`, `check --bootstrap`, `invoke`, `serve`) |
//! | 4 | `base` | the base or input image is missing, unreadable, corrupt, lacks the architecture; a `--layer` version not found |
//! | 5 | `output` | the output cannot be written |
//! | 6 | `registry` | registry, Lambda's layer API and layer downloads, credentials, TLS, network |
//! | 7 | `image_rejected` | `check IMAGE`: an error finding in the image (Lambda would reject it); `invoke`/`serve --image`: a layer Lambda refuses, or nothing to run |
//! | 8 | `function_error` | `invoke`: the function returned an error |
//! | 9 | `init_error` | `invoke`: the function could not start (init error, or exited before answering) |
//! | 10 | `timeout` | `invoke`: no answer within `--timeout`, or the event never asked for within the init limit |
//! | 11 | `deploy` | `deploy`, `build --deploy`: Lambda refused the deployment, or it failed |
//! | 130, 143 | `interrupted` | stopped by SIGINT (130) or SIGTERM (143): 128 + the signal, as a shell reports it |
//!
//! With `--json`, a failure is reported on stdout as [`Error::to_json`] gives it.

use std::fmt;
use std::path::Path;

use serde::Serialize;

/// What went wrong, which decides the process exit code (documented in the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An unexpected I/O or internal failure.
    Failure,
    /// The command line is malformed (bad flag value, bad reference syntax).
    Usage,
    /// A bootstrap cannot be used: missing, empty, not executable code, wrong architecture.
    Bootstrap,
    /// The base image is missing, corrupt, or lacks a requested architecture.
    Base,
    /// The output could not be written.
    Output,
    /// A registry could not be reached or refused a request, or credentials could not be
    /// found or used.
    Registry,
    /// `check IMAGE` found an error in the image: Lambda would reject it; `invoke --image` or
    /// `serve --image` was given an image Lambda would refuse (a layer its unpacker refuses, a
    /// config with nothing to run).
    ImageRejected,
    /// `invoke`: the function returned an error (`…/invocation/ID/error`).
    FunctionError,
    /// `invoke`: the function could not start: an init error, or the bootstrap exited before
    /// answering.
    InitError,
    /// `invoke`: no answer within `--timeout`, or the bootstrap never asked for the event within
    /// Lambda's init limit.
    Timeout,
    /// `deploy` (and `build --deploy`): Lambda refused the call (access denied, no such function,
    /// a package type or architecture that does not match the function's), or the update ended
    /// `Failed`.
    Deploy,
    /// The command was stopped by a signal (SIGINT 2 or SIGTERM 15) before it finished; it
    /// exits with 128 + the signal, as a shell reports a process a signal killed.
    Interrupted {
        /// The signal's number.
        signal: u8,
    },
}

impl ErrorKind {
    /// Every kind, in exit-code order (interrupted by SIGINT, then by SIGTERM, last).
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::Failure,
        ErrorKind::Usage,
        ErrorKind::Bootstrap,
        ErrorKind::Base,
        ErrorKind::Output,
        ErrorKind::Registry,
        ErrorKind::ImageRejected,
        ErrorKind::FunctionError,
        ErrorKind::InitError,
        ErrorKind::Timeout,
        ErrorKind::Deploy,
        ErrorKind::Interrupted { signal: 2 },
        ErrorKind::Interrupted { signal: 15 },
    ];

    /// The process exit code (the table in the module docs and the README); never 0.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failure => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Bootstrap => 3,
            ErrorKind::Base => 4,
            ErrorKind::Output => 5,
            ErrorKind::Registry => 6,
            ErrorKind::ImageRejected => 7,
            ErrorKind::FunctionError => 8,
            ErrorKind::InitError => 9,
            ErrorKind::Timeout => 10,
            ErrorKind::Deploy => 11,
            ErrorKind::Interrupted { signal } => 128u8.saturating_add(signal),
        }
    }

    /// What it means, one line (the README's exit-code table in short; `lambda-image(1)`'s EXIT
    /// STATUS section is made from this).
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorKind::Failure => "unexpected failure (I/O or internal error)",
            ErrorKind::Usage => {
                "bad command line (clap errors too), bad flag value, a --skip-checks name the \
                 command does not run; for invoke, an event that cannot be read or is too large"
            }
            ErrorKind::Bootstrap => {
                "a bootstrap was rejected (build, zip, check --bootstrap, invoke, serve): any \
                 error finding of a bootstrap check"
            }
            ErrorKind::Base => {
                "the base or input image is missing, unreadable, corrupt, or lacks the \
                 architecture; a --layer version Lambda or the --offline cache does not have"
            }
            ErrorKind::Output => "the output cannot be written",
            ErrorKind::Registry => {
                "registry, Lambda's layer API (build --layer ARN), credentials, TLS or network"
            }
            ErrorKind::ImageRejected => {
                "check IMAGE: an error finding in the image (Lambda would reject it); invoke or \
                 serve --image: a layer Lambda refuses, or a config with nothing to run"
            }
            ErrorKind::FunctionError => "invoke: the function returned an error",
            ErrorKind::InitError => {
                "invoke: the function could not start (an init error, or it exited before \
                 answering)"
            }
            ErrorKind::Timeout => {
                "invoke: no answer within --timeout, or the bootstrap never asked for the event \
                 within the init limit"
            }
            ErrorKind::Deploy => {
                "deploy, build --deploy: Lambda refused the deployment (access denied, no such \
                 function, a package type or architecture other than the function's) or it failed"
            }
            ErrorKind::Interrupted { signal: 2 } => {
                "stopped by SIGINT (Ctrl-C) before it finished (128 + 2); a running bootstrap is \
                 killed first"
            }
            ErrorKind::Interrupted { .. } => {
                "stopped by SIGTERM before it finished (128 + 15); a running bootstrap is killed \
                 first"
            }
        }
    }

    /// The name `--json` gives it as `error.kind`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Failure => "failure",
            ErrorKind::Usage => "usage",
            ErrorKind::Bootstrap => "bootstrap",
            ErrorKind::Base => "base",
            ErrorKind::Output => "output",
            ErrorKind::Registry => "registry",
            ErrorKind::ImageRejected => "image_rejected",
            ErrorKind::FunctionError => "function_error",
            ErrorKind::InitError => "init_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Deploy => "deploy",
            ErrorKind::Interrupted { .. } => "interrupted",
        }
    }
}

/// An error as `--json` reports it: `{"kind", "message", "hint" (or null), "exit_code"}`, the
/// value of the `"error"` member (see [`Error::to_json`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorReport<'a> {
    /// [`ErrorKind::name`].
    pub kind: &'static str,
    pub message: &'a str,
    pub hint: Option<&'a str>,
    /// [`ErrorKind::exit_code`]: the process exits with it.
    pub exit_code: u8,
}

/// A failure with a message for the user and, where there is one, the next step to take.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    pub fn bootstrap(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Bootstrap, message)
    }

    pub fn base(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Base, message)
    }

    pub fn output(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Output, message)
    }

    pub fn registry(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Registry, message)
    }

    pub fn deploy(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Deploy, message)
    }

    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failure, message)
    }

    /// Adds the next step the user should take.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Appends to the message, e.g. how many tries were made.
    pub fn with_message_suffix(mut self, suffix: &str) -> Self {
        self.message.push_str(suffix);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The error for the `"error"` member of a `--json` report.
    pub fn report(&self) -> ErrorReport<'_> {
        ErrorReport {
            kind: self.kind.name(),
            message: &self.message,
            hint: self.hint.as_deref(),
            exit_code: self.kind.exit_code(),
        }
    }

    /// What `--json` prints on stdout for a command that fails without a report: one line,
    /// `{"error":{"kind":…,"message":…,"hint":…,"exit_code":N}}`, without the newline.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Only<'a> {
            error: ErrorReport<'a>,
        }
        serde_json::to_string(&Only {
            error: self.report(),
        })
        .expect("an error report always serializes")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Attaches a kind and a description of the failed step (usually naming a path) to I/O errors.
pub trait IoContext<T> {
    fn context(self, kind: ErrorKind, doing: impl FnOnce() -> String) -> Result<T>;

    /// Shorthand for a failed read or write of `path`, described by `what` (e.g. "read").
    fn path_context(self, kind: ErrorKind, what: &str, path: &Path) -> Result<T>
    where
        Self: Sized,
    {
        self.context(kind, || format!("cannot {what} {}", path.display()))
    }
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, kind: ErrorKind, doing: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|error| Error::new(kind, format!("{}: {error}", doing())))
    }
}

/// An error and its causes (`source()`) as one line, each as it displays itself, once (a cause
/// whose text an earlier part already holds is left out), joined by `: `. What users read of
/// transport and SDK failures: `DisplayErrorContext` and `{:?}` add Debug forms meant for
/// developers (a refused connection came out as `DispatchFailure(DispatchFailure { ... })`).
pub fn describe_error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(current) = source {
        let text = current.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = current.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_exit_code_and_name_from_the_table() {
        let table: Vec<(u8, &str)> = ErrorKind::ALL
            .iter()
            .map(|kind| (kind.exit_code(), kind.name()))
            .collect();
        assert_eq!(
            table,
            [
                (1, "failure"),
                (2, "usage"),
                (3, "bootstrap"),
                (4, "base"),
                (5, "output"),
                (6, "registry"),
                (7, "image_rejected"),
                (8, "function_error"),
                (9, "init_error"),
                (10, "timeout"),
                (11, "deploy"),
                (130, "interrupted"),
                (143, "interrupted"),
            ]
        );
    }

    #[test]
    fn the_json_error_object_has_kind_message_hint_and_exit_code() {
        let error = Error::registry("push refused: \"quoted\"\nsecond line").hint("log in");
        let value: serde_json::Value = serde_json::from_str(&error.to_json()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": {
                "kind": "registry",
                "message": "push refused: \"quoted\"\nsecond line",
                "hint": "log in",
                "exit_code": 6,
            }})
        );
        assert!(!error.to_json().contains('\n'), "one line");

        let without_hint = Error::new(ErrorKind::Timeout, "too slow").to_json();
        assert_eq!(
            without_hint,
            r#"{"error":{"kind":"timeout","message":"too slow","hint":null,"exit_code":10}}"#
        );
    }

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("dispatch failure")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_chain_reads_as_sentences_without_debug_forms() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "tcp connect error");
        let text = describe_error_chain(&Outer(refused));
        assert_eq!(text, "dispatch failure: tcp connect error");
        assert!(!text.contains("Outer"), "{text}");
        // A part that only repeats the one before is left out.
        let repeated = Outer(std::io::Error::other("dispatch failure"));
        assert_eq!(describe_error_chain(&repeated), "dispatch failure");
    }
}
