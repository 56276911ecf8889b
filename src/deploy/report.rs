//! What `deploy` (and each `build --deploy`) tells the user: the function, where it runs, what
//! it now holds (the per-architecture image digest, or the zip's `CodeSha256`), the version and
//! alias, and how long it took. Human lines on stdout, or one JSON object with `--json`.

use serde::Serialize;

/// The JSON shape of `deploy --json` (field order as here), and of each entry of
/// `build --json`'s `deployments`.
#[derive(Clone, Debug, Serialize)]
pub struct DeployReport {
    /// As given to `--function` (a name or an ARN).
    pub function_name: String,
    /// The function's ARN, as Lambda answers it.
    pub function_arn: String,
    pub region: String,
    /// Whether this deploy created the function (else it updated it).
    pub created: bool,
    /// Lambda's `PackageType`: `Image` or `Zip`.
    pub package_type: &'static str,
    /// Lambda's name of the architecture (`x86_64`, `arm64`).
    pub architecture: &'static str,
    /// The `ImageUri` given: `HOST/REPO@sha256:...` of the architecture's manifest (images).
    pub image_uri: Option<String>,
    /// That manifest's digest, `sha256:...` (images).
    pub image_digest: Option<String>,
    /// Lambda's `CodeSha256` of what the function holds (for a zip: base64 of its sha256,
    /// checked equal to the package's).
    pub code_sha256: String,
    /// The zip function's `Runtime` (zips).
    pub runtime: Option<String>,
    /// Where the zip was uploaded, when through S3.
    pub s3: Option<ReportedS3>,
    /// `$LATEST`, or the version `--publish` published.
    pub version: String,
    pub alias: Option<ReportedAlias>,
    /// `State` when done (`Active`), or as the call answered with `--no-wait`.
    pub state: Option<String>,
    /// `LastUpdateStatus` when done (`Successful`), or as the call answered with `--no-wait`.
    pub last_update_status: Option<String>,
    /// Whether Lambda was waited for (not `--no-wait`).
    pub waited: bool,
    /// Seconds from the first Lambda call to the end.
    pub elapsed_seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportedS3 {
    pub bucket: String,
    pub key: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportedAlias {
    pub name: String,
    pub arn: String,
    /// The version it points at.
    pub version: String,
}

impl DeployReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }

    /// `deployed NAME (ARCH, created|updated) in N.N s`, then one line each for the ARN, the
    /// version (and alias), and the code.
    pub fn to_text(&self) -> String {
        let action = if self.created { "created" } else { "updated" };
        let verb = if self.waited {
            "deployed"
        } else {
            "sent (not waited for)"
        };
        let mut text = format!(
            "{verb} {} ({}, {action}) in {:.1} s\n  function  {}\n",
            self.function_name, self.architecture, self.elapsed_seconds, self.function_arn
        );
        match &self.alias {
            Some(alias) => text.push_str(&format!(
                "  version   {} (alias {} -> {})\n",
                self.version, alias.name, alias.version
            )),
            None => text.push_str(&format!("  version   {}\n", self.version)),
        }
        match &self.image_uri {
            Some(uri) => text.push_str(&format!("  image     {uri}\n")),
            None => text.push_str(&format!(
                "  zip       CodeSha256 {} ({})\n",
                self.code_sha256,
                self.runtime.as_deref().unwrap_or("runtime unknown")
            )),
        }
        if let Some(s3) = &self.s3 {
            text.push_str(&format!("  s3        s3://{}/{}\n", s3.bucket, s3.key));
        }
        if !self.waited
            || self.state.as_deref() != Some("Active")
            || self
                .last_update_status
                .as_deref()
                .is_some_and(|status| status != "Successful")
        {
            text.push_str(&format!(
                "  status    State {}, LastUpdateStatus {}\n",
                self.state.as_deref().unwrap_or("unknown"),
                self.last_update_status.as_deref().unwrap_or("none")
            ));
        }
        text
    }
}
