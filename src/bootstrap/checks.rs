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
//! Each check yields [`Finding`]s; an `error` one fails the command. A missing execute bit is not
//! a check: the layer always gets 0755, and an `info` finding says so.

use clap::ValueEnum;

use super::elf::{DynamicNeeds, Linkage};
use super::glibc::GlibcVersion;
use super::shebang::{
    DEFAULT_PATH, Program, Shebang, doubt_message, find_on_path, unknown_message, unusable_message,
};
use super::{Bootstrap, BootstrapKind};
use crate::error::{Error, Result};
use crate::findings::{Finding, Level};
use crate::image::filesystem::Filesystem;

/// A check `--skip-checks` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum CheckName {
    Architecture,
    Glibc,
    Interpreter,
}

impl CheckName {
    pub fn name(self) -> &'static str {
        match self {
            CheckName::Architecture => "architecture",
            CheckName::Glibc => "glibc",
            CheckName::Interpreter => "interpreter",
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
    /// [`DEFAULT_PATH`] when the config sets none.
    pub path: Option<&'a str>,
    /// The image's working directory (an empty `PATH` entry or a relative `#!` program is
    /// relative to it); `/` when unset.
    pub working_dir: Option<&'a str>,
    /// Absolute paths the command itself adds beside the bootstrap (`--include`): a loader or
    /// interpreter shipped with the function is there whatever the base has.
    pub added: &'a [String],
}

/// Runs every check on `bootstrap`, skipping those in `skip`.
pub fn check_bootstrap(
    bootstrap: &Bootstrap,
    base: BaseKnowledge<'_>,
    skip: &[CheckName],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let architecture = Some(bootstrap.architecture);
    let path = bootstrap.path.display().to_string();
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
    }
    report(
        CheckName::Interpreter,
        interpreter_finding(bootstrap, &base),
    );

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

fn glibc_finding(bootstrap: &Bootstrap, linkage: &Linkage, base: &BaseKnowledge) -> Finding {
    let path = bootstrap.path.display();
    let architecture = Some(bootstrap.architecture);
    let finding = |level, message: String| Finding::new("glibc", architecture, level, message);
    let needs = match linkage {
        Linkage::Static => {
            return finding(
                Level::Info,
                format!("{path} is statically linked: it needs no libraries from the base"),
            );
        }
        Linkage::Dynamic(needs) => needs,
    };
    let libraries = match &needs.libraries {
        Ok(libraries) => libraries,
        Err(problem) => {
            return finding(
                Level::Warning,
                format!(
                    "{path} is dynamically linked (interpreter {}), but what it needs from the base \
                     cannot be read: {problem}; its libraries and glibc version were not checked",
                    needs.interpreter
                ),
            )
            .hint("rebuild it (a packer or a damaged copy can leave the dynamic segment unreadable), and check it with readelf -d and readelf -V");
        }
    };
    let Some(need) = &libraries.glibc else {
        return finding(
            Level::Info,
            format!(
                "{path} is dynamically linked ({}; needs {}) but asks for no GLIBC_ symbol versions",
                needs.interpreter,
                if libraries.needed.is_empty() {
                    "no libraries".to_owned()
                } else {
                    libraries.needed.join(", ")
                }
            ),
        );
    };
    let Some(glibc) = base.glibc else {
        return finding(
            Level::Warning,
            format!(
                "{path} needs {need}, and the glibc of the base {} is not known, so it was not compared",
                base.name
            ),
        )
        .hint("state it with --base-glibc VERSION (e.g. 2.34), or use a catalog base (lambda-image base list)");
    };
    if need.version > glibc.version {
        finding(
            Level::Error,
            format!(
                "{path} needs {need}, but the base {} has glibc {} ({}); Lambda would fail at start-up \
                 with `GLIBC_{} not found`",
                base.name, glibc.version, glibc.source, need.version
            ),
        )
        .hint(format!(
            "build it static (Go: CGO_ENABLED=0; Rust: --target {}-unknown-linux-musl), build it against glibc {} \
             or older (e.g. cargo zigbuild --target {}-unknown-linux-gnu.{}), or use a base with a newer glibc \
             (provided.al2023 has 2.34)",
            bootstrap.architecture.elf_machine_name().replace("x86-64", "x86_64"),
            glibc.version,
            bootstrap.architecture.elf_machine_name().replace("x86-64", "x86_64"),
            glibc.version,
        ))
    } else {
        finding(
            Level::Info,
            format!(
                "{path} needs {need}; the base {} has glibc {} ({})",
                base.name, glibc.version, glibc.source
            ),
        )
    }
}

/// The ELF interpreter or the `#!` program must exist in the base. ELF loaders are checked
/// against the base's files, else the catalog's list; scripts only against the base's files.
fn interpreter_finding(bootstrap: &Bootstrap, base: &BaseKnowledge) -> Option<Finding> {
    match &bootstrap.kind {
        BootstrapKind::Elf(elf) => match &elf.linkage {
            Linkage::Static => None,
            Linkage::Dynamic(needs) => elf_interpreter_finding(bootstrap, &needs.interpreter, base),
        },
        BootstrapKind::Script { shebang } => script_interpreter_finding(bootstrap, shebang, base),
    }
}

/// musl's dynamic loaders are `/lib/ld-musl-ARCH.so.1` (musl's `ldso` install path).
fn is_musl_loader(interpreter: &str) -> bool {
    interpreter
        .rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with("ld-musl-"))
}

