//! A `.zip` deployment package as `deploy --zip` reads it, before any AWS call: its bytes and
//! Lambda's `CodeSha256` of them, the `bootstrap` at its root (present, executable, an ELF or a
//! `#!` script), the architecture that bootstrap is built for, and the runtime it needs,
//! checked against that runtime as `zip` checks a bootstrap.
//!
//! Any zip is taken (from `lambda-image zip`, `zip -r`, Python's `zipfile`, build-lambda-zip),
//! since what Lambda needs of one is only this: `provided.al2023` / `provided.al2` unpack it into
//! `/var/task` and run `/var/task/bootstrap` (AWS Lambda Developer Guide, "Building a custom
//! runtime"); a bootstrap without an execute bit fails there with `permission denied`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::bootstrap::base_knowledge::{BaseFacts, check_bootstraps};
use crate::bootstrap::checks::enforce;
use crate::bootstrap::elf::Linkage;
use crate::bootstrap::{self, BootstrapKind, BootstrapSpec};
use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::package::TASK_ROOT;
use crate::platform::Architecture;

/// The OS-only runtimes a `.zip` with a `bootstrap` runs on (Lambda's `Runtime`).
pub const RUNTIMES: [&str; 2] = ["provided.al2023", "provided.al2"];

/// Libraries Amazon Linux 2 has and Amazon Linux 2023 does not: OpenSSL 1.0 (AL2023 ships
/// OpenSSL 3; Amazon Linux 2023 User Guide, "Comparing AL2 and AL2023"). A bootstrap linked
/// against them needs `provided.al2`.
const AL2_ONLY_LIBRARIES: [&str; 2] = ["libssl.so.10", "libcrypto.so.10"];

/// What `deploy --zip` sends.
#[derive(Debug)]
pub struct ZipPackage {
    pub path: PathBuf,
    /// The zip's bytes, for `ZipFile`.
    pub bytes: Vec<u8>,
    pub sha256: Sha256Digest,
    /// The entries' sizes once unzipped, in bytes.
    pub unzipped_size: u64,
    /// Lambda's `CodeSha256` of the zip: base64 of its sha256.
    pub code_sha256: String,
    /// The architectures the bootstrap can run on: the ELF's one, or both for a `#!` script.
    pub architectures: Vec<Architecture>,
    /// The runtime to create the function with (`provided.al2023` or `provided.al2`).
    pub runtime: &'static str,
    /// What the bootstrap checks found (passes included).
    pub findings: Vec<Finding>,
    /// The bootstrap as inspected, kept (with its unzipped copy) to check it again against an
    /// existing function's runtime ([`ZipPackage::check_for_runtime`]).
    bootstrap: crate::bootstrap::Bootstrap,
    /// Every entry's name, for the checks (files the package adds under `/var/task`).
    names: Vec<String>,
    _scratch: tempfile::TempDir,
}

impl ZipPackage {
    /// The path as given, for messages.
    pub fn shown(&self) -> &str {
        self.path.to_str().unwrap_or("the .zip")
    }

    /// The bootstrap checks against `runtime` (a function's `Runtime`). Errors: a runtime that
    /// does not run a `bootstrap` (deploy, exit 11: `python3.12`, ...); an error finding
    /// (bootstrap, exit 3).
    pub fn check_for_runtime(&self, function: &str, runtime: &str) -> Result<Vec<Finding>> {
        let Some(runtime) = RUNTIMES.iter().find(|known| **known == runtime) else {
            return Err(Error::deploy(format!(
                "the function {function} has runtime {runtime}, which does not run a \
                 `bootstrap`: the package would never start"
            ))
            .hint(
                "deploy to a function with runtime provided.al2023 or provided.al2 (or change \
                 this one's: aws lambda update-function-configuration --runtime provided.al2023 \
                 --handler bootstrap)",
            ));
        };
        check_against(&self.bootstrap, &self.names, runtime, self.shown())
    }
}

