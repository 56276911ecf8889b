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
use super::shebang::{
    DEFAULT_PATH, Program, Shebang, doubt_message, find_on_path, unknown_message, unusable_message,
};
use super::{Bootstrap, BootstrapKind};
use crate::error::{Error, Result};
use crate::findings::{Finding, Level};
use crate::image::filesystem::Filesystem;

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
    /// [`DEFAULT_PATH`] when the config sets none.
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

/// The directories glibc's dynamic loader searches last when it finds no
/// `/etc/ld.so.cache` entry: its built-in system directories for 64-bit targets (`/lib64`,
/// `/usr/lib64` on x86-64 and aarch64, `sysdeps/unix/sysv/linux/*/dl-cache.h` and
/// `elf/Makefile`'s `system-dirs`), `/lib` and `/usr/lib`, and the Debian/Ubuntu multiarch
/// directories their `/etc/ld.so.conf.d` adds. musl's loader searches `/lib`, `/usr/local/lib`,
/// `/usr/lib` (`ldso/dynlink.c`, without `/etc/ld-musl-ARCH.path`).
fn default_library_directories(architecture: crate::platform::Architecture) -> Vec<&'static str> {
    let multiarch = match architecture {
        crate::platform::Architecture::Amd64 => {
            ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]
        }
        crate::platform::Architecture::Arm64 => {
            ["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]
        }
    };
    let mut directories = vec!["/lib64", "/usr/lib64", "/lib", "/usr/lib"];
    directories.extend(multiarch);
    directories.push("/usr/local/lib");
    directories
}

/// Each `DT_NEEDED` library looked for as the dynamic loader looks (`_dl_map_object` in glibc's
/// `elf/dl-load.c`): a name with a `/` is a path; otherwise `DT_RPATH` (only when there is no
/// `DT_RUNPATH`), `LD_LIBRARY_PATH`, `DT_RUNPATH` (`$ORIGIN` is the bootstrap's directory), then
/// [`default_library_directories`]. Only when the base's files are known; files the command
/// adds count (a library needs no execute bit). A library found nowhere is a `warning`, not an
/// error: `/etc/ld.so.cache` (from `ld.so.conf`) may name other directories. Only the
/// bootstrap's own needs are followed, not those of the libraries it loads.
fn libraries_finding(
    bootstrap: &Bootstrap,
    libraries: &super::elf::LibraryNeeds,
    base: &BaseKnowledge,
) -> Option<Finding> {
    let filesystem = base.filesystem?;
    if libraries.needed.is_empty() {
        return None;
    }
    let path = bootstrap.path.display();
    let architecture = Some(bootstrap.architecture);
    let origin = |directory: &str| {
        directory
            .replace("${ORIGIN}", base.bootstrap_directory)
            .replace("$ORIGIN", base.bootstrap_directory)
    };
    let working_dir = base.working_dir.unwrap_or("/");
    // Absolute, with `.` and `..` taken lexically (`$ORIGIN/../lib` → `/var/lib`).
    let absolute = |directory: &str| {
        let joined = if directory.starts_with('/') {
            directory.to_owned()
        } else {
            format!("{working_dir}/{directory}")
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in joined.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                part => parts.push(part),
            }
        }
        format!("/{}", parts.join("/"))
    };
    // (where the directories come from, the directories)
    let mut searched: Vec<(&str, Vec<String>)> = Vec::new();
    if libraries.runpath.is_empty() && !libraries.rpath.is_empty() {
        searched.push((
            "DT_RPATH",
            libraries
                .rpath
                .iter()
                .map(|d| absolute(&origin(d)))
                .collect(),
        ));
    }
    if let Some(library_path) = base.library_path {
        searched.push((
            "LD_LIBRARY_PATH",
            library_path
                .split([':', ';'])
                .filter(|directory| !directory.is_empty())
                .map(absolute)
                .collect(),
        ));
    }
    if !libraries.runpath.is_empty() {
        searched.push((
            "DT_RUNPATH",
            libraries
                .runpath
                .iter()
                .map(|d| absolute(&origin(d)))
                .collect(),
        ));
    }
    searched.push((
        "the default directories",
        default_library_directories(bootstrap.architecture)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    ));
    let exists = |candidate: &str| {
        base.added.iter().any(|added| added == candidate) || filesystem.exists(candidate)
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &libraries.needed {
        let location = if name.contains('/') {
            let candidate = absolute(name);
            exists(&candidate).then_some(candidate)
        } else {
            searched
                .iter()
                .flat_map(|(_, directories)| directories)
                .map(|directory| format!("{}/{name}", directory.trim_end_matches('/')))
                .find(|candidate| exists(candidate))
        };
        match location {
            Some(location) => found.push(format!("{name} at {location}")),
            None => missing.push(name.as_str()),
        }
    }
    if missing.is_empty() {
        return Some(Finding::new(
            "libraries",
            architecture,
            Level::Info,
            format!(
                "the NEEDED libraries of {path} are in the base {} or added beside it: {}",
                base.name,
                found.join(", ")
            ),
        ));
    }
    let searched = searched
        .iter()
        .map(|(source, directories)| format!("{source} ({})", directories.join(":")))
        .collect::<Vec<_>>()
        .join(", then ");
    Some(
        Finding::new(
            "libraries",
            architecture,
            Level::Warning,
            format!(
                "{path} needs {}, which {} not in the base {} nor added beside it (searched as the \
                 dynamic loader does: {searched}); unless the base's /etc/ld.so.cache names another \
                 directory, Lambda would fail at start-up with \"error while loading shared libraries: \
                 {}: cannot open shared object file\"",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                base.name,
                missing[0]
            ),
        )
        .hint(format!(
            "ship {} with the function (e.g. --include ./lib/:/var/task/lib/, a directory on the AWS \
             bases' LD_LIBRARY_PATH; or link with -Wl,-rpath,'$ORIGIN/lib'), link it statically, or \
             use a base that has it",
            if missing.len() == 1 { "it" } else { "them" }
        )),
    )
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

/// A script checked against a base whose files are not known here (a catalog or registry
/// base, whose layers are not downloaded to check a bootstrap): its interpreter is not
/// checked, and the finding says so and how to check it.
fn unknown_files_finding(
    bootstrap: &Bootstrap,
    shebang: &Shebang,
    program: &Program,
    base: &BaseKnowledge,
) -> Finding {
    let program = match program {
        Program::Path(program) => (*program).to_owned(),
        Program::OnPath { name, .. } => format!("{name} (found on PATH by `{}`)", shebang.line()),
        Program::Unknown { .. } | Program::Unusable { .. } => format!("of `{}`", shebang.line()),
    };
    Finding::new(
        "interpreter",
        Some(bootstrap.architecture),
        Level::Info,
        format!(
            "the script interpreter {program} of {} was not checked: the files of the base {} are \
             not known here (a catalog or registry base, whose layers are not downloaded to check a \
             bootstrap)",
            bootstrap.path.display(),
            base.name
        ),
    )
    .hint(format!(
        "check it against a local copy of the base: lambda-image base pull {} --output oci:DIR, \
         then lambda-image check --bootstrap {}={} --base oci:DIR",
        base.name,
        bootstrap.architecture,
        bootstrap.path.display()
    ))
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
    let path = bootstrap.path.display();
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
        .hint(format!(
            "convert it: dos2unix {path} (or sed -i 's/\\r$//' {path}); in git, keep it LF with \
             `bootstrap text eol=lf` in .gitattributes"
        )),
    )
}

