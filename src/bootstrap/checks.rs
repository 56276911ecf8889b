//! The Lambda rules a bootstrap must meet, as named checks that `--skip-checks NAME` can turn off:
//!
//! - `architecture`: an ELF's machine matches the architecture it was given as;
//! - `glibc`: a dynamically linked bootstrap needs no newer glibc than the base ships;
//! - `interpreter`: the ELF program interpreter (dynamic loader) or the program a `#!` line runs
//!   exists in the base: checked against its files when its layers are on this machine, and for
//!   ELF loaders against the catalog's list when the base is a catalog base. A `#!/usr/bin/env
//!   NAME` line is followed as `execve` and `env` follow it: `env` must exist, and NAME is looked
//!   up on the image's `PATH`. Whichever form the line takes, a program the base's files lack is
//!   an `error` (the kernel or `env` fails with "No such file or directory" at every start); so
//!   is a line that fails whatever the base holds (`shebang::Program::Unusable`: env options
//!   without `-S`, no command for env, an interpreter ending in `/`). A command env takes from
//!   the environment (`-S ${X}`) is an `info` (not checked); an interpreter found but given
//!   `-e -x` as one argument a `warning`.
//!
//! - `libraries`: each `DT_NEEDED` library of a dynamic ELF is found where the dynamic loader
//!   looks (`DT_RPATH`/`DT_RUNPATH` with `$ORIGIN`, the image's `LD_LIBRARY_PATH`, the default
//!   directories), among the base's files and those added beside the bootstrap; only when the
//!   base's files are known. A library found nowhere is a `warning` (`/etc/ld.so.cache` may
//!   name other directories).
//!
//! Each check yields [`Finding`]s; an `error` one fails the command. A missing execute bit is not
//! a check: the layer always gets 0755, and an `info` finding says so.

use super::elf::{DynamicNeeds, Linkage};
use super::glibc::GlibcVersion;
use super::{Bootstrap, BootstrapKind};
use crate::error::{Error, Result};
use crate::findings::{Finding, Level};
use crate::image::filesystem::Filesystem;

mod glibc;
pub mod interpreter;
mod libraries;

use glibc::glibc_finding;
use interpreter::interpreter_finding;
use libraries::libraries_finding;

/// A check `--skip-checks` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckName {
    Architecture,
    Glibc,
    Interpreter,
    Libraries,
}

impl CheckName {
    /// Every check: what `build` and `check --bootstrap` run (`libraries` only when the base's
    /// files are on this machine, i.e. a local base, and the bootstrap is dynamically linked).
    pub const ALL: [CheckName; 4] = [
        CheckName::Architecture,
        CheckName::Glibc,
        CheckName::Interpreter,
        CheckName::Libraries,
    ];

    /// The checks that run against a catalog base's facts alone, with no base files to look in:
    /// what `zip` runs (its runtime is a catalog entry whose files are never on this machine,
    /// so `libraries` never runs there).
    pub const WITHOUT_BASE_FILES: [CheckName; 3] = [
        CheckName::Architecture,
        CheckName::Glibc,
        CheckName::Interpreter,
    ];

    /// Its name on the command line and in findings.
    pub fn name(self) -> &'static str {
        match self {
            CheckName::Architecture => "architecture",
            CheckName::Glibc => "glibc",
            CheckName::Interpreter => "interpreter",
            CheckName::Libraries => "libraries",
        }
    }
}

/// The glibc of the base, and where that fact came from (for messages).
#[derive(Clone, Debug)]
pub struct BaseGlibc {
    pub version: GlibcVersion,
    /// e.g. "provided.al2 in the base-image catalog", "--base-glibc", "its /usr/lib64/libc.so.6".
    pub source: String,
}

