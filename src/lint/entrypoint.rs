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

use object::Endianness;
use object::elf::{FileHeader64, PT_INTERP};
use object::read::elf::{FileHeader, ProgramHeader};
use serde_json::Value;

use crate::bootstrap::elf::read_architecture;
use crate::bootstrap::shebang::{self, Program, Shebang};
use crate::findings::{Finding, Level};
use crate::image::filesystem::{Filesystem, LookupError, Node};
use crate::layer::contents::BOOTSTRAP_PATH;
use crate::platform::Architecture;

/// How many bytes of an executable are read: enough for an ELF header, its program headers and
/// its `PT_INTERP` path (at offset 0x238 to 0x318 in what gcc, Go and rustc write), or a `#!`
/// line. [`head_to_keep`] then keeps only the part that is used.
pub const HEAD_BYTES: usize = 4096;

/// The provided bases' entrypoint.
const LAMBDA_ENTRYPOINT: &str = "/lambda-entrypoint.sh";

/// The `PATH` Lambda gives a function whose image sets none (AWS Lambda Developer Guide,
/// "Defined runtime environment variables").
pub const LAMBDA_DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin/:/bin:/opt/bin";

/// How many interpreters may nest (`#!` script run by a `#!` script ...): Linux's `exec_binprm`
/// gives up with `ELOOP` past 5.
const MAX_INTERPRETER_DEPTH: usize = 5;

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

    /// The file names whose first bytes the layer scan should keep whatever their mode (every
    /// executable's are kept anyway).
    pub fn paths_to_read(&self) -> Vec<String> {
        let mut names = vec!["bootstrap".to_owned()];
        if let Some(program) = self.program() {
            names.push(program.rsplit('/').next().unwrap_or(program).to_owned());
        }
        names
    }
}

/// Of the first bytes read of a file, how many are worth keeping: a `#!` line up to its newline
/// (at most [`shebang::LINE_LIMIT`] bytes), an ELF's file header, program headers and
/// `PT_INTERP` path, nothing of anything else. Keeps the heads of every executable of a large
/// image small (under 1 KiB for a typical ELF).
pub fn head_to_keep(head: &[u8]) -> usize {
    if head.starts_with(b"#!") {
        let line = &head[..head.len().min(shebang::LINE_LIMIT)];
        return line
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(line.len(), |end| end + 1);
    }
    if head.starts_with(b"\x7fELF") {
        const ELF64_HEADER: usize = 64;
        let used = elf_headers_end(head).unwrap_or(ELF64_HEADER);
        return used.max(ELF64_HEADER).min(head.len());
    }
    0
}

/// Where an ELF's program headers and `PT_INTERP` path end, when they can be read from `head`.
fn elf_headers_end(head: &[u8]) -> Option<usize> {
    let header = FileHeader64::<Endianness>::parse(head).ok()?;
    let endian = header.endian().ok()?;
    let table_end = usize::try_from(header.e_phoff(endian)).ok()?.checked_add(
        usize::from(header.e_phnum(endian)) * usize::from(header.e_phentsize(endian)),
    )?;
    let mut end = table_end;
    for segment in header.program_headers(endian, head).ok()? {
        if segment.p_type(endian) == PT_INTERP {
            let interp_end = segment
                .p_offset(endian)
                .checked_add(segment.p_filesz(endian))?;
            end = end.max(usize::try_from(interp_end).ok()?);
        }
    }
    Some(end)
}

/// The program interpreter (`PT_INTERP`) named in an ELF's first bytes: `Ok(None)` for a static
/// executable, `Err(())` when the program headers or the path lie beyond `head`.
fn program_interpreter(head: &[u8]) -> Result<Option<String>, ()> {
    let header = FileHeader64::<Endianness>::parse(head).map_err(drop)?;
    let endian = header.endian().map_err(drop)?;
    for segment in header.program_headers(endian, head).map_err(drop)? {
        if let Some(path) = segment.interpreter(endian, head).map_err(drop)? {
            return Ok(Some(String::from_utf8_lossy(path).into_owned()));
        }
    }
    Ok(None)
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

/// Whose file is being checked, for the finding's check name and wording.
#[derive(Clone, Copy, Debug)]
enum Role<'a> {
    Entrypoint,
    Bootstrap,
    /// The program a `#!` line (`line`) of the file `of` runs.
    Interpreter {
        of: &'a str,
        line: &'a str,
    },
}

