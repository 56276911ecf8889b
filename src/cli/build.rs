//! `lambda-image build`: its flags ([`BuildArgs`]), turned into a [`Plan`] for
//! [`crate::build::build`], which does the work. Not here: the pipeline itself.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::credential_flag;
use super::outcome::Finished;
use crate::bootstrap::BootstrapSpec;
use crate::bootstrap::glibc::GlibcVersion;
use crate::build::{Plan, RegistryAccess};
use crate::catalog::BaseReference;
use crate::catalog::DEFAULT_BASE;
use crate::deploy::api::FunctionApi;
use crate::deploy::image_package::{built_image, ecr_region};
use crate::deploy::report::DeployReport;
use crate::deploy::{DeployRequest, Package, decide, resolve_region};
use crate::error::{Error, Result};
use crate::findings::report_findings;
use crate::image::ImageFormat;
use crate::image::config::KeyValue;
use crate::lambda_layer::LayerSpec;
use crate::layer::IncludeSpec;
use crate::reference::ImageLocation;
use crate::reference::registry::RegistryReference;
use crate::report::BuildReport;
use crate::timestamp::BuildTimestamp;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A compiled bootstrap; its architecture is read from the ELF header. Repeat for each
    /// architecture. Use ARCH=PATH (amd64= or arm64=) to state it, e.g. for a #! script.
    #[arg(long = "bootstrap", value_name = "[ARCH=]PATH", required = true)]
    pub bootstraps: Vec<BootstrapSpec>,

    /// The base image: a registry reference (HOST/REPO:TAG, @sha256:..., docker://...), a short
    /// name (provided.al2023, provided.al2), scratch (built in: no layers, no libc: static bootstraps
    /// only), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG].
    #[arg(long, value_name = "REF", default_value = DEFAULT_BASE)]
    pub base: BaseReference,

    #[command(flatten)]
    pub checks: super::SkipChecks,

    /// The glibc version of the base, for bases not in the catalog (e.g. 2.34); a dynamically
    /// linked bootstrap needing a newer one fails the build.
    #[arg(long, value_name = "VERSION")]
    pub base_glibc: Option<GlibcVersion>,

    /// The handler name, passed to the entrypoint as CMD ["NAME"].
    #[arg(long, value_name = "NAME", default_value = "bootstrap")]
    pub handler: String,

    /// An environment variable for the function (repeatable); overrides the base's value.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<KeyValue>,

    /// An image config label (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<KeyValue>,

    /// A manifest annotation (repeatable; OCI format only).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<KeyValue>,

    /// Extra files or a directory to add, e.g. ./config:/var/task/config (repeatable).
    #[arg(long = "include", value_name = "SRC:DEST")]
    pub includes: Vec<IncludeSpec>,

    /// A Lambda layer to unpack under /opt, as Lambda does for a function's layers (repeatable,
    /// applied in order): a .zip, or a layer version ARN
    /// (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION) fetched with GetLayerVersionByArn
    /// and kept in the cache. ARCH= (amd64= or arm64=) puts it in that architecture's image only.
    #[arg(long = "layer", value_name = "[ARCH=]ZIP|ARN")]
    pub layers: Vec<LayerSpec>,

    /// Manifest media types to write; default: the base's.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// Push to this registry reference, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/fn:v1
    /// (repeatable). With several architectures the tag names the index, and TAG-amd64 /
    /// TAG-arm64 each architecture.
    #[arg(long = "tag", short = 't', value_name = "REF")]
    pub tags: Vec<RegistryReference>,

    /// Write locally: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG].
    #[arg(long, short = 'o', value_name = "REF")]
    pub output: Option<ImageLocation>,

    /// With several architectures, do not also tag each one TAG-amd64 / TAG-arm64.
    #[arg(long)]
    pub no_arch_tags: bool,

    /// Contact no registry but the --tag ones: the base is a local kit (from `lambda-image base
    /// pull`), or a registry base taken from the cache, where an online build or `base pull` left it.
    /// A --layer ARN is taken from the cache too (no AWS call).
    #[arg(long)]
    pub offline: bool,

    /// Credentials for the registries pushed to (and the base's, when it is one of them).
    // Parsed in `run`, not by clap: clap would quote the whole value, password included, in
    // its error message.
    #[arg(long, value_name = "USER:PASS")]
    pub creds: Option<String>,

    #[command(flatten)]
    pub password_stdin: super::PasswordStdin,

    /// Credentials for the base's registry (never contacted with --offline, so not allowed
    /// with it).
    #[arg(long, value_name = "USER:PASS", conflicts_with = "offline")]
    pub base_creds: Option<String>,

    #[command(flatten)]
    pub registry: super::RegistryFlags,

    /// After the push, deploy to this Lambda function (repeatable): each gets the manifest of
    /// its architecture by digest, from the first ECR --tag.
    #[arg(long = "deploy", value_name = "FUNCTION", value_parser = crate::deploy::decide::parse_function)]
    pub deploy: Vec<String>,

    /// With --deploy: create a function that does not exist (needs --role).
    #[arg(long, requires = "deploy")]
    pub create: bool,

    /// With --deploy --create: the execution role of a function created.
    #[arg(long, value_name = "ARN", requires = "create", value_parser = crate::deploy::decide::parse_role)]
    pub role: Option<String>,

    /// With --deploy --create: the architecture of a function created from two architectures.
    /// Existing functions keep theirs (move one with `deploy --architecture`).
    #[arg(long, value_name = "ARCH", ignore_case = true, requires = "deploy")]
    pub deploy_architecture: Option<crate::platform::Architecture>,

    #[command(flatten)]
    pub release: super::deploy::ReleaseFlags,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Oci,
    Docker,
}

