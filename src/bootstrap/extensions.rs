//! The extensions a build puts in the image: every entry directly under `/opt/extensions/` of the
//! new layer (from a `--layer` zip or an `--include`), held to what Lambda needs to start it.
//!
//! Lambda (and the Runtime Interface Emulator, `ListExternalAgentPaths` in
//! aws-lambda-runtime-interface-emulator) starts every entry of `/opt/extensions` that is not a
//! directory, as its own process, before the runtime's first `next` call; one that cannot be
//! started fails the function's init with `Extension.LaunchError`. So each such entry must lead
//! (through symbolic links) to a regular file with an execute bit (else "permission denied",
//! aws-samples/aws-lambda-extensions#38), be an ELF executable for the image's architecture (else
//! "exec format error") or a `#!` script whose line the kernel can use (a Windows line ending
//! makes "no such file or directory", aws-samples/aws-lambda-extensions#54), and have its program
//! interpreter, glibc version and `#!` interpreter in the image: those last are the bootstrap's
//! own checks ([`super::checks`]), run on the extension.
//!
//! Directories under `/opt/extensions` are skipped, as Lambda skips them. Not here: the same
//! rules for any image (`check IMAGE`, [`crate::lint`]), which sees the image's whole file tree.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use object::read::ReadCache;

use super::base_knowledge::{BaseFacts, check_bootstraps};
use super::checks::CheckName;
use super::elf::read_elf;
use super::shebang::{LINE_LIMIT, Shebang};
use super::{Bootstrap, BootstrapKind, UTF8_BOM};
use crate::error::Result;
use crate::findings::{Finding, Level};
use crate::image::set::ImageSet;
use crate::layer::contents::{LayerContents, LayerEntry, lexical_path};
use crate::platform::Architecture;

/// Where Lambda looks for extensions, relative to `/` as layer entries name paths.
pub const EXTENSIONS_DIRECTORY: &str = "opt/extensions";

/// The check name of the findings made here (the bootstrap checks run on an extension keep
/// theirs: `architecture`, `glibc`, `interpreter`, `libraries`).
pub const CHECK: &str = "extension";

/// How many symbolic links one lookup follows before giving up, as Linux (`ELOOP`).
const MAX_SYMLINK_HOPS: usize = 40;

/// Checks every extension in `contents`, the new layer of the `architecture` image, against what
/// `facts` (and, for a base whose layers are on this machine, `local_base`) know of the base.
/// Error findings fail the build (exit 3, like a bootstrap's); `skip` turns off the named
/// bootstrap checks for extensions too.
///
/// Errors: a base whose layers cannot be read (as for a bootstrap's checks).
pub fn check_extensions(
    contents: &LayerContents,
    architecture: Architecture,
    facts: &BaseFacts,
    local_base: Option<&ImageSet>,
    skip: &[CheckName],
) -> Result<Vec<Finding>> {
    let entries: BTreeMap<&str, &LayerEntry> = contents.entries().collect();
    let mut findings = Vec::new();
    let mut extensions = Vec::new();
    let prefix = format!("{EXTENSIONS_DIRECTORY}/");
    for (&path, &entry) in entries.range(prefix.as_str()..) {
        let Some(name) = path.strip_prefix(&prefix) else {
            break;
        };
        if name.contains('/') {
            continue;
        }
        let shown = match contents.origin(path) {
            Some(origin) => format!("extension /{path} (from --layer {origin})"),
            None => format!("extension /{path}"),
        };
        let finding =
            |level, message: String| Finding::new(CHECK, Some(architecture), level, message);
        if entry.is_directory() {
            findings.push(finding(
                Level::Info,
                format!("/{path} is a directory, which Lambda skips: only the files of /opt/extensions are started"),
            ));
            continue;
        }
        let (resolved, file) = match resolve(&entries, path) {
            Resolved::File(resolved, file) => (resolved, file),
            Resolved::Elsewhere(target) => {
                findings.push(finding(
                    Level::Info,
                    format!(
                        "{shown} is a symbolic link to {target}, which is not in the new layer; \
                         it was not checked (check the built image: lambda-image check IMAGE)"
                    ),
                ));
                continue;
            }
            Resolved::Broken(why) => {
                findings.push(
                    finding(
                        Level::Error,
                        format!("{shown} {why}; Lambda could not start it (Extension.LaunchError)"),
                    )
                    .hint("point the link at the extension's executable inside the layer"),
                );
                continue;
            }
        };
        let LayerEntry::File {
            source, executable, ..
        } = file
        else {
            unreachable!("resolve returns files only");
        };
        let shown = if resolved == path {
            shown
        } else {
            format!("{shown} (a link to /{resolved})")
        };
        if !executable && is_program(source) {
            findings.push(
                finding(
                    Level::Error,
                    format!(
                        "{shown} has no execute bit (it would be written with mode 0644); \
                         Lambda fails to start it with \"permission denied\" (Extension.LaunchError)"
                    ),
                )
                .hint(match contents.origin(path) {
                    Some(_) => "chmod +x the file and zip the layer again with its Unix modes (zip -r keeps them)".to_owned(),
                    None => format!("chmod +x {}", source.display()),
                }),
            );
            continue;
        }
        match inspect(
            source,
            architecture,
            &shown,
            contents.origin(path).is_some(),
        ) {
            Ok(extension) => extensions.push(extension),
            Err(refused) => findings.push(refused),
        }
    }
    // `$ORIGIN` in an extension's DT_RUNPATH is its own directory.
    let facts = facts
        .clone()
        .with_bootstrap_directory(&format!("/{EXTENSIONS_DIRECTORY}"));
    findings.extend(check_bootstraps(&extensions, &facts, local_base, skip)?);
    Ok(findings)
}

