//! What a build tells the user: per-architecture manifest digests (what Lambda deploys), the
//! index digest if any, and the base. Human lines on stdout, or one JSON object with `--json`.

use serde::Serialize;

use crate::findings::Finding;
use crate::platform::Architecture;

#[derive(Debug, Serialize)]
pub struct BuildReport {
    pub images: Vec<ReportedImage>,
    pub index: Option<ReportedIndex>,
    pub base: ReportedBase,
    /// What the bootstrap checks found (including passes and skips).
    pub checks: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct ReportedImage {
    #[serde(serialize_with = "architecture_name")]
    pub architecture: Architecture,
    pub digest: String,
    /// Where to find it: for a registry, `REPOSITORY@DIGEST`, what Lambda deploys.
    pub reference: String,
    /// Every place it was written (`reference` first).
    pub references: Vec<String>,
    /// The new layer (the bootstrap's).
    pub layer: Option<ReportedLayer>,
}

/// The layer a build made for one architecture.
#[derive(Debug, Serialize)]
pub struct ReportedLayer {
    pub digest: String,
    pub size: u64,
    /// Taken from the layer cache (same inputs as an earlier build), not compressed again.
    pub cached: bool,
}

#[derive(Debug, Serialize)]
pub struct ReportedIndex {
    pub digest: String,
    pub reference: String,
    pub references: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ReportedBase {
    pub reference: String,
    pub digest: String,
}

/// Serializes an architecture by its OCI name (`amd64`, `arm64`).
pub(crate) fn architecture_name<S: serde::Serializer>(
    architecture: &Architecture,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(architecture.oci_name())
}

impl BuildReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the report always serializes")
    }

    /// Lines for people, ending with how to deploy.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for image in &self.images {
            text.push_str(&format!(
                "{:<6} {}  {}  (Lambda --architectures {})\n",
                image.architecture.oci_name(),
                image.digest,
                image.reference,
                image.architecture.lambda_name()
            ));
        }
        if let Some(index) = &self.index {
            text.push_str(&format!(
                "{:<6} {}  {}\n",
                "index", index.digest, index.reference
            ));
        }
        text.push_str(&format!(
            "base   {}  {}\n",
            self.base.digest, self.base.reference
        ));
        if self.index.is_some() {
            text.push_str(
                "Lambda runs one architecture per function and rejects indexes: deploy each function with its \
                 architecture's digest (ImageUri=REPO@sha256:...), never the index digest.\n",
            );
        }
        text
    }
}
