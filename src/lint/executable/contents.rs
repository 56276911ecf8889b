//! What an executable found in the image is: an ELF for the config's architecture whose program
//! interpreter (`PT_INTERP`) is in the image, or a `#!` script whose line the kernel can use and
//! whose interpreter is in the image (checked in turn by the parent module's [`Checker`]).
//! Finding the file and its modes is the parent module's part.

use super::{Checker, HEAD_BYTES, MAX_INTERPRETER_DEPTH, Role};
use crate::bootstrap::checks::interpreter::missing_loader_advice;
use crate::bootstrap::elf::{read_architecture, read_interpreter};
use crate::bootstrap::shebang::{self, Program, Shebang};
use crate::findings::Level;
use crate::image::filesystem::Node;

impl Checker<'_> {
    /// The architecture and program interpreter of an ELF.
    pub(super) fn check_elf(
        &mut self,
        role: Role<'_>,
        path: &str,
        name: &str,
        head: &[u8],
        depth: usize,
    ) {
        let architecture = self.architecture;
        match read_architecture(head) {
            Ok(found) if found == architecture => {
                if depth == 0 {
                    self.finding(
                        "architecture",
                        Level::Info,
                        format!(
                            "{path} is an ELF executable for {}, as the config says",
                            found.elf_machine_name()
                        ),
                    );
                }
            }
            Ok(found) => {
                let config_architecture = self.config_architecture;
                self.finding(
                    "architecture",
                    Level::Error,
                    format!(
                        "{name} is an ELF executable for {found} ({}), but the image config says {config_architecture}; \
                         Lambda would fail at the first invoke with `exec format error`",
                        found.elf_machine_name()
                    ),
                )
                .hint = Some(match role {
                    Role::Bootstrap => {
                        format!("rebuild the image with a bootstrap compiled for {architecture}")
                    }
                    Role::Entrypoint => format!(
                        "rebuild the image with an entrypoint program compiled for {architecture}"
                    ),
                    Role::Extension => format!(
                        "use the extension's {} build (vendors publish one layer per architecture)",
                        architecture.lambda_name()
                    ),
                    // A #! interpreter such as /bin/sh comes with the base image.
                    Role::Interpreter { .. } => format!(
                        "the interpreter is for another architecture than the image: build on a base image for \
                         {architecture} (e.g. --platform linux/{architecture} when pulling it), or install an \
                         {architecture} build of the interpreter"
                    ),
                });
                return;
            }
            Err(problem) => {
                self.finding(role.check(), Level::Error, format!("{name} {problem}"));
                return;
            }
        }
        match read_interpreter(head) {
            Ok(None) => {}
            Ok(Some(interpreter)) => {
                if matches!(
                    self.filesystem.resolve(&interpreter),
                    Some((_, Node::File { .. }))
                ) {
                    return;
                }
                let (musl, hint) = missing_loader_advice(&interpreter, self.architecture);
                self.finding(
                    "interpreter",
                    Level::Error,
                    format!(
                        "{name} is dynamically linked, and its program interpreter (PT_INTERP) {interpreter} is not in \
                         the image: the kernel fails the exec with \"No such file or directory\".{musl}"
                    ),
                )
                .hint = Some(hint);
            }
            Err(_) => {
                self.finding(
                    "interpreter",
                    Level::Warning,
                    format!(
                        "{name}'s program headers lie beyond its first {HEAD_BYTES} bytes, so whether its program \
                         interpreter is in the image was not checked"
                    ),
                );
            }
        }
    }

    /// A `#!` script: its line as the kernel reads it, then the program it runs.
    pub(super) fn check_script(
        &mut self,
        role: Role<'_>,
        path: &str,
        name: &str,
        head: &[u8],
        depth: usize,
    ) {
        let shebang = match Shebang::parse(head) {
            Ok(shebang) => shebang,
            Err(problem) => {
                let check = role.check();
                self.finding(check, Level::Error, format!("{name} {problem}"))
                    .hint = Some(problem.hint().to_owned());
                return;
            }
        };
        if depth >= MAX_INTERPRETER_DEPTH {
            self.finding(
                "interpreter",
                Level::Error,
                format!(
                    "{name} is run by a chain of more than {MAX_INTERPRETER_DEPTH} #! interpreters; the kernel gives up \
                     with ELOOP"
                ),
            );
            return;
        }
        let line = shebang.line();
        let role = Role::Interpreter {
            of: path,
            line: &line,
        };
        match shebang.program() {
            Program::Unusable { reason, hint } => {
                self.finding(
                    "interpreter",
                    Level::Error,
                    shebang::unusable_message(&line, path, &reason),
                )
                .hint = Some(hint);
            }
            Program::Path(interpreter) => {
                let interpreter = self.absolute(interpreter);
                let found = self.check_executable(role, &interpreter, depth + 1);
                if let (Some(_), Some(doubt)) = (found, shebang.doubt()) {
                    self.finding(
                        "interpreter",
                        Level::Warning,
                        shebang::doubt_message(&line, path, &doubt.reason),
                    )
                    .hint = Some(doubt.hint);
                }
            }
            Program::Unknown { env, reason } => {
                let env = self.absolute(env);
                if self.check_executable(role, &env, depth + 1).is_some() {
                    self.finding(
                        "interpreter",
                        Level::Info,
                        shebang::unknown_message(&line, path, &reason),
                    );
                }
            }
            Program::OnPath { env, name: command } => {
                let env = self.absolute(env);
                if self.check_executable(role, &env, depth + 1).is_none() {
                    return;
                }
                let found = shebang::find_on_path(
                    &command,
                    &self.path_variable,
                    &self.working_dir,
                    |candidate| self.is_file(candidate),
                );
                match found {
                    Some(found) => {
                        self.check_executable(role, &found, depth + 1);
                    }
                    None => {
                        let searched = format!("{} ({})", self.path_source, self.path_variable);
                        self.finding(
                            "interpreter",
                            Level::Error,
                            format!(
                                "the #! interpreter {command} of {path} (`{line}`) is not in the image: env looks it \
                                 up on {searched}, and no directory there has it; Lambda could not start it"
                            ),
                        )
                        .hint = Some(format!(
                            "install {command} in the image on that PATH, or name the interpreter by its absolute path"
                        ));
                    }
                }
            }
        }
    }
}
