//! Runs one program in an unpacked image's root filesystem the way Lambda runs a container
//! image's entrypoint, with Linux namespaces and no container runtime: the tree read-only as `/`,
//! a private `/tmp` of the function's ephemeral storage size, a fresh `/proc`, a minimal `/dev`,
//! its own PID namespace (a tiny init as PID 1, the function as PID 2) and hostname, and the
//! function as uid/gid 993 (`sbx_user1051` on Lambda) without capabilities, limited to Lambda's
//! 1,024 open files and 1,024 processes ([`MAX_OPEN_FILES`], [`MAX_PROCESSES`]). The network is
//! the host's, so the function reaches the Runtime API on 127.0.0.1.
//!
//! This module is the parent's side ([`probe`], [`launch`]) and the child's side
//! ([`run_helper_if_asked`]: `lambda-image` re-run as a helper that sets the sandbox up, in
//! `helper.rs`, `helper/`). It is not for unpacking images (`crate::rootfs` makes the tree), not for choosing
//! the function's environment (the caller passes it exactly), and not a security boundary against
//! a hostile image: it keeps a well-behaved function from writing where Lambda would not let it,
//! and makes what it sees match Lambda's execution environment.
//!
//! Linux only: on other systems [`probe`] and [`launch`] answer an error and the helper does
//! nothing.

#[cfg(target_os = "linux")]
mod helper;

use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The hidden first argument that makes `lambda-image` the sandbox helper (see
/// [`run_helper_if_asked`]). Not a subcommand: clap never sees it.
pub const HELPER_ARGUMENT: &str = "__sandbox";

/// The uid a function runs as on Lambda (`sbx_user1051`, uid 993 as observed in Lambda's
/// execution environment).
pub const FUNCTION_UID: u32 = 993;
/// The gid the function runs as: 993 too (the primary group is not documented by AWS).
pub const FUNCTION_GID: u32 = 993;

/// The function's limit on open file descriptors, soft and hard (`RLIMIT_NOFILE`): 1,024, the
/// "File descriptors" quota of every execution environment (AWS Lambda Developer Guide, "Lambda
/// quotas", gettingstarted-limits.html). The kernel hands out the lowest free number, so with
/// descriptors 0 to 1023 open, `open(2)` fails with `EMFILE` ("Too many open files"), and no
/// descriptor numbered 1024 or more can be made (`dup2(2)`: `EBADF`).
pub const MAX_OPEN_FILES: u64 = 1024;

/// The function's limit on processes and threads, soft and hard (`RLIMIT_NPROC`): 1,024, the
/// "Execution processes/threads" quota of every execution environment (AWS Lambda Developer
/// Guide, "Lambda quotas", gettingstarted-limits.html). Beyond it `fork(2)`, `clone(2)` and
/// `pthread_create(3)` fail with `EAGAIN` ("Resource temporarily unavailable").
///
/// The kernel counts every process and thread of the *real uid*, not those of the sandbox:
/// run as root ([`Isolation::Root`]) that is host uid 993, so any other process of uid 993 on
/// the host counts against the function's 1,024 (and an `execve` of the entrypoint fails with
/// `EAGAIN` when uid 993 already has 1,024); run as another user ([`Isolation::UserNamespace`]),
/// it is uid 993 of the sandbox's own user namespace (Linux 5.14 and later count per user
/// namespace), which holds the sandbox's helper and PID 1 as well as the function, so the
/// function and its children get 1,022. On kernels before 5.14 the count is of every process
/// of your own uid on the host, your shell and desktop included.
pub const MAX_PROCESSES: u64 = 1024;

/// What to run in a root filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// An unpacked tree (`crate::rootfs`), mounted read-only as `/`. It must hold the directories
    /// `/proc`, `/dev` and `/tmp` (mount points); `/etc/resolv.conf` and `/etc/hosts`, when they
    /// exist as files, get the host's bound over them read-only.
    pub root: PathBuf,
    /// The image's `Entrypoint` + `Cmd`: `args[0]` absolute, or looked up on the `PATH` of
    /// [`env`](Self::env) inside the root (a name with a `/` is taken as it is, relative to the
    /// working directory).
    pub args: Vec<String>,
    /// Exactly the process's environment, in order.
    pub env: Vec<(String, String)>,
    /// The absolute working directory inside the root (the image's `WorkingDir`, `/` when it sets
    /// none).
    pub working_dir: String,
    /// The size of the `/tmp` tmpfs in MiB (Lambda's ephemeral storage: 512 by default,
    /// 512..=10240; Lambda developer guide, "Configure ephemeral storage").
    pub tmp_size_mb: u64,
    /// The hostname the function sees (`uname -n`).
    pub hostname: String,
}

