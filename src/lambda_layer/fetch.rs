//! A layer version fetched by ARN: `GetLayerVersionByArn` through the official SDK
//! (`aws-sdk-lambda`, the `deploy` feature) in the ARN's region, with the default credential
//! chain ([`crate::credentials::aws_sdk`]); then `Content.Location` (a presigned S3 URL, valid
//! for minutes) downloaded with reqwest into a temporary file, hashed as it is written, and
//! checked against `Content.CodeSize` and `Content.CodeSha256` (base64 of the zip's sha256).
//! Only a zip that matches is kept, in the cache by its sha256 with a record of the ARN
//! ([`super::record`]); one that does not is deleted and the build refused.
//!
//! Exit codes: the layer version does not exist (or is not shared with the caller) → 4, like a
//! base image that does not exist; access denied, missing or refused credentials, the network,
//! an HTTP error or a download whose bytes are not what Lambda says → 6, like a registry.
//!
//! The presigned URL carries a signature (and, for a session, a token): messages show only its
//! scheme, host and path.

use std::io::{Read, Write};

use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::arn::LayerArn;
use crate::credentials::aws_sdk;
use crate::digest::Sha256Digest;
use crate::error::{Error, ErrorKind, Result};

/// What `GetLayerVersionByArn` says of a layer version.
pub struct LayerVersionFacts {
    /// `Content.Location`: where to download the zip.
    pub location: String,
    /// `Content.CodeSha256`.
    pub code_sha256: String,
    /// `Content.CodeSize` (0 when not given).
    pub code_size: u64,
    /// `CompatibleArchitectures` (`x86_64`, `arm64`).
    pub compatible_architectures: Vec<String>,
}

/// Asks Lambda about `arn` (`shown` is the `--layer` value, for messages).
pub fn get_layer_version(arn: &LayerArn, shown: &str) -> Result<LayerVersionFacts> {
    let runtime = aws_sdk::runtime(ErrorKind::Registry)?;
    let config = aws_sdk::config(&runtime, &arn.region);
    let client = aws_sdk_lambda::Client::new(&config);
    let answer = runtime
        .block_on(
            client
                .get_layer_version_by_arn()
                .arn(arn.to_string())
                .send(),
        )
        .map_err(|error| describe_failure(arn, shown, error))?;
    let content = answer.content();
    let location = content.and_then(|content| content.location());
    let code_sha256 = content.and_then(|content| content.code_sha256());
    let (Some(location), Some(code_sha256)) = (location, code_sha256) else {
        return Err(Error::registry(format!(
            "--layer {shown}: Lambda's GetLayerVersionByArn answer has no Content.Location or \
             Content.CodeSha256"
        )));
    };
    Ok(LayerVersionFacts {
        location: location.to_owned(),
        code_sha256: code_sha256.to_owned(),
        code_size: content
            .map(|content| content.code_size())
            .unwrap_or_default()
            .max(0) as u64,
        compatible_architectures: answer
            .compatible_architectures()
            .iter()
            .map(|architecture| architecture.as_str().to_owned())
            .collect(),
    })
}

/// The error of a failed `GetLayerVersionByArn`.
fn describe_failure<E, R>(arn: &LayerArn, shown: &str, error: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let head = format!(
        "--layer {shown}: Lambda GetLayerVersionByArn in {} failed",
        arn.region
    );
    let message = error.message().unwrap_or("no message").to_owned();
    let context = DisplayErrorContext(&error).to_string();
    let cache_note = "once fetched, a layer version is kept in the cache and needs no AWS call";
    match error.code() {
        Some("AccessDeniedException" | "AccessDenied") => Error::registry(format!(
            "{head}: access denied to lambda:GetLayerVersion ({message})"
        ))
        .hint(
            "allow lambda:GetLayerVersion on the layer version to the AWS identity; a layer of \
             another account must also be shared with yours by its owner (`aws lambda \
             add-layer-version-permission`)",
        ),
        Some(code @ "ResourceNotFoundException") => Error::base(format!(
            "{head}: layer version {arn} does not exist ({code}: {message})"
        ))
        .hint(
            "check the ARN's region, account, name and version (vendors publish one ARN per \
             region and architecture, and may delete old versions); a layer of another account \
             must also be shared with yours",
        ),
        Some(code) if aws_sdk::refused_credentials(code) => Error::registry(format!(
            "{head}: AWS refused the credentials ({code}: {message})"
        ))
        .hint(aws_sdk::REFUSED_HINT),
        Some(code) => Error::registry(format!("{head}: {code}: {message}")),
        None if aws_sdk::no_credentials(&context) => {
            Error::registry(format!("{head}: no AWS credentials were found"))
                .hint(format!("{}; {cache_note}", aws_sdk::CREDENTIAL_CHAIN))
        }
        None => Error::registry(format!(
            "{head}: {}",
            crate::error::describe_error_chain(&error)
        ))
        .hint(format!(
            "check the network path to the Lambda API in {} (or AWS_ENDPOINT_URL_LAMBDA, if \
             set); {cache_note}",
            arn.region
        )),
    }
}

