//! The Lambda rules a bootstrap must meet, as named checks that `--skip-checks NAME` can turn off:
//!
//! - `architecture`: an ELF's machine matches the architecture it was given as;
//! - `glibc`: a dynamically linked bootstrap needs no newer glibc than the base ships;
//! - `interpreter`: the ELF interpreter or `#!` program exists in the base (checked when the
//!   base's layers are at hand).
//!
//! Each check yields [`Finding`]s; an `error` one fails the command. A missing execute bit is not
//! a check: the layer always gets 0755, and an `info` finding says so.

use clap::ValueEnum;

use super::elf::Linkage;
use super::glibc::GlibcVersion;
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
        Linkage::Dynamic(needs) => {
            let mut text = format!(
                "dynamically linked (interpreter {}; NEEDED {}",
                needs.interpreter,
                if needs.needed.is_empty() {
                    "nothing".to_owned()
                } else {
                    needs.needed.join(", ")
                }
            );
            if let Some(glibc) = &needs.glibc {
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
    let Some(need) = &needs.glibc else {
        return finding(
            Level::Info,
            format!(
                "{path} is dynamically linked ({}; needs {}) but asks for no GLIBC_ symbol versions",
                needs.interpreter,
                needs.needed.join(", ")
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

/// The ELF interpreter or `#!` program must exist in the base; only checked when its files are
/// known.
fn interpreter_finding(bootstrap: &Bootstrap, base: &BaseKnowledge) -> Option<Finding> {
    let filesystem = base.filesystem?;
    let path = bootstrap.path.display();
    let architecture = Some(bootstrap.architecture);
    let (program, level, what) = match &bootstrap.kind {
        BootstrapKind::Elf(elf) => match &elf.linkage {
            Linkage::Static => return None,
            Linkage::Dynamic(needs) => (needs.interpreter.clone(), Level::Error, "ELF interpreter"),
        },
        BootstrapKind::Script { interpreter } => (
            interpreter
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned(),
            Level::Warning,
            "script interpreter",
        ),
    };
    if filesystem.exists(&program) {
        return Some(Finding::new(
            "interpreter",
            architecture,
            Level::Info,
            format!(
                "the {what} {program} of {path} is in the base {}",
                base.name
            ),
        ));
    }
    Some(
        Finding::new(
            "interpreter",
            architecture,
            level,
            format!(
                "the {what} {program} of {path} is not in the base {}; Lambda could not start it",
                base.name
            ),
        )
        .hint(match &bootstrap.kind {
            BootstrapKind::Elf(_) => "build it static, or use a base that has this dynamic linker",
            BootstrapKind::Script { .. } => {
                "use an interpreter the base has (e.g. #!/bin/sh), or a base that has it"
            }
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
