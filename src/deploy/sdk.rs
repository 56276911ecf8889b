//! [`FunctionApi`] through the official AWS SDK (`aws-sdk-lambda`, `aws-sdk-s3`), on a small
//! single-threaded tokio runtime of its own, as the ECR token call does (the rest of the tool is
//! synchronous). Credentials come from the SDK's default chain, as for ECR: environment, shared
//! config and credentials files with profiles, SSO, web identity, container or instance roles.
//! Endpoints can be overridden as for any SDK (`AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL`), which is how the tests point them at moto.
//!
//! Errors name the operation and, for a denial, the IAM action ([`super::decide::denied_action`]).

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as LambdaArchitecture, Environment, FunctionCode, PackageType, Runtime,
};

use super::api::{AliasFacts, Code, FunctionApi, FunctionFacts, NewFunction, Settings};
use super::decide::{PackageKind, denied_action};
use crate::credentials::aws_sdk;
use crate::error::{Error, ErrorKind, Result};
use crate::platform::Architecture;

/// The region the SDK's default chain finds (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
/// `region`), without any network call: instance metadata is not asked.
pub fn default_region() -> Result<Option<String>> {
    let runtime = aws_sdk::runtime(ErrorKind::Failure)?;
    Ok(runtime.block_on(async {
        aws_config::meta::region::RegionProviderChain::first_try(
            aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
        )
        .or_else(aws_config::profile::ProfileFileRegionProvider::new())
        .region()
        .await
        .map(|region| region.to_string())
    }))
}

/// The Lambda and S3 clients of one region.
pub struct SdkFunctions {
    runtime: tokio::runtime::Runtime,
    lambda: aws_sdk_lambda::Client,
    s3: aws_sdk_s3::Client,
    region: String,
}

impl SdkFunctions {
    /// Clients for `region`, with the default credential chain (read lazily, at the first call).
    pub fn connect(region: &str) -> Result<SdkFunctions> {
        let runtime = aws_sdk::runtime(ErrorKind::Failure)?;
        let config = aws_sdk::config(&runtime, region);
        Ok(SdkFunctions {
            lambda: aws_sdk_lambda::Client::new(&config),
            s3: aws_sdk_s3::Client::new(&config),
            runtime,
            region: region.to_owned(),
        })
    }

    /// The error of `operation` on `subject` (a function or an S3 object).
    fn failed<E, R>(&self, operation: &str, subject: &str, error: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        describe_failure(operation, subject, &self.region, error)
    }
}

/// Lambda's `Architectures` entry for an architecture.
fn lambda_architecture(architecture: Architecture) -> LambdaArchitecture {
    match architecture {
        Architecture::Amd64 => LambdaArchitecture::X8664,
        Architecture::Arm64 => LambdaArchitecture::Arm64,
    }
}

