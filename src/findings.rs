//! Findings: what a check found, how serious it is, and what to do about it. Shared by the
//! bootstrap checks of `build` / `zip` and by the image linter of `check`, and printed the same
//! way by all of them (human lines on stderr, or data in `--json`).

use serde::Serialize;

use crate::platform::Architecture;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Lambda would reject or fail to run the result: the command fails.
    Error,
    /// Likely a mistake, but not certainly one.
    Warning,
    /// A check the user asked to skip (`--skip-checks`).
    Skipped,
    /// What a passing check saw, or something the tool fixed on its own.
    Info,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Skipped => "skipped",
            Level::Info => "info",
        }
    }
}

/// One finding of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's name, e.g. `glibc` or `hard-links`.
    pub check: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    pub fn new(
        check: &'static str,
        architecture: Option<Architecture>,
        level: Level,
        message: impl Into<String>,
    ) -> Self {
        Self {
            check,
            architecture,
            level,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `warning[glibc] amd64: message` and, on the next line, the hint.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}[{}]", self.level.name(), self.check);
        if let Some(architecture) = self.architecture {
            text.push_str(&format!(" {architecture}"));
        }
        text.push_str(&format!(": {}", self.message));
        if let Some(hint) = &self.hint {
            text.push_str(&format!("\n  hint: {hint}"));
        }
        text
    }
}

/// Info findings that are notes for the user, not passes: printed like warnings.
const NOTES: &[&str] = &["executable", "runtime-link"];

/// Prints what the user should see of the checks on stderr: warnings, skips, fixes and notes,
/// not passes. The same for every command that checks (`build`, `zip`).
pub fn report_findings(findings: &[Finding]) {
    for finding in findings {
        if finding.level != Level::Info || NOTES.contains(&finding.check) {
            eprintln!("lambda-image: {}", finding.to_text());
        }
    }
}

/// True when any finding fails the command.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|finding| finding.level == Level::Error)
}
