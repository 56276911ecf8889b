//! The sandbox's child side: `lambda-image __sandbox`, reading a [`HelperRequest`] on stdin.
//! Three processes:
//!
//! 1. the helper (in lambda-image's PID namespace and in the bootstrap's process group) reads
//!    the spec, unshares the mount, PID and UTS namespaces (and a user namespace mapping only
//!    993 when not root), forks PID 1 and exits with the function's status;
//! 2. PID 1 of the new PID namespace mounts the tree read-only as `/` with its `/tmp`, `/proc`
//!    and `/dev`, sets the hostname, forks the function and stays as a tiny init (reaps every
//!    child, forwards SIGTERM/SIGINT, exits when the function exits, which makes the kernel kill
//!    the rest of the namespace);
//! 3. the function (PID 2) gets Lambda's limits, becomes uid/gid 993, enters the working
//!    directory and executes the entrypoint.
//!
//! Not for the parent's side (`super::launch`, `super::probe`), nor for deciding what runs.
//! Every failure before the entrypoint runs is one `lambda-image: …` line on stderr and an exit
//! status: [`NOT_FOUND`], [`CANNOT_EXECUTE`](super::CANNOT_EXECUTE), [`INVALID_WORKING_DIR`] or
//! [`SETUP_FAILED`].
//!
//! The mounts are in `mounts.rs`, the function's own process (uid change, `PATH` lookup,
//! `execve` and why it failed) in `entrypoint.rs`; this file makes the namespaces, runs PID 1
//! as an init, and holds the parent's trial run ([`probe`]).

mod entrypoint;
mod mounts;

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::process::{Signal, set_parent_process_death_signal};
use rustix::thread::UnshareFlags;

use super::{
    FUNCTION_GID, FUNCTION_UID, HelperRequest, INVALID_WORKING_DIR, Isolation, NOT_FOUND,
    SETUP_FAILED, SandboxSpec, isolation_for_this_user,
};
use crate::error::{Error, Result};
#[cfg(test)]
pub(super) use entrypoint::candidates;
use entrypoint::{become_function, execute};
use mounts::prepare_root;

/// The process SIGTERM and SIGINT are passed on to (0: none yet): PID 1 for the helper, the
/// function for PID 1.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

/// Why the sandbox stopped before the entrypoint ran: the exit status and the line for stderr.
#[derive(Debug)]
struct Failure {
    code: i32,
    message: String,
}

type Step<T> = std::result::Result<T, Failure>;

impl Failure {
    fn setup(what: &str, error: impl Into<io::Error>) -> Self {
        let error = error.into();
        Self {
            code: SETUP_FAILED,
            message: format!(
                "cannot set up the sandbox: {what}: {}{}",
                describe_errno(&error),
                setup_advice(&error)
            ),
        }
    }

    /// Prints the line and exits (`_exit`: this may be a forked child).
    fn exit(self) -> ! {
        let _ = io::stderr().write_all(format!("lambda-image: {}\n", self.message).as_bytes());
        exit_now(self.code)
    }
}

/// An errno as `strerror` words it, with its symbolic name where it is a common one.
fn describe_errno(error: &io::Error) -> String {
    let text = error.to_string();
    let text = text
        .rsplit_once(" (os error ")
        .map_or(text.as_str(), |(text, _)| text)
        .to_owned();
    let name = match error.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::EACCES) => "EACCES",
        Some(libc::ENOENT) => "ENOENT",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::EBUSY) => "EBUSY",
        Some(libc::ENOTDIR) => "ENOTDIR",
        Some(libc::EROFS) => "EROFS",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EUSERS) => "EUSERS",
        Some(libc::EAGAIN) => "EAGAIN",
        Some(libc::EMFILE) => "EMFILE",
        Some(number) => return format!("{text} (errno {number})"),
        None => return text,
    };
    format!("{text} ({name})")
}

/// What to do about a set-up step the kernel refused.
fn setup_advice(error: &io::Error) -> String {
    let root = isolation_for_this_user() == Isolation::Root;
    match (error.raw_os_error(), root) {
        (Some(libc::EPERM | libc::EACCES), true) => {
            "; lambda-image runs as root but lacks CAP_SYS_ADMIN (a container?): run it on the \
             host, or in a privileged container"
                .to_owned()
        }
        (Some(libc::EPERM | libc::EACCES), false) => {
            "; unprivileged user namespaces are refused here: run lambda-image as root (sudo), \
             or allow them (Ubuntu: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0; \
             Debian before 11: sysctl -w kernel.unprivileged_userns_clone=1; a container's \
             seccomp profile may forbid them too)"
                .to_owned()
        }
        (Some(libc::ENOSPC | libc::EUSERS), false) => {
            "; user namespaces are disabled or used up (user.max_user_namespaces): run \
             lambda-image as root (sudo), or sysctl -w user.max_user_namespaces=15000"
                .to_owned()
        }
        _ => String::new(),
    }
}

/// `_exit(2)`: no destructors, no atexit handlers (after fork, the parent owns those).
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it is always sound to call.
    unsafe { libc::_exit(code) }
}