/// An error when the interpreter `described`, found at `found` (absolute), has no execute bit:
/// an added file written 0644, or a file of the base whose mode has none. The kernel refuses
/// to exec it (`EACCES`, "Permission denied", exit 126 from a shell, even as root: an
/// interpreter needs an execute bit, `may_open`/`path_noexec` checks in `fs/exec.c`).
fn not_executable_finding(
    bootstrap: &Bootstrap,
    described: &str,
    found: &str,
    base: &BaseKnowledge,
) -> Option<Finding> {
    let added = base.added.iter().any(|path| path == found);
    let (where_, hint) = if added {
        let (_, source) = base
            .added_not_executable
            .iter()
            .find(|(path, _)| path == found)?;
        (
            format!(
                "is added as {source}, which has no execute permission (written with mode 0644)"
            ),
            format!(
                "chmod +x {source} before packaging (files downloaded as CI artifacts or zipped on \
                 Windows lose their modes)"
            ),
        )
    } else {
        let (_, node) = base.filesystem?.resolve(found)?;
        let crate::image::filesystem::Node::File { mode, .. } = node else {
            return None;
        };
        if mode & 0o111 != 0 {
            return None;
        }
        (
            format!(
                "is in the base {} with mode {:o}, without execute permission",
                base.name,
                mode & 0o7777
            ),
            format!(
                "chmod +x {found} in the base (or --include an executable copy at {found}), or use a base \
                 whose {found} is executable"
            ),
        )
    };
    Some(
        Finding::new(
            "interpreter",
            Some(bootstrap.architecture),
            Level::Error,
            format!(
                "the {described} of {}{} {where_}; the kernel refuses to run a program \
                 interpreter without it, so every start fails with \"Permission denied\" (exit 126)",
                bootstrap.path.display(),
                if described.contains(found) {
                    String::new()
                } else {
                    format!(" at {found}")
                }
            ),
        )
        .hint(hint),
    )
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
        if let Some(refused) = not_executable_finding(
            bootstrap,
            &format!("ELF interpreter {interpreter}"),
            interpreter,
            base,
        ) {
            return Some(refused);
        }
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
    // Without the base's files, what the line itself tells still counts: one argument that
    // looks like several is a warning; otherwise the interpreter is noted as not checked.
    let Some(filesystem) = base.filesystem else {
        return Some(match shebang.doubt() {
            Some(doubt) => Finding::new(
                "interpreter",
                architecture,
                Level::Warning,
                doubt_message(&line, &path, &doubt.reason),
            )
            .hint(doubt.hint),
            None => unknown_files_finding(bootstrap, shebang, &program, base),
        });
    };
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
    if let Some(refused) = found.as_deref().and_then(|found| {
        not_executable_finding(
            bootstrap,
            &format!("script interpreter {described}"),
            found,
            base,
        )
    }) {
        return Some(refused);
    }
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