/// How this machine makes the sandbox (what [`probe`] found).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// lambda-image runs as root: namespaces without a user namespace, and the function gets
    /// uid/gid 993 through setgroups/setgid/setuid. The tree's files keep their owners.
    Root,
    /// An unprivileged user namespace mapping only uid/gid 993 to this user's uid/gid
    /// (`setgroups` denied): the tree's files, this user's, appear as 993's.
    UserNamespace,
}

/// What the helper reads on its stdin: a spec to run, or the same set-up with nothing run at
/// the end (for [`probe`]).
#[derive(Debug, Serialize, Deserialize)]
struct HelperRequest {
    spec: SandboxSpec,
    /// Set everything up, then exit 0 instead of starting `spec.args`.
    #[serde(default)]
    probe: bool,
}

/// Exit status of the helper when the sandbox cannot be set up (a namespace, a mount, the
/// hostname, the uid, a resource limit). Docker's convention for "the container could not be
/// started".
pub const SETUP_FAILED: i32 = 125;
/// Exit status when the image's working directory cannot be entered: its `WorkingDir` is
/// missing in the image, not a directory, not absolute, or not searchable by uid 993. Lambda
/// fails such an image's init with `Runtime.InvalidWorkingDir` (the error type of AWS's Runtime
/// Interface Emulator, `fatalerror.InvalidWorkingDir`). No convention names this failure: 122
/// is next below xargs' 123, timeout's 124 and Docker's 125, so a runtime is unlikely to exit
/// with it for a reason of its own.
pub const INVALID_WORKING_DIR: i32 = 122;
/// Exit status when the entrypoint exists but cannot be executed (the shell's convention).
pub const CANNOT_EXECUTE: i32 = 126;
/// Exit status when the entrypoint (or its interpreter) is missing (the shell's convention).
pub const NOT_FOUND: i32 = 127;

