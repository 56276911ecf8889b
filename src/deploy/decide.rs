//! The decisions of a deployment that need no AWS call, as pure functions: the function's
//! region, the architecture to deploy, whether the package type may change, and the IAM action
//! a refusal names. Each returns the error the user sees when the answer is "no".
//!
//! Rules, from Lambda's API reference (CreateFunction, UpdateFunctionCode) and
//! `shared/lambda-facts.md`: an image function takes an image only from ECR in its own region;
//! a function has one architecture (`Architectures` holds one entry), which `UpdateFunctionCode`
//! may change; a function's `PackageType` (`Image` or `Zip`) never changes.

use crate::error::{Error, Result};
use crate::platform::Architecture;

/// What a function is deployed from: Lambda's `PackageType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageKind {
    /// A container image (`ImageUri`).
    Image,
    /// A .zip package (`ZipFile`, or `S3Bucket`/`S3Key`).
    Zip,
}

impl PackageKind {
    /// Lambda's name: `Image` or `Zip`.
    pub fn lambda_name(self) -> &'static str {
        match self {
            PackageKind::Image => "Image",
            PackageKind::Zip => "Zip",
        }
    }

    /// The flag that deploys this kind.
    fn flag(self) -> &'static str {
        match self {
            PackageKind::Image => "--image",
            PackageKind::Zip => "--zip",
        }
    }
}

/// `--function`: a function name (letters, digits, `-`, `_`; 1 to 64), a function ARN
/// (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME`) or a partial one
/// (`ACCOUNT:function:NAME`), without a version or alias qualifier: a deploy changes `$LATEST`
/// (`--alias` moves an alias). Lambda API reference, CreateFunction `FunctionName`.
pub fn parse_function(text: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [_account, "function", name] => *name,
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            name,
        ] if !partition.is_empty()
            && !region.is_empty()
            && crate::credentials::ecr::is_account_id(account) =>
        {
            *name
        }
        [.., "function", _, qualifier] | [_, qualifier]
            if *qualifier == "$LATEST" || qualifier.bytes().all(|b| b.is_ascii_digit()) =>
        {
            return Err(format!(
                "`{text}` names the version `{qualifier}`: a deploy changes the function's \
                 $LATEST; give the function without `:{qualifier}`"
            ));
        }
        [.., "function", _, qualifier] | [_, qualifier] => {
            return Err(format!(
                "`{text}` names the version or alias `{qualifier}`: a deploy changes the \
                 function's $LATEST; give the function alone, and --alias {qualifier} to move \
                 that alias to the new version"
            ));
        }
        _ => {
            return Err(format!(
                "`{text}` is neither a function name nor a function ARN \
                 (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"
            ));
        }
    };
    if is_function_name(name) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{name}` is not a function name: 1 to 64 letters, digits, `-` or `_`"
        ))
    }
}

fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `--alias`: 1 to 128 letters, digits, `-` or `_`, not all digits (those are versions) and not
/// `$LATEST` (Lambda API reference, CreateAlias `Name`).
pub fn parse_alias(text: &str) -> std::result::Result<String, String> {
    let allowed = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !(1..=128).contains(&text.len()) || !allowed {
        return Err(format!(
            "`{text}` is not an alias name: 1 to 128 letters, digits, `-` or `_`"
        ));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{text}` is a version number, not an alias name: an alias needs a letter, `-` or `_`"
        ));
    }
    Ok(text.to_owned())
}

/// `--role`: an IAM role ARN, `arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME` (Lambda API
/// reference, CreateFunction `Role`).
pub fn parse_role(text: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty()
                && crate::credentials::ecr::is_account_id(account)
                && resource
                    .strip_prefix("role/")
                    .is_some_and(|name| !name.is_empty()) =>
        {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "`{text}` is not an IAM role ARN such as arn:aws:iam::123456789012:role/my-function-role"
        )),
    }
}