/// What `build` reports: the build's report, and with `--deploy` each deployment's
/// (`"deployments"` in JSON, absent without `--deploy`).
#[derive(Debug, Serialize)]
pub struct BuildOutcome {
    #[serde(flatten)]
    pub build: BuildReport,
    /// With `--deploy`: the deployments done (also `[]`); absent without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<Vec<DeployReport>>,
}

impl BuildOutcome {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the report always serializes")
    }

    pub fn to_text(&self) -> String {
        let mut text = self.build.to_text();
        for deployment in self.deployments.iter().flatten() {
            text.push_str(&deployment.to_text());
        }
        text
    }
}

/// Runs the build (and the deployments) and returns what to report; the findings and the
/// report's advice are printed on stderr (stdout holds only the report).
pub fn run(args: &BuildArgs) -> Result<Finished> {
    let plan = args.plan()?;
    let deployments = args.deployments()?;
    // One connection per region, for the look-ups before the build and the deployments after.
    let apis = match &deployments {
        Some((tag, targets)) => preflight(args, tag, targets)?,
        None => BTreeMap::new(),
    };
    let report = crate::build::build(&plan, &report_findings)?;
    // Stdout holds only the report; advice for people goes with the other messages.
    if let Some(advice) = report
        .advice()
        .filter(|_| !args.json && deployments.is_none())
    {
        eprintln!("{advice}");
    }
    let mut outcome = BuildOutcome {
        build: report,
        deployments: deployments.as_ref().map(|_| Vec::new()),
    };
    let mut failure = None;
    if let Some((tag, targets)) = deployments {
        let images = outcome
            .build
            .images
            .iter()
            .map(|image| (image.architecture, image.digest.as_str()));
        let package = Package::Image(built_image(&tag, images));
        let names: Vec<String> = targets
            .iter()
            .map(|(request, _)| request.function.clone())
            .collect();
        for (index, (request, region)) in targets.iter().enumerate() {
            let api = apis[region].as_ref();
            match crate::deploy::flow::deploy(api, request, &package, region) {
                Ok(deployed) => outcome
                    .deployments
                    .get_or_insert_with(Vec::new)
                    .push(deployed),
                Err(error) => {
                    let mut suffix = format!(
                        " (the image was pushed, as the report says; deploy it again with `{}`",
                        retry_command(request, &tag)
                    );
                    let rest = &names[index + 1..];
                    if !rest.is_empty() {
                        suffix.push_str(&format!("; not deployed to: {}", rest.join(", ")));
                    }
                    suffix.push(')');
                    failure = Some(error.with_message_suffix(&suffix));
                    break;
                }
            }
        }
    }
    // The build's report (and the deployments done) is printed even when a deployment failed.
    Ok(Finished::report(
        &outcome,
        outcome.to_text().into_bytes(),
        failure,
    ))
}

/// The `lambda-image deploy` command that does again what `request` was to do.
fn retry_command(request: &DeployRequest, tag: &RegistryReference) -> String {
    let mut command = format!(
        "lambda-image deploy --function {} --image {tag}",
        request.function
    );
    if let Some(architecture) = request.architecture {
        command.push_str(&format!(" --architecture {architecture}"));
    }
    if let Some(role) = request.role.as_ref().filter(|_| request.create) {
        command.push_str(&format!(" --create --role {role}"));
    }
    match &request.alias {
        Some(alias) => command.push_str(&format!(" --alias {alias}")),
        None if request.publish => command.push_str(" --publish"),
        None => {}
    }
    command
}

