//! The steps of one deployment, over any [`FunctionApi`]: look the function up, refuse what
//! Lambda would refuse or what would break it, create it or update its configuration and code,
//! wait until Lambda has finished, check that the function holds what was sent, then publish a
//! version and point an alias at it.
//!
//! Lambda's rules followed here (Lambda API reference: CreateFunction, UpdateFunctionCode,
//! UpdateFunctionConfiguration, PublishVersion; "Lambda function states"): a change while
//! `LastUpdateStatus` is `InProgress` is refused (`ResourceConflictException`), so each call
//! waits for the previous one; a new function is `Pending` until `Active`; an update ends
//! `Successful` or `Failed` with `LastUpdateStatusReason`; `PublishVersion` given `CodeSha256`
//! publishes only that code.

use std::time::{Duration, Instant};

use super::api::{Code, FunctionApi, FunctionFacts, NewFunction, Settings};
use super::decide::{PackageKind, PackageSource, check_package_kind, choose_architecture};
use super::report::{DeployReport, ReportedAlias, ReportedS3};
use super::{DeployRequest, Package};
use crate::error::{Error, Result};

/// How long to wait for Lambda to finish a create or an update before giving up: image
/// functions can stay `Pending` for minutes while Lambda optimizes the image.
pub const WAIT_LIMIT: Duration = Duration::from_secs(15 * 60);

/// The first pause between two `GetFunction` calls while waiting; it doubles up to
/// [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// What a deployment will do to the function, decided before any change: whether it exists,
/// the role to create it with, the architecture and whether that changes.
pub struct Target {
    pub existing: Option<FunctionFacts>,
    pub role: Option<String>,
    pub architecture: crate::platform::Architecture,
    pub changes_architecture: bool,
}

/// Looks the function up and refuses what Lambda would refuse or what would break it: no such
/// function without `--create` (deploy), `--create` without `--role` (usage), another package
/// type (deploy), an architecture the package lacks (see [`choose_architecture`]).
/// `architecture_flag`: the flag that chooses the architecture, for messages.
pub fn preflight(
    api: &dyn FunctionApi,
    request: &DeployRequest,
    kind: PackageKind,
    available: &[crate::platform::Architecture],
    source: PackageSource,
    region: &str,
) -> Result<Target> {
    let name = request.function.as_str();
    let existing = api.get(name)?;
    if let Some(function) = &existing
        && let Some(has) = function.package_type
    {
        check_package_kind(name, has, kind)?;
    }
    let role = match (&existing, request.create, &request.role) {
        (Some(_), _, _) => None,
        (None, false, _) => {
            return Err(Error::deploy(format!(
                "there is no function {name} in {region} to deploy to"
            ))
            .hint(
                "create it with --create --role arn:aws:iam::ACCOUNT:role/ROLE (a role Lambda may \
                 assume), or check the name and --region",
            ));
        }
        (None, true, None) => {
            return Err(Error::usage(format!(
                "--create: creating {name} needs the function's execution role"
            ))
            .hint("add --role arn:aws:iam::ACCOUNT:role/ROLE"));
        }
        (None, true, Some(role)) => Some(role.clone()),
    };
    // `build --deploy-architecture` chooses for functions being created only.
    let flag = match (&existing, request.architecture_for_create_only) {
        (Some(_), true) => None,
        _ => request.architecture,
    };
    let (architecture, changes_architecture) = choose_architecture(
        name,
        existing.as_ref().map(FunctionFacts::runs_on),
        flag,
        available,
        source,
        request.architecture_flag,
    )?;
    Ok(Target {
        existing,
        role,
        architecture,
        changes_architecture,
    })
}