/// The checks of `bootstrap` against `runtime`'s catalog facts with the package's files, and
/// the libraries only Amazon Linux 2 has; an error finding fails (bootstrap, exit 3).
fn check_against(
    bootstrap: &crate::bootstrap::Bootstrap,
    names: &[String],
    runtime: &str,
    zip: &str,
) -> Result<Vec<Finding>> {
    let entry = crate::catalog::by_name(runtime)
        .ok_or_else(|| Error::failure(format!("{runtime} is not in the catalog")))?;
    let packaged = names.iter().map(|name| format!("var/task/{name}"));
    let facts = BaseFacts::of_catalog(entry)
        .adding(packaged)
        .with_bootstrap_directory(TASK_ROOT);
    let findings = check_bootstraps(std::slice::from_ref(bootstrap), &facts, None, &[])
        .map_err(|error| in_zip(error, zip, &bootstrap.path))?;
    enforce(&findings).map_err(|error| in_zip(error, zip, &bootstrap.path))?;
    if runtime != "provided.al2"
        && let Some(library) = al2_only_library(&bootstrap.kind)
    {
        return Err(Error::bootstrap(format!(
            "{zip}: the bootstrap needs {library} (OpenSSL 1.0), which {runtime} does not have: \
             it would fail to start"
        ))
        .hint("deploy it to a provided.al2 function (--runtime provided.al2 when creating one), or link it against OpenSSL 3"));
    }
    Ok(findings)
}

/// Reads and checks the package at `path`. `runtime`: `--runtime`, else chosen here.
/// `architecture`: `--architecture`, which a `#!` script bootstrap is checked for.
///
/// Errors: the file cannot be read (usage); not a zip, no `bootstrap` at its root, one without
/// an execute bit or Unix permissions, or one that is neither an ELF nor a `#!` script, or that
/// fails a check against the runtime (bootstrap, exit 3).
pub fn read_zip_package(
    path: &Path,
    runtime: Option<&'static str>,
    architecture: Option<Architecture>,
) -> Result<ZipPackage> {
    let bytes = std::fs::read(path).map_err(|error| {
        Error::usage(format!("--zip {}: cannot read it: {error}", path.display()))
    })?;
    let shown = path.display().to_string();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).map_err(|error| {
        Error::bootstrap(format!("--zip {shown} is not a readable .zip: {error}")).hint(
            "make the package with `lambda-image zip --bootstrap ./bootstrap -o function.zip`",
        )
    })?;
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let mut unzipped_size = 0u64;
    for index in 0..archive.len() {
        if let Ok(entry) = archive.by_index_raw(index) {
            unzipped_size = unzipped_size.saturating_add(entry.size());
        }
    }
    let named = bootstrap_entry(&names).ok_or_else(|| missing_bootstrap(&shown, &names))?;
    let entry_name = follow_links(&mut archive, &named, &shown)?;
    let mut entry = archive
        .by_name(&entry_name)
        .map_err(|error| Error::bootstrap(format!("{shown}: cannot read {entry_name}: {error}")))?;
    check_mode(&shown, entry.unix_mode())?;
    let scratch = tempfile::Builder::new()
        .prefix(".lambda-image-deploy-")
        .tempdir()
        .map_err(|error| Error::failure(format!("cannot make a temporary directory: {error}")))?;
    let extracted = scratch.path().join("bootstrap");
    let mut content = Vec::new();
    entry
        .read_to_end(&mut content)
        .map_err(|error| Error::bootstrap(format!("{shown}: cannot unzip bootstrap: {error}")))?;
    drop(entry);
    // Its execute bit was checked above; the copy gets one so the checks see what Lambda runs.
    std::fs::File::create(&extracted)
        .and_then(|mut file| file.write_all(&content))
        .and_then(|()| std::fs::set_permissions(&extracted, std::fs::Permissions::from_mode(0o755)))
        .map_err(|error| Error::failure(format!("cannot write a temporary file: {error}")))?;

    let is_script = content.starts_with(b"#!");
    let spec = BootstrapSpec {
        architecture: if is_script {
            Some(architecture.unwrap_or(Architecture::Amd64))
        } else {
            None
        },
        path: extracted,
    };
    let inspected = bootstrap::inspect(&spec).map_err(|error| in_zip(error, &shown, &spec.path))?;
    let architectures = match &inspected.kind {
        BootstrapKind::Elf(elf) => vec![elf.architecture],
        BootstrapKind::Script { .. } => vec![Architecture::Amd64, Architecture::Arm64],
    };
    // A runtime given is checked at once; otherwise the function's own (or, for a new one,
    // the one chosen here) is checked once known (`check_for_runtime`).
    let given = runtime.is_some();
    let (runtime, why) = choose_runtime(runtime, &inspected.kind);
    let mut findings = if given {
        check_against(&inspected, &names, runtime, &shown)?
    } else {
        Vec::new()
    };
    if let Some(why) = why {
        findings.push(Finding::new(
            "runtime",
            Some(inspected.architecture),
            crate::findings::Level::Info,
            why,
        ));
    }
    let sha256 = Sha256Digest::of(&bytes);
    Ok(ZipPackage {
        path: path.to_owned(),
        code_sha256: crate::package::code_sha256(&sha256),
        sha256,
        unzipped_size,
        bytes,
        architectures,
        runtime,
        findings,
        bootstrap: inspected,
        names,
        _scratch: scratch,
    })
}

