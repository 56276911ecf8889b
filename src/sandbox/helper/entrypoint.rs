//! The function's process (PID 2): signals reset, Lambda's resource limits, uid/gid 993, the
//! image's working directory, then the entrypoint executed as `execvp` would (a `PATH` lookup
//! for a bare name), or one [`Failure`] saying why it cannot start ([`NOT_FOUND`],
//! [`CANNOT_EXECUTE`], [`INVALID_WORKING_DIR`], [`SETUP_FAILED`]) in the words Lambda uses
//! (`Runtime.InvalidEntrypoint`, `Runtime.InvalidWorkingDir`). Not for the mounts or namespaces.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Failure, Step, describe_errno};
use crate::sandbox::{
    CANNOT_EXECUTE, FUNCTION_GID, FUNCTION_UID, INVALID_WORKING_DIR, Isolation, MAX_OPEN_FILES,
    MAX_PROCESSES, NOT_FOUND, SETUP_FAILED, SandboxSpec,
};

/// `PATH` for the entrypoint's lookup when the environment has none (execvp's and Docker's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// In the function's process: signals as a fresh process has them, Lambda's limits, uid/gid 993,
/// and the working directory, entered as 993 (Lambda's sandbox user enters it itself, so a
/// directory it may not search fails as it would there).
pub(super) fn become_function(spec: &SandboxSpec, isolation: Isolation) -> Step<()> {
    // SAFETY: resetting a disposition to the default and emptying the mask are plain system
    // calls; Rust's runtime made SIGPIPE ignored, which execve would keep.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    // Before the uid change: as root, a lower hard limit of the host's can still be raised.
    apply_lambda_limits()?;
    if isolation == Isolation::Root {
        use rustix::process::{Gid, Uid};
        let uid = Uid::from_raw(FUNCTION_UID);
        let gid = Gid::from_raw(FUNCTION_GID);
        // Groups first, then the gid, then the uid: after setuid nothing else is allowed, and
        // no capability remains (capabilities(7), "Effect of user ID changes").
        rustix::thread::set_thread_groups(&[])
            .map_err(|error| Failure::setup("drop the supplementary groups", error))?;
        rustix::thread::set_thread_res_gid(gid, gid, gid)
            .map_err(|error| Failure::setup("become gid 993", error))?;
        rustix::thread::set_thread_res_uid(uid, uid, uid)
            .map_err(|error| Failure::setup("become uid 993", error))?;
    }
    rustix::process::chdir(spec.working_dir.as_str())
        .map_err(|error| working_dir_failure(&spec.working_dir, &error.into()))
}

/// Sets the process's limits to Lambda's quotas, soft and hard ([`MAX_OPEN_FILES`],
/// [`MAX_PROCESSES`]). A hard limit of this machine's that is lower and cannot be raised
/// (raising needs `CAP_SYS_RESOURCE` in the host's user namespace: not in a user namespace of
/// ours, nor as a root some containers run without it) stays, for both, with a warning line on
/// stderr: the function then gets less than on Lambda, never more.
fn apply_lambda_limits() -> Step<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    for (resource, lambda, what) in [
        (
            Resource::Nofile,
            MAX_OPEN_FILES,
            "open files (RLIMIT_NOFILE)",
        ),
        (Resource::Nproc, MAX_PROCESSES, "processes (RLIMIT_NPROC)"),
    ] {
        let wanted = Rlimit {
            current: Some(lambda),
            maximum: Some(lambda),
        };
        let Err(error) = setrlimit(resource, wanted) else {
            continue;
        };
        let lower = getrlimit(resource)
            .maximum
            .filter(|&hard| hard < lambda && error == rustix::io::Errno::PERM);
        let Some(hard) = lower else {
            return Err(Failure::setup(
                &format!("set the limit of {what} to Lambda's {lambda}"),
                error,
            ));
        };
        let kept = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        setrlimit(resource, kept).map_err(|error| {
            Failure::setup(&format!("set the limit of {what} to {hard}"), error)
        })?;
        let _ = io::Write::write_all(
            &mut io::stderr(),
            format!(
                "lambda-image: warning: this machine's hard limit of {what} is {hard}, below \
                 Lambda's {lambda}, and raising it needs root with CAP_SYS_RESOURCE: the \
                 function gets {hard}\n"
            )
            .as_bytes(),
        );
    }
    Ok(())
}

