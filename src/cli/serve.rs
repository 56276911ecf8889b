//! `lambda-image serve`: a local Lambda that stays up, answering the Runtime Interface
//! Emulator's `POST /2015-03-31/functions/function/invocations` on 127.0.0.1, one invocation at
//! a time, like one execution environment.
//!
//! With `--bootstrap`, lambda-image runs the bootstrap and keeps it warm between invocations
//! (started at once, started again after it dies or times out); with `--image`, the image, the
//! way Lambda runs it ([`super::image_function`]), kept warm the same way. With `--external`, it runs
//! nothing: the Runtime API is served on the same port for a runtime started elsewhere (e.g. in
//! a container on the host network) with `AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT`.
//! SIGINT or SIGTERM stop it, killing the bootstrap first; before it is up (an image being
//! unpacked), they end it as they end `invoke` (exit 130, 143), its temporaries removed.

use std::sync::{Arc, Mutex};

use clap::{ArgGroup, Args};

use super::function::{FunctionArgs, LocalFunction, Runtime, bind_loopback};
use super::image_function::ImageArgs;
use super::invoke::runtime;
use crate::bootstrap::BootstrapSpec;
use crate::emulator::http::HttpServer;
use crate::emulator::invoke_endpoint::{INVOCATIONS_PATH, routes};
use crate::emulator::log::log_line;
use crate::emulator::signals::{exit_on_termination, wait_for_termination};
use crate::error::Result;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("runtime").required(true).args(["bootstrap", "external", "image"])))]
pub struct ServeArgs {
    /// The bootstrap to run and keep warm (ARCH=PATH for a #! script, as for build).
    #[arg(long, value_name = "[ARCH=]PATH")]
    pub bootstrap: Option<BootstrapSpec>,

    #[command(flatten)]
    pub image: ImageArgs,

    /// Run no bootstrap: serve the Runtime API on the same port for a runtime started
    /// elsewhere with AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT (e.g. the image, under runc).
    #[arg(long)]
    pub external: bool,

    /// The loopback port to listen on (127.0.0.1).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,

    #[command(flatten)]
    pub function: FunctionArgs,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    // Until it listens, a signal ends the run as interrupted, removing the tree being unpacked.
    let starting = exit_on_termination(|signal| super::outcome::interrupted(signal, false, false))?;
    // A port in use is refused before an image is pulled and unpacked.
    let listener = bind_loopback(args.port)?;
    let runtime = runtime(args.bootstrap.as_ref(), &args.image, &args.function)?;
    let started_what = match &runtime {
        Runtime::Bootstrap(bootstrap) => Some(format!("bootstrap {}", bootstrap.display())),
        Runtime::Image(image) => Some(format!(
            "image {} ({}) as `{}`",
            image.reference,
            image.architecture,
            image.args.join(" ")
        )),
        Runtime::External => None,
    };
    let LocalFunction {
        listener,
        address,
        mut environment,
        api,
        lambda_environment,
    } = args.function.local_function(runtime, listener)?;
    let timeout = args.function.timeout();
    let started = environment.start()?;
    let environment = Arc::new(Mutex::new(environment));
    let server = HttpServer::start(
        listener,
        routes(api, Some((Arc::clone(&environment), timeout))),
    )?;

    log_line!("lambda-image: listening on http://{address}{INVOCATIONS_PATH}");
    match (&started_what, started) {
        (Some(what), Some(pid)) => {
            log_line!("lambda-image: {what} started (pid {pid})");
        }
        _ => {
            log_line!(
                "lambda-image: Runtime API at {address}; start the runtime with this environment:"
            );
            for (key, value) in lambda_environment.for_external_runtime(address) {
                log_line!("  {key}={value}");
            }
        }
    }
    log_line!("lambda-image: Ctrl-C stops");

    let signal = wait_for_termination(Some(starting))?;
    log_line!("lambda-image: stopping (signal {signal})");
    drop(server);
    Ok(())
}
