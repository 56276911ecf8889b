//! The entrypoint rules: Lambda execs `Entrypoint[0]` (or `Cmd[0]` when there is no Entrypoint)
//! as a non-root user. What it execs is followed the way `execve` follows it, inside the image's
//! own file tree:
//!
//! - a name without a `/` (`python3`) is looked up on the config's `PATH`, as `execvp` does; a
//!   relative path with a `/` is taken from the config's `WorkingDir`;
//! - symbolic links, in the file or in its parent directories, are followed to the file they name
//!   (dangling links and loops are errors);
//! - the file must be readable and executable by others, and be an ELF for the config's
//!   architecture or a `#!` script;
//! - a `#!` script's line must be one the kernel can use (no carriage return: Linux's
//!   `fs/binfmt_script.c` makes it part of the interpreter's name), and its interpreter (or, for
//!   `#!/usr/bin/env NAME`, NAME on the config's `PATH`) must be in the image, checked the same way
//!   in turn, up to Linux's limit of nested interpreters;
//! - a dynamically linked ELF's program interpreter (`PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`
//!   or musl's `/lib/ld-musl-x86_64.so.1`) must be in the image, or the kernel fails the exec with
//!   "No such file or directory" (`fs/binfmt_elf.c`, `load_elf_binary`).
//!
//! Only what surely fails is an error. An entrypoint that is a symbolic link, or that is not an
//! absolute path but is found, runs on Lambda: AWS's own Dockerfiles for the runtime interface
//! clients use `ENTRYPOINT [ "/usr/local/bin/python", "-m", "awslambdaric" ]` and
//! `ENTRYPOINT ["/usr/local/bin/npx", "aws-lambda-ric"]` (both links in their base images; AWS
//! Lambda Developer Guide, python-image.html and nodejs-image.html, "Using a non-AWS base image";
//! READMEs of aws/aws-lambda-python-runtime-interface-client and
//! aws/aws-lambda-nodejs-runtime-interface-client), so those are warnings.
//!
//! On the provided bases the entrypoint is `/lambda-entrypoint.sh`, which takes exactly one
//! argument (the handler) and execs `/var/runtime/bootstrap`, so that file is held to the same
//! rules.
use serde_json::Value;

use super::executable::{Checker, Role};
use crate::findings::{Finding, Level};
use crate::image::filesystem::Filesystem;
use crate::layer::contents::BOOTSTRAP_PATH;
use crate::platform::Architecture;

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
}
/// Checks the entrypoint (and, behind `/lambda-entrypoint.sh`, the bootstrap) against the tree.
pub fn check(
    command: &Command,
    filesystem: &Filesystem,
    architecture: Architecture,
    config: &Value,
) -> Vec<Finding> {
    let mut checker = Checker::new(filesystem, architecture, config);
    let arch = Some(architecture);
    let Some(program) = command.program() else {
        checker.findings.push(
            Finding::new("entrypoint", arch, Level::Error, "the config sets neither Entrypoint nor Cmd, so Lambda has nothing to run")
                .hint("build on a Lambda base (its Entrypoint is /lambda-entrypoint.sh), or set an Entrypoint"),
        );
        return checker.findings;
    };
    let Some(path) = checker.locate_program(program) else {
        return checker.findings;
    };
    if checker
        .check_executable(Role::Entrypoint, &path, 0)
        .is_none()
    {
        return checker.findings;
    }
    if path == LAMBDA_ENTRYPOINT {
        let arguments = command.entrypoint.len() + command.cmd.len() - 1;
        if arguments != 1 {
            checker.findings.push(
                Finding::new(
                    "entrypoint",
                    arch,
                    Level::Error,
                    format!(
                        "{LAMBDA_ENTRYPOINT} takes exactly one argument (the handler), but Entrypoint + Cmd give it {arguments}; \
                         it would exit 142"
                    ),
                )
                .hint("set Cmd to one element, e.g. [\"bootstrap\"] (lambda-image build --handler)"),
            );
        }
        checker.check_executable(Role::Bootstrap, BOOTSTRAP_PATH, 0);
    }
    checker.findings
}

#[cfg(test)]
#[path = "entrypoint_tests.rs"]
mod tests;
