//! What the bootstrap checks can know about a base before and after it is opened: its glibc
//! (from `--base-glibc`, the base-image catalog, or the `libc.so.6` in its layers), its program
//! interpreters and `PATH` (the catalog entry, or a local base's own config) and, for a base
//! whose layers are on this machine, its files. `build`, `check --bootstrap` and `zip` (whose
//! runtime is a catalog entry) all check through [`check_bootstraps`].
//!
//! Registry layers are never downloaded just to check a bootstrap: a registry base is checked
//! against the catalog (or `--base-glibc`) only.

use super::Bootstrap;
use super::checks::{BaseGlibc, BaseKnowledge, CheckName, check_bootstrap};
use super::elf::defined_glibc_version;
use super::glibc::GlibcVersion;
use std::collections::BTreeMap;

use crate::catalog::BaseReference;
use crate::catalog::{self, CatalogBase};
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::image::filesystem::{Filesystem, LayerCompression};
use crate::image::media_types::{DOCKER_LAYER_GZIP, OCI_LAYER_GZIP, OCI_LAYER_TAR};
use crate::image::set::ImageSet;
use crate::layer::contents::LayerEntry;
use crate::platform::Architecture;

/// Where a base's `libc.so.6` usually is (Amazon Linux, then Debian-style multiarch).
const LIBC_PATHS: [&str; 6] = [
    "usr/lib64/libc.so.6",
    "lib64/libc.so.6",
    "usr/lib/x86_64-linux-gnu/libc.so.6",
    "usr/lib/aarch64-linux-gnu/libc.so.6",
    "lib/x86_64-linux-gnu/libc.so.6",
    "lib/aarch64-linux-gnu/libc.so.6",
];

/// The most of a `libc.so.6` read to find its versions.
const LIBC_READ_LIMIT: usize = 16 << 20;

/// What is known about a base without reading its layers.
#[derive(Clone, Debug)]
pub struct BaseFacts {
    /// How the base is named in messages.
    pub name: String,
    /// `--base-glibc`, else the catalog entry's.
    pub glibc: Option<BaseGlibc>,
    /// The catalog entry the base is (its loaders, its config's `PATH`).
    pub catalog: Option<CatalogBase>,
    /// Absolute paths the command adds beside the bootstraps (`--include`s), which count as
    /// present whatever the base has; see [`BaseFacts::adding`].
    pub added: Vec<String>,
    /// Those of `added` that are regular files without an execute bit (written 0644), as
    /// `(absolute path, the file on this machine)`: as a dynamic loader or `#!` program the
    /// kernel refuses them (`EACCES`).
    pub added_not_executable: Vec<(String, String)>,
    /// The image's `PATH` when the command sets it (`build --env PATH=...`), which wins over
    /// the base config's.
    pub path: Option<String>,
    /// The image's `LD_LIBRARY_PATH` when the command sets it (`build --env`), which wins over
    /// the base config's.
    pub library_path: Option<String>,
    /// Where the bootstrap is put (`$ORIGIN` for its `DT_RUNPATH`): `/var/runtime` in an image
    /// (the default), `/var/task` in a `.zip`.
    pub bootstrap_directory: String,
}

impl BaseFacts {
    /// The facts of `base` as far as they are known without reading layers: `--base-glibc`,
    /// else the catalog entry the reference names.
    pub fn without_layers(base: &BaseReference, stated: Option<GlibcVersion>) -> Self {
        let catalog = match base {
            BaseReference::Registry(reference) => catalog::for_reference(reference),
            BaseReference::Scratch => catalog::by_name(catalog::SCRATCH),
            BaseReference::Local(_) => None,
        };
        let glibc = match stated {
            Some(version) => Some(BaseGlibc {
                version,
                source: "from --base-glibc".into(),
            }),
            None => catalog.as_ref().and_then(catalog_glibc),
        };
        Self {
            name: base.to_string(),
            glibc,
            catalog,
            added: Vec::new(),
            added_not_executable: Vec::new(),
            path: None,
            library_path: None,
            bootstrap_directory: "/var/runtime".to_owned(),
        }
    }

    /// The same facts, with the `PATH` the command gives the image, if it sets one.
    pub fn with_path(mut self, path: Option<String>) -> Self {
        self.path = path.or(self.path);
        self
    }