/// The helper process: never returns.
pub(super) fn run() -> ! {
    match helper() {
        Ok(status) => end_like(status),
        Err(failure) => failure.exit(),
    }
}

/// Reads the request, makes the namespaces, starts PID 1 and returns the function's wait
/// status.
fn helper() -> Step<libc::c_int> {
    let mut input = Vec::new();
    io::stdin()
        .read_to_end(&mut input)
        .map_err(|error| Failure::setup("read the spec on stdin", error))?;
    let request: HelperRequest = serde_json::from_slice(&input).map_err(|error| Failure {
        code: SETUP_FAILED,
        message: format!("cannot read the sandbox spec on stdin: {error}"),
    })?;
    check_spec(&request.spec, request.probe)?;
    stdin_from_dev_null()?;
    set_parent_process_death_signal(Some(Signal::KILL)).map_err(|error| {
        Failure::setup("ask to die with lambda-image (PR_SET_PDEATHSIG)", error)
    })?;

    let isolation = isolation_for_this_user();
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let mut namespaces = UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWUTS;
    if isolation == Isolation::UserNamespace {
        namespaces |= UnshareFlags::NEWUSER;
    }
    // SAFETY: no FILES or FS flag, so no descriptor table or cwd is unshared under other
    // threads (and there are none: this runs before anything starts a thread).
    unsafe { rustix::thread::unshare_unsafe(namespaces) }.map_err(|error| {
        Failure::setup(
            "create the namespaces (unshare mount, PID, UTS and user namespaces)",
            error,
        )
    })?;
    if isolation == Isolation::UserNamespace {
        write_proc_file("/proc/self/setgroups", "deny")?;
        write_proc_file("/proc/self/uid_map", &format!("{FUNCTION_UID} {uid} 1\n"))?;
        write_proc_file("/proc/self/gid_map", &format!("{FUNCTION_GID} {gid} 1\n"))?;
    }

    let (mut status_reader, status_writer) =
        io::pipe().map_err(|error| Failure::setup("make a pipe", error))?;
    // SAFETY: the helper is single-threaded (it runs before `main` starts anything), so the
    // child may run any code; it ends with `_exit`.
    let init = unsafe { libc::fork() };
    if init < 0 {
        return Err(Failure::setup(
            "start PID 1 (fork)",
            io::Error::last_os_error(),
        ));
    }
    if init == 0 {
        drop(status_reader);
        init_process(&request, isolation, status_writer);
    }
    drop(status_writer);
    forward_signals_to(init);
    let init_status = wait_for(init);
    let mut reported = [0u8; 4];
    match status_reader.read_exact(&mut reported) {
        // PID 1 reports the function's status.
        Ok(()) => Ok(libc::c_int::from_ne_bytes(reported)),
        // PID 1 stopped before the function did (a set-up failure, already on stderr, or killed).
        Err(_) => Ok(init_status),
    }
}

fn check_spec(spec: &SandboxSpec, probe: bool) -> Step<()> {
    let invalid = |message: String| Failure {
        code: SETUP_FAILED,
        message,
    };
    if !spec.root.is_absolute() || !spec.root.is_dir() {
        return Err(invalid(format!(
            "the sandbox's root {} is not an absolute path to a directory",
            spec.root.display()
        )));
    }
    // As AWS's Runtime Interface Emulator refuses it, rather than resolving it against `/` as
    // some container runtimes do: nothing says Lambda would.
    if !spec.working_dir.starts_with('/') {
        return Err(Failure {
            code: INVALID_WORKING_DIR,
            message: format!(
                "the image's working directory {:?} is not an absolute path (set WorkingDir to \
                 the absolute path of a directory the image has, such as /var/task; Lambda \
                 fails such an image's init with Runtime.InvalidWorkingDir)",
                spec.working_dir
            ),
        });
    }
    if spec.tmp_size_mb == 0 {
        return Err(invalid("the /tmp size must be at least 1 MiB".to_owned()));
    }
    if spec.hostname.is_empty() || spec.hostname.len() > 64 {
        return Err(invalid(format!(
            "the hostname {:?} must be 1 to 64 bytes",
            spec.hostname
        )));
    }
    if spec.args.is_empty() && !probe {
        return Err(Failure {
            code: NOT_FOUND,
            message: "the image sets no Entrypoint or Cmd: there is nothing to start (Lambda \
                      fails such an image with Runtime.InvalidEntrypoint)"
                .to_owned(),
        });
    }
    Ok(())
}