/// `location` without its query (the signature) or user info, for messages.
pub fn shown_location(location: &str) -> String {
    match reqwest::Url::parse(location) {
        Ok(url) => {
            format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap_or(""),
                url.port()
                    .map(|port| format!(":{port}"))
                    .unwrap_or_default()
            ) + url.path()
        }
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// Whether `location` may be downloaded: https, or plain http to a loopback address (tests).
pub fn allowed_location(location: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(location) else {
        return false;
    };
    match url.scheme() {
        "https" => true,
        "http" => match url.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback()),
            None => false,
        },
        _ => false,
    }
}

/// Downloads `facts.location` into `file`, checking its size and `CodeSha256`; its sha256 and
/// size (bytes).
/// Errors (registry): a location refused, the HTTP request or the transfer failing, bytes that
/// are not what Lambda says (the file is then left for the caller to delete).
pub fn download(
    facts: &LayerVersionFacts,
    arn: &LayerArn,
    shown: &str,
    file: &mut std::fs::File,
) -> Result<(Sha256Digest, u64)> {
    let place = shown_location(&facts.location);
    if !allowed_location(&facts.location) {
        return Err(Error::registry(format!(
            "--layer {shown}: Lambda gave {place} as the layer's location, which is neither \
             https nor a loopback address; refusing to download it"
        )));
    }
    let failed = |what: String| {
        Error::registry(format!(
            "--layer {shown}: downloading layer version {arn} from {place} failed: {what}"
        ))
        .hint(
            "check the network path to S3 in the layer's region (and HTTPS_PROXY, if one is \
             needed); the URL Lambda gives is valid for minutes, so run the build again",
        )
    };
    // The client a registry gets: proxies as `registry::http::proxy` reads them (NO_PROXY
    // ranges, socks), system roots and certs.d, the connect timeout; no limit on the whole
    // transfer, which a large layer on a slow link may need.
    let host = reqwest::Url::parse(&facts.location)
        .ok()
        .and_then(|url| {
            let host = url.host_str()?.to_owned();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_default();
    let (client, _) = crate::registry::http::client::build_http_client(&host)
        .map_err(|error| failed(error.message().to_owned()))?;
    let transport = |error: reqwest::Error| {
        failed(crate::registry::http::error::describe_transport_error(
            &error.without_url(),
        ))
    };
    let mut response = client.get(&facts.location).send().map_err(transport)?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    let mut hashing = crate::digest::HashingWriter::new(std::io::BufWriter::new(file));
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = match response.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(failed(format!("the transfer broke off: {error}"))),
        };
        hashing.write_all(&buffer[..read]).map_err(|error| {
            Error::failure(format!(
                "--layer {shown}: cannot write the download: {error}"
            ))
        })?;
    }
    let (mut writer, digest, size) = hashing.finish();
    writer.flush().map_err(|error| {
        Error::failure(format!(
            "--layer {shown}: cannot write the download: {error}"
        ))
    })?;
    let code_sha256 = crate::package::code_sha256(&digest);
    if (facts.code_size != 0 && size != facts.code_size) || code_sha256 != facts.code_sha256 {
        return Err(Error::registry(format!(
            "--layer {shown}: the zip downloaded from {place} is not layer version {arn}: \
             {size} bytes with CodeSha256 {code_sha256}, where Lambda says {} bytes with \
             CodeSha256 {}; it was not used or kept",
            facts.code_size, facts.code_sha256
        ))
        .hint(
            "something on the way changed or cut the download (a proxy, a full disk, a flaky \
             network): run the build again",
        ));
    }
    Ok((digest, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_are_https_or_loopback_and_shown_without_their_signature() {
        assert!(allowed_location(
            "https://awslambda-eu-west-1-layers.s3.eu-west-1.amazonaws.com/x"
        ));
        assert!(allowed_location("http://127.0.0.1:8080/a.zip"));
        assert!(allowed_location("http://[::1]:8080/a.zip"));
        assert!(allowed_location("http://localhost/a.zip"));
        assert!(!allowed_location("http://example.com/a.zip"));
        assert!(!allowed_location("http://10.0.0.1/a.zip"));
        assert!(!allowed_location("s3://"));
        assert!(!allowed_location("file:///etc/passwd"));
        let shown = shown_location(
            "https://user:pw@bucket.s3.amazonaws.com:443/snapshots/1/agent-abc?versionId=1&X-Amz-Security-Token=TOKEN&X-Amz-Signature=SIG",
        );
        assert_eq!(
            shown,
            "https://bucket.s3.amazonaws.com/snapshots/1/agent-abc"
        );
        assert_eq!(
            shown_location("http://127.0.0.1:9000/a.zip?X-Amz-Signature=SIG"),
            "http://127.0.0.1:9000/a.zip"
        );
    }
}
