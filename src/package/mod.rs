//! The `.zip` deployment package for Lambda's OS-only runtimes (`provided.al2023`,
//! `provided.al2`): which files go in it and where ([`PackageContents`]), safe links
//! ([`links`]), Lambda's size limits ([`limits`]), the zip timestamp ([`dos_time`]) and the
//! deterministic writer ([`writer`]).
//!
//! Lambda unpacks a package into `/var/task` and runs `/var/task/bootstrap`. So the tree is the
//! image layer's [`LayerContents`] (the same `--include SRC:DEST` syntax, directory walk,
//! parent-directory entries and conflict checks) with the bootstrap at `/var/task/bootstrap`,
//! then re-rooted at `/var/task`: DEST must lie under it, and `--include ./x:/var/task/x`
//! puts `x` at the zip's root, where the function finds it at `/var/task/x` as in an image.
//!
//! Not here: checking the bootstrap (`bootstrap::checks`), the command line (`cli::zip`).

pub mod dos_time;
pub mod limits;
pub mod links;
pub mod report;
pub mod writer;

use std::collections::BTreeMap;
use std::path::Path;

use crate::bootstrap::execute_bits;
use crate::error::{Error, Result};
use crate::findings::{Finding, Level};
use crate::layer::contents::{LayerEntry, image_path};
use crate::layer::{IncludeSpec, LayerContents};

