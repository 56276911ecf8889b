//! `lambda-image deploy`: a function given an ECR image (by its architecture's manifest digest)
//! or a `.zip`, created or updated through the Lambda API, waited for, and checked.
//!
//! The order keeps refusals cheap and before any AWS call: flags, the function's region against
//! the image's, the zip's bootstrap checks and size; then the image is resolved in the registry
//! and Lambda is called ([`crate::deploy::flow`]).

use std::path::PathBuf;

use clap::Args;

use crate::deploy::image_package::{ecr_region, resolve_image};
use crate::deploy::report::DeployReport;
use crate::deploy::zip_package::read_zip_package;
use crate::deploy::{DeployRequest, Package, S3Target, decide, resolve_region};
use crate::error::{Error, Result};
use crate::findings::report_findings;
use crate::image::config::KeyValue;
use crate::package::limits::{DIRECT_UPLOAD_LIMIT, bytes, needs_s3_upload};
use crate::platform::Architecture;
use crate::reference::registry::RegistryReference;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("package").required(true).args(["image", "zip"])))]
pub struct DeployArgs {
    /// The function: its name, or its ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME).
    #[arg(long, value_name = "NAME", value_parser = decide::parse_function)]
    pub function: String,

    /// An ECR image (tag or digest, index or manifest); the function gets its architecture's
    /// manifest by digest.
    #[arg(long, value_name = "REF")]
    pub image: Option<RegistryReference>,

    /// A .zip package (from `lambda-image zip`, or any zip with `bootstrap` at its root).
    #[arg(long, value_name = "FILE")]
    pub zip: Option<PathBuf>,

    /// Create the function if it does not exist (needs --role).
    #[arg(long)]
    pub create: bool,

    /// The execution role of a function created: arn:aws:iam::ACCOUNT:role/NAME.
    #[arg(long, value_name = "ARN", requires = "create", value_parser = decide::parse_role)]
    pub role: Option<String>,

    /// The function's architecture; changes an existing function's when it differs.
    #[arg(long, value_name = "ARCH", ignore_case = true)]
    pub architecture: Option<Architecture>,

    /// Memory, in MB (128 to 10240).
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(i32).range(128..=10240))]
    pub memory: Option<i32>,

    /// Timeout, in seconds (1 to 900).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(i32).range(1..=900))]
    pub timeout: Option<i32>,

    /// An environment variable (repeatable); the function's other variables are kept.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = decide::parse_env)]
    pub env: Vec<KeyValue>,

    /// The function's description (at most 256 characters).
    #[arg(long, value_name = "TEXT", value_parser = decide::parse_description)]
    pub description: Option<String>,

    /// The runtime of a zip function created [default: provided.al2023, or provided.al2 when
    /// the bootstrap needs OpenSSL 1.0].
    #[arg(long, value_enum, requires = "zip", conflicts_with = "image")]
    pub runtime: Option<super::zip::Runtime>,

    /// Upload the zip to this S3 bucket (in the function's region) and deploy from there;
    /// needed over 50 MB.
    #[arg(
        long,
        value_name = "BUCKET",
        requires = "zip",
        conflicts_with = "image",
        value_parser = decide::parse_bucket
    )]
    pub s3_bucket: Option<String>,

    /// The S3 key [default: lambda-image/NAME/SHA256.zip].
    #[arg(long, value_name = "KEY", requires = "s3_bucket", value_parser = decide::parse_s3_key)]
    pub s3_key: Option<String>,

    #[command(flatten)]
    pub release: ReleaseFlags,

    /// Credentials for the image's registry (ECR's come from the AWS credential chain).
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,

    #[command(flatten)]
    pub password_stdin: super::PasswordStdin,

    #[command(flatten)]
    pub registry: super::RegistryFlags,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// After the code: a version, an alias, or not waiting; shared by `deploy` and `build --deploy`.
#[derive(Debug, Args)]
pub struct ReleaseFlags {
    /// Publish a version once deployed.
    #[arg(long, conflicts_with = "no_wait")]
    pub publish: bool,

