//! What a build is asked to do, as plain data: the bootstraps, the base, what to change in the
//! image, where to write it, and how to reach registries. The command line fills it
//! (the `build` command), with its flags parsed and its credentials read; [`super::build`] runs
//! it. Not here: flag names and parsing (clap), or anything the build finds out (the report).

use std::path::PathBuf;
use std::sync::Arc;

use crate::bootstrap::BootstrapSpec;
use crate::bootstrap::checks::CheckName;
use crate::bootstrap::glibc::GlibcVersion;
use crate::catalog::BaseReference;
use crate::credentials::Credential;
use crate::credentials::ecr::TokenCache;
use crate::image::ImageFormat;
use crate::image::config::KeyValue;
use crate::lambda_layer::LayerSpec;
use crate::layer::IncludeSpec;
use crate::reference::ImageLocation;
use crate::reference::registry::RegistryReference;
use crate::timestamp::BuildTimestamp;

/// One build: bootstraps + base → one image per architecture (+ an index) → registries and/or a
/// local output.
pub struct Plan {
    /// The bootstraps, at most one per architecture (`--bootstrap [ARCH=]PATH`).
    pub bootstraps: Vec<BootstrapSpec>,
    /// The base image: a registry reference or a local layout / archive.
    pub base: BaseReference,
    /// The base's glibc version, for bases not in the catalog.
    pub base_glibc: Option<GlibcVersion>,
    /// Bootstrap checks reported as skipped instead of run.
    pub skip_checks: Vec<CheckName>,
    /// The handler name, the image's `CMD ["NAME"]`; must not be empty.
    pub handler: String,
    /// Environment variables set in the config (a later one wins; over the base's value).
    pub env: Vec<KeyValue>,
    /// Config labels.
    pub labels: Vec<KeyValue>,
    /// Manifest annotations (OCI manifests only).
    pub annotations: Vec<KeyValue>,
    /// Extra files or directories added to every architecture's layer.
    pub includes: Vec<IncludeSpec>,
    /// Lambda layer zips (files or ARNs) unpacked under /opt, in order (`--layer`).
    pub lambda_layers: Vec<LayerSpec>,
    /// The manifest media types to write; `None`: the base's.
    pub format: Option<ImageFormat>,
    /// Registry references to push to (tags, not digests).
    pub tags: Vec<RegistryReference>,
    /// A local output: an OCI layout, an OCI archive or a Docker archive.
    pub output: Option<ImageLocation>,
    /// With several architectures, also tag each one `TAG-amd64` / `TAG-arm64`.
    pub arch_tags: bool,
    /// Contact no registry but the pushed-to ones: a registry base comes from the cache.
    pub offline: bool,
    /// The images' creation time and the new layers' file times.
    pub timestamp: BuildTimestamp,
    /// How to reach registries.
    pub registries: RegistryAccess,
}

/// How a build reaches registries: credentials, plain-HTTP hosts, the cache, progress.
pub struct RegistryAccess {
    /// For the registries pushed to (and the base's, when it is one of them), with the flag
    /// that gave it (for messages); never sent to any other registry.
    pub creds: Option<(Credential, &'static str)>,
    /// For the base's registry only, with the flag that gave it.
    pub base_creds: Option<(Credential, &'static str)>,
    /// Hosts (`HOST[:PORT]`) allowed plain HTTP; loopback hosts always are.
    pub insecure_registries: Vec<String>,
    /// The cache root; `None`: the default (`$XDG_CACHE_HOME/lambda-image` or
    /// `~/.cache/lambda-image`), or no cache when neither is known.
    pub cache_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// The ECR tokens of this run (made by the command, for `--region` or the region in each
    /// ECR host name), shared by every ECR registry the build talks to.
    pub ecr_tokens: Arc<TokenCache>,
}