    /// The same facts, with the `LD_LIBRARY_PATH` the command gives the image, if it sets one.
    pub fn with_library_path(mut self, library_path: Option<String>) -> Self {
        self.library_path = library_path.or(self.library_path);
        self
    }

    /// The same facts, with the bootstrap at `directory` (absolute) instead of `/var/runtime`.
    pub fn with_bootstrap_directory(mut self, directory: &str) -> Self {
        directory.clone_into(&mut self.bootstrap_directory);
        self
    }

    /// The same facts, with the files a layer or package adds: `paths` relative to `/` as
    /// layer entries name them (`var/task/lib/ld-musl-x86_64.so.1`).
    pub fn adding(mut self, paths: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.added.extend(
            paths
                .into_iter()
                .map(|path| format!("/{}", path.as_ref().trim_matches('/'))),
        );
        self.added.sort();
        self.added.dedup();
        self
    }

    /// [`BaseFacts::adding`] the entries of a layer or package, `(path, entry)` with paths
    /// relative to `root` (`/` for a layer, `/var/task` for a `.zip`), noting the files that
    /// have no execute bit.
    pub fn adding_entries<'a>(
        mut self,
        root: &str,
        entries: impl IntoIterator<Item = (&'a str, &'a LayerEntry)>,
    ) -> Self {
        let root = root.trim_matches('/');
        let absolute = |path: &str| {
            let path = path.trim_matches('/');
            if root.is_empty() {
                path.to_owned()
            } else {
                format!("{root}/{path}")
            }
        };
        let mut paths = Vec::new();
        for (path, entry) in entries {
            paths.push(absolute(path));
            if let LayerEntry::File {
                executable: false,
                source,
                ..
            } = entry
            {
                self.added_not_executable
                    .push((format!("/{}", absolute(path)), source.display().to_string()));
            }
        }
        self.added_not_executable.sort();
        self.added_not_executable.dedup();
        self.adding(paths)
    }

    /// The facts of a catalog base, named by its short name (a `.zip`'s runtime).
    pub fn of_catalog(entry: CatalogBase) -> Self {
        Self {
            name: entry.name.clone(),
            glibc: catalog_glibc(&entry),
            catalog: Some(entry),
            added: Vec::new(),
            added_not_executable: Vec::new(),
            path: None,
            library_path: None,
            bootstrap_directory: "/var/runtime".to_owned(),
        }
    }
}

fn catalog_glibc(entry: &CatalogBase) -> Option<BaseGlibc> {
    Some(BaseGlibc {
        version: entry.glibc.as_deref()?.parse().ok()?,
        source: format!("{} in the base-image catalog", entry.name),
    })
}

/// A local base image's `PATH` and working directory, from its config (`config.Env`,
/// `config.WorkingDir`); `None` for what it does not set.
fn config_path_and_working_dir(config_raw: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(config) = serde_json::from_slice::<serde_json::Value>(config_raw) else {
        return (None, None);
    };
    let config = &config["config"];
    let path = config["Env"].as_array().and_then(|env| {
        env.iter()
            .filter_map(serde_json::Value::as_str)
            .find_map(|entry| entry.strip_prefix("PATH="))
            .map(str::to_owned)
    });
    let working_dir = config["WorkingDir"]
        .as_str()
        .filter(|dir| !dir.is_empty())
        .map(str::to_owned);
    (path, working_dir)
}

