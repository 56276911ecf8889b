//! Stopping on SIGINT (Ctrl-C) and SIGTERM: the bootstrap runs in a process group of its own,
//! so the terminal's Ctrl-C does not reach it; lambda-image kills that group before it exits.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::log::log_line;
use super::process::kill_running_bootstrap;
use crate::error::{Error, Result};

/// Blocks until SIGINT or SIGTERM arrives, kills the running bootstrap, and returns the signal.
pub fn wait_for_termination() -> Result<i32> {
    let mut signals = termination_signals()?;
    let signal = signals.forever().next().unwrap_or(SIGTERM);
    kill_running_bootstrap();
    Ok(signal)
}

/// From now on, SIGINT or SIGTERM kill the running bootstrap and end lambda-image with
/// `128 + signal`, as a shell reports a process killed by it.
pub fn exit_on_termination() -> Result<()> {
    let mut signals = termination_signals()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                kill_running_bootstrap();
                log_line!("lambda-image: interrupted; the bootstrap was killed");
                std::process::exit(128 + signal);
            }
        })
        .map_err(|error| Error::failure(format!("cannot watch for signals: {error}")))?;
    Ok(())
}

fn termination_signals() -> Result<Signals> {
    Signals::new([SIGINT, SIGTERM])
        .map_err(|error| Error::failure(format!("cannot handle SIGINT/SIGTERM: {error}")))
}