/// Deploys `package` to `request.function` in `region` through `api`.
pub fn deploy(
    api: &dyn FunctionApi,
    request: &DeployRequest,
    package: &Package,
    region: &str,
) -> Result<DeployReport> {
    let started = Instant::now();
    let name = request.function.as_str();
    let Target {
        existing,
        role,
        architecture,
        changes_architecture,
    } = preflight(
        api,
        request,
        package.kind(),
        &package.architectures(),
        package.source(),
        region,
    )?;
    let role = role.as_deref();
    // A zip function's runtime must run a bootstrap, and the bootstrap must run on it:
    // `--runtime`, else the existing function's, else the one chosen for the package; an
    // existing function is moved to `--runtime` when it has another.
    let has = existing
        .as_ref()
        .and_then(|function| function.runtime.as_deref());
    let new_runtime = request
        .runtime
        .filter(|wanted| has.is_some_and(|has| has != *wanted));
    if let Package::Zip { zip, .. } = package {
        zip.check_for_runtime(name, request.runtime.or(has).unwrap_or(zip.runtime))?;
    }

    let image_uri = package.image_uri(architecture);
    let s3 = match package {
        Package::Zip {
            zip,
            s3: Some(target),
        } => {
            let key = target.key.clone().unwrap_or_else(|| {
                format!("lambda-image/{}/{}.zip", short_name(name), zip.sha256.hex())
            });
            progress(
                request,
                &format!(
                    "uploading {} to s3://{}/{key}",
                    zip.path.display(),
                    target.bucket
                ),
            );
            api.upload(&target.bucket, &key, &zip.path)?;
            Some(ReportedS3 {
                bucket: target.bucket.clone(),
                key,
            })
        }
        _ => None,
    };
    let code = match (package, &s3) {
        (Package::Image(_), _) => Code::Image(
            image_uri
                .as_deref()
                .expect("the architecture is one the image has"),
        ),
        (Package::Zip { .. }, Some(s3)) => Code::S3 {
            bucket: &s3.bucket,
            key: &s3.key,
        },
        (Package::Zip { zip, .. }, None) => Code::ZipFile(&zip.bytes),
    };

    let after = match (&existing, role) {
        (Some(function), _) => {
            if is_busy(function) {
                progress(
                    request,
                    &format!("{name} is being changed already; waiting for that first"),
                );
                wait_until_done(api, request, Waiting::Update)?;
            }
            let mut settings = request.settings(Some(&function.environment));
            settings.runtime = new_runtime.map(str::to_owned);
            if !settings.is_empty() {
                // Only if nothing changed the variables since they were read and merged.
                settings.revision_id = function.revision_id.clone();
                progress(request, &format!("updating the configuration of {name}"));
                sent(name, "its configuration was updated");
                let not_sent = |error: Error| {
                    error.with_message_suffix(" (the configuration; the new code was not sent)")
                };
                api.update_configuration(name, &settings)
                    .map_err(not_sent)?;
                wait_until_done(api, request, Waiting::Update).map_err(not_sent)?;
            }
            if changes_architecture {
                progress(
                    request,
                    &format!("moving {name} to {}", architecture.lambda_name()),
                );
            }
            progress(request, &format!("updating the code of {name}"));
            sent(name, "its new code was sent, and Lambda applies it anyway");
            let answer = api.update_code(name, code, architecture)?;
            if request.wait {
                wait_until_done(api, request, Waiting::Update)?
            } else {
                answer
            }
        }
        (None, Some(role)) => {
            progress(request, &format!("creating {name}"));
            sent(name, "it was being created, and Lambda goes on creating it");
            let settings = request.settings(None);
            let answer = api.create(&NewFunction {
                name,
                role,
                code,
                architecture,
                runtime: package.runtime(),
                settings: &settings,
            })?;
            if request.wait {
                wait_until_done(api, request, Waiting::Create)?
            } else {
                answer
            }
        }
        (None, None) => unreachable!("a missing function without --create was refused"),
    };

    // Waited for: the last `GetFunction` of the wait, the function as it now is (with `Code`).
    // Not waited for: the call's own answer, since `GetFunction` may still show the code
    // being replaced.
    let deployed = after;
    check_deployed(name, package, &deployed, image_uri.as_deref())?;
    let done = match &image_uri {
        Some(uri) => format!("$LATEST of {name} already holds {uri}"),
        None => format!("$LATEST of {name} already holds the zip"),
    };
    let code_sha256 = deployed.code_sha256.clone().unwrap_or_default();

    let mut version = "$LATEST".to_owned();
    let mut alias = None;
    if request.publish || request.alias.is_some() {
        progress(request, &format!("publishing a version of {name}"));
        let published = api
            .publish(name, &code_sha256)
            .map_err(|error| error.with_message_suffix(&format!(" ({done})")))?;
        version = published.version.unwrap_or(version);
        if let Some(alias_name) = &request.alias {
            let pointed = api
                .point_alias(name, alias_name, &version)
                .map_err(|error| {
                    error.with_message_suffix(&format!(" ({done}, published as version {version})"))
                })?;
            alias = Some(ReportedAlias {
                name: alias_name.clone(),
                arn: pointed.arn,
                version: pointed.version,
            });
        }
    }
    Ok(DeployReport {
        function_name: short_name(name).to_owned(),
        function_arn: deployed.arn.clone(),
        region: region.to_owned(),
        created: existing.is_none(),
        package_type: package.kind().lambda_name(),
        architecture: architecture.lambda_name(),
        image_uri: image_uri.clone(),
        image_digest: package.manifest_digest(architecture),
        code_sha256,
        runtime: match package {
            Package::Zip { .. } => deployed
                .runtime
                .clone()
                .or(package.runtime().map(str::to_owned)),
            Package::Image(_) => None,
        },
        s3,
        version,
        alias,
        state: deployed.state.clone(),
        last_update_status: deployed.last_update_status.clone(),
        waited: request.wait,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// What was sent to Lambda so far in this run, per function, for the message of an
/// interruption ([`sent_so_far`]): Lambda goes on applying a change the tool stops waiting for.
static SENT: std::sync::Mutex<Vec<(String, &'static str)>> = std::sync::Mutex::new(Vec::new());

/// The first function a change was sent to in this run, for commands in messages.
pub fn first_sent() -> Option<String> {
    let sent = SENT.lock().unwrap_or_else(|poison| poison.into_inner());
    sent.first().map(|(name, _)| name.clone())
}

/// Records that a change to `function` is about to be sent.
fn sent(function: &str, what: &'static str) {
    let mut sent = SENT.lock().unwrap_or_else(|poison| poison.into_inner());
    sent.retain(|(name, _)| name != function);
    sent.push((function.to_owned(), what));
}

/// The changes sent to Lambda in this run, as a sentence (`fn: its new code was sent, ...`),
/// or `None` when none was.
pub fn sent_so_far() -> Option<String> {
    let sent = SENT.lock().unwrap_or_else(|poison| poison.into_inner());
    (!sent.is_empty()).then(|| {
        sent.iter()
            .map(|(name, what)| format!("{name}: {what}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The function's own name from a name or an ARN, for the default S3 key.
fn short_name(function: &str) -> &str {
    match function.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
        None => function,
    }
}

/// Whether Lambda is still applying an earlier change (a new function, or an update).
fn is_busy(function: &FunctionFacts) -> bool {
    function.state.as_deref() == Some("Pending")
        || function.last_update_status.as_deref() == Some("InProgress")
}

/// What is being waited for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// A new function: `State` `Active`.
    Create,
    /// An update: `LastUpdateStatus` `Successful`.
    Update,
}

/// Polls `GetFunction` until the change is done; the function's facts then. Errors (deploy):
/// `Failed`, with Lambda's reason; still not done after [`WAIT_LIMIT`]; the function gone.
fn wait_until_done(
    api: &dyn FunctionApi,
    request: &DeployRequest,
    waiting: Waiting,
) -> Result<FunctionFacts> {
    let name = request.function.as_str();
    let started = Instant::now();
    let mut pause = FIRST_PAUSE;
    let mut said = String::new();
    loop {
        let function = api.get(name)?.ok_or_else(|| {
            Error::deploy(format!(
                "the function {name} was deleted while being deployed to"
            ))
        })?;
        match outcome(&function, waiting) {
            Outcome::Done => return Ok(function),
            Outcome::Failed(reason) => {
                let what = match waiting {
                    Waiting::Create => "the new function",
                    Waiting::Update => "the update of",
                };
                return Err(Error::deploy(format!(
                    "Lambda reports that {what} {name} failed: {reason}"
                ))
                .hint(
                    "fix what the reason names (an image Lambda cannot read, a missing \
                     permission, a bad subnet...), then deploy again",
                ));
            }
            Outcome::Waiting(status) => {
                if status != said {
                    progress(request, &format!("waiting for {name}: {status}"));
                    said = status;
                }
            }
        }
        if started.elapsed() >= WAIT_LIMIT {
            return Err(Error::deploy(format!(
                "{name} is still {said} after {} minutes",
                WAIT_LIMIT.as_secs() / 60
            ))
            .hint(
                "look at the function in the Lambda console; deploy with --no-wait not to wait",
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

enum Outcome {
    Done,
    Failed(String),
    /// Not yet; the status to show (`State Pending`, `LastUpdateStatus InProgress`).
    Waiting(String),
}

/// Where a create or an update stands, from the function's `State` and `LastUpdateStatus`.
fn outcome(function: &FunctionFacts, waiting: Waiting) -> Outcome {
    let reason = |reason: &Option<String>| {
        reason
            .clone()
            .unwrap_or_else(|| "no reason given".to_owned())
    };
    match function.state.as_deref() {
        Some("Failed") => return Outcome::Failed(reason(&function.state_reason)),
        Some("Pending") => return Outcome::Waiting("State Pending".to_owned()),
        _ => {}
    }
    if waiting == Waiting::Create {
        return match function.state.as_deref() {
            Some("Active") | None => Outcome::Done,
            Some(other) => Outcome::Waiting(format!("State {other}")),
        };
    }
    match function.last_update_status.as_deref() {
        Some("Successful") | None => Outcome::Done,
        Some("Failed") => Outcome::Failed(reason(&function.last_update_status_reason)),
        Some(other) => Outcome::Waiting(format!("LastUpdateStatus {other}")),
    }
}

/// Checks that the function now holds what was sent: the zip's `CodeSha256`, or the image's
/// per-architecture digest in `Code.ResolvedImageUri` (else `Code.ImageUri`). Error: deploy.
fn check_deployed(
    name: &str,
    package: &Package,
    deployed: &FunctionFacts,
    image_uri: Option<&str>,
) -> Result<()> {
    match package {
        Package::Zip { zip, .. } => match &deployed.code_sha256 {
            Some(code) if *code == zip.code_sha256 => Ok(()),
            other => Err(Error::deploy(format!(
                "{name} reports CodeSha256 {}, but the package sent has {}: another deploy may \
                 have changed it meanwhile",
                other.as_deref().unwrap_or("(none)"),
                zip.code_sha256
            ))),
        },
        Package::Image(_) => {
            let sent = image_uri.unwrap_or_default();
            let digest = sent.rsplit_once('@').map_or(sent, |(_, digest)| digest);
            let given = deployed.image_uri.as_deref();
            let resolved = deployed.resolved_image_uri.as_deref();
            let holds_sent = given.is_none_or(|uri| uri == sent)
                && resolved.is_none_or(|uri| uri.ends_with(&format!("@{digest}")));
            if holds_sent {
                return Ok(());
            }
            Err(Error::deploy(format!(
                "{name} holds the image {} (resolved to {}), not {sent} that was sent: another \
                 deploy may have changed it meanwhile",
                given.unwrap_or("(none)"),
                resolved.unwrap_or("(none)")
            )))
        }
    }
}

/// A progress line on stderr, unless `-q`.
fn progress(request: &DeployRequest, line: &str) {
    if !request.quiet {
        crate::emulator::log::write_line(&format!("deploy: {line}"));
    }
}

impl DeployRequest {
    /// The configuration to send: the flags given, with `--env` merged into `existing`
    /// variables (a function's other variables are kept).
    fn settings(&self, existing: Option<&std::collections::BTreeMap<String, String>>) -> Settings {
        let environment = (!self.env.is_empty()).then(|| {
            let mut variables = existing.cloned().unwrap_or_default();
            for pair in &self.env {
                variables.insert(pair.key.clone(), pair.value.clone());
            }
            variables
        });
        Settings {
            memory: self.memory,
            timeout: self.timeout,
            environment,
            description: self.description.clone(),
            runtime: None,
            revision_id: None,
        }
    }
}

#[cfg(test)]
#[path = "flow_tests.rs"]
mod tests;