/// Lambda's `CodeSha256` of a package whose sha256 is `sha256`: the digest's bytes in base64.
pub fn code_sha256(sha256: &crate::digest::Sha256Digest) -> String {
    use base64::Engine;
    let raw = hex::decode(sha256.hex()).expect("a digest is hex");
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Where Lambda unpacks a `.zip` package (`LAMBDA_TASK_ROOT`).
pub const TASK_ROOT: &str = "/var/task";

/// The name of the executable in the package, as `provided` runtimes look for it.
pub const BOOTSTRAP_NAME: &str = "bootstrap";

/// What goes in a package: entries by zip name (directories end in `/`), sorted.
#[derive(Debug)]
pub struct PackageContents {
    entries: Vec<(String, LayerEntry)>,
    unzipped_size: u64,
    findings: Vec<Finding>,
}

impl PackageContents {
    /// The bootstrap at the root (0755 whatever its mode on disk) and the `--include`s.
    pub fn new(bootstrap: &Path, size: u64, includes: &[IncludeSpec]) -> Result<Self> {
        includes.iter().try_for_each(check_destination)?;
        let mut tree = LayerContents::with_bootstrap_at(
            "package",
            &format!("{TASK_ROOT}/{BOOTSTRAP_NAME}"),
            bootstrap,
            size,
        )?;
        includes
            .iter()
            .try_for_each(|include| tree.include(include))?;
        let mut findings = check_links(&tree)?;
        findings.extend(execute_bits::findings(tree.entries(), "/", "package")?);

        let mut entries = Vec::new();
        let mut unzipped_size = 0;
        for (path, entry) in tree.entries() {
            // `var` and `var/task` are the place the package is unpacked, not entries of it.
            let Some(name) = path.strip_prefix("var/task/") else {
                continue;
            };
            let name = match entry {
                LayerEntry::Directory | LayerEntry::SharedDirectory => format!("{name}/"),
                LayerEntry::Generated { content } => {
                    unzipped_size += content.0.len() as u64;
                    name.to_owned()
                }
                LayerEntry::File { size, .. } => {
                    unzipped_size += size;
                    name.to_owned()
                }
                LayerEntry::Symlink { target } => {
                    unzipped_size += target.len() as u64;
                    name.to_owned()
                }
            };
            entries.push((name, entry.clone()));
        }
        Ok(Self {
            entries,
            unzipped_size,
            findings,
        })
    }

    /// What the included files call for: a `runtime-link` note per link kept into `/opt` or
    /// `/tmp`, an `execute-bit` warning per program without an execute bit.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Entries in zip order: sorted by path, so parents come before their children.
    pub fn entries(&self) -> &[(String, LayerEntry)] {
        &self.entries
    }

    /// The bytes the package holds once unzipped (file sizes and link targets).
    pub fn unzipped_size(&self) -> u64 {
        self.unzipped_size
    }
}

/// An `--include` DEST must be `/var/task` or under it: nothing else is in a package.
fn check_destination(include: &IncludeSpec) -> Result<()> {
    let path = image_path(&include.destination)?;
    if path == "var/task" && !include.destination.ends_with('/') && include.source.is_file() {
        return Err(Error::usage(format!(
            "--include {include}: {TASK_ROOT} is the root of the package, so a file needs a \
             name under it"
        ))
        .hint(format!(
            "e.g. {TASK_ROOT}/NAME, or {TASK_ROOT}/ to keep the file's own name"
        )));
    }
    if path == "var/task" || path.starts_with("var/task/") {
        return Ok(());
    }
    let name = path.rsplit('/').next().unwrap_or(&path);
    Err(Error::usage(format!(
        "--include {include}: Lambda unpacks a .zip package into {TASK_ROOT}, so nothing can be \
         placed at {}",
        include.destination
    ))
    .hint(format!(
        "give a DEST under {TASK_ROOT} (e.g. {TASK_ROOT}/{name}); to place files elsewhere, build \
         a container image with lambda-image build"
    )))
}

/// Refuses links that lead outside `/var/task` (see [`links`]), except absolute links into
/// `/opt` or `/tmp`, which are kept with a note each.
fn check_links(tree: &LayerContents) -> Result<Vec<Finding>> {
    let links: BTreeMap<&str, &str> = tree
        .entries()
        .filter_map(|(path, entry)| match entry {
            LayerEntry::Symlink { target } => Some((path, target.as_str())),
            _ => None,
        })
        .collect();
    let mut notes = Vec::new();
    for (&link, &target) in &links {
        if links::stays_inside_task_root(link, target, &links) {
            continue;
        }
        if let Some(place) = links::runtime_place(target) {
            notes.push(runtime_link_note(link, target, place));
            continue;
        }
        return Err(Error::usage(format!(
            "--include: the symbolic link /{link} -> {target} leads outside {TASK_ROOT}, \
             where Lambda unpacks the package, to a path that exists only on this machine"
        ))
        .hint(
            "replace the link by the file it points to, or point it at a path inside the \
             included directory (relative links are kept as links), or at an absolute path \
             under /opt (a layer's files) or /tmp",
        ));
    }
    Ok(notes)
}

/// The `info[runtime-link]` note for a link kept into `/opt` or `/tmp`.
fn runtime_link_note(link: &str, target: &str, place: links::RuntimePlace) -> Finding {
    let (where_, hint) = match place {
        links::RuntimePlace::Layer => (
            "into /opt, where Lambda puts the function's layers",
            "attach the layer that provides it (aws lambda update-function-configuration \
             --layers ARN)",
        ),
        links::RuntimePlace::Tmp => (
            "into /tmp, the function's writable scratch space",
            "the function must create it before using the link: /tmp starts empty in each new \
             execution environment",
        ),
    };
    Finding::new(
        links::RUNTIME_LINK_CHECK,
        None,
        Level::Info,
        format!(
            "the symbolic link /{link} -> {target} leads {where_}; it is kept as a link (Lambda \
             extracts links from a .zip as links) and cannot be resolved when the zip is made, so it works only \
             if {target} exists when the function runs"
        ),
    )
    .hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn include(source: &Path, destination: &str) -> IncludeSpec {
        IncludeSpec {
            source: source.to_owned(),
            destination: destination.to_owned(),
        }
    }

    #[test]
    fn includes_are_rerooted_at_the_task_root_with_every_parent() {
        let directory = tempfile::tempdir().unwrap();
        let config = directory.path().join("config.json");
        std::fs::write(&config, b"{}").unwrap();
        let includes = [
            include(&config, "/var/task/etc/app/"),
            include(&config, "/var/task/config.json"),
        ];
        let contents = PackageContents::new(Path::new("/tmp/bootstrap"), 10, &includes).unwrap();
        let names: Vec<&str> = contents.entries().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "bootstrap",
                "config.json",
                "etc/",
                "etc/app/",
                "etc/app/config.json"
            ]
        );
        assert_eq!(contents.unzipped_size(), 14);
    }

    #[test]
    fn destinations_outside_the_task_root_are_refused() {
        let source = PathBuf::from("/tmp/x");
        for destination in ["/etc/x", "/var/taskforce/x", "/var/runtime/bootstrap", "/x"] {
            let error = check_destination(&include(&source, destination)).unwrap_err();
            assert!(
                error
                    .message()
                    .contains("unpacks a .zip package into /var/task")
            );
        }
        assert!(check_destination(&include(&source, "/var/task")).is_ok());
        assert!(check_destination(&include(&source, "/var/task/a/b")).is_ok());
    }
}