    /// Point this alias at the published version (creating it if needed); implies --publish.
    #[arg(long, value_name = "NAME", conflicts_with = "no_wait", value_parser = decide::parse_alias)]
    pub alias: Option<String>,

    /// Do not wait for Lambda to finish the update.
    #[arg(long)]
    pub no_wait: bool,
}

/// Refuses a package over Lambda's unzipped limit (250 MB, the function and its layers):
/// Lambda would refuse it. Error: usage.
fn check_unzipped(path: &std::path::Path, unzipped: u64) -> Result<()> {
    match crate::package::limits::over_unzipped_limit(unzipped) {
        None => Ok(()),
        Some(over) => Err(
            Error::usage(format!("{}: the package is {over}", path.display()))
                .hint(crate::package::limits::UNZIPPED_HINT),
        ),
    }
}

/// Deploys and returns what to report.
pub fn run(args: &DeployArgs) -> Result<DeployReport> {
    crate::deploy::available()?;
    let request = DeployRequest {
        function: args.function.clone(),
        create: args.create,
        role: args.role.clone(),
        architecture: args.architecture,
        architecture_flag: "--architecture",
        architecture_for_create_only: false,
        runtime: args.runtime.map(super::zip::Runtime::name),
        memory: args.memory,
        timeout: args.timeout,
        env: args.env.clone(),
        description: args.description.clone(),
        publish: args.release.publish || args.release.alias.is_some(),
        alias: args.release.alias.clone(),
        wait: !args.release.no_wait,
        quiet: args.registry.quiet || args.json,
    };
    let flag_region = args.registry.region.as_deref();
    let (package, region) = match (&args.image, &args.zip) {
        (Some(reference), _) => {
            let image_region = ecr_region(reference, "--image")?;
            let region = resolve_region(flag_region, &args.function, Some(&image_region))?;
            decide::check_image_region(&reference.to_string(), &image_region, &region)?;
            let creds = args
                .password_stdin
                .credential("--creds", args.creds.as_deref())?;
            let options = crate::registry::SessionOptions {
                base_creds: creds,
                creds: None,
                read_role: crate::credentials::HostRole::Checked,
                ..args.registry.session_options()
            };
            (Package::Image(resolve_image(reference, options)?), region)
        }
        (None, Some(path)) => {
            let region = resolve_region(flag_region, &args.function, None)?;
            let zip = read_zip_package(
                path,
                args.runtime.map(super::zip::Runtime::name),
                args.architecture,
            )?;
            // An --architecture the bootstrap is not built for is refused before any call.
            if let Some(wanted) = args.architecture {
                decide::choose_architecture(
                    &args.function,
                    None,
                    Some(wanted),
                    &zip.architectures,
                    decide::PackageSource::Zip(zip.shown()),
                    "--architecture",
                )?;
            }
            if !args.json {
                report_findings(&zip.findings);
            }
            check_unzipped(path, zip.unzipped_size)?;
            if needs_s3_upload(zip.bytes.len() as u64) && args.s3_bucket.is_none() {
                return Err(Error::usage(format!(
                    "{} is {}, over the {} ({} MB) Lambda takes uploaded directly",
                    path.display(),
                    bytes(zip.bytes.len() as u64),
                    bytes(DIRECT_UPLOAD_LIMIT),
                    DIRECT_UPLOAD_LIMIT / 1024 / 1024
                ))
                .hint("upload it through S3: add --s3-bucket BUCKET (a bucket in the function's region)"));
            }
            let s3 = args.s3_bucket.as_ref().map(|bucket| S3Target {
                bucket: bucket.clone(),
                key: args.s3_key.clone(),
            });
            (
                Package::Zip {
                    zip: Box::new(zip),
                    s3,
                },
                region,
            )
        }
        (None, None) => unreachable!("clap requires --image or --zip"),
    };
    let api = crate::deploy::connect(&region)?;
    crate::deploy::flow::deploy(api.as_ref(), &request, &package, &region)
}
