//! The flags `invoke` and `serve` share to describe the function (handler, timeout, memory,
//! environment), and how they become a checked bootstrap, or an image ready to run
//! ([`super::image_function`]), and a Lambda environment.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::bootstrap::checks::{BaseKnowledge, CheckName, check_bootstrap, enforce};
use crate::bootstrap::{self, BootstrapSpec};
use crate::emulator::execution_environment::{ExecutionEnvironment, RuntimeSource};
use crate::emulator::host_architecture::check_runs_here;
pub use crate::emulator::http::bind_loopback;
use crate::emulator::runtime_api::RuntimeApi;
use crate::emulator::variables::{FunctionSettings, LambdaEnvironment};
use crate::error::{Error, Result};
use crate::findings::Finding;
use crate::image::config::KeyValue;

use super::image_function::PreparedImage;

/// Lambda's largest function timeout, in seconds ("Function timeout: 900 seconds (15 minutes)",
/// Lambda quotas page).
const MAX_TIMEOUT_SECONDS: u64 = 900;

#[derive(Debug, Args)]
pub struct FunctionArgs {
    /// The handler name, given to a bootstrap as _HANDLER [default: bootstrap]. With --image,
    /// it replaces the image's Cmd (as a function's ImageConfig.Command does), which the
    /// provided bases' entrypoint exports as _HANDLER.
    #[arg(long, value_name = "NAME")]
    pub handler: Option<String>,

    /// How long one invocation may run, from when the runtime takes the event, or from the
    /// restart when an init over 10 s is retried, as Lambda does (1 to 900).
    #[arg(long, value_name = "SECONDS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECONDS))]
    pub timeout: u64,

    /// The memory size the function is told (AWS_LAMBDA_FUNCTION_MEMORY_SIZE; not enforced).
    #[arg(long, value_name = "MB", default_value_t = 128)]
    pub memory: u32,

    /// An environment variable for the function (repeatable); replaces lambda-image's value.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<KeyValue>,
}

impl FunctionArgs {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The environment for a bootstrap run from `task_root` with its files in `runtime_dir`.
    pub fn lambda_environment(
        &self,
        task_root: PathBuf,
        runtime_dir: PathBuf,
    ) -> Result<LambdaEnvironment> {
        let settings = FunctionSettings {
            handler: self
                .handler
                .clone()
                .unwrap_or_else(|| "bootstrap".to_owned()),
            memory_mb: self.memory,
            task_root,
            runtime_dir,
            overrides: self.env.clone(),
        };
        LambdaEnvironment::new(&settings, |key| std::env::var(key).ok())
    }
}

/// What runs the function.
pub enum Runtime {
    /// A bootstrap on this machine (checked with [`runnable_bootstrap`]).
    Bootstrap(PathBuf),
    /// An image, in a sandbox.
    Image(Box<PreparedImage>),
    /// Nothing: a runtime started elsewhere talks to the Runtime API.
    External,
}

/// A function ready to serve: its listener, execution environment and Runtime API.
pub struct LocalFunction {
    pub listener: TcpListener,
    pub address: SocketAddr,
    pub environment: ExecutionEnvironment,
    pub api: Arc<RuntimeApi>,
    pub lambda_environment: LambdaEnvironment,
}

impl FunctionArgs {
    /// Sets up an execution environment for `runtime`, served on `listener` (from
    /// [`bind_loopback`]: bound first, so a port in use is refused before an image is pulled
    /// and unpacked).
    pub fn local_function(&self, runtime: Runtime, listener: TcpListener) -> Result<LocalFunction> {
        let (task_root, runtime_dir) = match &runtime {
            Runtime::Bootstrap(bootstrap) => (task_root()?, runtime_dir(bootstrap)),
            // What the image sets; an image keeps its own anyway.
            Runtime::Image(_) | Runtime::External => {
                (PathBuf::from("/var/task"), PathBuf::from("/var/runtime"))
            }
        };
        let lambda_environment = self.lambda_environment(task_root, runtime_dir)?;
        let address = listener.local_addr().map_err(|error| {
            Error::failure(format!("cannot read the listening address: {error}"))
        })?;
        let source = match runtime {
            Runtime::Bootstrap(bootstrap) => RuntimeSource::Bootstrap {
                bootstrap,
                variables: lambda_environment.with_runtime_api(address),
            },
            Runtime::Image(image) => {
                let env = lambda_environment.for_image(&image.env, address);
                RuntimeSource::Image {
                    spec: image.sandbox_spec(env),
                    rootfs: std::sync::Arc::new(image.rootfs),
                }
            }
            Runtime::External => RuntimeSource::External,
        };
        let (environment, api) = ExecutionEnvironment::new(
            source,
            lambda_environment.function_arn(),
            self.timeout(),
            lambda_environment.memory_size(),
        );
        Ok(LocalFunction {
            listener,
            address,
            environment,
            api,
            lambda_environment,
        })
    }
}

/// A bootstrap checked the way `build` checks it and runnable on this machine, as an absolute
/// path (a bare `bootstrap` must not be looked up on PATH).
pub fn runnable_bootstrap(spec: &BootstrapSpec) -> Result<PathBuf> {
    let bootstrap = bootstrap::inspect(spec)?;
    // An `ARCH=` that contradicts the ELF is refused as `build` refuses it, even when this
    // machine could run the ELF: on Lambda, configured as ARCH, it would not start.
    let architecture: Vec<Finding> = check_bootstrap(
        &bootstrap,
        BaseKnowledge::default(),
        &[CheckName::Glibc, CheckName::Interpreter],
    )
    .into_iter()
    .filter(|finding| finding.check == CheckName::Architecture.name())
    .collect();
    enforce(&architecture)?;
    check_runs_here(&bootstrap)?;
    std::path::absolute(&bootstrap.path).map_err(|error| {
        Error::bootstrap(format!(
            "cannot resolve bootstrap path {}: {error}",
            bootstrap.path.display()
        ))
    })
}

/// The working directory, which a local run uses as `LAMBDA_TASK_ROOT` (Lambda's `/var/task`).
fn task_root() -> Result<PathBuf> {
    std::env::current_dir()
        .map_err(|error| Error::failure(format!("cannot read the working directory: {error}")))
}

/// The directory of `bootstrap`, a local run's `LAMBDA_RUNTIME_DIR` (Lambda's `/var/runtime`).
fn runtime_dir(bootstrap: &Path) -> PathBuf {
    bootstrap.parent().unwrap_or(Path::new("/")).to_path_buf()
}