/// Before anything is built: each function looked up and checked against the architectures
/// of the bootstraps (missing without `--create`, another package type, an architecture the
/// build will not make, two architectures to create from without `--deploy-architecture`).
/// Returns the Lambda API of each region, connected.
fn preflight(
    args: &BuildArgs,
    tag: &RegistryReference,
    targets: &[(DeployRequest, String)],
) -> Result<BTreeMap<String, Box<dyn FunctionApi>>> {
    let bootstraps = crate::bootstrap::per_architecture::inspect_bootstraps(&args.bootstraps)?;
    let mut available: Vec<_> = bootstraps.iter().map(|b| b.architecture).collect();
    available.sort();
    available.dedup();
    if let Some(wanted) = args.deploy_architecture
        && !available.contains(&wanted)
    {
        return Err(Error::usage(format!(
            "--deploy-architecture {wanted}: the build makes no {wanted} image (no --bootstrap \
             for it)"
        ))
        .hint("add --bootstrap for that architecture, or drop --deploy-architecture"));
    }
    let shown = tag.to_string();
    let mut apis: BTreeMap<String, Box<dyn FunctionApi>> = BTreeMap::new();
    for (request, region) in targets {
        if !apis.contains_key(region) {
            apis.insert(region.clone(), crate::deploy::connect(region)?);
        }
        crate::deploy::flow::preflight(
            apis[region].as_ref(),
            request,
            crate::deploy::decide::PackageKind::Image,
            &available,
            crate::deploy::decide::PackageSource::Image(&shown),
            region,
        )?;
    }
    Ok(apis)
}

impl BuildArgs {
    /// With `--deploy`: the ECR tag the functions are given images from (the first ECR
    /// `--tag`), and each function's request and region, checked before anything is built.
    /// Errors (usage): deploy flags without `--deploy`; no ECR `--tag`; a function in another
    /// region than the image.
    #[allow(clippy::type_complexity)]
    fn deployments(&self) -> Result<Option<(RegistryReference, Vec<(DeployRequest, String)>)>> {
        let release = &self.release;
        if self.deploy.is_empty() {
            if release.publish || release.alias.is_some() || release.no_wait {
                return Err(Error::usage(
                    "--publish, --alias and --no-wait apply to a deployment: add --deploy FUNCTION",
                ));
            }
            return Ok(None);
        }
        crate::deploy::available()?;
        let tag = self
            .tags
            .iter()
            .find(|tag| crate::credentials::ecr::EcrRegistry::from_host(&tag.registry).is_some())
            .or(self.tags.first())
            .ok_or_else(|| {
                Error::usage(
                    "--deploy: the image must be pushed to ECR first, and no --tag was given",
                )
                .hint("add --tag ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG")
            })?;
        let image_region = ecr_region(tag, "--tag")?;
        let mut targets = Vec::new();
        let mut functions: Vec<&String> = Vec::new();
        for function in &self.deploy {
            if !functions.contains(&function) {
                functions.push(function);
            }
        }
        for function in functions {
            let region = resolve_region(
                self.registry.region.as_deref(),
                function,
                Some(&image_region),
            )?;
            decide::check_image_region(&tag.to_string(), &image_region, &region)?;
            let request = DeployRequest {
                function: function.clone(),
                create: self.create,
                role: self.role.clone(),
                architecture: self.deploy_architecture,
                architecture_flag: "--deploy-architecture",
                architecture_for_create_only: true,
                publish: release.publish || release.alias.is_some(),
                alias: release.alias.clone(),
                wait: !release.no_wait,
                quiet: self.registry.quiet || self.json,
                ..DeployRequest::default()
            };
            targets.push((request, region));
        }
        Ok(Some((tag.clone(), targets)))
    }

    /// The build these flags ask for. Reads `SOURCE_DATE_EPOCH` and, with `--password-stdin`,
    /// stdin. Errors (usage): a badly named base mirror, a bad timestamp, malformed credentials.
    pub fn plan(&self) -> Result<Plan> {
        // A base mirror named badly is refused before anything is read or pulled.
        crate::catalog::mirror()?;
        let timestamp = BuildTimestamp::from_environment()?;
        let creds = self
            .password_stdin
            .credential("--creds", self.creds.as_deref())?;
        let base_creds = credential_flag("--base-creds", self.base_creds.as_deref())?
            .map(|credential| (credential, "--base-creds"));
        Ok(Plan {
            bootstraps: self.bootstraps.clone(),
            base: self.base.clone(),
            base_glibc: self.base_glibc,
            skip_checks: self.checks.skip_checks.clone(),
            handler: self.handler.clone(),
            env: self.env.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            includes: self.includes.clone(),
            lambda_layers: self.layers.clone(),
            format: self.format.map(|format| match format {
                FormatArg::Oci => ImageFormat::Oci,
                FormatArg::Docker => ImageFormat::Docker,
            }),
            tags: self.tags.clone(),
            output: self.output.clone(),
            arch_tags: !self.no_arch_tags,
            offline: self.offline,
            timestamp,
            registries: RegistryAccess {
                creds,
                base_creds,
                insecure_registries: self.registry.insecure_registries.clone(),
                cache_dir: self.registry.cache_dir.clone(),
                quiet: self.registry.quiet,
                ecr_tokens: self.registry.ecr_tokens(),
            },
        })
    }
}
