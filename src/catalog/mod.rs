//! The catalog of Lambda base images the tool knows by name (`base-images/*.json`, compiled in):
//! `--base provided.al2023` means `public.ecr.aws/lambda/provided:al2023`, and each entry records
//! the glibc the base ships (which the `glibc` bootstrap check compares against), the program
//! interpreters (dynamic loaders) each architecture has (the `interpreter` check) and the image
//! config AWS publishes (whose `PATH` a `#!/usr/bin/env NAME` script is looked up on).
//!
//! A network that mirrors the catalog's registry says so once, with
//! `LAMBDA_IMAGE_BASE_MIRROR=HOST[:PORT]/PATH` ([`BaseMirror`]): that prefix stands for
//! `public.ecr.aws/lambda`, so every base under it (the catalog's references, short names, the
//! default base) is pulled from the mirror, and a mirrored reference is still the catalog entry
//! it mirrors (its glibc, loaders and config apply).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::reference::registry::RegistryReference;

mod base_reference;
mod mirror;

pub use base_reference::BaseReference;
pub use mirror::{
    BaseMirror, MIRROR_VARIABLE, UPSTREAM, mirror, mirrored_upstream, pulled_from,
    upstream_repository,
};

/// The catalog files, embedded at build time.
const ENTRIES: [&str; 3] = [
    include_str!("../../base-images/provided.al2023.json"),
    include_str!("../../base-images/provided.al2.json"),
    include_str!("../../base-images/scratch.json"),
];

/// The short name of the built-in base with no layers ([`crate::scratch_base`]).
pub const SCRATCH: &str = "scratch";

/// Where a catalog base comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatalogKind {
    /// Pulled from its registry reference (the provided bases).
    #[default]
    Registry,
    /// Made by the tool itself, with no download (`scratch`): its `reference` is only its name.
    BuiltIn,
}

/// The base used when `--base` is not given.
pub const DEFAULT_BASE: &str = "public.ecr.aws/lambda/provided:al2023";

/// One known base.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct CatalogBase {
    pub name: String,
    /// `registry` (absent in the file) or `built-in`.
    #[serde(default)]
    pub kind: CatalogKind,
    pub reference: String,
    /// Single-architecture references, by OCI architecture name (a built-in base: its name).
    pub architectures: BTreeMap<String, String>,
    /// The glibc version the base ships, e.g. `2.34`; `None` for a base with no C library
    /// (`scratch`), on which only statically linked executables run.
    pub glibc: Option<String>,
    /// The program interpreters (`PT_INTERP` paths) the base has, by OCI architecture name:
    /// glibc's loaders only, e.g. `/lib64/ld-linux-x86-64.so.2` for amd64. A bootstrap asking
    /// for any other (musl's `/lib/ld-musl-x86_64.so.1`) cannot start on it.
    #[serde(default)]
    pub interpreters: BTreeMap<String, Vec<String>>,
    /// The base has no files at all (`scratch`): the bootstrap checks look for loaders and `#!`
    /// programs among the files the build adds only, and a dynamically linked bootstrap is
    /// refused (there is no C library). False (absent in the file): its files are not known here.
    #[serde(default)]
    pub no_files: bool,
    /// The image config AWS publishes for it: Entrypoint, WorkingDir, Env.
    pub config: serde_json::Value,
}

impl CatalogBase {
    /// The value of `NAME` in the config's `Env` (`NAME=value` entries), if set.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.config["Env"]
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_str)
            .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
    }

    /// Whether the tool makes this base itself (no registry, no download).
    pub fn is_built_in(&self) -> bool {
        self.kind == CatalogKind::BuiltIn
    }

    /// The config's `WorkingDir`, `/` when unset (as the runtime defaults it).
    pub fn working_dir(&self) -> &str {
        self.config["WorkingDir"].as_str().unwrap_or("/")
    }
}

/// Every known base.
pub fn all() -> Vec<CatalogBase> {
    ENTRIES
        .iter()
        .map(|text| serde_json::from_str(text).expect("the embedded catalog is valid"))
        .collect()
}

/// The base with this short name, e.g. `provided.al2023`.
pub fn by_name(name: &str) -> Option<CatalogBase> {
    all().into_iter().find(|base| base.name == name)
}

