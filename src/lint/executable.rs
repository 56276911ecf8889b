//! Checking one file Lambda will exec inside an image's own file tree, as `execve` would: the
//! path (links in it and its parents followed, a bare name found on `PATH`), its modes for a
//! non-root user, and what it is: an ELF for the config's architecture whose program interpreter
//! (`PT_INTERP`) is in the image, or a `#!` script whose line the kernel can use and whose
//! interpreter is in the image, checked the same way in turn. What to check comes from
//! `entrypoint`; which bytes of each file the layer scan keeps is [`head_to_keep`].

use object::Endianness;
use object::elf::{FileHeader64, PT_INTERP};
use object::read::elf::{FileHeader, ProgramHeader};
use serde_json::Value;

use crate::bootstrap::shebang::{self};
use crate::findings::{Finding, Level};
use crate::image::filesystem::{Filesystem, LookupError, Node};
use crate::platform::Architecture;

mod contents;

/// How many bytes of an executable are read: enough for an ELF header, its program headers and
/// its `PT_INTERP` path (at offset 0x238 to 0x318 in what gcc, Go and rustc write), or a `#!`
/// line. [`head_to_keep`] then keeps only the part that is used.
pub const HEAD_BYTES: usize = 4096;

/// The `PATH` Lambda gives a function whose image sets none (AWS Lambda Developer Guide,
/// "Defined runtime environment variables").
pub const LAMBDA_DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin/:/bin:/opt/bin";

