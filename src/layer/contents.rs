//! The file tree of the new layer: the bootstrap at `/var/runtime/bootstrap`, any `--include`d
//! files, and an explicit entry for every parent directory (Lambda's unpacker does not create
//! missing parents).
//!
//! Paths are kept relative (`var/runtime/bootstrap`) and sorted, so the tar comes out in the same
//! order on every machine. Nothing is read here except metadata; contents stream in `writer`.
//!
//! The `.zip` package (the `package` module) builds its tree here too, rooted at `/var/task`, so
//! `--include` means the same for `build` and `zip`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, ErrorKind, IoContext, Result};

/// Where Lambda's provided runtimes look for the executable.
pub const BOOTSTRAP_PATH: &str = "/var/runtime/bootstrap";

/// One entry of the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerEntry {
    Directory,
    File {
        source: PathBuf,
        size: u64,
        executable: bool,
    },
    Symlink {
        target: String,
    },
    /// A directory anyone may create files in, that only their owners may remove from: mode
    /// 1777 (sticky, world-writable), as `/tmp` is on every Linux (FHS 3.0, section 3.18). The
    /// `--base scratch` image's `/tmp`, which no base layer provides.
    SharedDirectory,
    /// A regular file (0644) whose bytes this tool makes rather than reads from disk: the
    /// `--base scratch` image's CA bundle.
    Generated {
        content: GeneratedContent,
    },
}

/// The bytes of a [`LayerEntry::Generated`] file, made once per run. Debug shows only the size.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GeneratedContent(pub &'static [u8]);

impl std::fmt::Debug for GeneratedContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GeneratedContent({} bytes)", self.0.len())
    }
}

impl LayerEntry {
    /// Whether it is a directory (of either mode).
    pub fn is_directory(&self) -> bool {
        matches!(self, LayerEntry::Directory | LayerEntry::SharedDirectory)
    }

    /// The mode written to the tar: directories and executables 0755, other files 0644, a
    /// shared directory 1777.
    pub fn mode(&self) -> u32 {
        match self {
            LayerEntry::Directory => 0o755,
            LayerEntry::SharedDirectory => 0o1777,
            LayerEntry::Generated { .. } => 0o644,
            LayerEntry::File {
                executable: true, ..
            } => 0o755,
            LayerEntry::File {
                executable: false, ..
            } => 0o644,
            LayerEntry::Symlink { .. } => 0o777,
        }
    }
}

/// The entries of a layer, keyed by relative path (`var/runtime/bootstrap`).
#[derive(Clone, Debug)]
pub struct LayerContents {
    entries: BTreeMap<String, LayerEntry>,
    /// What the tree becomes, for messages: "layer" or "package".
    container: &'static str,
    /// The `--layer` (as written) each entry unpacked from a Lambda layer zip came from.
    origins: BTreeMap<String, String>,
}

impl LayerContents {
    /// A layer holding `bootstrap` at `/var/runtime/bootstrap`, mode 0755 whatever its mode on disk.
    pub fn with_bootstrap(bootstrap: &Path, size: u64) -> Result<Self> {
        Self::with_bootstrap_at("layer", BOOTSTRAP_PATH, bootstrap, size)
    }

    /// A `container` ("layer", "package") holding `bootstrap` at the absolute path
    /// `destination`, mode 0755 whatever its mode on disk.
    pub fn with_bootstrap_at(
        container: &'static str,
        destination: &str,
        bootstrap: &Path,
        size: u64,
    ) -> Result<Self> {
        let mut contents = Self {
            entries: BTreeMap::new(),
            container,
            origins: BTreeMap::new(),
        };
        let entry = LayerEntry::File {
            source: bootstrap.to_owned(),
            size,
            executable: true,
        };
        contents.insert(&image_path(destination)?, entry, || "the bootstrap".into())?;
        Ok(contents)
    }