/// What an entry of the new layer leads to.
enum Resolved<'a> {
    /// A regular file of the layer: its path and entry.
    File(String, &'a LayerEntry),
    /// A link out of the layer (to the base's files), not followed.
    Elsewhere(String),
    /// Why the entry leads to no file (the rest of a sentence).
    Broken(String),
}

/// Follows symbolic links from `path` through the layer's entries, as the kernel would if the
/// layer were the image's only content.
fn resolve<'a>(entries: &BTreeMap<&str, &'a LayerEntry>, path: &str) -> Resolved<'a> {
    let mut current = path.to_owned();
    for _ in 0..=MAX_SYMLINK_HOPS {
        match entries.get(current.as_str()) {
            Some(entry @ LayerEntry::File { .. }) => return Resolved::File(current, entry),
            Some(LayerEntry::Directory | LayerEntry::SharedDirectory) => {
                return Resolved::Broken(format!("leads to the directory /{current}"));
            }
            Some(LayerEntry::Generated { .. }) => {
                return Resolved::Broken(format!(
                    "leads to /{current}, a data file this tool writes (not a program)"
                ));
            }
            Some(LayerEntry::Symlink { target }) => {
                let joined = if target.starts_with('/') {
                    target.clone()
                } else {
                    let parent = current.rsplit_once('/').map_or("", |(parent, _)| parent);
                    format!("{parent}/{target}")
                };
                let Some(normal) = lexical_path(&joined) else {
                    return Resolved::Broken(format!(
                        "is a symbolic link to {target}, which climbs above /"
                    ));
                };
                current = normal;
            }
            None if current.starts_with("opt/") => {
                return Resolved::Broken(format!(
                    "is a symbolic link that leads to /{current}, which is not in the image"
                ));
            }
            None => return Resolved::Elsewhere(format!("/{current}")),
        }
    }
    Resolved::Broken(format!(
        "is a symbolic link that chains more than {MAX_SYMLINK_HOPS} times (the kernel fails with ELOOP)"
    ))
}

/// Reads what the extension at `source` is, as the image's `architecture`; an error finding
/// when Lambda could not exec it whatever the base holds.
fn inspect(
    source: &Path,
    architecture: Architecture,
    shown: &str,
    from_layer: bool,
) -> std::result::Result<Bootstrap, Finding> {
    let refused = |message: String, hint: &str| {
        Finding::new(CHECK, Some(architecture), Level::Error, message).hint(hint.to_owned())
    };
    let read_failed = |error: std::io::Error| {
        refused(
            format!("{shown} cannot be read from {}: {error}", source.display()),
            "check the file is readable",
        )
    };
    let file = File::open(source).map_err(read_failed)?;
    let size = file.metadata().map_err(read_failed)?.len();
    let mut head = Vec::new();
    (&file)
        .take(LINE_LIMIT as u64)
        .read_to_end(&mut head)
        .map_err(read_failed)?;
    let kind = if head.starts_with(&object::elf::ELFMAG) {
        let facts = read_elf(&ReadCache::new(&file)).map_err(|problem| {
            refused(
                format!("{shown} {problem}; Lambda could not start it (Extension.LaunchError)"),
                "use the extension's build for Lambda (an x86_64 or arm64 Linux executable)",
            )
        })?;
        if facts.architecture != architecture {
            return Err(refused(
                format!(
                    "{shown} is an ELF executable for {} ({}), but the image is {}; Lambda would fail \
                     to start it with \"exec format error\" (Extension.LaunchError)",
                    facts.architecture,
                    facts.architecture.elf_machine_name(),
                    architecture
                ),
                &if from_layer {
                    format!(
                        "use the layer's {} version (vendors publish one per architecture), and give \
                         each architecture its own: --layer {}=ARN_OR_ZIP",
                        architecture.lambda_name(),
                        architecture.oci_name()
                    )
                } else {
                    format!(
                        "include the extension's {} build for this image",
                        architecture.lambda_name()
                    )
                },
            ));
        }
        BootstrapKind::Elf(facts)
    } else if head.starts_with(b"#!") {
        let shebang = Shebang::parse(&head).map_err(|problem| {
            refused(
                format!("{shown} {problem}; Lambda could not start it (Extension.LaunchError)"),
                &problem
                    .hint()
                    .replace("FILE", &source.display().to_string()),
            )
        })?;
        BootstrapKind::Script { shebang }
    } else if head.starts_with(UTF8_BOM) {
        return Err(refused(
            format!(
                "{shown} starts with a UTF-8 byte order mark, so it is neither an ELF executable nor \
                 a #! script to the kernel (exec format error)"
            ),
            "save it as UTF-8 without BOM",
        ));
    } else {
        return Err(refused(
            format!(
                "{shown} is neither an ELF executable nor a #! script, so Lambda could not start it \
                 (exec format error)"
            ),
            "only executables belong directly in /opt/extensions; put data files elsewhere under /opt",
        ));
    };
    Ok(Bootstrap {
        path: source.to_owned(),
        architecture,
        kind,
        size,
        executable_on_disk: true,
        shown_as: Some(shown.to_owned()),
    })
}

/// Whether the file at `source` starts as a program the kernel runs (an ELF or a `#!` script);
/// a file that cannot be read counts as one (its read fails later, with a message).
fn is_program(source: &Path) -> bool {
    let mut head = Vec::new();
    match File::open(source).and_then(|file| file.take(4).read_to_end(&mut head)) {
        Ok(_) => head.starts_with(&object::elf::ELFMAG) || head.starts_with(b"#!"),
        Err(_) => true,
    }
}

#[cfg(test)]
#[path = "extensions_tests.rs"]
mod tests;
