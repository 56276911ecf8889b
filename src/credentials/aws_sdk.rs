//! What every AWS SDK call of the tool shares (ECR's `GetAuthorizationToken`, and with the
//! `deploy` feature Lambda and S3): a small single-threaded tokio runtime of its own (the rest
//! of the tool is synchronous), the SDK configuration of one region with the default
//! credential chain, and the words for credentials that are missing or refused.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::error::{Error, ErrorKind, Result};

/// Where the default credential chain looks, for hints: `give AWS credentials the usual
/// way: …`.
pub const CREDENTIAL_CHAIN: &str = "give AWS credentials the usual way: AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY, AWS_PROFILE with ~/.aws/config (`aws configure`, `aws sso login`), \
     web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, as CI OIDC sets), or a \
     container or instance role";

/// What to do when AWS refused the credentials found ([`refused_credentials`]).
pub const REFUSED_HINT: &str = "the AWS credentials found are wrong or expired: check \
     AWS_ACCESS_KEY_ID / AWS_PROFILE, or log in again (`aws sso login`)";

/// A runtime for the SDK's futures. Error of `kind` (the caller's: `registry` for ECR,
/// `failure` for deploy) when the OS refuses a thread or a descriptor.
pub fn runtime(kind: ErrorKind) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| Error::new(kind, format!("cannot start the AWS SDK's runtime: {error}")))
}

/// The SDK configuration for `region`, with the default credential chain (read lazily, at
/// the first call) and endpoint overrides (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`).
pub fn config(runtime: &tokio::runtime::Runtime, region: &str) -> SdkConfig {
    runtime.block_on(
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .load(),
    )
}

/// Whether an AWS error code says the credentials themselves were refused (unknown key, bad
/// signature, expired session), by any service.
pub fn refused_credentials(code: &str) -> bool {
    matches!(
        code,
        "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
    )
}

/// An SDK error for a message: each error of its chain (`source()`), as it displays itself,
/// joined by `: ` (a repeat of the one before left out). `DisplayErrorContext` says the same and
/// then appends the whole chain's `Debug` form, which is for developers, not users (a connection
/// refused came out as `DispatchFailure(DispatchFailure { source: ConnectorError { ... } })`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(error) = next {
        let text = error.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

/// Whether an SDK error (as `DisplayErrorContext` shows it) means the chain found no
/// credentials at all.
pub fn no_credentials(context: &str) -> bool {
    context.contains("no providers in chain provided credentials")
        || context.contains("CredentialsNotLoaded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("dispatch failure")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_chain_reads_as_sentences_without_debug_forms() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "tcp connect error");
        let text = error_chain(&Outer(refused));
        assert_eq!(text, "dispatch failure: tcp connect error");
        assert!(!text.contains("Outer"), "{text}");
        // A part that only repeats the one before is left out.
        let repeated = Outer(std::io::Error::other("dispatch failure"));
        assert_eq!(error_chain(&repeated), "dispatch failure");
    }
}