    /// Adds an `--include`: a file, or a directory's contents, at a path in the image.
    pub fn include(&mut self, include: &IncludeSpec) -> Result<()> {
        let metadata = std::fs::metadata(&include.source).map_err(|error| {
            Error::usage(format!(
                "--include {}: cannot read {}: {error}",
                include,
                include.source.display()
            ))
        })?;
        let described = || format!("--include {include}");
        if metadata.is_dir() {
            let destination = image_path(&include.destination)?;
            self.insert(&destination, LayerEntry::Directory, described)?;
            self.include_directory(&include.source, &destination, include)
        } else if metadata.is_file() {
            let mut destination = include.destination.clone();
            if destination.ends_with('/') {
                let name = include.source.file_name().ok_or_else(|| {
                    Error::usage(format!("--include {include}: the source has no file name"))
                })?;
                destination.push_str(&name.to_string_lossy());
            }
            let entry = file_entry(&include.source, &metadata);
            self.insert(&image_path(&destination)?, entry, described)
        } else {
            Err(Error::usage(format!(
                "--include {include}: {} is not a regular file or directory",
                include.source.display()
            )))
        }
    }

    fn include_directory(
        &mut self,
        directory: &Path,
        destination: &str,
        include: &IncludeSpec,
    ) -> Result<()> {
        let listing = std::fs::read_dir(directory).path_context(
            ErrorKind::Usage,
            "read directory",
            directory,
        )?;
        for item in listing {
            let item = item.path_context(ErrorKind::Usage, "read directory", directory)?;
            let source = item.path();
            let name = item.file_name();
            let name = name.to_str().ok_or_else(|| {
                Error::usage(format!(
                    "--include {include}: {} is not valid UTF-8",
                    source.display()
                ))
            })?;
            let path = format!("{destination}/{name}");
            let metadata = std::fs::symlink_metadata(&source).path_context(
                ErrorKind::Usage,
                "read",
                &source,
            )?;
            let described = || format!("--include {include}");
            if metadata.is_dir() {
                self.insert(&path, LayerEntry::Directory, described)?;
                self.include_directory(&source, &path, include)?;
            } else if metadata.is_file() {
                self.insert(&path, file_entry(&source, &metadata), described)?;
            } else if metadata.file_type().is_symlink() {
                let target = std::fs::read_link(&source).path_context(
                    ErrorKind::Usage,
                    "read link",
                    &source,
                )?;
                let target = target.to_str().ok_or_else(|| {
                    Error::usage(format!(
                        "--include {include}: link {} is not valid UTF-8",
                        source.display()
                    ))
                })?;
                let entry = LayerEntry::Symlink {
                    target: target.to_owned(),
                };
                self.insert(&path, entry, described)?;
            } else {
                return Err(Error::usage(format!(
                    "--include {include}: {} is a device, socket or pipe, which cannot go in a {}",
                    source.display(),
                    self.container
                )));
            }
        }
        Ok(())
    }

