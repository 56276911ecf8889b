//! `lambda-image build`: bootstraps + base → one image per architecture (+ index) → output.

use clap::{Args, ValueEnum};

use crate::assemble::{ImageSettings, NewLayer, assemble};
use crate::bootstrap::{self, Bootstrap, BootstrapKind, BootstrapSpec};
use crate::error::{Error, Result};
use crate::image::ImageFormat;
use crate::image::config::KeyValue;
use crate::layer::contents::BOOTSTRAP_PATH;
use crate::layer::writer::write_layer_to_temp_file;
use crate::layer::{IncludeSpec, LayerContents, LayerDigests};
use crate::platform::Architecture;
use crate::reference::ImageLocation;
use crate::report::{BuildReport, ReportedBase, ReportedImage};
use crate::timestamp::BuildTimestamp;
use crate::transport::sink::{plan_output, write_output};
use crate::transport::source::open_base;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A compiled bootstrap; its architecture is read from the ELF header. Repeat for each
    /// architecture. Use ARCH=PATH (amd64= or arm64=) to state it, e.g. for a #! script.
    #[arg(long = "bootstrap", value_name = "[ARCH=]PATH", required = true)]
    pub bootstraps: Vec<BootstrapSpec>,

    /// The base image: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG].
    #[arg(long, value_name = "REF")]
    pub base: ImageLocation,

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

    /// Manifest media types to write; default: the base's.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// Where to write: oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG].
    #[arg(long, short = 'o', value_name = "REF")]
    pub output: ImageLocation,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Oci,
    Docker,
}

/// Runs the build and returns what to report.
pub fn run(args: &BuildArgs) -> Result<BuildReport> {
    let timestamp = BuildTimestamp::from_environment()?;
    if args.handler.trim().is_empty() {
        return Err(Error::usage("--handler must not be empty"));
    }

    let bootstraps = inspect_bootstraps(&args.bootstraps)?;
    for bootstrap in &bootstraps {
        if let BootstrapKind::Script { interpreter } = &bootstrap.kind {
            eprintln!(
                "lambda-image: note: bootstrap {} is a script run by `{interpreter}`; the base must provide it",
                bootstrap.path.display()
            );
        }
    }
    let architectures: Vec<Architecture> = bootstraps.iter().map(|b| b.architecture).collect();
    let contents = bootstraps
        .iter()
        .map(|bootstrap| {
            let mut contents = LayerContents::with_bootstrap(&bootstrap.path, bootstrap.size)?;
            args.includes
                .iter()
                .try_for_each(|include| contents.include(include))?;
            Ok(contents)
        })
        .collect::<Result<Vec<_>>>()?;

    let output = plan_output(&args.output, &architectures)?;
    let base = open_base(&args.base, &architectures)?;
    let format = match args.format {
        Some(FormatArg::Oci) => ImageFormat::Oci,
        Some(FormatArg::Docker) => ImageFormat::Docker,
        None => base.format,
    };
    if format == ImageFormat::Docker && !args.annotations.is_empty() {
        return Err(Error::usage(
            "--annotation needs OCI manifests, and this build writes Docker v2 schema 2 manifests \
             (from --format docker, or a Docker-format base), which have no annotations",
        )
        .hint("add --format oci, or drop the annotations"));
    }

    // New layers are written beside the output, not in /tmp (often a small tmpfs), and removed
    // when the build ends.
    let scratch = tempfile::Builder::new()
        .prefix(".lambda-image-")
        .tempdir_in(output.directory()?)
        .map_err(|error| Error::output(format!("cannot create a temporary directory: {error}")))?;
    let layers =
        write_layers_in_parallel(&architectures, &contents, timestamp.seconds, scratch.path())?;
    let new_layers = layers
        .iter()
        .map(|(architecture, file, digests)| NewLayer {
            architecture: *architecture,
            digests: digests.clone(),
            file: file.path().to_owned(),
        })
        .collect();

    let settings = ImageSettings {
        format,
        cmd: vec![args.handler.clone()],
        env: &args.env,
        labels: &args.labels,
        annotations: &args.annotations,
        created: timestamp.rfc3339(),
        created_by: created_by(&args.includes),
    };
    let assembled = assemble(&base, new_layers, &settings)?;
    let written = write_output(&output, &assembled, &base)?;

    Ok(BuildReport {
        images: written
            .images
            .into_iter()
            .map(|(architecture, digest, reference)| ReportedImage {
                architecture,
                digest: digest.to_string(),
                reference,
            })
            .collect(),
        index: written
            .index
            .map(|(digest, reference)| crate::report::ReportedIndex {
                digest: digest.to_string(),
                reference,
            }),
        base: ReportedBase {
            reference: base.reference.clone(),
            digest: base.digest.to_string(),
        },
    })
}

/// Inspects every bootstrap, refusing two for one architecture.
fn inspect_bootstraps(specs: &[BootstrapSpec]) -> Result<Vec<Bootstrap>> {
    let mut bootstraps: Vec<Bootstrap> = Vec::new();
    for spec in specs {
        let bootstrap = bootstrap::inspect(spec)?;
        if let Some(other) = bootstraps
            .iter()
            .find(|b| b.architecture == bootstrap.architecture)
        {
            return Err(Error::bootstrap(format!(
                "two bootstraps for {}: {} and {}",
                bootstrap.architecture,
                other.path.display(),
                bootstrap.path.display()
            ))
            .hint("give one bootstrap per architecture (one amd64, one arm64)"));
        }
        bootstraps.push(bootstrap);
    }
    bootstraps.sort_by_key(|b| b.architecture);
    Ok(bootstraps)
}

type WrittenLayer = (Architecture, tempfile::NamedTempFile, LayerDigests);

/// Writes every architecture's layer at once: compression is the slow part of a build.
fn write_layers_in_parallel(
    architectures: &[Architecture],
    contents: &[LayerContents],
    mtime: u64,
    scratch: &std::path::Path,
) -> Result<Vec<WrittenLayer>> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = architectures
            .iter()
            .zip(contents)
            .map(|(&architecture, contents)| {
                scope.spawn(move || {
                    write_layer_to_temp_file(contents, mtime, scratch)
                        .map(|(file, digests)| (architecture, file, digests))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err(Error::failure("a layer writer thread panicked")))
            })
            .collect()
    })
}

/// The history entry's `created_by`: what went into the layer, with no machine-specific paths.
fn created_by(includes: &[IncludeSpec]) -> String {
    let mut text = format!("lambda-image build: bootstrap at {BOOTSTRAP_PATH}");
    for include in includes {
        text.push_str(&format!(", include {}", include.destination));
    }
    text
}
