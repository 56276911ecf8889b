//! What `lambda-image zip` tells the user: where the package is, its sha256 (also as Lambda's
//! base64 `CodeSha256`), its sizes, the architecture to create the function with, and the
//! `aws lambda create-function` command. Human lines on stdout, or one JSON object with `--json`.

use serde::Serialize;

use super::limits::{bytes, needs_s3_upload};
use crate::findings::Finding;
use crate::platform::Architecture;

#[derive(Debug, Serialize)]
pub struct ZipReport {
    /// The `.zip` as given to `-o`.
    pub path: String,
    /// sha256 of the `.zip`, 64 lowercase hex characters.
    pub sha256: String,
    /// The same digest as Lambda reports it (`CodeSha256`: base64).
    pub code_sha256: String,
    /// Size of the `.zip` in bytes.
    pub size: u64,
    /// Bytes once unzipped (file contents and link targets).
    pub unzipped_size: u64,
    /// The bootstrap's architecture, OCI name (`amd64`, `arm64`).
    pub architecture: Architecture,
    /// What to pass as `--architectures` (`x86_64`, `arm64`).
    pub lambda_architecture: &'static str,
    /// `provided.al2023` or `provided.al2`.
    pub runtime: &'static str,
    /// `direct` (`--zip-file`) or `s3` (over 50 MB zipped).
    pub upload: &'static str,
    /// What the bootstrap checks (and the size check) found, including passes and skips.
    pub checks: Vec<Finding>,
}

impl ZipReport {
    pub fn new(
        path: String,
        sha256: &crate::digest::Sha256Digest,
        size: u64,
        unzipped_size: u64,
        architecture: Architecture,
        runtime: &'static str,
        checks: Vec<Finding>,
    ) -> Self {
        Self {
            path,
            sha256: sha256.hex().to_owned(),
            code_sha256: crate::package::code_sha256(sha256),
            size,
            unzipped_size,
            architecture,
            lambda_architecture: architecture.lambda_name(),
            runtime,
            upload: if needs_s3_upload(size) {
                "s3"
            } else {
                "direct"
            },
            checks,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the report always serializes")
    }

    /// Lines for people, ending with how to deploy.
    pub fn to_text(&self) -> String {
        let path = shell_word(&self.path);
        let mut text = format!(
            "zip           {}\n\
             sha256        {}  (Lambda CodeSha256 {})\n\
             size          {} zipped, {} unzipped\n\
             architecture  {}  (Lambda --architectures {})\n",
            self.path,
            self.sha256,
            self.code_sha256,
            bytes(self.size),
            bytes(self.unzipped_size),
            self.architecture.oci_name(),
            self.lambda_architecture,
        );
        let create = format!(
            "aws lambda create-function --function-name NAME --role ROLE_ARN --runtime {} \
             --handler bootstrap --architectures {}",
            self.runtime, self.lambda_architecture
        );
        if self.upload == "s3" {
            text.push_str(&format!(
                "upload        aws s3 cp {path} s3://BUCKET/KEY  (over 50 MB zipped: through S3)\n\
                 deploy        {create} --code S3Bucket=BUCKET,S3Key=KEY\n"
            ));
        } else {
            text.push_str(&format!(
                "deploy        {create} --zip-file fileb://{path}\n"
            ));
        }
        text
    }
}

/// `path` as one shell word: as it is when that is safe, else in single quotes.
fn shell_word(path: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !path.is_empty() && path.chars().all(plain) {
        path.to_owned()
    } else {
        format!("'{}'", path.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(size: u64) -> ZipReport {
        let digest = crate::digest::Sha256Digest::of(b"");
        ZipReport::new(
            "out/fn.zip".into(),
            &digest,
            size,
            size * 2,
            Architecture::Arm64,
            "provided.al2",
            Vec::new(),
        )
    }

    #[test]
    fn the_deploy_hint_uploads_directly_up_to_50_mb_and_through_s3_past_it() {
        let small = report(52_428_800);
        assert_eq!(small.upload, "direct");
        assert_eq!(
            small.code_sha256,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        let text = small.to_text();
        assert!(text.contains(
            "deploy        aws lambda create-function --function-name NAME --role ROLE_ARN \
             --runtime provided.al2 --handler bootstrap --architectures arm64 --zip-file fileb://out/fn.zip\n"
        ), "{text}");
        assert!(!text.contains("s3"), "{text}");

        let large = report(52_428_801);
        assert_eq!(large.upload, "s3");
        let text = large.to_text();
        assert!(
            text.contains("upload        aws s3 cp out/fn.zip s3://BUCKET/KEY"),
            "{text}"
        );
        assert!(
            text.contains("--code S3Bucket=BUCKET,S3Key=KEY\n"),
            "{text}"
        );
        assert!(!text.contains("--zip-file"), "{text}");
    }

    #[test]
    fn paths_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(shell_word("out/function.zip"), "out/function.zip");
        assert_eq!(shell_word("my function.zip"), "'my function.zip'");
        assert_eq!(shell_word("it's.zip"), r"'it'\''s.zip'");
    }
}