    /// Inserts an entry and every missing parent directory, refusing conflicting entries.
    fn insert(
        &mut self,
        path: &str,
        entry: LayerEntry,
        described: impl Fn() -> String,
    ) -> Result<()> {
        let mut parent = String::new();
        for component in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, parents)| parents)
            .unwrap_or(&[])
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            match self.entries.get(&parent) {
                None => {
                    self.entries.insert(parent.clone(), LayerEntry::Directory);
                }
                Some(existing) if existing.is_directory() => {}
                Some(existing) => {
                    let what = match existing {
                        LayerEntry::Symlink { .. } => "a symbolic link",
                        _ => "a file",
                    };
                    return Err(Error::usage(format!(
                        "{}: /{parent} is {what} in the {}, so /{path} cannot be placed under it",
                        described(),
                        self.container
                    )));
                }
            }
        }
        match self.entries.get(path) {
            None => {
                self.entries.insert(path.to_owned(), entry);
                Ok(())
            }
            Some(existing) if existing.is_directory() && entry == LayerEntry::Directory => Ok(()),
            // A directory made as a parent takes the mode asked for later (`/tmp` for a file
            // included under it).
            Some(LayerEntry::Directory) if entry.is_directory() => {
                self.entries.insert(path.to_owned(), entry);
                Ok(())
            }
            Some(_) => Err(Error::usage(format!(
                "{}: /{path} is already in the {} (from the bootstrap or another --include)",
                described(),
                self.container
            ))
            .hint("give each --include its own destination")),
        }
    }

    /// Adds an entry this tool makes (not from disk) at the absolute image path `destination`,
    /// with every missing parent; `described` names it in the error for a clash with the
    /// bootstrap or an `--include`.
    pub fn add_generated(
        &mut self,
        destination: &str,
        entry: LayerEntry,
        described: &str,
    ) -> Result<()> {
        self.insert(&image_path(destination)?, entry, || described.to_owned())
    }

    /// The entry at the absolute image path `destination`, if there is one.
    pub fn get(&self, destination: &str) -> Option<&LayerEntry> {
        self.entries.get(image_path(destination).ok()?.as_str())
    }

    /// Adds the entries of a Lambda layer zip (image paths such as `opt/extensions/agent`, from
    /// [`crate::lambda_layer::unpack`]) with every missing parent, remembering `origin` (the
    /// `--layer` value as written) for [`Self::origin`]. A file or symlink of an earlier
    /// `--layer` is replaced, as Lambda extracts layers in order into `/opt`; one from the
    /// bootstrap or an `--include`, or a directory where a file goes (or the reverse), is an
    /// error (usage).
    pub fn add_lambda_layer(
        &mut self,
        origin: &str,
        entries: &[(String, LayerEntry)],
    ) -> Result<()> {
        let described = || format!("--layer {origin}");
        for (path, entry) in entries {
            let directory = *entry == LayerEntry::Directory;
            match (self.entries.get(path), self.origins.get(path)) {
                (None, _) => {}
                (Some(LayerEntry::Directory), _) if directory => continue,
                (Some(existing), Some(earlier)) => {
                    if (*existing == LayerEntry::Directory) != directory {
                        let (here, there) = if directory {
                            ("a directory", "a file")
                        } else {
                            ("a file", "a directory")
                        };
                        return Err(Error::usage(format!(
                            "{}: /{path} is {here} in it and {there} in --layer {earlier}, so \
                             Lambda could not unpack the layers in this order",
                            described()
                        )));
                    }
                    self.entries.remove(path);
                }
                (Some(_), None) => {
                    return Err(Error::usage(format!(
                        "{}: /{path} is already in the {} (from the bootstrap or an --include)",
                        described(),
                        self.container
                    ))
                    .hint(
                        "Lambda puts layers under /opt: give the --include another \
                         destination, or leave the file out of the layer zip",
                    ));
                }
            }
            self.insert(path, entry.clone(), described)?;
            self.origins.insert(path.clone(), origin.to_owned());
        }
        Ok(())
    }

    /// The `--layer` (as written: the user's path or ARN) that the entry at `path` (relative,
    /// e.g. `opt/extensions/agent`) came from; None for the bootstrap, an `--include`, a parent
    /// directory made for them, or a path not in the tree.
    pub fn origin(&self, path: &str) -> Option<&str> {
        self.origins.get(path).map(String::as_str)
    }

    /// Entries in archive order: sorted by path, so parents come before their children.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &LayerEntry)> {
        self.entries
            .iter()
            .map(|(path, entry)| (path.as_str(), entry))
    }
}

fn file_entry(source: &Path, metadata: &std::fs::Metadata) -> LayerEntry {
    use std::os::unix::fs::PermissionsExt;
    LayerEntry::File {
        source: source.to_owned(),
        size: metadata.len(),
        executable: metadata.permissions().mode() & 0o111 != 0,
    }
}

/// Turns an absolute image path into the relative form used in tar entries, refusing `..`.
pub fn image_path(destination: &str) -> Result<String> {
    let path = Path::new(destination);
    if !path.is_absolute() {
        return Err(Error::usage(format!(
            "`{destination}` is not an absolute path in the image (e.g. /var/task/config.json)"
        )));
    }
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| Error::usage(format!("`{destination}` is not valid UTF-8")))?,
            ),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::usage(format!(
                    "`{destination}` must not contain `..`"
                )));
            }
        }
    }
    if parts.is_empty() {
        return Err(Error::usage(format!(
            "`{destination}` names the image root; name a directory or file under it"
        )));
    }
    Ok(parts.join("/"))
}

/// `path` (`/`-separated) taken lexically: empty and `.` components dropped, each `..` removing
/// the component before it; relative, without a leading `/`. `None` when a `..` climbs above the
/// start. For link targets inside a tree (a layer, a zip), where no component is itself a link.
pub fn lexical_path(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// An `--include SRC:DEST` argument: a file or directory on disk, and where it goes in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncludeSpec {
    pub source: PathBuf,
    pub destination: String,
}

impl std::fmt::Display for IncludeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source.display(), self.destination)
    }
}