/// What to say about a dynamic loader the base or image lacks: a sentence for the message (empty
/// unless it is musl's) and the hint. Shared by the bootstrap checks and `check`.
pub fn missing_loader_advice(
    interpreter: &str,
    architecture: crate::platform::Architecture,
) -> (&'static str, String) {
    if !is_musl_loader(interpreter) {
        return (
            "",
            "link it statically (Go: CGO_ENABLED=0; Rust: a *-unknown-linux-musl target), ship this \
             dynamic loader and its libraries with the function, or use a base that has it"
                .to_owned(),
        );
    }
    (
        " It is musl's dynamic loader (the binary was linked dynamically against musl, as on \
         Alpine or with musl-gcc); AWS base images have only glibc.",
        format!(
            "link it statically: musl-gcc -static; Rust: --target {arch}-unknown-linux-musl is static by \
             default (or RUSTFLAGS=\"-C target-feature=+crt-static\"); Go: CGO_ENABLED=0. Or ship the loader \
             and its libraries with the function (--include) and point the binary at them (link with \
             -Wl,--dynamic-linker=/var/task/lib/{loader}, or patchelf --set-interpreter)",
            loader = interpreter.rsplit('/').next().unwrap_or(interpreter),
            arch = architecture.elf_machine_name().replace("x86-64", "x86_64"),
        ),
    )
}

fn elf_interpreter_finding(
    bootstrap: &Bootstrap,
    interpreter: &str,
    base: &BaseKnowledge,
) -> Option<Finding> {
    let path = bootstrap.path.display();
    let architecture = Some(bootstrap.architecture);
    let added = base.added.iter().any(|path| path == interpreter);
    let (present, known_from) = match (base.filesystem, base.interpreters) {
        _ if added => (true, String::new()),
        (Some(filesystem), _) => (filesystem.exists(interpreter), String::new()),
        (None, Some(loaders)) => (
            loaders.iter().any(|loader| loader == interpreter),
            format!(
                " (per the base-image catalog it has {})",
                loaders.join(", ")
            ),
        ),
        (None, None) => return None,
    };
    if present {
        return Some(Finding::new(
            "interpreter",
            architecture,
            Level::Info,
            if added {
                format!("the ELF interpreter {interpreter} of {path} is added beside it")
            } else {
                format!(
                    "the ELF interpreter {interpreter} of {path} is in the base {}",
                    base.name
                )
            },
        ));
    }
    let (musl, hint) = missing_loader_advice(interpreter, bootstrap.architecture);
    Some(
        Finding::new(
            "interpreter",
            architecture,
            Level::Error,
            format!(
                "the ELF interpreter {interpreter} of {path} is not in the base {}{known_from}; Lambda could \
                 not start it (the kernel fails with \"No such file or directory\").{musl}",
                base.name
            ),
        )
        .hint(hint),
    )
}

