//! What a build tells the user: per-architecture manifest digests (what Lambda deploys), the
//! index digest if any, and the base. Human lines on stdout, or one JSON object with `--json`.

use serde::Serialize;

use crate::findings::Finding;
use crate::lambda_layer::ReportedLambdaLayer;
use crate::platform::Architecture;

/// The JSON shape of `build --json` (field order as here).
#[derive(Debug, Serialize)]
pub struct BuildReport {
    /// One per architecture, sorted (`amd64` before `arm64`).
    pub images: Vec<ReportedImage>,
    /// The index, when the build made one (several architectures; not in a docker-archive).
    pub index: Option<ReportedIndex>,
    /// Every reference the build wrote, each once: the index's (`HOST/REPO:TAG`,
    /// `HOST/REPO@sha256:...`, an output's `oci:DIR:TAG`), then each image's
    /// (`HOST/REPO@sha256:...`, `HOST/REPO:TAG-amd64`, `oci:DIR:TAG-amd64`, ...).
    pub references: Vec<String>,
    pub base: ReportedBase,
    /// What the bootstrap checks found (including passes and skips).
    pub checks: Vec<Finding>,
    /// Each `--layer`, in order: its source as written, the images it went into, the zip's
    /// sha256 and Lambda's `CodeSha256` of it (`[]` without `--layer`).
    pub lambda_layers: Vec<ReportedLambdaLayer>,
}

#[derive(Debug, Serialize)]
pub struct ReportedImage {
    /// The OCI name (`amd64`, `arm64`).
    pub architecture: Architecture,
    /// What Lambda's `Architectures` takes for it (`x86_64`, `arm64`), as `zip --json` reports it.
    pub lambda_architecture: &'static str,
    /// The manifest digest (in a docker-archive, which has no manifests: the image ID).
    pub digest: String,
    /// Where to find it: for a registry, `HOST/REPO@sha256:...`, what Lambda deploys.
    pub reference: String,
    /// Every reference written that names this image (`reference` first): per registry
    /// repository `HOST/REPO@sha256:...` and its tags (`HOST/REPO:TAG` for a single
    /// architecture, `HOST/REPO:TAG-amd64` with several), and the output's location reference.
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
    /// The first tag written: `HOST/REPO:TAG`, or the output's `oci:DIR:TAG`.
    pub reference: String,
    /// Every reference written that names the index (`reference` first): per registry
    /// repository each `HOST/REPO:TAG` and `HOST/REPO@sha256:...`, and the output's.
    pub references: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ReportedBase {
    pub reference: String,
    /// The digest of the base's index or manifest; `null` for the built-in `scratch`, which
    /// has none.
    pub digest: Option<String>,
}

/// Told to people (on stderr) when a build made an index.
const INDEX_ADVICE: &str = "Lambda runs one architecture per function and rejects indexes: deploy each \
     function with its architecture's digest (ImageUri=REPO@sha256:...), never the index digest.";

impl BuildReport {
    /// Every reference in the index and images, each once, in that order.
    pub fn all_references(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let index = self.index.iter().flat_map(|index| &index.references);
        let images = self.images.iter().flat_map(|image| &image.references);
        for reference in index.chain(images) {
            if !all.contains(reference) {
                all.push(reference.clone());
            }
        }
        all
    }

    /// What to tell people beside the report (not part of it): how to deploy an index's images.
    pub fn advice(&self) -> Option<&'static str> {
        self.index.as_ref().map(|_| INDEX_ADVICE)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the report always serializes")
    }

    /// Lines for people: each image (digest, main reference, Lambda architecture), the index,
    /// the base. Advice is not in it ([`BuildReport::advice`]).
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for image in &self.images {
            text.push_str(&format!(
                "{:<6} {}  {}  (Lambda --architectures {})\n",
                image.architecture.oci_name(),
                image.digest,
                image.reference,
                image.lambda_architecture
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
            self.base.digest.as_deref().unwrap_or("(built in)"),
            self.base.reference
        ));
        for layer in &self.lambda_layers {
            text.push_str(&format!("layer  {}  {}\n", layer.sha256, layer.source));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(architecture: Architecture, references: &[&str]) -> ReportedImage {
        ReportedImage {
            architecture,
            lambda_architecture: architecture.lambda_name(),
            digest: format!("sha256:{}", "a".repeat(64)),
            reference: references[0].to_owned(),
            references: references.iter().map(|r| (*r).to_owned()).collect(),
            layer: None,
        }
    }

    fn report(index: Option<&[&str]>) -> BuildReport {
        BuildReport {
            images: vec![
                image(Architecture::Amd64, &["r/fn@sha256:1", "r/fn:v1-amd64"]),
                image(Architecture::Arm64, &["r/fn@sha256:2", "r/fn:v1-arm64"]),
            ],
            index: index.map(|references| ReportedIndex {
                digest: format!("sha256:{}", "b".repeat(64)),
                reference: references[0].to_owned(),
                references: references.iter().map(|r| (*r).to_owned()).collect(),
            }),
            references: Vec::new(),
            base: ReportedBase {
                reference: "oci:base:al2023".to_owned(),
                digest: Some(format!("sha256:{}", "c".repeat(64))),
            },
            checks: Vec::new(),
            lambda_layers: Vec::new(),
        }
    }

    #[test]
    fn all_references_are_the_index_then_each_image_each_once() {
        let report = report(Some(&["r/fn:v1", "r/fn@sha256:3", "r/fn:v1"]));
        assert_eq!(
            report.all_references(),
            [
                "r/fn:v1",
                "r/fn@sha256:3",
                "r/fn@sha256:1",
                "r/fn:v1-amd64",
                "r/fn@sha256:2",
                "r/fn:v1-arm64"
            ]
        );
    }

    #[test]
    fn the_text_is_only_the_report_and_the_advice_is_for_an_index_only() {
        let with_index = report(Some(&["r/fn:v1"]));
        let text = with_index.to_text();
        assert!(!text.contains("rejects indexes"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.contains("(Lambda --architectures x86_64)"), "{text}");
        assert!(with_index.advice().unwrap().contains("rejects indexes"));
        assert_eq!(report(None).advice(), None);
    }

    #[test]
    fn json_names_each_lambda_architecture_beside_the_oci_one() {
        let json: serde_json::Value = serde_json::from_str(&report(None).to_json()).unwrap();
        assert_eq!(json["images"][0]["architecture"], "amd64");
        assert_eq!(json["images"][0]["lambda_architecture"], "x86_64");
        assert_eq!(json["images"][1]["lambda_architecture"], "arm64");
    }
}