impl FromStr for IncludeSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some(split) = text.rfind(":/") else {
            return Err(format!(
                "`{text}` is not SRC:DEST with an absolute DEST, e.g. ./config.json:/var/task/config.json"
            ));
        };
        let (source, destination) = (&text[..split], &text[split + 1..]);
        if source.is_empty() {
            return Err(format!("`{text}` has no source path before `:`"));
        }
        image_path(destination).map_err(|error| error.message().to_owned())?;
        Ok(Self {
            source: PathBuf::from(source),
            destination: destination.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_gets_every_parent_directory() {
        let contents = LayerContents::with_bootstrap(Path::new("/tmp/bootstrap"), 3).unwrap();
        let paths: Vec<_> = contents.entries().map(|(path, _)| path).collect();
        assert_eq!(paths, ["var", "var/runtime", "var/runtime/bootstrap"]);
    }

    #[test]
    fn include_specs_need_an_absolute_destination() {
        assert!("a.json:/var/task/a.json".parse::<IncludeSpec>().is_ok());
        assert!("a.json:var/task".parse::<IncludeSpec>().is_err());
        assert!("a.json".parse::<IncludeSpec>().is_err());
        assert!("a.json:/var/../etc".parse::<IncludeSpec>().is_err());
        assert!(":/var/task".parse::<IncludeSpec>().is_err());
        assert!("a:/".parse::<IncludeSpec>().is_err());
    }

    #[test]
    fn lambda_layers_go_in_order_and_remember_their_origin() {
        let mut contents = LayerContents::with_bootstrap(Path::new("/tmp/bootstrap"), 3).unwrap();
        let file = |name: &str| LayerEntry::File {
            source: PathBuf::from(name),
            size: 1,
            executable: false,
        };
        let first = vec![
            ("opt/extensions/agent".to_owned(), file("a")),
            ("opt/lib".to_owned(), LayerEntry::Directory),
        ];
        contents.add_lambda_layer("one.zip", &first).unwrap();
        let paths: Vec<_> = contents.entries().map(|(path, _)| path).collect();
        assert!(paths.starts_with(&["opt", "opt/extensions", "opt/extensions/agent", "opt/lib"]));
        assert_eq!(contents.origin("opt/extensions/agent"), Some("one.zip"));
        assert_eq!(contents.origin("var/runtime/bootstrap"), None);
        // A later layer replaces a file of an earlier one, as Lambda's extraction does.
        let second = vec![("opt/extensions/agent".to_owned(), file("b"))];
        contents.add_lambda_layer("arm64=two.zip", &second).unwrap();
        assert_eq!(
            contents.origin("opt/extensions/agent"),
            Some("arm64=two.zip")
        );
        let agent = contents
            .entries()
            .find(|(path, _)| *path == "opt/extensions/agent");
        assert_eq!(agent.unwrap().1, &file("b"));
        // A file where an earlier layer has a directory, or over the bootstrap, is refused.
        let clash = vec![("opt/lib".to_owned(), file("c"))];
        let error = contents.add_lambda_layer("three.zip", &clash).unwrap_err();
        assert!(error.message().contains("--layer one.zip"), "{error:?}");
        let mut over_bootstrap = LayerContents::with_bootstrap(Path::new("/b"), 1).unwrap();
        let mut include = LayerContents::with_bootstrap(Path::new("/b"), 1).unwrap();
        include.insert("opt/x", file("i"), String::new).unwrap();
        let error = include
            .add_lambda_layer("l.zip", &[("opt/x".to_owned(), file("l"))])
            .unwrap_err();
        assert!(error.message().contains("--include"), "{error:?}");
        over_bootstrap
            .add_lambda_layer("l.zip", &[("opt/x".to_owned(), file("l"))])
            .unwrap();
    }

    #[test]
    fn a_file_cannot_sit_where_the_bootstrap_needs_a_directory() {
        let mut contents = LayerContents::with_bootstrap(Path::new("/tmp/bootstrap"), 3).unwrap();
        let spec = IncludeSpec {
            source: PathBuf::from("/tmp"),
            destination: "/var/runtime/bootstrap/x".into(),
        };
        let error = contents.insert("var/runtime/bootstrap/x", LayerEntry::Directory, || {
            spec.to_string()
        });
        assert!(error.is_err());
    }
}
