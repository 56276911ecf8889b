//! The `libraries` check: each `DT_NEEDED` library of a dynamic bootstrap is found where the
//! dynamic loader looks (`DT_RPATH`/`DT_RUNPATH` with `$ORIGIN`, `LD_LIBRARY_PATH`, the default
//! directories) among the base's files and those added beside the bootstrap.

use crate::bootstrap::Bootstrap;
use crate::findings::{Finding, Level};

use super::BaseKnowledge;

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
pub(super) fn libraries_finding(
    bootstrap: &Bootstrap,
    libraries: &crate::bootstrap::elf::LibraryNeeds,
    base: &BaseKnowledge,
) -> Option<Finding> {
    let filesystem = base.filesystem?;
    if libraries.needed.is_empty() {
        return None;
    }
    let path = bootstrap.shown();
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
    // musl's dynamic loader is its C library: a musl program's `NEEDED libc.so` is the loader
    // itself (musl's ldso/dynlink.c), found wherever the loader is.
    let musl = match &bootstrap.kind {
        crate::bootstrap::BootstrapKind::Elf(elf) => match &elf.linkage {
            crate::bootstrap::elf::Linkage::Dynamic(needs) => {
                super::interpreter::is_musl_loader(&needs.interpreter)
            }
            _ => false,
        },
        _ => false,
    };
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in libraries
        .needed
        .iter()
        .filter(|name| !(musl && *name == "libc.so"))
    {
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
    if missing.is_empty() && found.is_empty() {
        return None;
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
    // On a base with no files at all (scratch) there is no /etc/ld.so.cache to name another
    // directory: the loader looks nowhere else, so the failure is certain.
    let certain = base.without_libc && !exists("/etc/ld.so.cache");
    let (level, unless) = if certain {
        (Level::Error, "with no /etc/ld.so.cache in the image")
    } else {
        (
            Level::Warning,
            "unless the base's /etc/ld.so.cache names another directory",
        )
    };
    let shipped_where = if base.library_path.is_some() {
        "--include ./lib/:/var/task/lib/, a directory on the AWS bases' LD_LIBRARY_PATH"
    } else {
        "--include ./lib/:/var/task/lib/ with --env LD_LIBRARY_PATH=/var/task/lib, since this image \
         sets no LD_LIBRARY_PATH"
    };
    Some(
        Finding::new(
            "libraries",
            architecture,
            level,
            format!(
                "{path} needs {}, which {} not in the base {} nor added beside it (searched as the \
                 dynamic loader does: {searched}); {unless}, Lambda would fail at start-up with \
                 \"error while loading shared libraries: {}: cannot open shared object file\"",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" },
                base.name,
                missing[0]
            ),
        )
        .hint(format!(
            "ship {} with the function (e.g. {shipped_where}; or link with -Wl,-rpath,'$ORIGIN/lib'), \
             link it statically, or use a base that has it",
            if missing.len() == 1 { "it" } else { "them" }
        )),
    )
}