/// The zip entry Lambda runs: `bootstrap` at the root (`./bootstrap` as some tools write it).
fn bootstrap_entry(names: &[String]) -> Option<String> {
    names
        .iter()
        .find(|name| name.as_str() == "bootstrap" || name.as_str() == "./bootstrap")
        .cloned()
}

/// The entry a `bootstrap` that is a symbolic link (as `zip -y` stores one) leads to inside the
/// zip, through at most 8 links; the entry itself when it is no link. Error (bootstrap): a link
/// leading out of the zip or nowhere, or a loop.
fn follow_links<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    start: &str,
    zip: &str,
) -> Result<String> {
    let mut name = start.to_owned();
    for _ in 0..8 {
        let mut entry = match archive.by_name(&name) {
            Ok(entry) => entry,
            Err(_) => {
                return Err(Error::bootstrap(format!(
                    "the bootstrap in {zip} is a symbolic link to {name}, which the zip does not hold"
                ))
                .hint("zip the executable itself (zip without -y), or make the package with `lambda-image zip`"));
            }
        };
        const LINK: u32 = 0o120000;
        if entry.unix_mode().is_none_or(|mode| mode & 0o170000 != LINK) {
            return Ok(name);
        }
        let mut target = String::new();
        entry.read_to_string(&mut target).map_err(|error| {
            Error::bootstrap(format!("{zip}: cannot read the link {name}: {error}"))
        })?;
        let base = name.rsplit_once('/').map_or("", |(directory, _)| directory);
        name = match resolve_inside(base, &target) {
            Some(resolved) => resolved,
            None => {
                return Err(Error::bootstrap(format!(
                    "the bootstrap in {zip} is a symbolic link to {target}, outside the zip \
                     (Lambda unpacks it into {TASK_ROOT})"
                ))
                .hint("zip the executable itself, or make the package with `lambda-image zip`"));
            }
        };
    }
    Err(Error::bootstrap(format!(
        "the bootstrap in {zip} is a chain of more than 8 symbolic links (a loop?)"
    )))
}

/// `target` of a link in directory `base` (both relative to the zip's root), as a path relative
/// to the root; `None` when it is absolute or leaves the root.
fn resolve_inside(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    crate::layer::contents::lexical_path(&format!("{base}/{target}"))
}

fn missing_bootstrap(zip: &str, names: &[String]) -> Error {
    let nested = names
        .iter()
        .find(|name| name.rsplit('/').next() == Some("bootstrap"));
    let error = Error::bootstrap(format!(
        "{zip} has no `bootstrap` at its root: Lambda unpacks the zip into {TASK_ROOT} and runs \
         {TASK_ROOT}/bootstrap"
    ));
    match nested {
        Some(nested) => error.hint(format!(
            "it holds {nested}: zip from inside its directory (cd DIR && zip -r ../function.zip \
             .), or use `lambda-image zip --bootstrap {nested} -o function.zip`"
        )),
        None => error.hint(
            "name the executable `bootstrap` at the zip's root, e.g. `lambda-image zip \
             --bootstrap ./target/lambda/fn/bootstrap -o function.zip`",
        ),
    }
}