/// What is known about the base a bootstrap will run on.
#[derive(Clone, Copy, Default)]
pub struct BaseKnowledge<'a> {
    /// How the base is named in messages.
    pub name: &'a str,
    pub glibc: Option<&'a BaseGlibc>,
    /// The base's files, when its layers could be read.
    pub filesystem: Option<&'a Filesystem>,
    /// The program interpreters (dynamic loaders) the base has for the bootstrap's
    /// architecture, when known without its files (the catalog's `interpreters`).
    pub interpreters: Option<&'a [String]>,
    /// The image's `PATH` (its config's `Env`), where `#!/usr/bin/env NAME` finds NAME;
    /// [`DEFAULT_PATH`](super::shebang::DEFAULT_PATH) when the config sets none.
    pub path: Option<&'a str>,
    /// The image's working directory (an empty `PATH` entry or a relative `#!` program is
    /// relative to it); `/` when unset.
    pub working_dir: Option<&'a str>,
    /// Absolute paths the command itself adds beside the bootstrap (`--include`): a loader or
    /// interpreter shipped with the function is there whatever the base has.
    pub added: &'a [String],
    /// Those of `added` that have no execute bit: `(absolute path, the file on this machine)`.
    pub added_not_executable: &'a [(String, String)],
    /// The image's `LD_LIBRARY_PATH` (its config's `Env`, or what the command sets), where the
    /// dynamic loader looks for `DT_NEEDED` libraries before the default directories.
    pub library_path: Option<&'a str>,
    /// The directory the bootstrap is at in the image or package (`$ORIGIN` in `DT_RUNPATH`):
    /// `/var/runtime` in an image, `/var/task` in a `.zip`.
    pub bootstrap_directory: &'a str,
    /// The base has no C library and no dynamic loader (`scratch`, whose catalog entry says
    /// it has no files): only statically linked executables run on it.
    pub without_libc: bool,
}

/// Runs every check on `bootstrap`, skipping those in `skip`.
pub fn check_bootstrap(
    bootstrap: &Bootstrap,
    base: BaseKnowledge<'_>,
    skip: &[CheckName],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let architecture = Some(bootstrap.architecture);
    let path = bootstrap.shown();
    let mut report = |check: CheckName, finding: Option<Finding>| {
        if skip.contains(&check) {
            findings.push(Finding::new(
                check.name(),
                architecture,
                Level::Skipped,
                format!(
                    "{} check of {path} skipped (--skip-checks {})",
                    check.name(),
                    check.name()
                ),
            ));
        } else if let Some(finding) = finding {
            findings.push(finding);
        }
    };

    if let BootstrapKind::Elf(elf) = &bootstrap.kind {
        let finding = if elf.architecture != bootstrap.architecture {
            Finding::new(
                "architecture",
                architecture,
                Level::Error,
                format!(
                    "bootstrap {path} is an ELF executable for {} ({}), but it was given as {}; \
                     Lambda would fail at the first invoke with `exec format error`",
                    elf.architecture,
                    elf.architecture.elf_machine_name(),
                    bootstrap.architecture
                ),
            )
            .hint(format!(
                "drop the `{}=` prefix to use the architecture from the ELF header, or build the function for {}",
                bootstrap.architecture, bootstrap.architecture
            ))
        } else {
            Finding::new(
                "architecture",
                architecture,
                Level::Info,
                format!(
                    "{path} is an ELF executable for {}, {}",
                    elf.architecture.elf_machine_name(),
                    describe_linkage(&elf.linkage)
                ),
            )
        };
        report(CheckName::Architecture, Some(finding));
        report(
            CheckName::Glibc,
            Some(glibc_finding(bootstrap, &elf.linkage, &base)),
        );
        if let Linkage::Dynamic(DynamicNeeds {
            libraries: Ok(libraries),
            ..
        }) = &elf.linkage
        {
            report(
                CheckName::Libraries,
                libraries_finding(bootstrap, libraries, &base),
            );
        }
    }
    report(
        CheckName::Interpreter,
        interpreter_finding(bootstrap, &base),
    );
    if let BootstrapKind::Script { .. } = &bootstrap.kind {
        findings.extend(line_endings_finding(bootstrap));
    }

    if !bootstrap.executable_on_disk {
        findings.push(Finding::new(
            "executable",
            architecture,
            Level::Info,
            format!("{path} has no execute permission on disk; it is written with mode 0755"),
        ));
    }
    findings
}