/// The line and status for a working directory the function cannot enter (`error` from
/// `chdir(2)` as uid 993). Lambda's words for it are `Runtime.InvalidWorkingDir`.
fn working_dir_failure(working_dir: &str, error: &io::Error) -> Failure {
    let lambda = "Lambda fails such an image's init with Runtime.InvalidWorkingDir";
    let advice = match error.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "the image has no such directory; set WorkingDir to a directory the image has, \
             such as /var/task; {lambda}"
        ),
        Some(libc::ENOTDIR) => format!(
            "it, or a directory on its path, is a file in the image, not a directory; set \
             WorkingDir to a directory the image has, such as /var/task; {lambda}"
        ),
        Some(libc::EACCES) => format!(
            "uid {FUNCTION_UID} may not enter it: make it and every directory above it \
             searchable by others in the image (chmod 755), as Lambda's sandbox user needs"
        ),
        _ => format!("set WorkingDir to a directory the image has; {lambda}"),
    };
    Failure {
        code: INVALID_WORKING_DIR,
        message: format!(
            "cannot enter the image's working directory {working_dir}: {} ({advice})",
            describe_errno(error)
        ),
    }
}

/// Executes the entrypoint with exactly the spec's environment; returns only the failure.
pub(super) fn execute(spec: &SandboxSpec) -> Failure {
    let program = spec.args[0].as_str();
    let (Ok(arguments), Ok(environment)) = (
        spec.args
            .iter()
            .map(|argument| CString::new(argument.as_str()))
            .collect::<std::result::Result<Vec<_>, _>>(),
        spec.env
            .iter()
            .map(|(name, value)| CString::new(format!("{name}={value}")))
            .collect::<std::result::Result<Vec<_>, _>>(),
    ) else {
        return Failure {
            code: CANNOT_EXECUTE,
            message: "the entrypoint's arguments or environment hold a NUL byte".to_owned(),
        };
    };
    let mut argv: Vec<*const libc::c_char> = arguments.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = environment.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());

    let candidates = candidates(program, &spec.env);
    let mut refused: Option<(PathBuf, io::Error)> = None;
    let mut missing: Option<(PathBuf, io::Error)> = None;
    for candidate in &candidates {
        let Ok(path) = CString::new(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: `path`, `argv` and `envp` are NUL-terminated and outlive the call; on
        // success it does not return.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            // As execvp: keep looking, remember a file that was there but refused.
            Some(libc::ENOENT | libc::ENOTDIR) => {
                if missing.is_none() || candidate.exists() {
                    missing = Some((candidate.clone(), error));
                }
            }
            Some(libc::EACCES) => {
                refused.get_or_insert((candidate.clone(), error));
            }
            _ => return exec_failure(program, candidate, &error),
        }
    }
    match (refused, missing) {
        (Some((path, error)), _) => exec_failure(program, &path, &error),
        // A bare name found in no directory of PATH: every candidate is missing, not only the
        // first one tried.
        (None, Some((path, _))) if !program.contains('/') && !path.exists() => Failure {
            code: NOT_FOUND,
            message: format!(
                "cannot start the image's entrypoint {program}: no directory of PATH has it \
                 ({}) ({})",
                candidates
                    .iter()
                    .filter_map(|candidate| candidate.parent())
                    .map(|directory| directory.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":"),
                missing_entrypoint_advice()
            ),
        },
        (None, Some((path, error))) => exec_failure(program, &path, &error),
        (None, None) => exec_failure(
            program,
            Path::new(program),
            &io::Error::from_raw_os_error(libc::ENOENT),
        ),
    }
}

/// Where `program` may be: itself when it names a path, else each directory of the
/// environment's `PATH` (an empty entry is the working directory).
pub(in crate::sandbox) fn candidates(
    program: &str,
    environment: &[(String, String)],
) -> Vec<PathBuf> {
    if program.contains('/') {
        return vec![PathBuf::from(program)];
    }
    let path = environment
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map_or(DEFAULT_PATH, |(_, value)| value.as_str());
    path.split(':')
        .map(|directory| {
            let directory = if directory.is_empty() { "." } else { directory };
            Path::new(directory).join(program)
        })
        .collect()
}