/// How many interpreters may nest (`#!` script run by a `#!` script ...): Linux's `exec_binprm`
/// gives up with `ELOOP` past 5.
pub(super) const MAX_INTERPRETER_DEPTH: usize = 5;
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
    if head.starts_with(crate::bootstrap::UTF8_BOM) {
        // Enough to say why it is neither.
        return crate::bootstrap::UTF8_BOM.len();
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
/// Whose file is being checked, for the finding's check name and wording.
#[derive(Clone, Copy, Debug)]
pub(super) enum Role<'a> {
    Entrypoint,
    Bootstrap,
    /// A file of `/opt/extensions`, which Lambda starts before the runtime.
    Extension,
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
            Role::Extension => "extension",
            Role::Interpreter { .. } => "interpreter",
        }
    }

    /// How `path` is named at the start of a message.
    fn name(self, path: &str) -> String {
        match self {
            Role::Interpreter { of, line } => {
                format!("the #! interpreter {path} of {of} (`{line}`)")
            }
            Role::Extension => format!("the extension {path}"),
            _ => path.to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProgramKind {
    Elf,
    Script,
}

pub(super) struct Checker<'a> {
    filesystem: &'a Filesystem,
    architecture: Architecture,
    config_architecture: &'a str,
    /// The `PATH` bare names are looked up on, and where it came from (for messages).
    path_variable: String,
    path_source: &'static str,
    /// The config's `WorkingDir` (`/` without one): where relative names start.
    working_dir: String,
    /// The entrypoint already has a warning (not an absolute path): that it is also a link is
    /// then only noted.
    entrypoint_warned: bool,
    pub(super) findings: Vec<Finding>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(
        filesystem: &'a Filesystem,
        architecture: Architecture,
        config: &'a Value,
    ) -> Self {
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
            entrypoint_warned: false,
            findings: Vec::new(),
        }
    }

    fn finding(&mut self, check: &'static str, level: Level, message: String) -> &mut Finding {
        self.findings
            .push(Finding::new(check, Some(self.architecture), level, message));
        self.findings.last_mut().expect("just pushed")
    }

    /// `path` made absolute against the working directory, with `.` and empty components
    /// dropped (`./myrt` in /var/task is /var/task/myrt). `..` is kept: after a symbolic link
    /// it is not the component before it, and the file tree's lookup follows it as the kernel
    /// does.
    fn absolute(&self, path: &str) -> String {
        let joined = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{}/{path}", self.working_dir.trim_end_matches('/'))
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                part => parts.push(part),
            }
        }
        let normal = format!("/{}", parts.join("/"));
        // A trailing slash is kept: it makes the kernel fail with ENOTDIR.
        if joined.ends_with('/') && normal.len() > 1 {
            normal + "/"
        } else {
            normal
        }
    }

    /// True when `path` names a regular file after following links (what `execvp` tries).
    fn is_file(&self, path: &str) -> bool {
        matches!(self.filesystem.resolve(path), Some((_, Node::File { .. })))
    }

    /// The absolute path Lambda execs for the program as written, or `None` (with an error)
    /// when it names nothing. Names that are not absolute get a warning when found.
    pub(super) fn locate_program(&mut self, program: &str) -> Option<String> {
        if program.starts_with('/') {
            return Some(program.to_owned());
        }
        let (found, searched, not_found) = if program.contains('/') {
            let path = self.absolute(program);
            (
                self.is_file(&path).then_some(path),
                format!("the image's WorkingDir {}", self.working_dir),
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
                self.entrypoint_warned = true;
                self.finding(
                    "entrypoint",
                    Level::Warning,
                    format!(
                        "the entrypoint `{program}` is not an absolute path; Lambda finds it through {searched} \
                         at {path}, which is checked"
                    ),
                )
                .hint = Some(if program.contains('/') {
                    format!(
                        "write the absolute path in the Entrypoint ([\"{path}\", ...]) so it does not depend on \
                         the WorkingDir"
                    )
                } else {
                    format!(
                        "write the absolute path in the Entrypoint ([\"{path}\", ...]) so it does not depend on PATH"
                    )
                });
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
    pub(super) fn check_executable(
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
                        format!(": there is no {missing}")
                    }
                    Err(error @ (LookupError::NotADirectory(_) | LookupError::TooManyLinks)) => {
                        format!(": {error}")
                    }
                    _ => String::new(),
                };
                let hint = match role {
                    Role::Bootstrap => {
                        "put the function's executable at /var/runtime/bootstrap (lambda-image build does)"
                    }
                    Role::Entrypoint => "set an Entrypoint that exists in the image",
                    Role::Extension => {
                        "point the link at the extension's executable, or remove it from /opt/extensions"
                    }
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
                    let level = if self.entrypoint_warned {
                        Level::Info
                    } else {
                        Level::Warning
                    };
                    self.finding(
                        check,
                        level,
                        format!(
                            "the entrypoint {path} is a symbolic link (to {target}); Lambda follows it as execve does, \
                             and the file it names, {resolved}, is checked"
                        ),
                    )
                    .hint = Some(format!(
                        "to depend on no link, set the Entrypoint to {resolved}"
                    ));
                }
                Role::Bootstrap | Role::Extension => {
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
        // Lambda runs the function as a user that neither owns the file nor is in its group, so
        // the bits for others count. The kernel runs an ELF others may execute without reading
        // it; a script's interpreter must also read the script (execve(2), EACCES).
        let is_script = head.as_deref().is_some_and(|head| head.starts_with(b"#!"));
        let (needed, what) = if is_script {
            (0o005, "read and execute")
        } else {
            (0o001, "execute")
        };
        if mode & 0o111 == 0 {
            self.finding(
                check,
                Level::Error,
                format!("{name} is not executable (mode {mode:o})"),
            )
            .hint = Some("give it mode 0755".to_owned());
        } else if mode & needed != needed {
            self.finding(
                check,
                Level::Error,
                format!(
                    "{name} has mode {mode:o}: Lambda runs functions as a non-root user, who cannot {what} it"
                ),
            )
            .hint = Some("give it mode 0755".to_owned());
        }
        let Some(head) = head.as_deref() else {
            // Not executable and not asked for: its mode is the error already reported.
            return None;
        };
        if head.starts_with(b"#!") {
            self.check_script(role, path, &name, head, depth);
            return Some(ProgramKind::Script);
        }
        if head.starts_with(crate::bootstrap::UTF8_BOM) {
            // The kernel sees #! only as the first two bytes (fs/binfmt_script.c): ENOEXEC.
            self.finding(
                check,
                Level::Error,
                format!(
                    "{name} starts with a UTF-8 byte order mark (EF BB BF, written by Windows editors), \
                     so it is neither an ELF executable nor a #! script: the kernel does not see a #! \
                     after the mark (exec format error)"
                ),
            )
            .hint = Some(format!(
                "remove the mark ({}) or save the file as UTF-8 without BOM, and rebuild",
                crate::bootstrap::REMOVE_BOM
            ));
            return None;
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
}