/// The program a `#!` line runs, found as the kernel and `env` find it: a relative path is
/// relative to the working directory; `#!/usr/bin/env NAME` needs `env`, then NAME on `PATH`.
/// A line that cannot work whatever the base holds ([`Program::Unusable`]) is an error even
/// without the base's files; a command `env` learns only at start ([`Program::Unknown`]) is an
/// info; a found interpreter given one argument that looks like several ([`Shebang::doubt`]) a
/// warning.
fn script_interpreter_finding(
    bootstrap: &Bootstrap,
    shebang: &Shebang,
    base: &BaseKnowledge,
) -> Option<Finding> {
    let path = bootstrap.path.display().to_string();
    let architecture = Some(bootstrap.architecture);
    let line = shebang.line();
    let program = shebang.program();
    if let Program::Unusable { reason, hint } = &program {
        return Some(
            Finding::new(
                "interpreter",
                architecture,
                Level::Error,
                unusable_message(&line, &path, reason),
            )
            .hint(hint.clone()),
        );
    }
    let filesystem = base.filesystem?;
    let working_dir = base.working_dir.unwrap_or("/");
    let absolute = |program: &str| {
        if program.starts_with('/') {
            program.to_owned()
        } else {
            format!("{}/{program}", working_dir.trim_end_matches('/'))
        }
    };
    let exists = |candidate: &str| {
        base.added.iter().any(|path| path == candidate) || filesystem.exists(candidate)
    };
    // (what the program is called in messages, where it was found)
    let (described, found) = match &program {
        Program::Path(program) => (
            (*program).to_owned(),
            filesystem
                .exists(&absolute(program))
                .then(|| absolute(program)),
        ),
        Program::OnPath { env, .. } | Program::Unknown { env, .. }
            if !filesystem.exists(&absolute(env)) =>
        {
            (format!("{env} (from `{line}`)"), None)
        }
        Program::Unknown { reason, .. } => {
            return Some(Finding::new(
                "interpreter",
                architecture,
                Level::Info,
                unknown_message(&line, &path, reason),
            ));
        }
        Program::OnPath { env, name } => {
            let search = base.path.unwrap_or(DEFAULT_PATH);
            (
                format!("{name} (from `{line}`: {env} looks it up on PATH={search})"),
                find_on_path(name, search, working_dir, exists),
            )
        }
        Program::Unusable { .. } => unreachable!("returned above"),
    };
    Some(match (found, shebang.doubt()) {
        (Some(_), Some(doubt)) => Finding::new(
            "interpreter",
            architecture,
            Level::Warning,
            doubt_message(&line, &path, &doubt.reason),
        )
        .hint(doubt.hint),
        (Some(found), None) => Finding::new(
            "interpreter",
            architecture,
            Level::Info,
            format!(
                "the script interpreter {described} of {path} is in the base {} at {found}",
                base.name
            ),
        ),
        (None, _) => Finding::new(
            "interpreter",
            architecture,
            Level::Error,
            format!(
                "the script interpreter {described} of {path} is not in the base {}; Lambda could not \
                 start it (\"No such file or directory\")",
                base.name
            ),
        )
        .hint(
            "use an interpreter the base has (e.g. #!/bin/sh), add the interpreter to the image, or use a \
             base that has it (--skip-checks interpreter if the image gets it another way)",
        ),
    })
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
