//! The bootstrap as a child process: started in a process group of its own with exactly the
//! environment it is given, its stdout and stderr (the function's logs) on lambda-image's
//! stderr, and killed as a whole group, so nothing it started outlives it. The bootstrap is a
//! program on this machine or an image's entrypoint in a sandbox ([`Launch`]); a sandbox's
//! helper stays in the group, and everything inside the sandbox dies with it.
//!
//! A watcher thread reports the exit as a [`Notice::Exited`] without reaping the process: the
//! process id, and so the group id, cannot be reused until [`BootstrapProcess::stop`] has
//! killed the group and reaped the leader.
//!
//! Before a sandbox is started, lambda-image makes itself a child subreaper (prctl(2)
//! `PR_SET_CHILD_SUBREAPER`): the sandbox's PID 1, whose parent (the helper) dies with it when
//! the group is killed, is then reparented to lambda-image rather than to this machine's init,
//! and reaped with the group ([`reap_group`]), so that a long `serve` run as a container's
//! PID 1, or under an init that does not reap, does not pile up zombies (as
//! PikoCI/pikoci#681's runner did).

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use super::invocation::Notice;
use crate::error::{Error, Result};
use crate::sandbox::SandboxSpec;

/// What to start as the bootstrap.
#[derive(Clone, Copy, Debug)]
pub enum Launch<'a> {
    /// A program on this machine, started with exactly `environment`, in the current
    /// directory, stdin empty.
    Program {
        path: &'a Path,
        environment: &'a [(String, String)],
    },
    /// An image's entrypoint in a sandbox ([`crate::sandbox::launch`]): the helper gets the
    /// spec on its stdin; the entrypoint gets the spec's environment and an empty stdin.
    Sandbox(&'a SandboxSpec),
}

/// The process group of the bootstrap running now (0: none), for [`kill_running_bootstrap`].
/// A lambda-image process runs at most one bootstrap at a time.
static RUNNING_GROUP: AtomicI32 = AtomicI32::new(0);

/// A running bootstrap.
pub struct BootstrapProcess {
    child: Child,
    watcher: Option<JoinHandle<()>>,
}