/// Makes descriptor 0 the host's `/dev/null` (the spec is read; the function's stdin is empty).
fn stdin_from_dev_null() -> Step<()> {
    let null = std::fs::File::open("/dev/null")
        .map_err(|error| Failure::setup("open /dev/null", error))?;
    // SAFETY: dup2 onto descriptor 0, which this process owns; `null` stays open meanwhile.
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } < 0 {
        return Err(Failure::setup(
            "make /dev/null the standard input",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn write_proc_file(path: &str, contents: &str) -> Step<()> {
    std::fs::write(path, contents)
        .map_err(|error| Failure::setup(&format!("write {contents:?} to {path}"), error))
}

/// Waits for child `pid` (retrying interrupted waits) and returns its raw wait status.
fn wait_for(pid: libc::pid_t) -> libc::c_int {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only `status`, which outlives the call.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        if waited == pid {
            return status;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // Not our child any more: cannot happen; report a set-up failure.
            return SETUP_FAILED << 8;
        }
    }
}

/// Exits the way `status` (a raw wait status) ended: the same exit code, or killed by the
/// same signal (without a core dump of the helper).
fn end_like(status: libc::c_int) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on this process's own limits, disposition and mask; a
        // zeroed sigset_t is a valid value for sigemptyset to fill in.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(signal);
        }
        exit_now(128 + signal)
    }
    exit_now(libc::WEXITSTATUS(status))
}

extern "C" fn forward_signal(signal: libc::c_int) {
    let target = FORWARD_TO.load(Ordering::SeqCst);
    if target > 0 {
        // SAFETY: kill is async-signal-safe; `target` is a child of this process.
        unsafe { libc::kill(target, signal) };
    }
}

/// From now on, SIGTERM and SIGINT to this process are sent on to `pid`.
fn forward_signals_to(pid: libc::pid_t) {
    FORWARD_TO.store(pid, Ordering::SeqCst);
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is valid; the handler only calls kill, which is
        // async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = forward_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// PID 1: sets up the mounts and the hostname, starts the function, reaps, and reports the
/// function's wait status on `status` before exiting. Never returns.
fn init_process(request: &HelperRequest, isolation: Isolation, status: io::PipeWriter) -> ! {
    let function =
        match prepare_root(&request.spec).and_then(|()| start_function(request, isolation)) {
            Ok(function) => function,
            Err(failure) => failure.exit(),
        };
    forward_signals_to(function);
    let function_status = loop {
        let mut raw = 0;
        // SAFETY: waitpid writes only `raw`, which outlives the call.
        let reaped = unsafe { libc::waitpid(-1, &mut raw, 0) };
        if reaped == function {
            break raw;
        }
        if reaped < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break SETUP_FAILED << 8;
        }
    };
    let mut status = status;
    let _ = status.write_all(&function_status.to_ne_bytes());
    exit_now(0)
}

/// Forks the function; in the child, never returns.
fn start_function(request: &HelperRequest, isolation: Isolation) -> Step<libc::pid_t> {
    // SAFETY: PID 1 is single-threaded; the child ends in execve or `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Failure::setup(
            "start the function (fork)",
            io::Error::last_os_error(),
        ));
    }
    if pid == 0 {
        let failure = match become_function(&request.spec, isolation) {
            Ok(()) if request.probe => exit_now(0),
            Ok(()) => execute(&request.spec),
            Err(failure) => failure,
        };
        failure.exit();
    }
    Ok(pid)
}

/// The parent's probe (see `super::probe`): runs the helper on an empty tree with nothing to
/// start.
pub(super) fn probe() -> Result<Isolation> {
    let isolation = isolation_for_this_user();
    let tree = tempfile::Builder::new()
        .prefix("lambda-image-probe-")
        .tempdir()
        .map_err(|error| {
            Error::failure(format!(
                "cannot make a temporary directory to try the sandbox: {error}"
            ))
        })?;
    for directory in ["proc", "dev", "tmp"] {
        std::fs::create_dir(tree.path().join(directory)).map_err(|error| {
            Error::failure(format!(
                "cannot make a temporary directory to try the sandbox: {error}"
            ))
        })?;
    }
    let request = HelperRequest {
        spec: SandboxSpec {
            root: tree.path().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: "/".to_owned(),
            tmp_size_mb: 1,
            hostname: "probe".to_owned(),
        },
        probe: true,
    };
    let (mut command, input) = super::helper_command(&request)?;
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|error| {
            Error::failure(format!(
                "cannot start lambda-image again (/proc/self/exe) to try the sandbox: {error}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&input);
    }
    let output = child
        .wait_with_output()
        .map_err(|error| Error::failure(format!("cannot wait for the sandbox's trial: {error}")))?;
    if output.status.success() {
        return Ok(isolation);
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let said = said.trim().trim_start_matches("lambda-image: ");
    let said = if said.is_empty() {
        format!("the trial run ended with {}", output.status)
    } else {
        said.to_owned()
    };
    Err(probe_error(isolation, &said))
}

/// The error of a failed probe: what the helper said, and what to do.
pub(super) fn probe_error(isolation: Isolation, said: &str) -> Error {
    let error = Error::failure(format!("cannot run the image in a sandbox here: {said}"));
    match isolation {
        Isolation::Root => error.hint(
            "lambda-image needs CAP_SYS_ADMIN to make mount and PID namespaces: run it on the \
             host or in a privileged container",
        ),
        Isolation::UserNamespace => error.hint(
            "run lambda-image as root (sudo), or allow unprivileged user namespaces (sysctl \
             user.max_user_namespaces, and on Ubuntu kernel.apparmor_restrict_unprivileged_userns)",
        ),
    }
}