/// `statically linked`, or the interpreter, NEEDED libraries and newest glibc version.
fn describe_linkage(linkage: &Linkage) -> String {
    match linkage {
        Linkage::Static => "statically linked".into(),
        Linkage::Dynamic(DynamicNeeds {
            interpreter,
            libraries: Err(_),
        }) => format!("dynamically linked (interpreter {interpreter}; its needs cannot be read)"),
        Linkage::Dynamic(DynamicNeeds {
            interpreter,
            libraries: Ok(libraries),
        }) => {
            let mut text = format!(
                "dynamically linked (interpreter {interpreter}; NEEDED {}",
                if libraries.needed.is_empty() {
                    "nothing".to_owned()
                } else {
                    libraries.needed.join(", ")
                }
            );
            if let Some(glibc) = &libraries.glibc {
                text.push_str(&format!("; newest glibc version GLIBC_{}", glibc.version));
            }
            text + ")"
        }
    }
}

/// How much of a script is read to look for Windows line endings.
pub const LINE_ENDING_READ_LIMIT: u64 = 64 << 10;

/// A warning for a script whose `#!` line is clean but whose later lines end in `\r\n` (in its
/// first [`LINE_ENDING_READ_LIMIT`] bytes). Not an error: the kernel needs only the first line,
/// and some interpreters ignore the `\r`; `sh` and `bash` take it as part of each command and
/// fail (`$'\r': command not found`, `syntax error near unexpected token`).
fn line_endings_finding(bootstrap: &Bootstrap) -> Option<Finding> {
    let (count, first) =
        super::later_windows_line_endings(&bootstrap.path, LINE_ENDING_READ_LIMIT)?;
    let path = bootstrap.shown();
    Some(
        Finding::new(
            "line-endings",
            Some(bootstrap.architecture),
            Level::Warning,
            format!(
                "{path} has Windows line endings (\\r\\n) on {count} line{} after its #! line, the \
                 first on line {first} (in its first {} KiB); sh and bash read the carriage return as \
                 part of each command and fail with syntax errors or `$'\\r': command not found`",
                if count == 1 { "" } else { "s" },
                LINE_ENDING_READ_LIMIT >> 10
            ),
        )
        .hint(match &bootstrap.shown_as {
            // An extension: the file it came from is in a layer zip or an included directory.
            Some(_) => "convert it (dos2unix FILE, or sed -i 's/\\r$//' FILE) and build again (for a \
                        layer, zip it again); in git, keep it LF with a `text eol=lf` line in \
                        .gitattributes"
                .to_owned(),
            None => format!(
                "convert it: dos2unix {path} (or sed -i 's/\\r$//' {path}); in git, keep it LF with \
                 `{} text eol=lf` in .gitattributes",
                bootstrap
                    .path
                    .file_name()
                    .map_or("bootstrap".into(), |name| name.to_string_lossy())
            ),
        }),
    )
}

/// Fails with the error findings, if there are any: the first one's message and hint, then the
/// others.
pub fn enforce(findings: &[Finding]) -> Result<()> {
    let mut errors = findings
        .iter()
        .filter(|finding| finding.level == Level::Error);
    let Some(first) = errors.next() else {
        return Ok(());
    };
    let mut message = first.message.clone();
    for other in errors {
        message.push_str(&format!("\nalso: {}", other.message));
    }
    let error = Error::bootstrap(message);
    Err(match &first.hint {
        Some(hint) => error.hint(hint.clone()),
        None => error,
    })
}