/// How [`launch`] and [`probe`] would isolate the function here, from our effective uid
/// (root: [`Isolation::Root`]; anyone else: [`Isolation::UserNamespace`]). Whether the kernel
/// allows it is what [`probe`] finds out.
pub fn isolation_for_this_user() -> Isolation {
    #[cfg(target_os = "linux")]
    {
        if rustix::process::geteuid().is_root() {
            Isolation::Root
        } else {
            Isolation::UserNamespace
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Isolation::UserNamespace
    }
}

/// Whether and how this machine can make the sandbox: as root, [`Isolation::Root`]; otherwise
/// an unprivileged user namespace, [`Isolation::UserNamespace`]. Probes by starting the helper
/// on an empty tree that does the whole set-up (namespaces, uid/gid maps, mounts, pivot_root,
/// hostname, the uid change) and exits 0 instead of running anything, so whatever stops it
/// (`user.max_user_namespaces` = 0, AppArmor's `kernel.apparmor_restrict_unprivileged_userns`,
/// a seccomp filter, a container without `CAP_SYS_ADMIN`) is found before an invocation.
///
/// Errors (kind `Failure`, exit 1): what the kernel refused, as the helper reported it, with a
/// hint of what to do (run as root, or which sysctl to change). On systems other than Linux:
/// "invoke --image runs images with Linux namespaces: Linux only".
pub fn probe() -> Result<Isolation> {
    #[cfg(target_os = "linux")]
    {
        helper::probe()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(linux_only())
    }
}

/// The command that runs `spec`, and the bytes to write to its stdin (then close it): this
/// executable (`/proc/self/exe`, so a binary replaced on disk since it started still runs itself)
/// re-run with the hidden first argument [`HELPER_ARGUMENT`], an empty environment, and the spec
/// as JSON on its stdin: never on argv or in its environment, because the environment holds AWS
/// credentials and argv is readable by every user in `/proc`.
///
/// The caller adds stdout/stderr and the process group, then starts it with [`spawn`]; stdin is
/// already piped. The helper exits with the function's status (or is killed by the same signal),
/// or with [`NOT_FOUND`], [`CANNOT_EXECUTE`], [`INVALID_WORKING_DIR`] or [`SETUP_FAILED`] after
/// one `lambda-image: …` line on stderr. It dies with the thread that spawned it (`PR_SET_PDEATHSIG`), which [`spawn`] makes
/// a thread that lives as long as lambda-image, and everything in the sandbox dies with it.
///
/// Errors: kind `Failure` when the spec cannot be serialized; on systems other than Linux, the
/// Linux-only error of [`probe`].
pub fn launch(spec: &SandboxSpec) -> Result<(Command, Vec<u8>)> {
    #[cfg(target_os = "linux")]
    {
        helper_command(&HelperRequest {
            spec: spec.clone(),
            probe: false,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = spec;
        Err(linux_only())
    }
}

/// Starts `command` (a helper's, from [`launch`]) from one thread that lives as long as this
/// process, and returns the child. The helper asks the kernel for SIGKILL when its parent dies
/// (`PR_SET_PDEATHSIG`), and the kernel takes the *thread* that spawned it as the parent
/// (`prctl(2)`): a helper spawned from a thread that ends (an HTTP request's, after a restart)
/// would be killed with it. Spawned from this thread, a sandbox lives exactly as long as
/// lambda-image, and still dies when lambda-image is killed.
///
/// Errors: the `spawn` error; `Other` when the spawning thread cannot be started.
pub fn spawn(command: Command) -> std::io::Result<std::process::Child> {
    use std::sync::Mutex;
    use std::sync::mpsc::{Sender, channel};

    type Request = (Command, Sender<std::io::Result<std::process::Child>>);
    static SPAWNER: Mutex<Option<Sender<Request>>> = Mutex::new(None);

    let (reply, answer) = channel();
    {
        let mut spawner = SPAWNER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if spawner.is_none() {
            let (requests, received) = channel::<Request>();
            std::thread::Builder::new()
                .name("sandbox-spawner".into())
                .spawn(move || {
                    // Never ends: the sender is kept in SPAWNER for the life of the process.
                    for (mut command, reply) in received {
                        let _ = reply.send(command.spawn());
                    }
                })?;
            *spawner = Some(requests);
        }
        if let Some(requests) = spawner.as_ref() {
            requests
                .send((command, reply))
                .map_err(|_| std::io::Error::other("the sandbox's spawning thread has ended"))?;
        }
    }
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the sandbox's spawning thread has ended"))?
}

/// The helper's command line and stdin for `request`.
#[cfg(target_os = "linux")]
fn helper_command(request: &HelperRequest) -> Result<(Command, Vec<u8>)> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    let input = serde_json::to_vec(request)
        .map_err(|error| Error::failure(format!("cannot describe the sandbox: {error}")))?;
    let mut command = Command::new("/proc/self/exe");
    command
        .arg0("lambda-image")
        .arg(HELPER_ARGUMENT)
        .env_clear()
        .stdin(Stdio::piped());
    Ok((command, input))
}

/// Called first thing in `main`, before the command line is parsed: when the first argument is
/// [`HELPER_ARGUMENT`], reads a spec from stdin, runs it and exits with the function's status
/// (never returns); otherwise returns at once.
pub fn run_helper_if_asked() {
    let mut arguments = std::env::args_os().skip(1);
    if arguments
        .next()
        .is_some_and(|first| first == HELPER_ARGUMENT)
    {
        #[cfg(target_os = "linux")]
        helper::run();
        #[cfg(not(target_os = "linux"))]
        {
            eprintln!("lambda-image: {}", linux_only().message());
            std::process::exit(SETUP_FAILED);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn linux_only() -> Error {
    Error::failure("invoke --image runs images with Linux namespaces: Linux only").hint(
        "run it on Linux (a VM or a Linux CI runner), or run the image with a container runtime",
    )
}

#[cfg(test)]
mod tests;