impl Role<'_> {
    fn check(self) -> &'static str {
        match self {
            Role::Entrypoint => "entrypoint",
            Role::Bootstrap => "bootstrap",
            Role::Interpreter { .. } => "interpreter",
        }
    }

    /// How `path` is named at the start of a message.
    fn name(self, path: &str) -> String {
        match self {
            Role::Interpreter { of, line } => {
                format!("the #! interpreter {path} of {of} (`{line}`)")
            }
            _ => path.to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProgramKind {
    Elf,
    Script,
}

struct Checker<'a> {
    filesystem: &'a Filesystem,
    architecture: Architecture,
    config_architecture: &'a str,
    /// The `PATH` bare names are looked up on, and where it came from (for messages).
    path_variable: String,
    path_source: &'static str,
    /// The config's `WorkingDir` (`/` without one): where relative names start.
    working_dir: String,
    findings: Vec<Finding>,
}

impl<'a> Checker<'a> {
    fn new(filesystem: &'a Filesystem, architecture: Architecture, config: &'a Value) -> Self {
        let path = config
            .pointer("/config/Env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|variable| variable.strip_prefix("PATH="))
            .next_back();
        let working_dir = config
            .pointer("/config/WorkingDir")
            .and_then(Value::as_str)
            .filter(|directory| directory.starts_with('/'))
            .unwrap_or("/");
        Self {
            filesystem,
            architecture,
            config_architecture: config
                .get("architecture")
                .and_then(Value::as_str)
                .unwrap_or(""),
            path_variable: path.unwrap_or(LAMBDA_DEFAULT_PATH).to_owned(),
            path_source: if path.is_some() {
                "the config's PATH"
            } else {
                "Lambda's default PATH (the config sets none)"
            },
            working_dir: working_dir.to_owned(),
            findings: Vec::new(),
        }
    }

    fn finding(&mut self, check: &'static str, level: Level, message: String) -> &mut Finding {
        self.findings
            .push(Finding::new(check, Some(self.architecture), level, message));
        self.findings.last_mut().expect("just pushed")
    }

    /// `path` made absolute against the working directory.
    fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{}/{path}", self.working_dir.trim_end_matches('/'))
        }
    }

    /// True when `path` names a regular file after following links (what `execvp` tries).
    fn is_file(&self, path: &str) -> bool {
        matches!(self.filesystem.resolve(path), Some((_, Node::File { .. })))
    }

    /// The absolute path Lambda execs for the program as written, or `None` (with an error)
    /// when it names nothing. Names that are not absolute get a warning when found.
    fn locate_program(&mut self, program: &str) -> Option<String> {
        if program.starts_with('/') {
            return Some(program.to_owned());
        }
        let (found, searched, not_found) = if program.contains('/') {
            let path = self.absolute(program);
            (
                self.is_file(&path).then_some(path),
                format!("the working directory {}", self.working_dir),
                format!(
                    "the working directory {} has no such file",
                    self.working_dir
                ),
            )
        } else {
            let found = shebang::find_on_path(
                program,
                &self.path_variable,
                &self.working_dir,
                |candidate| self.is_file(candidate),
            );
            let searched = format!("{} ({})", self.path_source, self.path_variable);
            let not_found = format!("no directory of {searched} has it");
            (found, searched, not_found)
        };
        match found {
            Some(path) => {
                self.finding(
                    "entrypoint",
                    Level::Warning,
                    format!(
                        "the entrypoint `{program}` is not an absolute path; Lambda finds it through {searched} \
                         at {path}, which is checked"
                    ),
                )
                .hint = Some(format!(
                    "write the absolute path in the Entrypoint ([\"{path}\", ...]) so it does not depend on PATH"
                ));
                Some(path)
            }
            None => {
                self.finding(
                    "entrypoint",
                    Level::Error,
                    format!(
                        "the entrypoint `{program}` is not an absolute path, and {not_found}; \
                         Lambda could not start the function"
                    ),
                )
                .hint = Some(
                    "set the Entrypoint to the absolute path of a program in the image".to_owned(),
                );
                None
            }
        }
    }

    /// Checks one file Lambda (or the kernel, for an interpreter) will exec; `None` when it
    /// cannot be run at all.
    fn check_executable(
        &mut self,
        role: Role<'_>,
        path: &str,
        depth: usize,
    ) -> Option<ProgramKind> {
        let check = role.check();
        let name = role.name(path);
        let node = match self.filesystem.node(path) {
            None => {
                let why = match self.filesystem.lookup(path) {
                    Err(LookupError::Missing(missing))
                        if missing.trim_end_matches('/') != path.trim_end_matches('/') =>
                    {
                        format!(" ({missing} is not)")
                    }
                    Err(error @ (LookupError::NotADirectory(_) | LookupError::TooManyLinks)) => {
                        format!(" ({error})")
                    }
                    _ => String::new(),
                };
                let hint = match role {
                    Role::Bootstrap => {
                        "put the function's executable at /var/runtime/bootstrap (lambda-image build does)"
                    }
                    Role::Entrypoint => "set an Entrypoint that exists in the image",
                    Role::Interpreter { .. } => {
                        "install the interpreter in the image, or change the #! line to one the image has (e.g. #!/bin/sh)"
                    }
                };
                self.finding(
                    check,
                    Level::Error,
                    format!("{name} is not in the image{why}; Lambda could not start it"),
                )
                .hint = Some(hint.to_owned());
                return None;
            }
            Some(node) => node,
        };
        let link_target = match node {
            Node::Symlink { target } => Some(target.as_str()),
            _ => None,
        };
        let (resolved, node) = match self.filesystem.lookup(path) {
            Ok((resolved, node)) => (format!("/{resolved}"), node),
            Err(error) => {
                let target = link_target.unwrap_or_default();
                self.finding(
                    check,
                    Level::Error,
                    format!(
                        "{name} is a symbolic link to {target}, but {error}; Lambda could not start it"
                    ),
                )
                .hint = Some("point the link at a file in the image".to_owned());
                return None;
            }
        };
        if let Some(target) = link_target {
            match role {
                Role::Entrypoint => {
                    self.finding(
                        check,
                        Level::Warning,
                        format!(
                            "the entrypoint {path} is a symbolic link (to {target}); Lambda follows it as execve does, \
                             and the file it names, {resolved}, is checked"
                        ),
                    )
                    .hint = Some(format!(
                        "to depend on no link, set the Entrypoint to {resolved}"
                    ));
                }
                Role::Bootstrap => {
                    self.finding(
                        check,
                        Level::Info,
                        format!(
                            "{path} is a symbolic link (to {target}); the file it names, {resolved}, is checked"
                        ),
                    );
                }
                Role::Interpreter { .. } => {}
            }
        }
        let Node::File { mode, head, .. } = node else {
            let what = match node {
                Node::Directory => "a directory",
                _ => "not a regular file",
            };
            self.finding(
                check,
                Level::Error,
                format!("{name} is {what}; Lambda could not start it"),
            );
            return None;
        };
        let mode = *mode;
        if mode & 0o111 == 0 {
            self.finding(
                check,
                Level::Error,
                format!("{name} is not executable (mode {mode:o})"),
            )
            .hint = Some("give it mode 0755".to_owned());
        } else if mode & 0o005 != 0o005 {
            self.finding(
                check,
                Level::Error,
                format!(
                    "{name} has mode {mode:o}: Lambda runs functions as a non-root user, who cannot read and execute it"
                ),
            )
            .hint = Some("give it mode 0755".to_owned());
        }
        let Some(head) = head.as_deref() else {
            // Not executable and not asked for: its mode is the error already reported.
            return None;
        };
        if head.starts_with(b"#!") {
            self.check_script(path, &name, head, depth);
            return Some(ProgramKind::Script);
        }
        if !head.starts_with(b"\x7fELF") {
            self.finding(
                check,
                Level::Error,
                format!("{name} is neither an ELF executable nor a #! script"),
            );
            return None;
        }
        self.check_elf(role, path, &name, head, depth);
        Some(ProgramKind::Elf)
    }

    /// The architecture and program interpreter of an ELF.
    fn check_elf(&mut self, role: Role<'_>, path: &str, name: &str, head: &[u8], depth: usize) {
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
                .hint = Some(format!(
                    "rebuild the image with a bootstrap compiled for {architecture}"
                ));
                return;
            }
            Err(problem) => {
                self.finding(role.check(), Level::Error, format!("{name} {problem}"));
                return;
            }
        }
        match program_interpreter(head) {
            Ok(None) => {}
            Ok(Some(interpreter)) => {
                if matches!(
                    self.filesystem.resolve(&interpreter),
                    Some((_, Node::File { .. }))
                ) {
                    return;
                }
                let musl = if interpreter.contains("ld-musl") {
                    " It was linked against musl (e.g. built on Alpine); the AWS bases have only glibc."
                } else {
                    ""
                };
                self.finding(
                    "interpreter",
                    Level::Error,
                    format!(
                        "{name} is dynamically linked, and its program interpreter (PT_INTERP) {interpreter} is not in \
                         the image: the kernel fails the exec with \"No such file or directory\".{musl}"
                    ),
                )
                .hint = Some(
                    "link it statically (Go: CGO_ENABLED=0; Rust: a musl target or -C target-feature=+crt-static), \
                     or build it against the C library the image has, or ship that dynamic loader and its libraries"
                        .to_owned(),
                );
            }
            Err(()) => {
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
    fn check_script(&mut self, path: &str, name: &str, head: &[u8], depth: usize) {
        let shebang = match Shebang::parse(head) {
            Ok(shebang) => shebang,
            Err(problem) => {
                let check = if depth == 0 {
                    if path == BOOTSTRAP_PATH {
                        "bootstrap"
                    } else {
                        "entrypoint"
                    }
                } else {
                    "interpreter"
                };
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
        match shebang.program() {
            Program::Path(interpreter) => {
                let interpreter = self.absolute(interpreter);
                self.check_executable(
                    Role::Interpreter {
                        of: path,
                        line: &line,
                    },
                    &interpreter,
                    depth + 1,
                );
            }
            Program::OnPath { env, name: command } => {
                let env = self.absolute(env);
                let role = Role::Interpreter {
                    of: path,
                    line: &line,
                };
                if self.check_executable(role, &env, depth + 1).is_none() {
                    return;
                }
                let found = shebang::find_on_path(
                    command,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_the_shebang_line_or_the_elf_headers_only() {
        assert_eq!(head_to_keep(b"#!/bin/sh\necho hi\n"), 10);
        assert_eq!(head_to_keep(b"#!/bin/sh\r\nexit\r\n"), 11);
        let long = [b"#!/".as_slice(), &[b'a'; 500]].concat();
        assert_eq!(head_to_keep(&long), shebang::LINE_LIMIT);
        assert_eq!(head_to_keep(b"PK\x03\x04 not a program"), 0);
        assert_eq!(head_to_keep(b""), 0);
        // A truncated ELF keeps what there is.
        assert_eq!(head_to_keep(b"\x7fELF\x02\x01"), 6);
    }

    #[test]
    fn elf_heads_end_after_the_interpreter_path() {
        let elf = std::fs::read("/bin/sh").expect("this machine has /bin/sh");
        let head = &elf[..HEAD_BYTES.min(elf.len())];
        let keep = head_to_keep(head);
        assert!(keep > 64 && keep < HEAD_BYTES, "{keep}");
        let interpreter = program_interpreter(&head[..keep]).unwrap().unwrap();
        assert!(interpreter.starts_with("/lib"), "{interpreter}");
        // One byte fewer cuts the interpreter path: it cannot be read then.
        assert!(program_interpreter(&head[..keep - 1]).is_err());
    }
}
