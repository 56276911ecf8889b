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

/// Whether an SDK error (as `DisplayErrorContext` shows it) means the chain found no
/// credentials at all.
pub fn no_credentials(context: &str) -> bool {
    context.contains("no providers in chain provided credentials")
        || context.contains("CredentialsNotLoaded")
}
