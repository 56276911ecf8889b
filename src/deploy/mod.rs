//! Deploying to Lambda: `lambda-image deploy` and `build --deploy`. A function is always given
//! the manifest of its own architecture by digest (`REPO@sha256:...`), never a tag (Lambda
//! resolves a tag once; moving it later redeploys nothing) nor an index (Lambda rejects it), or
//! a `.zip` whose bootstrap was checked; then Lambda is waited for, and the function checked to
//! hold what was sent (`shared/lambda-facts.md`, "Deploying").
//!
//! - [`decide`]: the rules that need no AWS call (region, architecture, package type).
//! - [`zip_package`]: reading and checking a `.zip` before anything is sent.
//! - [`image_package`]: an ECR reference resolved to its per-architecture manifests.
//! - [`flow`]: the calls, in order, over [`api::FunctionApi`]; [`sdk`] makes them (feature
//!   `deploy`).
//! - [`report`]: what the user is told.

pub mod api;
pub mod decide;
pub mod flow;
pub mod image_package;
pub mod report;
#[cfg(feature = "deploy")]
pub mod sdk;
pub mod zip_package;

use std::collections::BTreeMap;

use crate::digest::Sha256Digest;
use crate::error::{Error, Result};
use crate::image::config::KeyValue;
use crate::platform::Architecture;
use zip_package::ZipPackage;

/// What to do to the function, whatever the package.
#[derive(Clone, Debug)]
pub struct DeployRequest {
    /// `--function`: a name or an ARN.
    pub function: String,
    /// `--create`: create the function when it does not exist.
    pub create: bool,
    /// `--role`: the execution role of a function created.
    pub role: Option<String>,
    /// `--architecture`: the function's architecture, changed if it differs.
    pub architecture: Option<Architecture>,
    /// The flag that gave `architecture`, as messages name it (`--architecture`, or `build`'s
    /// `--deploy-architecture`).
    pub architecture_flag: &'static str,
    /// `architecture` applies only to a function being created (`build --deploy-architecture`:
    /// one flag for several functions must not move the existing ones).
    pub architecture_for_create_only: bool,
    /// `--runtime`: a zip function's runtime, set on an existing function when it differs.
    pub runtime: Option<&'static str>,
    /// `--memory`, MB.
    pub memory: Option<i32>,
    /// `--timeout`, seconds.
    pub timeout: Option<i32>,
    /// `--env`: merged into the function's variables.
    pub env: Vec<KeyValue>,
    pub description: Option<String>,
    /// `--publish` (also implied by `--alias`).
    pub publish: bool,
    pub alias: Option<String>,
    /// Wait for Lambda to finish (not `--no-wait`).
    pub wait: bool,
    /// No progress lines (`-q`).
    pub quiet: bool,
}

impl Default for DeployRequest {
    fn default() -> Self {
        DeployRequest {
            function: String::new(),
            create: false,
            role: None,
            architecture: None,
            architecture_flag: "--architecture",
            architecture_for_create_only: false,
            runtime: None,
            memory: None,
            timeout: None,
            env: Vec::new(),
            description: None,
            publish: false,
            alias: None,
            wait: true,
            quiet: false,
        }
    }
}

/// An image in ECR, resolved: its repository and each architecture's manifest digest.
#[derive(Clone, Debug)]
pub struct ImagePackage {
    /// The reference as the user gave it (for messages).
    pub shown: String,
    /// `HOST[:PORT]/REPO`, to which `@sha256:...` is added.
    pub repository: String,
    pub manifests: BTreeMap<Architecture, Sha256Digest>,
}

/// `--s3-bucket` and `--s3-key`.
#[derive(Clone, Debug)]
pub struct S3Target {
    pub bucket: String,
    /// Default: `lambda-image/NAME/<sha256 hex>.zip`.
    pub key: Option<String>,
}

/// What is deployed.
#[derive(Debug)]
pub enum Package {
    Image(ImagePackage),
    Zip {
        zip: Box<ZipPackage>,
        /// Uploaded through S3 first, when given.
        s3: Option<S3Target>,
    },
}

impl Package {
    /// The architectures the package can run on.
    pub fn architectures(&self) -> Vec<Architecture> {
        match self {
            Package::Image(image) => image.manifests.keys().copied().collect(),
            Package::Zip { zip, .. } => zip.architectures.clone(),
        }
    }

    /// `REPO@sha256:...` of the image for `architecture` (images only).
    pub fn image_uri(&self, architecture: Architecture) -> Option<String> {
        match self {
            Package::Image(image) => image
                .manifests
                .get(&architecture)
                .map(|digest| format!("{}@{digest}", image.repository)),
            Package::Zip { .. } => None,
        }
    }

    /// Lambda's `PackageType` of the package.
    pub fn kind(&self) -> decide::PackageKind {
        match self {
            Package::Image(_) => decide::PackageKind::Image,
            Package::Zip { .. } => decide::PackageKind::Zip,
        }
    }

    /// What the package is, for messages about its architectures.
    pub fn source(&self) -> decide::PackageSource<'_> {
        match self {
            Package::Image(image) => decide::PackageSource::Image(&image.shown),
            Package::Zip { zip, .. } => decide::PackageSource::Zip(zip.shown()),
        }
    }

    /// The runtime a zip function is created with; none for an image.
    pub fn runtime(&self) -> Option<&'static str> {
        match self {
            Package::Image(_) => None,
            Package::Zip { zip, .. } => Some(zip.runtime),
        }
    }

    /// `sha256:...` of the manifest for `architecture` (images only).
    pub fn manifest_digest(&self, architecture: Architecture) -> Option<String> {
        match self {
            Package::Image(image) => image.manifests.get(&architecture).map(|d| d.to_string()),
            Package::Zip { .. } => None,
        }
    }
}

/// The region of the function (see [`decide::function_region`]), with the SDK's default
/// region read from the environment and profile (no network call). `image_region`: the ECR
/// image's, when an image is deployed.
pub fn resolve_region(
    flag: Option<&str>,
    function: &str,
    image_region: Option<&str>,
) -> Result<String> {
    let sdk_default = sdk_default_region()?;
    decide::function_region(
        flag,
        decide::region_in_function_arn(function),
        sdk_default.as_deref(),
        image_region,
    )
}

#[cfg(feature = "deploy")]
fn sdk_default_region() -> Result<Option<String>> {
    sdk::default_region()
}

#[cfg(not(feature = "deploy"))]
fn sdk_default_region() -> Result<Option<String>> {
    Ok(None)
}

/// Refuses at once when this build of the tool cannot deploy. Error: usage.
pub fn available() -> Result<()> {
    if cfg!(feature = "deploy") {
        return Ok(());
    }
    Err(Error::usage(
        "this lambda-image was built without the `deploy` feature, which talks to Lambda",
    )
    .hint("build it with the default features (cargo install lambda-image), or deploy with the AWS CLI"))
}

/// The Lambda (and S3) API of `region` through the AWS SDK, for [`flow::preflight`] and
/// [`flow::deploy`]. Error (usage): this build of the tool has no `deploy` feature.
#[cfg(feature = "deploy")]
pub fn connect(region: &str) -> Result<Box<dyn api::FunctionApi>> {
    Ok(Box::new(sdk::SdkFunctions::connect(region)?))
}

#[cfg(not(feature = "deploy"))]
pub fn connect(_region: &str) -> Result<Box<dyn api::FunctionApi>> {
    available().map(|()| unreachable!("available() fails without the feature"))
}
