//! The Lambda (and S3) calls a deployment makes, as a trait over plain data, so that the steps
//! of [`super::flow`] do not depend on the AWS SDK: [`super::sdk`] implements it with the
//! official SDK (the `deploy` feature); without the feature there is no implementation and
//! `deploy` says so.

use std::collections::BTreeMap;
use std::path::Path;

use super::decide::PackageKind;
use crate::error::Result;
use crate::platform::Architecture;

/// What Lambda says of a function (`GetFunction`, or the answer to a create or update).
#[derive(Clone, Debug, Default)]
pub struct FunctionFacts {
    pub arn: String,
    /// `Image` or `Zip`; `None` if Lambda named another.
    pub package_type: Option<PackageKind>,
    /// `Architectures[0]`; `None` if Lambda named none (it then means x86_64).
    pub architecture: Option<Architecture>,
    /// `State`: `Pending`, `Active`, `Inactive`, `Failed`.
    pub state: Option<String>,
    pub state_reason: Option<String>,
    /// `LastUpdateStatus`: `InProgress`, `Successful`, `Failed`; none right after a create.
    pub last_update_status: Option<String>,
    pub last_update_status_reason: Option<String>,
    /// `CodeSha256`: base64 of the zip's sha256; for an image, its manifest digest's hex.
    pub code_sha256: Option<String>,
    /// `Version`: `$LATEST` or a published version's number.
    pub version: Option<String>,
    /// `Runtime` (zip functions).
    pub runtime: Option<String>,
    /// `Code.ImageUri` (from `GetFunction` only).
    pub image_uri: Option<String>,
    /// `Code.ResolvedImageUri`: `REPO@sha256:...` (from `GetFunction` only).
    pub resolved_image_uri: Option<String>,
    /// `Environment.Variables`.
    pub environment: BTreeMap<String, String>,
    /// `RevisionId`: changes with every change to the function.
    pub revision_id: Option<String>,
}

impl FunctionFacts {
    /// The architecture Lambda runs it on: `Architectures[0]`, x86_64 when none is named.
    pub fn runs_on(&self) -> Architecture {
        self.architecture.unwrap_or(Architecture::Amd64)
    }
}

/// The code to deploy: Lambda's `FunctionCode` (create) or `UpdateFunctionCode`'s members.
#[derive(Clone, Copy, Debug)]
pub enum Code<'a> {
    /// `ImageUri`: `REPO@sha256:...`.
    Image(&'a str),
    /// `ZipFile`: the zip's bytes.
    ZipFile(&'a [u8]),
    /// `S3Bucket`, `S3Key`.
    S3 { bucket: &'a str, key: &'a str },
}

/// The configuration a deployment sets: `None` (or empty) leaves Lambda's value.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `MemorySize`, MB.
    pub memory: Option<i32>,
    /// `Timeout`, seconds.
    pub timeout: Option<i32>,
    /// `Environment.Variables`: the whole set to send.
    pub environment: Option<BTreeMap<String, String>>,
    pub description: Option<String>,
    /// `Runtime` (zip functions: `provided.al2023` or `provided.al2`).
    pub runtime: Option<String>,
    /// `RevisionId`: update only if the function is still at this revision (no other change
    /// came between reading its variables and writing them back merged).
    pub revision_id: Option<String>,
}

impl Settings {
    /// Whether there is nothing to change (a revision alone changes nothing).
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.timeout.is_none()
            && self.environment.is_none()
            && self.description.is_none()
            && self.runtime.is_none()
    }
}

/// `CreateFunction`'s members.
pub struct NewFunction<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub code: Code<'a>,
    pub architecture: Architecture,
    /// `Runtime` and `Handler` (`bootstrap`) for a zip; none for an image.
    pub runtime: Option<&'a str>,
    pub settings: &'a Settings,
}

/// An alias as Lambda answers it.
#[derive(Clone, Debug)]
pub struct AliasFacts {
    pub arn: String,
    pub version: String,
}

/// The calls. Every error names the operation and, for an access denial, the IAM action.
pub trait FunctionApi {
    /// `GetFunction`; `None` when there is no such function.
    fn get(&self, name: &str) -> Result<Option<FunctionFacts>>;
    fn create(&self, function: &NewFunction) -> Result<FunctionFacts>;
    fn update_configuration(&self, name: &str, settings: &Settings) -> Result<FunctionFacts>;
    /// `UpdateFunctionCode` with `Architectures = [architecture]`.
    fn update_code(
        &self,
        name: &str,
        code: Code,
        architecture: Architecture,
    ) -> Result<FunctionFacts>;
    /// `PublishVersion`, only if the function's code is still `code_sha256`; the version.
    fn publish(&self, name: &str, code_sha256: &str) -> Result<FunctionFacts>;
    /// `CreateAlias`, or `UpdateAlias` when it exists, to `version`.
    fn point_alias(&self, name: &str, alias: &str, version: &str) -> Result<AliasFacts>;
    /// S3 `PutObject` of the file at `path`.
    fn upload(&self, bucket: &str, key: &str, path: &Path) -> Result<()>;
}