/// The members every answer about a function's configuration has (`GetFunction`'s
/// `Configuration`, and the answers to `CreateFunction`, `UpdateFunctionCode`,
/// `UpdateFunctionConfiguration`, `PublishVersion`), which the SDK gives separate types.
macro_rules! function_facts {
    ($answer:expr) => {{
        let answer = $answer;
        FunctionFacts {
            arn: answer.function_arn().unwrap_or_default().to_owned(),
            package_type: answer.package_type().and_then(|kind| match kind {
                PackageType::Image => Some(PackageKind::Image),
                PackageType::Zip => Some(PackageKind::Zip),
                _ => None,
            }),
            architecture: answer
                .architectures()
                .first()
                .and_then(|architecture| Architecture::parse(architecture.as_str())),
            state: answer.state().map(|state| state.as_str().to_owned()),
            state_reason: answer.state_reason().map(str::to_owned),
            last_update_status: answer
                .last_update_status()
                .map(|status| status.as_str().to_owned()),
            last_update_status_reason: answer.last_update_status_reason().map(str::to_owned),
            code_sha256: answer.code_sha256().map(str::to_owned),
            version: answer.version().map(str::to_owned),
            runtime: answer.runtime().map(|runtime| runtime.as_str().to_owned()),
            image_uri: None,
            resolved_image_uri: None,
            revision_id: answer.revision_id().map(str::to_owned),
            environment: answer
                .environment()
                .and_then(|environment| environment.variables())
                .map(|variables| {
                    variables
                        .iter()
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default(),
        }
    }};
}

fn environment(variables: &BTreeMap<String, String>) -> Environment {
    Environment::builder()
        .set_variables(Some(variables.clone().into_iter().collect()))
        .build()
}

impl FunctionApi for SdkFunctions {
    fn get(&self, name: &str) -> Result<Option<FunctionFacts>> {
        let answer = self
            .runtime
            .block_on(self.lambda.get_function().function_name(name).send());
        match answer {
            Ok(answer) => {
                let Some(configuration) = answer.configuration() else {
                    return Ok(None);
                };
                let mut facts = function_facts!(configuration);
                if let Some(code) = answer.code() {
                    facts.image_uri = code.image_uri().map(str::to_owned);
                    facts.resolved_image_uri = code.resolved_image_uri().map(str::to_owned);
                }
                Ok(Some(facts))
            }
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(error) => Err(self.failed("GetFunction", name, error)),
        }
    }

    fn create(&self, function: &NewFunction) -> Result<FunctionFacts> {
        let code = match function.code {
            Code::Image(uri) => FunctionCode::builder().image_uri(uri).build(),
            Code::ZipFile(bytes) => FunctionCode::builder().zip_file(Blob::new(bytes)).build(),
            Code::S3 { bucket, key } => FunctionCode::builder()
                .s3_bucket(bucket)
                .s3_key(key)
                .build(),
        };
        let settings = function.settings;
        let mut call = self
            .lambda
            .create_function()
            .function_name(function.name)
            .role(function.role)
            .code(code)
            .architectures(lambda_architecture(function.architecture))
            .set_memory_size(settings.memory)
            .set_timeout(settings.timeout)
            .set_description(settings.description.clone())
            .set_environment(settings.environment.as_ref().map(environment));
        call = match function.runtime {
            Some(runtime) => call
                .package_type(PackageType::Zip)
                .runtime(Runtime::from(runtime))
                .handler("bootstrap"),
            None => call.package_type(PackageType::Image),
        };
        let answer = self.runtime.block_on(call.send());
        answer
            .map(|answer| function_facts!(&answer))
            .map_err(|error| self.failed("CreateFunction", function.name, error))
    }

    fn update_configuration(&self, name: &str, settings: &Settings) -> Result<FunctionFacts> {
        let call = self
            .lambda
            .update_function_configuration()
            .function_name(name)
            .set_runtime(settings.runtime.as_deref().map(Runtime::from))
            .set_revision_id(settings.revision_id.clone())
            .set_memory_size(settings.memory)
            .set_timeout(settings.timeout)
            .set_description(settings.description.clone())
            .set_environment(settings.environment.as_ref().map(environment));
        self.runtime
            .block_on(call.send())
            .map(|answer| function_facts!(&answer))
            .map_err(|error| self.failed("UpdateFunctionConfiguration", name, error))
    }

    fn update_code(
        &self,
        name: &str,
        code: Code,
        architecture: Architecture,
    ) -> Result<FunctionFacts> {
        let call = self
            .lambda
            .update_function_code()
            .function_name(name)
            .architectures(lambda_architecture(architecture));
        let call = match code {
            Code::Image(uri) => call.image_uri(uri),
            Code::ZipFile(bytes) => call.zip_file(Blob::new(bytes)),
            Code::S3 { bucket, key } => call.s3_bucket(bucket).s3_key(key),
        };
        self.runtime
            .block_on(call.send())
            .map(|answer| function_facts!(&answer))
            .map_err(|error| self.failed("UpdateFunctionCode", name, error))
    }

    fn publish(&self, name: &str, code_sha256: &str) -> Result<FunctionFacts> {
        let call = self
            .lambda
            .publish_version()
            .function_name(name)
            .code_sha256(code_sha256);
        self.runtime
            .block_on(call.send())
            .map(|answer| function_facts!(&answer))
            .map_err(|error| self.failed("PublishVersion", name, error))
    }

    fn point_alias(&self, name: &str, alias: &str, version: &str) -> Result<AliasFacts> {
        let existing = self.runtime.block_on(
            self.lambda
                .get_alias()
                .function_name(name)
                .name(alias)
                .send(),
        );
        let exists = match existing {
            Ok(_) => true,
            Err(error) if error.code() == Some("ResourceNotFoundException") => false,
            Err(error) => return Err(self.failed("GetAlias", name, error)),
        };
        let (arn, pointed) = if exists {
            let call = self
                .lambda
                .update_alias()
                .function_name(name)
                .name(alias)
                .function_version(version);
            let answer = self
                .runtime
                .block_on(call.send())
                .map_err(|error| self.failed("UpdateAlias", name, error))?;
            (answer.alias_arn, answer.function_version)
        } else {
            let call = self
                .lambda
                .create_alias()
                .function_name(name)
                .name(alias)
                .function_version(version);
            let answer = self
                .runtime
                .block_on(call.send())
                .map_err(|error| self.failed("CreateAlias", name, error))?;
            (answer.alias_arn, answer.function_version)
        };
        Ok(AliasFacts {
            arn: arn.unwrap_or_default(),
            version: pointed.unwrap_or_else(|| version.to_owned()),
        })
    }

    fn upload(&self, bucket: &str, key: &str, path: &Path) -> Result<()> {
        let subject = format!("s3://{bucket}/{key}");
        self.runtime.block_on(async {
            let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
                .await
                .map_err(|error| {
                    Error::usage(format!("cannot read {}: {error}", path.display()))
                })?;
            self.s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body)
                .send()
                .await
                .map(|_| ())
                .map_err(|error| self.failed("PutObject", &subject, error))
        })
    }
}

/// The error for a failed call: access denied names the IAM action; missing or refused
/// credentials, an update already in progress, a role Lambda cannot assume and an image Lambda
/// may not read get what to do. Kind: deploy (exit 11).
fn describe_failure<E, R>(
    operation: &str,
    subject: &str,
    region: &str,
    error: SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let service = if operation == "PutObject" {
        "S3"
    } else {
        "Lambda"
    };
    let head = format!("{service} {operation} on {subject} in {region} failed");
    let message = error.message().unwrap_or("no message").to_owned();
    let context = DisplayErrorContext(&error).to_string();
    match error.code() {
        Some("AccessDeniedException" | "AccessDenied") => {
            let action = if service == "S3" {
                "s3:PutObject".to_owned()
            } else {
                denied_action(&message, operation)
            };
            Error::deploy(format!("{head}: access denied to {action} ({message})")).hint(format!(
                "allow {action} to the AWS identity in its IAM policy (for iam:PassRole, on the \
                 function's role)"
            ))
        }
        Some(
            code @ ("UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"),
        ) => Error::deploy(format!(
            "{head}: AWS refused the credentials ({code}: {message})"
        ))
        .hint(
            "the AWS credentials found are wrong or expired: check AWS_ACCESS_KEY_ID / \
                 AWS_PROFILE, or log in again (`aws sso login`)",
        ),
        Some(code @ "PreconditionFailedException") => Error::deploy(format!(
            "{head}: {code}: {message}"
        ))
        .hint("the function changed while this deploy read it (another deploy?): run it again"),
        Some(code @ "ResourceConflictException") => {
            Error::deploy(format!("{head}: {code}: {message}")).hint(
                "another change to the function is in progress (a deploy from elsewhere?): run \
                 the deploy again once it is done",
            )
        }
        Some(code @ "InvalidParameterValueException") if message.contains("cannot be assumed") => {
            Error::deploy(format!("{head}: {code}: {message}")).hint(
                "the role's trust policy must let lambda.amazonaws.com assume it \
                 (sts:AssumeRole); a role created seconds ago may need a few more seconds",
            )
        }
        Some(code) if message.contains("ECR") && message.contains("permission") => {
            Error::deploy(format!("{head}: {code}: {message}")).hint(
                "Lambda reads the image with the caller's ECR permissions and the repository \
                 policy: allow ecr:BatchGetImage and ecr:GetDownloadUrlForLayer",
            )
        }
        Some(code) => Error::deploy(format!("{head}: {code}: {message}")),
        None if aws_sdk::no_credentials(&context) => {
            Error::deploy(format!("{head}: no AWS credentials were found"))
                .hint(aws_sdk::CREDENTIAL_CHAIN)
        }
        None => Error::deploy(format!(
            "{head}: {}",
            crate::error::describe_error_chain(&error)
        ))
        .hint(format!(
            "check the network path to the {service} API in {region} (or \
             AWS_ENDPOINT_URL_{}, if set)",
            service.to_ascii_uppercase()
        )),
    }
}