/// The bootstrap entry's Unix mode must exist and have an execute bit: Lambda keeps a zip's
/// modes, and a bootstrap without one fails with `permission denied` (zips made on Windows
/// carry no Unix modes at all).
fn check_mode(zip: &str, mode: Option<u32>) -> Result<()> {
    match mode {
        Some(mode) if mode & 0o111 != 0 => Ok(()),
        Some(mode) => Err(Error::bootstrap(format!(
            "the bootstrap in {zip} is not executable (mode {:04o}; a zip made on Windows \
             records no execute bit): Lambda would fail to start it with `permission denied`",
            mode & 0o7777
        ))
        .hint("chmod +x bootstrap before zipping, or make the package with `lambda-image zip`")),
        None => Err(Error::bootstrap(format!(
            "the bootstrap in {zip} has no Unix permissions (the zip was made on Windows?): \
             Lambda would fail to start it with `permission denied`"
        ))
        .hint(
            "make the package with `lambda-image zip` (or build-lambda-zip on Windows), which \
             records the execute bit",
        )),
    }
}

/// The runtime: `--runtime`, else `provided.al2` for a bootstrap linked against a library only
/// Amazon Linux 2 has ([`AL2_ONLY_LIBRARIES`]), else `provided.al2023`; with the reason when
/// it was chosen here for the bootstrap's sake.
fn choose_runtime(
    flag: Option<&'static str>,
    kind: &BootstrapKind,
) -> (&'static str, Option<String>) {
    if let Some(flag) = flag {
        return (flag, None);
    }
    match al2_only_library(kind) {
        Some(library) => (
            "provided.al2",
            Some(format!(
                "runtime provided.al2: the bootstrap needs {library} (OpenSSL 1.0), which \
                 provided.al2023 does not have"
            )),
        ),
        None => ("provided.al2023", None),
    }
}

/// The first library the bootstrap is linked against that only Amazon Linux 2 has.
pub fn al2_only_library(kind: &BootstrapKind) -> Option<String> {
    let BootstrapKind::Elf(elf) = kind else {
        return None;
    };
    let Linkage::Dynamic(needs) = &elf.linkage else {
        return None;
    };
    let libraries = needs.libraries.as_ref().ok()?;
    libraries
        .needed
        .iter()
        .find(|library| AL2_ONLY_LIBRARIES.contains(&library.as_str()))
        .cloned()
}

