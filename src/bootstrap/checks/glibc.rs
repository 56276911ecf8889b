//! The `glibc` check: a dynamically linked bootstrap needs no newer `GLIBC_x.y` symbol version
//! than the base ships (from the base's own libc when its files are known, else the catalog).

use crate::bootstrap::Bootstrap;
use crate::bootstrap::elf::Linkage;
use crate::findings::{Finding, Level};

use super::BaseKnowledge;

/// The `glibc` finding for an ELF bootstrap: the newest `GLIBC_x.y` it asks for compared with
/// the glibc the base ships, or why that cannot be compared.
pub(super) fn glibc_finding(
    bootstrap: &Bootstrap,
    linkage: &Linkage,
    base: &BaseKnowledge,
) -> Finding {
    let path = bootstrap.shown();
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
    if base.without_libc {
        return without_libc_finding(bootstrap, &needs.interpreter, base);
    }
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

/// A dynamically linked bootstrap on a base with no C library and no loader (`scratch`): an
/// error with the fix (link statically), unless its loader is added beside it (`--include`),
/// when the `interpreter` and `libraries` checks judge what is added.
fn without_libc_finding(bootstrap: &Bootstrap, interpreter: &str, base: &BaseKnowledge) -> Finding {
    let path = bootstrap.shown();
    let architecture = Some(bootstrap.architecture);
    if base.added.iter().any(|added| added == interpreter) {
        return Finding::new(
            "glibc",
            architecture,
            Level::Info,
            format!(
                "{path} is dynamically linked; the base {} has no C library, and its loader \
                 {interpreter} is added beside it",
                base.name
            ),
        );
    }
    let target = bootstrap
        .architecture
        .elf_machine_name()
        .replace("x86-64", "x86_64");
    Finding::new(
        "glibc",
        architecture,
        Level::Error,
        format!(
            "{path} is dynamically linked (interpreter {interpreter}), and the base {} has no C \
             library and no dynamic loader: only statically linked executables run on it; Lambda \
             would fail at every start (the kernel finds no {interpreter}: \"No such file or \
             directory\")",
            base.name
        ),
    )
    .hint(format!(
        "link it statically: Go: CGO_ENABLED=0 go build; Rust: cargo build --target \
         {target}-unknown-linux-musl (static by default), or RUSTFLAGS=\"-C \
         target-feature=+crt-static\" with --target {target}-unknown-linux-gnu; C: gcc -static. Or \
         build on a base with a C library (--base provided.al2023)"
    ))
}
