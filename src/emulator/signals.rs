//! Stopping on SIGINT (Ctrl-C) and SIGTERM: the bootstrap runs in a process group of its own,
//! so the terminal's Ctrl-C does not reach it; lambda-image kills that group before it exits.
//! `serve` waits for the signal ([`wait_for_termination`]) and stops cleanly; every other long
//! command ends as interrupted ([`exit_on_termination`]).

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

pub use super::process::kill_running_bootstrap;
use crate::error::{Error, Result};

/// Blocks until SIGINT or SIGTERM arrives, kills the running bootstrap, and returns the signal.
/// `until_now`, the [`exit_on_termination`] watcher of an earlier phase, is closed once this
/// one watches, so that no signal falls between the two.
pub fn wait_for_termination(until_now: Option<Handle>) -> Result<i32> {
    let mut signals = termination_signals()?;
    if let Some(watcher) = until_now {
        watcher.close();
    }
    let signal = signals.forever().next().unwrap_or(SIGTERM);
    kill_running_bootstrap();
    Ok(signal)
}

/// From now on, SIGINT or SIGTERM call `interrupted` with the signal, on a thread of its own.
/// `interrupted` must kill the running bootstrap ([`kill_running_bootstrap`], once it is sure
/// to be the one to report) and end the process (with `128 + signal`, as a shell reports a
/// process killed by it). The handle returned stops the watching when closed.
pub fn exit_on_termination(interrupted: impl FnOnce(i32) + Send + 'static) -> Result<Handle> {
    let mut signals = termination_signals()?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                interrupted(signal);
            }
        })
        .map_err(|error| Error::failure(format!("cannot watch for signals: {error}")))?;
    Ok(handle)
}

/// The name of a signal [`exit_on_termination`] and [`wait_for_termination`] handle.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

fn termination_signals() -> Result<Signals> {
    Signals::new([SIGINT, SIGTERM])
        .map_err(|error| Error::failure(format!("cannot handle SIGINT/SIGTERM: {error}")))
}