/// The value of `NAME` in a local base image's config (`config.Env`), if it sets it.
fn config_env(config_raw: &[u8], name: &str) -> Option<String> {
    let config = serde_json::from_slice::<serde_json::Value>(config_raw).ok()?;
    config["config"]["Env"]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

/// Checks every bootstrap (the caller decides what an error finding means). With `local_base`
/// (a base whose layers are on this machine), bootstraps that need something from the base
/// (dynamic ELFs, scripts) are checked against its files, its own `libc.so.6` and its config's
/// `PATH`; otherwise against what `facts` knows (the catalog's glibc, loaders and `PATH`).
pub fn check_bootstraps(
    bootstraps: &[Bootstrap],
    facts: &BaseFacts,
    local_base: Option<&ImageSet>,
    skip: &[CheckName],
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    // One scan per architecture, however many programs of it need the base's files.
    let mut scanned: BTreeMap<Architecture, Option<Filesystem>> = BTreeMap::new();
    let empty = Filesystem::default();
    for bootstrap in bootstraps {
        let architecture = bootstrap.architecture;
        if let Some(base) = local_base.filter(|_| !bootstrap.is_static())
            && !scanned.contains_key(&architecture)
        {
            scanned.insert(architecture, scan_base(base, architecture)?);
        }
        let filesystem = match local_base {
            Some(_) if !bootstrap.is_static() => scanned[&architecture].as_ref(),
            _ => None,
        };
        // A base the catalog knows to have no files (scratch) is checked as the empty tree.
        let without_files = facts.catalog.as_ref().is_some_and(|entry| entry.no_files);
        let filesystem = filesystem.or(without_files.then_some(&empty));
        let found_glibc = filesystem.and_then(glibc_in_filesystem);
        let (path, working_dir) = match (local_base, &facts.catalog) {
            (Some(base), _) => base
                .images
                .get(&architecture)
                .map(|image| config_path_and_working_dir(&image.config.bytes))
                .unwrap_or_default(),
            (None, Some(entry)) => (
                entry.env("PATH").map(str::to_owned),
                Some(entry.working_dir().to_owned()),
            ),
            (None, None) => (None, None),
        };
        let path = facts.path.clone().or(path);
        let library_path = facts.library_path.clone().or_else(|| {
            local_base
                .and_then(|base| base.images.get(&architecture))
                .and_then(|image| config_env(&image.config.bytes, "LD_LIBRARY_PATH"))
        });
        let interpreters = match (local_base, &facts.catalog) {
            (None, Some(entry)) => entry
                .interpreters
                .get(architecture.oci_name())
                .map(Vec::as_slice),
            _ => None,
        };
        let knowledge = BaseKnowledge {
            name: &facts.name,
            glibc: facts.glibc.as_ref().or(found_glibc.as_ref()),
            filesystem,
            interpreters,
            path: path.as_deref(),
            working_dir: working_dir.as_deref(),
            added: &facts.added,
            added_not_executable: &facts.added_not_executable,
            library_path: library_path.as_deref(),
            bootstrap_directory: &facts.bootstrap_directory,
            without_libc: without_files,
        };
        findings.extend(check_bootstrap(bootstrap, knowledge, skip));
    }
    Ok(findings)
}

/// True when the base's layers can be read without a download.
pub fn layers_are_local(base: &ImageSet) -> bool {
    base.registry_origin().is_none()
}

/// Streams the base's layers for one architecture into a file tree, keeping the head of any
/// `libc.so.6` so its glibc can be read. `None` when a layer's compression cannot be read here
/// (zstd): the base's files are then unknown, not empty.
pub fn scan_base(base: &ImageSet, architecture: Architecture) -> Result<Option<Filesystem>> {
    let image = &base.images[&architecture];
    let mut filesystem = Filesystem::default();
    // The file itself, whichever name it has (on AL2 `libc.so.6` links to `libc-2.26.so`).
    let capture = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        let is_libc = name == "libc.so.6" || (name.starts_with("libc-") && name.ends_with(".so"));
        is_libc.then_some(LIBC_READ_LIMIT)
    };
    for layer in &image.layers {
        let compression = match layer.descriptor.media_type().to_string().as_str() {
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => LayerCompression::Gzip,
            OCI_LAYER_TAR => LayerCompression::None,
            // Anything else (zstd) cannot be read here; the base's files stay unknown.
            _ => return Ok(None),
        };
        let unreadable = |error: std::io::Error| {
            Error::base(format!(
                "base {}: cannot read layer {} to check the bootstrap against it: {error}",
                base.reference,
                layer.digest()
            ))
        };
        let reader = base
            .open_layer(layer)
            .map_err(|error| unreadable(error.into()))?;
        filesystem
            .apply_layer(reader, compression, &capture)
            .map_err(unreadable)?;
    }
    Ok(Some(filesystem))
}

/// The glibc the base's own `libc.so.6` defines, if it has one.
pub fn glibc_in_filesystem(filesystem: &Filesystem) -> Option<BaseGlibc> {
    LIBC_PATHS.iter().find_map(|path| {
        let (found, node) = filesystem.resolve(path)?;
        let crate::image::filesystem::Node::File {
            head: Some(bytes), ..
        } = node
        else {
            return None;
        };
        Some(BaseGlibc {
            version: defined_glibc_version(bytes.as_slice())?,
            source: format!("its /{found}"),
        })
    })
}