/// The line and status for an entrypoint that did not start (the shell's 127 and 126).
fn exec_failure(program: &str, path: &Path, error: &io::Error) -> Failure {
    let lambda = "Lambda fails such an image with Runtime.InvalidEntrypoint";
    let described = describe_errno(error);
    let shown = if path == Path::new(program) {
        program.to_owned()
    } else {
        format!("{program} ({})", path.display())
    };
    let (code, advice) = match error.raw_os_error() {
        Some(libc::ENOENT) if path.exists() => (NOT_FOUND, missing_interpreter(path, lambda)),
        Some(libc::ENOENT | libc::ENOTDIR) => (NOT_FOUND, missing_entrypoint_advice()),
        Some(libc::EACCES) if path.is_dir() => (
            CANNOT_EXECUTE,
            format!(
                "it is a directory, not a program: make the Entrypoint the executable file \
                 that starts the runtime (such as /var/task/bootstrap or \
                 /lambda-entrypoint.sh); {lambda}"
            ),
        ),
        Some(libc::EACCES) => (
            CANNOT_EXECUTE,
            format!(
                "it must be a file executable by uid {FUNCTION_UID} (chmod 755 it in the \
                 image); {lambda}"
            ),
        ),
        // The uid change left more processes of uid 993 than RLIMIT_NPROC allows (execve(2)):
        // this machine's doing, not the image's.
        Some(libc::EAGAIN) => (
            SETUP_FAILED,
            format!(
                "uid {FUNCTION_UID} already has {MAX_PROCESSES} processes on this machine, \
                 Lambda's limit, which counts every process of that uid: stop the other \
                 processes of uid {FUNCTION_UID}, or run lambda-image as an ordinary user"
            ),
        ),
        Some(libc::ENOEXEC) => (
            CANNOT_EXECUTE,
            format!(
                "it is not an executable for this machine's architecture, or a script without \
                 a #! line; {lambda}"
            ),
        ),
        _ => (CANNOT_EXECUTE, lambda.to_owned()),
    };
    Failure {
        code,
        message: format!("cannot start the image's entrypoint {shown}: {described} ({advice})"),
    }
}

/// What to do about an entrypoint the image does not have. Lambda needs an absolute
/// `ENTRYPOINT` (AWS Lambda Developer Guide, images-create.md).
fn missing_entrypoint_advice() -> String {
    "the image has no such file: set the image's Entrypoint (and Cmd) to the absolute path of \
     an executable it has, such as /lambda-entrypoint.sh on an AWS base or /var/runtime/bootstrap \
     (`lambda-image check IMAGE` says what the image holds); Lambda fails such an image with \
     Runtime.InvalidEntrypoint"
        .to_owned()
}

/// Why an entrypoint that exists was ENOENT: the interpreter its `#!` line names is missing
/// (or that line ends in a carriage return, which the kernel takes as part of the name:
/// `/bin/sh\r`), or, for an ELF, its dynamic loader is.
fn missing_interpreter(path: &Path, lambda: &str) -> String {
    // The kernel reads the #! line from the first 256 bytes (BINPRM_BUF_SIZE).
    let mut start = Vec::with_capacity(256);
    if let Ok(file) = std::fs::File::open(path) {
        let _ = io::Read::read_to_end(&mut io::Read::take(file, 256), &mut start);
    }
    let Some(line) = start.strip_prefix(b"#!") else {
        return format!(
            "it exists, so its interpreter is missing in the image (the ELF's dynamic loader, or \
             the program on a #! line); {lambda}"
        );
    };
    let line = line.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let interpreter = String::from_utf8_lossy(line)
        .trim_start_matches([' ', '\t'])
        .split([' ', '\t'])
        .next()
        .unwrap_or_default()
        .to_owned();
    if let Some(shown) = interpreter.strip_suffix('\r') {
        return format!(
            "it has Windows line endings: its first line `#!{shown}` ends in a carriage \
             return (\\r), so the kernel looks for a program named `{shown}\\r`, which the image \
             lacks; convert it to Unix line endings before building the image: dos2unix FILE, \
             or sed -i 's/\\r$//' FILE (and set `* text eol=lf` in .gitattributes so git does \
             not convert it back); {lambda}"
        );
    }
    format!(
        "it exists, so the interpreter on its #! line, {interpreter}, is missing in the image; \
         {lambda}"
    )
}