/// A bootstrap error about the unzipped copy at `copy`, said of the zip: the copy's path is
/// replaced by `bootstrap in ZIP`, and a glibc hint about choosing a base (there is none to
/// choose for a zip) by what to do to the bootstrap.
fn in_zip(error: Error, zip: &str, copy: &Path) -> Error {
    let copy = copy.display().to_string();
    let said = format!("the bootstrap in {zip}");
    let message = error
        .message()
        .replace(&format!("bootstrap {copy}"), &said)
        .replace(&copy, &said);
    let message = if message.contains(&said) {
        message
    } else {
        format!("{zip}: {message}")
    };
    let hint = error.hint_text().map(|hint| {
        if message.contains("GLIBC_") || hint.contains("newer glibc") {
            "link it against an older glibc (build on Amazon Linux 2023 or in its container), \
             or statically (CGO_ENABLED=0 for Go, the musl target for Rust)"
                .to_owned()
        } else {
            // Commands in hints act on the user's own file.
            hint.replace(&copy, "bootstrap")
        }
    });
    let error = Error::new(error.kind(), message);
    match hint {
        Some(hint) => error.hint(hint),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootstrap::elf::{DynamicNeeds, ElfFacts, LibraryNeeds};

    /// A zip of `(name, link target or None for a file)` entries.
    fn archive(entries: &[(&str, Option<&str>)]) -> zip::ZipArchive<std::io::Cursor<Vec<u8>>> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        for (name, target) in entries {
            match target {
                Some(target) => writer.add_symlink(*name, *target, options).unwrap(),
                None => {
                    writer.start_file(*name, options).unwrap();
                    writer.write_all(b"\x7fELF").unwrap();
                }
            }
        }
        let bytes = writer.finish().unwrap().into_inner();
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap()
    }

    #[test]
    fn links_are_followed_to_a_file_inside_the_zip() {
        let mut zip = archive(&[("bootstrap", None)]);
        assert_eq!(
            follow_links(&mut zip, "bootstrap", "f.zip").unwrap(),
            "bootstrap"
        );
        let mut zip = archive(&[("./bootstrap", None)]);
        assert_eq!(
            follow_links(&mut zip, "./bootstrap", "f.zip").unwrap(),
            "./bootstrap"
        );
        let mut zip = archive(&[
            ("bin/app", None),
            ("bin/run", Some("app")),
            ("bootstrap", Some("bin/run")),
        ]);
        assert_eq!(
            follow_links(&mut zip, "bootstrap", "f.zip").unwrap(),
            "bin/app"
        );
        let mut zip = archive(&[("bootstrap", Some("missing"))]);
        assert!(
            follow_links(&mut zip, "bootstrap", "f.zip")
                .unwrap_err()
                .message()
                .contains("does not hold")
        );
        let mut zip = archive(&[("bootstrap", Some("/usr/bin/app"))]);
        assert!(
            follow_links(&mut zip, "bootstrap", "f.zip")
                .unwrap_err()
                .message()
                .contains("outside")
        );
        let mut zip = archive(&[("a", Some("bootstrap")), ("bootstrap", Some("a"))]);
        assert!(
            follow_links(&mut zip, "bootstrap", "f.zip")
                .unwrap_err()
                .message()
                .contains("more than 8")
        );
    }

    fn dynamic(needed: &[&str]) -> BootstrapKind {
        BootstrapKind::Elf(ElfFacts {
            architecture: Architecture::Amd64,
            linkage: Linkage::Dynamic(DynamicNeeds {
                interpreter: "/lib64/ld-linux-x86-64.so.2".to_owned(),
                libraries: Ok(LibraryNeeds {
                    needed: needed.iter().map(|name| (*name).to_owned()).collect(),
                    ..LibraryNeeds::default()
                }),
            }),
        })
    }

    #[test]
    fn openssl_1_0_chooses_provided_al2_unless_a_runtime_is_given() {
        let (runtime, why) = choose_runtime(None, &dynamic(&["libc.so.6", "libcrypto.so.10"]));
        assert_eq!(runtime, "provided.al2");
        assert!(why.unwrap().contains("libcrypto.so.10"));
        assert_eq!(
            choose_runtime(None, &dynamic(&["libssl.so.10"])).0,
            "provided.al2"
        );
        assert_eq!(
            choose_runtime(None, &dynamic(&["libc.so.6", "libssl.so.3"])),
            ("provided.al2023", None)
        );
        assert_eq!(
            choose_runtime(Some("provided.al2023"), &dynamic(&["libssl.so.10"])),
            ("provided.al2023", None)
        );
        let static_elf = BootstrapKind::Elf(ElfFacts {
            architecture: Architecture::Arm64,
            linkage: Linkage::Static,
        });
        assert_eq!(choose_runtime(None, &static_elf), ("provided.al2023", None));
    }

    #[test]
    fn the_bootstrap_must_be_at_the_root() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            bootstrap_entry(&names(&["lib/", "bootstrap"])).as_deref(),
            Some("bootstrap")
        );
        assert_eq!(
            bootstrap_entry(&names(&["./bootstrap"])).as_deref(),
            Some("./bootstrap")
        );
        assert_eq!(bootstrap_entry(&names(&["dist/bootstrap"])), None);
        let error = missing_bootstrap("f.zip", &names(&["dist/bootstrap"]));
        assert!(error.hint_text().unwrap().contains("dist/bootstrap"));
    }

    #[test]
    fn links_resolve_inside_the_zip_only() {
        assert_eq!(resolve_inside("", "bin/app").as_deref(), Some("bin/app"));
        assert_eq!(resolve_inside("bin", "../app").as_deref(), Some("app"));
        assert_eq!(resolve_inside("a/b", "./c/../d").as_deref(), Some("a/b/d"));
        assert_eq!(resolve_inside(".", "bin/app").as_deref(), Some("bin/app"));
        assert_eq!(resolve_inside("", "../app"), None);
        assert_eq!(resolve_inside("", "/var/task/app"), None);
    }

    #[test]
    fn only_an_execute_bit_passes() {
        assert!(check_mode("f.zip", Some(0o100755)).is_ok());
        assert!(check_mode("f.zip", Some(0o100100)).is_ok());
        assert!(check_mode("f.zip", Some(0o100001)).is_ok());
        let refused = check_mode("f.zip", Some(0o100644)).unwrap_err();
        assert!(refused.message().contains("mode 0644"), "{refused}");
        assert!(check_mode("f.zip", None).is_err());
    }
}
