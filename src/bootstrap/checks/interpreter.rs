//! The `interpreter` check: the ELF program interpreter (dynamic loader) or the program a `#!`
//! line runs exists in the base, with an execute bit; `#!/usr/bin/env NAME` is looked up on the
//! image's `PATH`. Also the advice for a loader the base lacks (musl on a glibc base), which the
//! image lint shares.

use crate::bootstrap::elf::Linkage;
use crate::bootstrap::shebang::{
    DEFAULT_PATH, Program, Shebang, doubt_message, find_on_path, unknown_message, unusable_message,
};
use crate::bootstrap::{Bootstrap, BootstrapKind};
use crate::findings::{Finding, Level};

use super::BaseKnowledge;

/// The ELF interpreter or the `#!` program must exist in the base. ELF loaders are checked
/// against the base's files, else the catalog's list; scripts only against the base's files.
pub(super) fn interpreter_finding(bootstrap: &Bootstrap, base: &BaseKnowledge) -> Option<Finding> {
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
            bootstrap.shown(),
            base.name
        ),
    )
    .hint(match &bootstrap.shown_as {
        // An extension from a layer zip has no file of its own to pass to `check --bootstrap`.
        Some(_) => "check the built image, which reads the base's files: lambda-image check IMAGE"
            .to_owned(),
        None => format!(
            "check it against a local copy of the base: lambda-image base pull {} --output oci:DIR, \
             then lambda-image check --bootstrap {}={} --base oci:DIR",
            base.name,
            bootstrap.architecture,
            bootstrap.path.display()
        ),
    })
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
                bootstrap.shown(),
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
pub(super) fn is_musl_loader(interpreter: &str) -> bool {
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
    let path = bootstrap.shown();
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
    let path = bootstrap.shown();
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
            exists(&absolute(program)).then(|| absolute(program)),
        ),
        Program::OnPath { env, .. } | Program::Unknown { env, .. } if !exists(&absolute(env)) => {
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
            if base.added.contains(&found) {
                format!("the script interpreter {described} of {path} is added beside it, at {found}")
            } else {
                format!(
                    "the script interpreter {described} of {path} is in the base {} at {found}",
                    base.name
                )
            },
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
        .hint(if base.without_libc {
            "the base has no shell and no interpreters: build the function as one statically \
             linked executable (Go: CGO_ENABLED=0; Rust: --target *-unknown-linux-musl), --include \
             a statically linked interpreter at that path, or use a base that has it (--base \
             provided.al2023)"
        } else {
            "use an interpreter the base has (e.g. #!/bin/sh), add the interpreter to the image, or use a \
             base that has it (--skip-checks interpreter if the image gets it another way)"
        }),
    })
}