/// Environment variable names Lambda reserves and refuses to set (AWS Lambda Developer Guide,
/// "Defined runtime environment variables": the reserved ones).
const RESERVED_ENV: [&str; 18] = [
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// `--env KEY=VALUE` of `deploy`: KEY a letter then letters, digits or `_` (Lambda's
/// `Environment.Variables` key pattern), not one Lambda reserves.
pub fn parse_env(text: &str) -> std::result::Result<crate::image::config::KeyValue, String> {
    let pair: crate::image::config::KeyValue = text.parse()?;
    let mut bytes = pair.key.bytes();
    let well_formed = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !well_formed {
        return Err(format!(
            "`{}` is not a Lambda environment variable name: a letter, then letters, digits or `_`",
            pair.key
        ));
    }
    if RESERVED_ENV.contains(&pair.key.as_str()) {
        return Err(format!(
            "{} is reserved: Lambda sets it and refuses a function that sets it",
            pair.key
        ));
    }
    Ok(pair)
}

/// `--description`: at most 256 characters (CreateFunction `Description`).
pub fn parse_description(text: &str) -> std::result::Result<String, String> {
    let count = text.chars().count();
    if count > 256 {
        return Err(format!("{count} characters, over Lambda's 256"));
    }
    Ok(text.to_owned())
}

/// `--s3-bucket`: 3 to 63 lower-case letters, digits, `.` and `-`, starting and ending with a
/// letter or digit (Amazon S3 User Guide, "Bucket naming rules").
pub fn parse_bucket(text: &str) -> std::result::Result<String, String> {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let allowed = text
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if (3..=63).contains(&text.len())
        && allowed
        && edge(text.bytes().next())
        && edge(text.bytes().last())
    {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an S3 bucket name: 3 to 63 lower-case letters, digits, `.` and `-`"
        ))
    }
}

/// `--s3-key`: 1 to 1024 bytes (Amazon S3 User Guide, "Naming objects").
pub fn parse_s3_key(text: &str) -> std::result::Result<String, String> {
    if (1..=1024).contains(&text.len()) {
        Ok(text.to_owned())
    } else {
        Err("an S3 key is 1 to 1024 bytes".to_owned())
    }
}

/// The region and name parts of `--function`: a name, or a function ARN
/// (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`), whose region is the
/// function's. Other forms (`ACCOUNT:function:NAME`) are passed to Lambda as given.
pub fn region_in_function_arn(function: &str) -> Option<&str> {
    let mut parts = function.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("arn"), Some(_), Some("lambda"), Some(region)) if !region.is_empty() => Some(region),
        _ => None,
    }
}

/// The function's region: `--region`, else the one in a function ARN, else the AWS SDK's
/// default (`AWS_REGION`, the profile's), else the region of the ECR image. Errors (usage):
/// `--region` naming another region than the ARN; no region at all.
pub fn function_region(
    flag: Option<&str>,
    arn_region: Option<&str>,
    sdk_default: Option<&str>,
    image_region: Option<&str>,
) -> Result<String> {
    if let (Some(flag), Some(arn)) = (flag, arn_region)
        && flag != arn
    {
        return Err(Error::usage(format!(
            "--region {flag} is not the region of the function ARN given to --function ({arn})"
        ))
        .hint("drop --region: a function ARN names its region"));
    }
    flag.or(arn_region)
        .or(sdk_default)
        .or(image_region)
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::usage("no AWS region for the function: nothing names one").hint(
                "pass --region REGION, or set AWS_REGION (or a profile's region in ~/.aws/config)",
            )
        })
}

/// Refuses an ECR image in another region than the function's: Lambda takes images only from
/// its own region's ECR (CreateFunction, `Code.ImageUri`). Error: usage, naming both regions.
pub fn check_image_region(image: &str, image_region: &str, function_region: &str) -> Result<()> {
    if image_region == function_region {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{image} is in ECR in {image_region}, but the function is in {function_region}: Lambda \
         takes an image only from ECR in the function's own region"
    ))
    .hint(format!(
        "push the image to ECR in {function_region} (e.g. build --tag \
         ACCOUNT.dkr.ecr.{function_region}.amazonaws.com/REPO:TAG), or deploy to a function in \
         {image_region} with --region {image_region}"
    )))
}

/// Refuses to change a function's package type (Lambda cannot: the function must be deleted
/// and created again). Error: deploy.
pub fn check_package_kind(function: &str, has: PackageKind, given: PackageKind) -> Result<()> {
    if has == given {
        return Ok(());
    }
    Err(Error::deploy(format!(
        "the function {function} has package type {} and {} gives it {} package: Lambda \
         cannot change a function's package type",
        has.lambda_name(),
        given.flag(),
        match given {
            PackageKind::Image => "an Image",
            PackageKind::Zip => "a Zip",
        },
    ))
    .hint(format!(
        "deploy it with {} instead, or deploy to a new function name (with --create --role ARN); \
         to change this one's type, delete it and create it again",
        has.flag()
    )))
}