impl BootstrapProcess {
    /// Starts `launch` in a process group of its own, its stdout and stderr on lambda-image's
    /// stderr, and reports its exit on `notices` ([`Notice::Exited`]).
    ///
    /// Errors: kind `Bootstrap` when the program cannot be started (with what to do); kind
    /// `Failure` when the sandbox's helper cannot be started or given its spec.
    pub fn spawn(launch: Launch<'_>, notices: Sender<Notice>) -> Result<Self> {
        let logs = io::stderr().as_fd().try_clone_to_owned().map_err(|error| {
            Error::failure(format!("cannot pass stderr to the bootstrap: {error}"))
        })?;
        let (mut command, input) = match launch {
            Launch::Program { path, environment } => {
                let mut command = Command::new(path);
                command
                    .env_clear()
                    .envs(environment.iter().map(|(key, value)| (key, value)))
                    .stdin(Stdio::null());
                (command, None)
            }
            Launch::Sandbox(spec) => {
                // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER takes an integer flag and changes
                // only which process orphaned descendants are reparented to. If it fails, they
                // go to init as before.
                unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
                let (command, input) = crate::sandbox::launch(spec)?;
                (command, Some(input))
            }
        };
        command
            .stdout(Stdio::from(logs))
            .stderr(Stdio::inherit())
            .process_group(0);
        let spawned = match launch {
            Launch::Program { .. } => command.spawn(),
            // From a thread that outlives this one: the helper dies with its spawning thread.
            Launch::Sandbox(_) => crate::sandbox::spawn(command),
        };
        let mut child = spawned.map_err(|error| match launch {
            Launch::Program { path, .. } => spawn_error(path, &error),
            Launch::Sandbox(_) => Error::failure(format!(
                "cannot start the sandbox (lambda-image itself, /proc/self/exe): {error}"
            )),
        })?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            // The helper reads its spec to the end before anything else; closing stdin ends it.
            if let Err(error) = stdin.write_all(&input) {
                // SAFETY: as in `kill_and_reap`: the group is the child's, not yet reaped.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                return Err(Error::failure(format!(
                    "cannot give the sandbox its spec: {error}"
                )));
            }
        }
        let pid = child.id();
        RUNNING_GROUP.store(pid as i32, Ordering::SeqCst);
        let watcher = std::thread::Builder::new()
            .name("bootstrap-watcher".into())
            .spawn(move || {
                if let Some(status) = wait_without_reaping(pid) {
                    let _ = notices.send(Notice::Exited { pid, status });
                }
            })
            .map_err(|error| Error::failure(format!("cannot watch the bootstrap: {error}")))?;
        Ok(Self {
            child,
            watcher: Some(watcher),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the whole process group (if still running) and reaps the bootstrap.
    pub fn stop(mut self) {
        self.kill_and_reap();
    }

    fn kill_and_reap(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) with a negative pid signals that process group; the group is ours
        // (process_group(0) at spawn) and cannot have been reused, because its leader is not
        // reaped before `wait` below.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.wait();
        reap_group(pid);
        let _ = RUNNING_GROUP.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

impl Drop for BootstrapProcess {
    fn drop(&mut self) {
        if self.watcher.is_some() {
            self.kill_and_reap();
        }
    }
}

/// Kills the process group of the bootstrap running now, if any. Safe to call from a signal
/// watcher while another thread waits for an invocation. Whether there was one to kill.
pub fn kill_running_bootstrap() -> bool {
    let group = RUNNING_GROUP.load(Ordering::SeqCst);
    if group > 0 {
        // SAFETY: as in `kill_and_reap`: the group's leader is not reaped while it is registered.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    group > 0
}

/// Reaps the processes of the killed process group `group` that are children of lambda-image
/// now: those whose parent in the group died first (the sandbox's PID 1, reparented here as to a
/// subreaper). Only that group's, whose leader is reaped already, so no other child's status is
/// taken from the `wait` that waits for it. Returns once none is left, or after about a second
/// (a process that does not die at SIGKILL, stuck in the kernel, is left to init).
fn reap_group(group: i32) {
    for _ in 0..100 {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`, which outlives the call; a negative pid waits
        // for a child in that process group.
        match unsafe { libc::waitpid(-group, &mut status, libc::WNOHANG) } {
            // ECHILD: no child of ours is left in the group (or another error: nothing to do).
            -1 => return,
            // Some are still dying.
            0 => std::thread::sleep(std::time::Duration::from_millis(10)),
            _reaped => {}
        }
    }
}

/// Waits until `pid` exits, leaving it a zombie for `Child::wait` to reap.
fn wait_without_reaping(pid: u32) -> Option<ExitStatus> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`, which outlives the call.
        let result = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if result == 0 {
            // SAFETY: waitid succeeded for a child, so the SIGCHLD fields of `info` are set.
            let status = unsafe { info.si_status() };
            let raw = match info.si_code {
                libc::CLD_EXITED => (status & 0xff) << 8,
                libc::CLD_DUMPED => status | 0x80,
                _ => status,
            };
            return Some(ExitStatus::from_raw(raw));
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// Says how an exit status reads in Lambda's `Runtime.ExitError` messages.
pub fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(libc::SIGKILL)) => "signal: killed".to_owned(),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => status.to_string(),
    }
}

fn spawn_error(path: &Path, error: &io::Error) -> Error {
    let message = format!("cannot start bootstrap {}: {error}", path.display());
    match error.raw_os_error() {
        Some(libc::EACCES) => Error::bootstrap(message).hint(format!(
            "make it executable: chmod +x {} (lambda-image build does that in the image)",
            path.display()
        )),
        Some(libc::ENOENT) => Error::bootstrap(message)
            .hint("for a #! script, the interpreter on its first line must exist on this machine"),
        Some(libc::ENOEXEC) => Error::bootstrap(message)
            .hint("this machine cannot execute it; check `file` on the bootstrap"),
        _ => Error::bootstrap(message),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;
    use std::time::Duration;

    use super::*;

    fn program(path: &Path) -> Launch<'_> {
        Launch::Program {
            path,
            environment: &[],
        }
    }

    #[test]
    fn an_exit_is_reported_with_its_pid() {
        let (sender, notices) = channel();
        // `/bin/sh` with no script reads stdin, which is empty: it exits 0 at once.
        let quick = BootstrapProcess::spawn(program(Path::new("/bin/sh")), sender.clone()).unwrap();
        match notices.recv_timeout(Duration::from_secs(10)) {
            Ok(Notice::Exited { pid, status }) => {
                assert_eq!(pid, quick.pid());
                assert_eq!(describe_exit(status), "exit status 0");
            }
            other => panic!("expected an exit, got {other:?}"),
        }
        quick.stop();

        let missing = BootstrapProcess::spawn(program(Path::new("/nonexistent/bootstrap")), sender);
        assert!(
            missing
                .err()
                .unwrap()
                .to_string()
                .contains("cannot start bootstrap")
        );
    }

    #[test]
    fn stop_kills_what_the_bootstrap_started() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("bootstrap");
        let pid_file = directory.path().join("sleep.pid");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsleep 60 &\necho $! > {}\nwait\n",
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (sender, _notices) = channel();
        let process = BootstrapProcess::spawn(program(&script), sender).unwrap();
        let sleep_pid = (0..200)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(10));
                std::fs::read_to_string(&pid_file)
                    .ok()
                    .filter(|pid| pid.ends_with('\n'))
            })
            .expect("the script starts sleep");
        let sleep_proc = Path::new("/proc").join(sleep_pid.trim());
        assert!(sleep_proc.exists());
        process.stop();
        // Killed, then reaped by init (or a zombie of init for a moment).
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::fs::read_to_string(sleep_proc.join("stat"))
                .map_or(true, |stat| stat.contains(") Z "))
        });
        assert!(gone, "the bootstrap's child survived stop()");
    }

    #[test]
    fn exit_descriptions_match_lambda() {
        assert_eq!(describe_exit(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert_eq!(
            describe_exit(ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(libc::SIGSEGV)),
            "signal: 11"
        );
    }
}
