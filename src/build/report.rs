//! Filling a build's report from what was written: the images and index pushed or written
//! locally (with every reference they got) and each architecture's new layer. Not here: the
//! report's shape and text ([`crate::report`]).

use super::layers::ProducedLayer;
use crate::digest::Sha256Digest;
use crate::platform::Architecture;
use crate::report::{BuildReport, ReportedImage, ReportedIndex, ReportedLayer};

/// Adds where the images were written (each list non-empty, its main reference first); the first
/// list added gives the main `reference`.
pub(super) fn add_to_report(
    report: &mut BuildReport,
    images: Vec<(Architecture, Sha256Digest, Vec<String>)>,
    index: Option<(Sha256Digest, Vec<String>)>,
) {
    for (architecture, digest, references) in images {
        match report
            .images
            .iter_mut()
            .find(|image| image.architecture == architecture)
        {
            Some(image) => image.references.extend(references),
            None => report.images.push(ReportedImage {
                architecture,
                lambda_architecture: architecture.lambda_name(),
                digest: digest.to_string(),
                reference: references[0].clone(),
                references,
                layer: None,
            }),
        }
    }
    if let Some((digest, references)) = index {
        match &mut report.index {
            Some(existing) => existing.references.extend(references),
            None => {
                report.index = Some(ReportedIndex {
                    digest: digest.to_string(),
                    reference: references[0].clone(),
                    references,
                })
            }
        }
    }
}

/// Gives each reported image its architecture's new layer (digest, size, whether cached).
pub(super) fn add_layers(report: &mut BuildReport, layers: &[ProducedLayer]) {
    for image in &mut report.images {
        image.layer = layers
            .iter()
            .find(|layer| layer.architecture == image.architecture)
            .map(|layer| ReportedLayer {
                digest: layer.digests.digest.to_string(),
                size: layer.digests.size,
                cached: layer.cached,
            });
    }
}