/// Where the package's architectures come from, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackageSource<'a> {
    /// An image with manifests for these architectures (an index, or one manifest).
    Image(&'a str),
    /// A .zip whose bootstrap is an ELF for one architecture.
    Zip(&'a str),
}

/// The architecture to deploy, and whether it changes the function's.
///
/// - `existing`: the function's architecture (`None` when it is being created).
/// - `flag`: `--architecture`, which may change an existing function's architecture.
/// - `available`: what the package holds: the image's architectures, or the zip's bootstrap's.
///
/// Errors: `--architecture` naming one the image lacks (base, exit 4) or another than the zip's
/// bootstrap (bootstrap, exit 3); a package without the function's architecture and no
/// `--architecture` (deploy, exit 11); a new function from a package of several architectures
/// with no `--architecture` (usage, exit 2). `flag_name`: the flag that chooses
/// (`--architecture`, or `build`'s `--deploy-architecture`), as messages name it.
pub fn choose_architecture(
    function: &str,
    existing: Option<Architecture>,
    flag: Option<Architecture>,
    available: &[Architecture],
    source: PackageSource,
    flag_name: &str,
) -> Result<(Architecture, bool)> {
    let names = |architectures: &[Architecture]| {
        architectures
            .iter()
            .map(|architecture| architecture.lambda_name())
            .collect::<Vec<_>>()
            .join(" and ")
    };
    let changes = |chosen: Architecture| existing.is_some_and(|existing| existing != chosen);
    if let Some(wanted) = flag {
        if available.contains(&wanted) {
            return Ok((wanted, changes(wanted)));
        }
        return Err(match source {
            PackageSource::Image(image) => Error::base(format!(
                "{flag_name} {}: {image} has no image for it, only {}",
                wanted.lambda_name(),
                names(available)
            ))
            .hint("build and push that architecture too (build --bootstrap for each), or deploy one the image has"),
            PackageSource::Zip(zip) => Error::bootstrap(format!(
                "{flag_name} {}: the bootstrap in {zip} is built for {}",
                wanted.lambda_name(),
                names(available)
            ))
            .hint(format!(
                "build the bootstrap for {} (GOARCH={}, or the Rust target {}-unknown-linux-musl), \
                 or drop {flag_name}",
                wanted.lambda_name(),
                wanted.oci_name(),
                match wanted {
                    Architecture::Amd64 => "x86_64",
                    Architecture::Arm64 => "aarch64",
                }
            )),
        });
    }
    match (existing, available) {
        (Some(existing), _) if available.contains(&existing) => Ok((existing, false)),
        (Some(existing), _) => {
            let what = match source {
                PackageSource::Image(image) => {
                    format!("{image} has images for {}", names(available))
                }
                PackageSource::Zip(zip) => {
                    format!("the bootstrap in {zip} is built for {}", names(available))
                }
            };
            Err(Error::deploy(format!(
                "the function {function} runs on {}, and {what}: it would fail at its first \
                 invocation with `exec format error`",
                existing.lambda_name()
            ))
            .hint(format!(
                "to move the function to {0}, say so: {flag_name} {0}; otherwise deploy a \
                 package built for {1}",
                available[0].lambda_name(),
                existing.lambda_name()
            )))
        }
        (None, [only]) => Ok((*only, false)),
        (None, _) => {
            let what = match source {
                PackageSource::Image(image) => format!("{image} has images for"),
                PackageSource::Zip(zip) => {
                    format!("the bootstrap in {zip} is a script, which runs on")
                }
            };
            Err(Error::usage(format!(
                "creating {function}: {what} {}, and a function runs one architecture",
                names(available)
            ))
            .hint(format!(
                "choose one with {flag_name} amd64 or {flag_name} arm64"
            )))
        }
    }
}

/// The IAM action to name for an access-denied answer to `operation` (Lambda's operation name,
/// e.g. `UpdateFunctionCode`): the one AWS's message names (`... is not authorized to perform:
/// iam:PassRole on resource: ...`), else `lambda:OPERATION`.
pub fn denied_action(message: &str, operation: &str) -> String {
    named_action(message).unwrap_or_else(|| format!("lambda:{operation}"))
}

/// The `service:Action` after `perform:` in an access-denied message.
fn named_action(message: &str) -> Option<String> {
    let (_, after) = message.split_once("perform:")?;
    let action: String = after
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
        .collect();
    let (service, name) = action.split_once(':')?;
    (!service.is_empty() && !name.is_empty()).then_some(action)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
