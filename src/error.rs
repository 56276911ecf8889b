//! The one error type every command returns, and the exit code each kind of failure maps to.
//!
//! Messages say what is wrong and, through [`Error::hint`], what to do about it. They never carry
//! a backtrace, and never carry credentials.

use std::fmt;
use std::path::Path;

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
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failure => 1,
            ErrorKind::Usage => 2,
            ErrorKind::Bootstrap => 3,
            ErrorKind::Base => 4,
            ErrorKind::Output => 5,
            ErrorKind::Registry => 6,
        }
    }
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
