//! The entrypoint rules: Lambda execs `Entrypoint[0]` (or `Cmd[0]` when there is no Entrypoint)
//! as a non-root user, so it must be an absolute path to a file (not a symlink) that others may
//! read and execute, built for the image's architecture. On the provided bases the entrypoint is
//! `/lambda-entrypoint.sh`, which takes exactly one argument (the handler) and execs
//! `/var/runtime/bootstrap`, so that file is held to the same rules.

use serde_json::Value;

use crate::bootstrap::elf::read_architecture;
use crate::findings::{Finding, Level};
use crate::image::filesystem::{Filesystem, Node};
use crate::layer::contents::BOOTSTRAP_PATH;
use crate::platform::Architecture;

/// How many bytes of an entrypoint are read: enough for an ELF header or a `#!` line.
pub const HEAD_BYTES: usize = 4096;

/// The provided bases' entrypoint.
const LAMBDA_ENTRYPOINT: &str = "/lambda-entrypoint.sh";

/// What the config says to run.
pub struct Command {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

impl Command {
    pub fn from_config(config: &Value) -> Self {
        let strings = |key: &str| -> Vec<String> {
            config
                .pointer(&format!("/config/{key}"))
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
        }
    }

    /// The program Lambda execs.
    fn program(&self) -> Option<&str> {
        self.entrypoint
            .first()
            .or(self.cmd.first())
            .map(String::as_str)
    }

    /// The file names whose first bytes the layer scan should keep.
    pub fn paths_to_read(&self) -> Vec<String> {
        let mut names = vec!["bootstrap".to_owned()];
        if let Some(program) = self.program() {
            names.push(program.rsplit('/').next().unwrap_or(program).to_owned());
        }
        names
    }
}

/// Checks the entrypoint (and, behind `/lambda-entrypoint.sh`, the bootstrap) against the tree.
pub fn check(
    command: &Command,
    filesystem: &Filesystem,
    architecture: Architecture,
    config: &Value,
) -> Vec<Finding> {
    let arch = Some(architecture);
    let mut findings = Vec::new();
    let config_architecture = config
        .get("architecture")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(program) = command.program() else {
        findings.push(
            Finding::new("entrypoint", arch, Level::Error, "the config sets neither Entrypoint nor Cmd, so Lambda has nothing to run")
                .hint("build on a Lambda base (its Entrypoint is /lambda-entrypoint.sh), or set an Entrypoint"),
        );
        return findings;
    };
    if !program.starts_with('/') {
        findings.push(Finding::new(
            "entrypoint",
            arch,
            Level::Error,
            format!("the entrypoint `{program}` is not an absolute path, which Lambda requires"),
        ));
        return findings;
    }
    let Some(kind) = check_executable(
        "entrypoint",
        program,
        filesystem,
        architecture,
        config_architecture,
        &mut findings,
    ) else {
        return findings;
    };
    if program == LAMBDA_ENTRYPOINT {
        if command.entrypoint.len() + command.cmd.len() != 2 {
            findings.push(
                Finding::new(
                    "entrypoint",
                    arch,
                    Level::Error,
                    format!(
                        "{LAMBDA_ENTRYPOINT} takes exactly one argument (the handler), but Entrypoint + Cmd give it {}; \
                         it would exit 142",
                        command.entrypoint.len() + command.cmd.len() - 1
                    ),
                )
                .hint("set Cmd to one element, e.g. [\"bootstrap\"] (lambda-image build --handler)"),
            );
        }
        check_executable(
            "bootstrap",
            BOOTSTRAP_PATH,
            filesystem,
            architecture,
            config_architecture,
            &mut findings,
        );
    } else if kind == ProgramKind::Script {
        findings.push(Finding::new(
            "entrypoint",
            arch,
            Level::Info,
            format!("the entrypoint {program} is a script; what it runs is not checked"),
        ));
    }
    findings
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProgramKind {
    Elf,
    Script,
}

/// Checks one file Lambda will exec; `None` when it cannot be run at all.
fn check_executable(
    check: &'static str,
    path: &str,
    filesystem: &Filesystem,
    architecture: Architecture,
    config_architecture: &str,
    findings: &mut Vec<Finding>,
) -> Option<ProgramKind> {
    let arch = Some(architecture);
    let error = |message: String| Finding::new(check, arch, Level::Error, message);
    let node = match filesystem.node(path) {
        None => {
            findings.push(error(format!("{path} is not in the image")).hint(if check == "bootstrap" {
                "put the function's executable at /var/runtime/bootstrap (lambda-image build does)"
            } else {
                "set an Entrypoint that exists in the image"
            }));
            return None;
        }
        Some(Node::Symlink { target }) if check == "entrypoint" => {
            findings.push(
                error(format!(
                    "{path} is a symlink (to {target}); Lambda requires the entrypoint to be a file"
                ))
                .hint("point the Entrypoint at the file itself"),
            );
            return None;
        }
        Some(Node::Symlink { .. }) => filesystem.resolve(path).map(|(_, node)| node),
        Some(node) => Some(node),
    };
    let Some(Node::File { mode, head, .. }) = node else {
        findings.push(error(format!("{path} is not a regular file")));
        return None;
    };
    if mode & 0o111 == 0 {
        findings.push(
            error(format!("{path} is not executable (mode {mode:o})")).hint("give it mode 0755"),
        );
    } else if mode & 0o005 != 0o005 {
        findings.push(
            error(format!(
                "{path} has mode {mode:o}: Lambda runs functions as a non-root user, who cannot read and execute it"
            ))
            .hint("give it mode 0755"),
        );
    }
    let head = head.as_deref().unwrap_or_default();
    if head.starts_with(b"#!") {
        return Some(ProgramKind::Script);
    }
    if !head.starts_with(b"\x7fELF") {
        findings.push(error(format!(
            "{path} is neither an ELF executable nor a #! script"
        )));
        return None;
    }
    match read_architecture(head) {
        Ok(found) if found == architecture => findings.push(Finding::new(
            "architecture",
            arch,
            Level::Info,
            format!("{path} is an ELF executable for {}, as the config says", found.elf_machine_name()),
        )),
        Ok(found) => findings.push(
            Finding::new(
                "architecture",
                arch,
                Level::Error,
                format!(
                    "{path} is an ELF executable for {found} ({}), but the image config says {config_architecture}; \
                     Lambda would fail at the first invoke with `exec format error`",
                    found.elf_machine_name()
                ),
            )
            .hint(format!("rebuild the image with a bootstrap compiled for {architecture}")),
        ),
        Err(problem) => findings.push(error(format!("{path} {problem}"))),
    }
    Some(ProgramKind::Elf)
}
