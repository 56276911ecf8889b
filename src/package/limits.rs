//! Lambda's size limits for `.zip` packages, and what the tool does at each:
//!
//! - over 250 MB (262,144,000 bytes) unzipped, Lambda refuses the function (the limit covers
//!   the function and its layers together): the command fails before anything is written;
//! - over 50 MB (52,428,800 bytes) zipped, the package cannot be uploaded directly
//!   (`--zip-file`), only from S3: a warning says so and the deploy hint changes.

use crate::error::{Error, Result};
use crate::findings::{Finding, Level};
use crate::platform::Architecture;

/// Lambda's limit for a function and its layers, unzipped.
pub const UNZIPPED_LIMIT: u64 = 250 * 1024 * 1024;

/// Lambda's limit for a package uploaded directly rather than from S3.
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// What to do about a package too large unzipped.
pub const UNZIPPED_HINT: &str = "leave large files out of --include, or ship the function as a \
     container image (lambda-image build), which may be up to 10 GB";

/// `N bytes unzipped, over Lambda's limit of …` when `unzipped` bytes are over
/// [`UNZIPPED_LIMIT`]; `None` within it.
pub fn over_unzipped_limit(unzipped: u64) -> Option<String> {
    (unzipped > UNZIPPED_LIMIT).then(|| {
        format!(
            "{} unzipped, over Lambda's limit of {} ({} MB) for a function and its layers \
             unzipped",
            bytes(unzipped),
            bytes(UNZIPPED_LIMIT),
            UNZIPPED_LIMIT / 1024 / 1024,
        )
    })
}

/// Fails when the files to be zipped are too large for Lambda unzipped.
pub fn check_unzipped_size(unzipped: u64) -> Result<()> {
    match over_unzipped_limit(unzipped) {
        None => Ok(()),
        Some(over) => Err(Error::output(format!(
            "the package would be {over}; no .zip was written"
        ))
        .hint(UNZIPPED_HINT)),
    }
}

/// True when a package of `zipped` bytes must be uploaded through S3.
pub fn needs_s3_upload(zipped: u64) -> bool {
    zipped > DIRECT_UPLOAD_LIMIT
}

/// The warning for a package too large to upload directly, if it is.
pub fn upload_finding(zipped: u64, architecture: Architecture) -> Option<Finding> {
    needs_s3_upload(zipped).then(|| {
        Finding::new(
            "package-size",
            Some(architecture),
            Level::Warning,
            format!(
                "the package is {} zipped, over the {} ({} MB) Lambda takes uploaded directly \
                 (--zip-file): upload it through S3",
                bytes(zipped),
                bytes(DIRECT_UPLOAD_LIMIT),
                DIRECT_UPLOAD_LIMIT / 1024 / 1024,
            ),
        )
        .hint(
            "lambda-image deploy --zip ... --s3-bucket BUCKET uploads it and deploys from there; \
             or aws s3 cp the .zip to a bucket in the function's region, then create or update the \
             function with --code S3Bucket=BUCKET,S3Key=KEY",
        )
    })
}

/// `262,144,000 bytes`: exact, and readable.
pub fn bytes(count: u64) -> String {
    let digits = count.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{grouped} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_apply_just_past_the_documented_sizes() {
        assert!(check_unzipped_size(262_144_000).is_ok());
        let error = check_unzipped_size(262_144_001).unwrap_err();
        assert!(error.message().contains("262,144,001 bytes"), "{error}");
        assert!(
            error.message().contains("262,144,000 bytes (250 MB)"),
            "{error}"
        );
        assert!(!needs_s3_upload(52_428_800));
        assert!(needs_s3_upload(52_428_801));
        assert!(upload_finding(52_428_800, Architecture::Amd64).is_none());
        let finding = upload_finding(53_000_000, Architecture::Arm64).unwrap();
        assert_eq!(finding.level, Level::Warning);
        assert!(finding.message.contains("53,000,000 bytes"));
    }

    #[test]
    fn byte_counts_are_grouped_by_thousands() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(999), "999 bytes");
        assert_eq!(bytes(1_000), "1,000 bytes");
        assert_eq!(bytes(52_428_800), "52,428,800 bytes");
    }
}