/// The catalog base a registry reference names (its multi-architecture or a per-architecture
/// tag), ignoring any digest pinned next to the tag.
/// A reference into the mirror [`MIRROR_VARIABLE`] names is the entry it mirrors.
pub fn for_reference(reference: &RegistryReference) -> Option<CatalogBase> {
    let mirror = mirror().ok().flatten();
    for_reference_with(reference, mirror.as_ref())
}

/// [`for_reference`], with the mirror given rather than read from the environment.
fn for_reference_with(
    reference: &RegistryReference,
    mirror: Option<&BaseMirror>,
) -> Option<CatalogBase> {
    let upstream = mirror.and_then(|mirror| mirror.upstream(reference));
    let reference = upstream.as_ref().unwrap_or(reference);
    let same = |known: &str| {
        known.parse::<RegistryReference>().is_ok_and(|known| {
            known.registry == reference.registry
                && known.repository == reference.repository
                && reference.tag.is_some()
                && known.tag == reference.tag
        })
    };
    // A built-in base's `reference` is its name, not a registry reference: `docker.io/library/
    // scratch` is not the built-in `scratch`.
    all()
        .into_iter()
        .filter(|base| !base.is_built_in())
        .find(|base| same(&base.reference) || base.architectures.values().any(|known| same(known)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_resolve_and_the_default_is_in_the_catalog() {
        assert_eq!(
            by_name("provided.al2").unwrap().reference,
            "public.ecr.aws/lambda/provided:al2"
        );
        assert!(all().iter().any(|base| base.reference == DEFAULT_BASE));
        assert!(by_name("alpine").is_none());
        let al2 = |text: &str| for_reference(&text.parse().unwrap()).and_then(|base| base.glibc);
        assert_eq!(
            al2("public.ecr.aws/lambda/provided:al2").as_deref(),
            Some("2.26")
        );
        assert_eq!(
            al2("public.ecr.aws/lambda/provided:al2023-arm64").as_deref(),
            Some("2.34")
        );
        assert_eq!(al2("public.ecr.aws/lambda/provided:latest"), None);
        assert_eq!(al2("127.0.0.1:5000/lambda/provided:al2"), None);
        assert!(for_reference(&"docker.io/library/scratch".parse().unwrap()).is_none());
        assert!(for_reference(&"scratch".parse().unwrap()).is_none());
        for base in all().into_iter().filter(|base| !base.is_built_in()) {
            assert!(!base.no_files);
            base.glibc
                .as_deref()
                .unwrap()
                .parse::<crate::bootstrap::glibc::GlibcVersion>()
                .unwrap();
            assert_eq!(
                base.env("PATH"),
                Some("/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin")
            );
            assert_eq!(base.working_dir(), "/var/task");
            // glibc's loaders, one list per architecture the base is published for.
            assert_eq!(
                base.interpreters.keys().collect::<Vec<_>>(),
                base.architectures.keys().collect::<Vec<_>>()
            );
            assert!(base.interpreters["amd64"].contains(&"/lib64/ld-linux-x86-64.so.2".to_owned()));
            assert!(base.interpreters["arm64"].contains(&"/lib/ld-linux-aarch64.so.1".to_owned()));
        }
    }

    /// `scratch` is built in: no glibc, no loaders, no files, and the Lambda variables of a
    /// provided base (without LANG and LD_LIBRARY_PATH) plus SSL_CERT_FILE.
    #[test]
    fn scratch_is_a_built_in_entry_with_nothing_in_it() {
        let scratch = by_name(SCRATCH).unwrap();
        assert!(scratch.is_built_in());
        assert_eq!(scratch.glibc, None);
        assert!(scratch.no_files);
        assert_eq!(
            scratch.architectures.keys().collect::<Vec<_>>(),
            ["amd64", "arm64"]
        );
        assert!(scratch.interpreters.values().all(Vec::is_empty));
        assert_eq!(
            scratch.config["Entrypoint"],
            serde_json::json!(["/var/runtime/bootstrap"])
        );
        assert_eq!(scratch.working_dir(), "/var/task");
        let provided = by_name("provided.al2023").unwrap();
        for name in ["PATH", "TZ", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"] {
            assert_eq!(scratch.env(name), provided.env(name), "{name}");
        }
        assert_eq!(
            scratch.env("SSL_CERT_FILE"),
            Some("/etc/ssl/certs/ca-certificates.crt")
        );
        assert_eq!(scratch.env("LD_LIBRARY_PATH"), None);
        assert_eq!(scratch.config["Env"].as_array().unwrap().len(), 5);
    }
}
