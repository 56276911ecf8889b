//! The sandbox that runs an image's entrypoint: `lambda-image __sandbox` run directly with a JSON
//! spec on stdin, on a root filesystem made of busybox-static. Each test runs as root and again
//! as `nobody` through an unprivileged user namespace (skipped, saying why, where the kernel
//! forbids that). Not for the emulator around it (`invoke --image` tests are elsewhere).
//!
//! This file holds the tree, the ways to run the helper, and what the function sees; Lambda's
//! limits on open files and processes are in `limits.rs`, the working directory's failures in
//! `working_dir.rs`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

mod limits;
mod working_dir;

/// Who starts the helper.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Root,
    /// uid/gid 65534 with no groups (`setpriv`): the helper makes a user namespace.
    Nobody,
}

/// A root filesystem with busybox as `/bin/busybox` and a few applet links, the mount points
/// the sandbox needs, and `/var/task/handler.txt`, in a world-readable directory (so `nobody`
/// can use it).
struct Tree {
    directory: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        let directory = tempfile::Builder::new()
            .prefix("lambda-image-sandbox-")
            .tempdir_in(std::env::temp_dir())
            .unwrap();
        std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = directory.path().join("root");
        for path in [
            "bin",
            "proc",
            "dev",
            "tmp",
            "etc",
            "var/task",
            "not-executable",
        ] {
            std::fs::create_dir_all(root.join(path)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::copy(busybox_amd64(), root.join("bin/busybox")).unwrap();
        std::fs::set_permissions(
            root.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        for applet in ["sh", "env", "sleep"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        std::fs::write(root.join("etc/resolv.conf"), b"").unwrap();
        std::fs::write(root.join("etc/hosts"), b"").unwrap();
        std::fs::write(root.join("var/task/handler.txt"), b"handler\n").unwrap();
        std::fs::write(root.join("not-executable/run"), b"#!/bin/sh\necho no\n").unwrap();
        std::fs::set_permissions(
            root.join("not-executable/run"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        // Saved with Windows line endings; and a script for an interpreter the tree lacks.
        for (name, script) in [
            ("crlf", "#!/bin/sh\r\necho crlf\r\n"),
            ("needs-bash", "#!/bin/bash -e\necho bash\n"),
        ] {
            std::fs::write(root.join("bin").join(name), script).unwrap();
            std::fs::set_permissions(
                root.join("bin").join(name),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
        Self { directory }
    }

    fn root(&self) -> std::path::PathBuf {
        self.directory.path().join("root")
    }

    /// A spec for `args` with the usual environment, working directory and a 16 MiB `/tmp`.
    fn spec(&self, args: &[&str]) -> Value {
        json!({
            "root": self.root(),
            "args": args,
            "env": [["PATH", "/bin"], ["LAMBDA_TASK_ROOT", "/var/task"]],
            "working_dir": "/var/task",
            "tmp_size_mb": 16,
            "hostname": "sandbox-host",
        })
    }
}

/// Why `caller` cannot run the helper here, if it cannot: `nobody` needs setpriv and
/// unprivileged user namespaces.
fn cannot_run_as(caller: Caller) -> Option<String> {
    match caller {
        Caller::Root => None,
        Caller::Nobody => {
            let tried = Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .args(["unshare", "--user", "--map-user=993", "true"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            (!tried.is_ok_and(|status| status.success())).then(|| {
                "nobody cannot make a user namespace here (setpriv missing, \
                 user.max_user_namespaces = 0, or AppArmor)"
                    .to_owned()
            })
        }
    }
}

/// The helper's command as `caller`.
fn helper(caller: Caller) -> Command {
    let program = env!("CARGO_BIN_EXE_lambda-image");
    let mut command = match caller {
        Caller::Root => Command::new(program),
        Caller::Nobody => {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(program);
            command
        }
    };
    command.arg("__sandbox").env_remove("SOURCE_DATE_EPOCH");
    command
}

/// Runs `command` with `input` on its stdin; fails the test after 60 s.
fn run_with_input(command: &mut Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {command:?}: {error}"));
    let _ = child.stdin.take().unwrap().write_all(input);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{command:?} did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs the helper as `caller` on `spec`.
fn run_spec(caller: Caller, spec: &Value) -> Output {
    let input = serde_json::to_vec(&json!({ "spec": spec })).unwrap();
    run_with_input(&mut helper(caller), &input)
}

/// Runs `check` as root and as nobody (skipped with the reason where it cannot run).
fn as_each_caller(check: impl Fn(Caller)) {
    for caller in [Caller::Root, Caller::Nobody] {
        match cannot_run_as(caller) {
            Some(reason) => eprintln!("skipped as {caller:?}: {reason}"),
            None => check(caller),
        }
    }
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `NAME=value` lines of a script's output, as a map.
fn reported(output: &Output) -> std::collections::BTreeMap<String, String> {
    stdout_of(output)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[test]
fn the_function_is_pid_2_of_its_own_namespace_as_993_without_capabilities() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let script = "echo uid=$(busybox id -u); echo gid=$(busybox id -g); \
             echo groups=$(busybox id -G); \
             echo capeff=$(busybox grep CapEff /proc/self/status | busybox cut -f2); \
             echo pid=$$; echo init=$(busybox tr '\\0' ' ' < /proc/1/cmdline); \
             echo processes=$(busybox ls /proc | busybox grep -c '^[0-9]'); \
             echo hostname=$(busybox hostname); echo pwd=$(pwd); \
             echo null=$(echo discarded > /dev/null && busybox wc -c < /dev/null); \
             echo zero=$(busybox head -c 4 /dev/zero | busybox wc -c); \
             echo urandom=$(busybox head -c 4 /dev/urandom | busybox wc -c); \
             echo stdin=$(busybox wc -c < /dev/stdin); \
             echo shm=$(busybox ls -d /dev/shm 2>/dev/null)";
        let output = run_spec(caller, &tree.spec(&["/bin/sh", "-c", script]));
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        let values = reported(&output);
        let expected = [
            ("uid", "993"),
            ("gid", "993"),
            ("groups", "993"),
            ("capeff", "0000000000000000"),
            ("pid", "2"),
            ("hostname", "sandbox-host"),
            ("pwd", "/var/task"),
            ("null", "0"),
            ("zero", "4"),
            ("urandom", "4"),
            ("stdin", "0"),
            ("shm", ""),
        ];
        for (name, value) in expected {
            assert_eq!(
                values.get(name).map(String::as_str),
                Some(value),
                "{caller:?}: {name} in\n{}",
                stdout_of(&output)
            );
        }
        assert!(
            values["init"].contains("__sandbox"),
            "{caller:?}: PID 1 is the sandbox's init: {}",
            values["init"]
        );
        // PID 1, the shell, and the command substitution's subshell and its `ls`/`grep`: no
        // process of the host.
        let processes: u32 = values["processes"].parse().unwrap();
        assert!(processes <= 5, "{caller:?}: {processes} processes visible");
    });
}

#[test]
fn root_and_var_task_are_read_only_and_tmp_is_a_tmpfs_of_the_size_asked() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let script = "echo root=$(busybox touch /new 2>&1); \
             echo task=$(busybox touch /var/task/new 2>&1); \
             echo chmod=$(busybox chmod 777 /var/task/handler.txt 2>&1); \
             echo tmp=$(echo written > /tmp/file && busybox cat /tmp/file); \
             echo tmpmount=$(busybox grep ' /tmp ' /proc/mounts); \
             echo rootmount=$(busybox grep ' / ' /proc/mounts)";
        let output = run_spec(caller, &tree.spec(&["/bin/sh", "-c", script]));
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        let values = reported(&output);
        for name in ["root", "task", "chmod"] {
            assert!(
                values[name].contains("Read-only file system"),
                "{caller:?}: {name}: {}",
                values[name]
            );
        }
        assert_eq!(values["tmp"], "written", "{caller:?}");
        let tmp = &values["tmpmount"];
        assert!(
            tmp.starts_with("tmpfs /tmp tmpfs rw,") && tmp.contains("size=16384k"),
            "{caller:?}: {tmp}"
        );
        let root = &values["rootmount"];
        assert!(root.contains(" ro,") && root.contains("nosuid") && root.contains("nodev"));
        assert!(!tree.root().join("new").exists());
        assert!(
            !tree.root().join("tmp/file").exists(),
            "/tmp is not the tree's"
        );
    });
}

#[test]
fn the_environment_is_exactly_the_specs_and_the_entrypoint_is_found_on_its_path() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let mut spec = tree.spec(&["env"]);
        spec["env"] = json!([
            ["PATH", "/usr/local/bin:/bin"],
            ["AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"],
            ["WITH_SPACES", "two words"],
        ]);
        let output = run_spec(caller, &spec);
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        assert_eq!(
            stdout_of(&output),
            "PATH=/usr/local/bin:/bin\nAWS_LAMBDA_RUNTIME_API=127.0.0.1:9001\n\
             WITH_SPACES=two words\n",
            "{caller:?}"
        );
    });
}

#[test]
fn the_exit_status_and_a_killing_signal_are_the_functions() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let exited = run_spec(caller, &tree.spec(&["/bin/sh", "-c", "exit 3"]));
        assert_eq!(
            exited.status.code(),
            Some(3),
            "{caller:?}: {}",
            stderr_of(&exited)
        );
        for signal in [libc::SIGKILL, libc::SIGTERM, libc::SIGSEGV] {
            let script = format!("busybox kill -{signal} $$");
            let killed = run_spec(caller, &tree.spec(&["/bin/sh", "-c", &script]));
            assert_eq!(
                killed.status.signal(),
                Some(signal),
                "{caller:?}: {:?} {}",
                killed.status,
                stderr_of(&killed)
            );
        }
    });
}

#[test]
fn what_the_function_started_dies_when_it_exits() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        // A child in the background and one in a session of its own (out of the process
        // group): both die with the namespace.
        let marker = match caller {
            Caller::Root => "987651",
            Caller::Nobody => "987652",
        };
        let script = format!(
            "busybox sleep {marker} & busybox setsid busybox sleep {marker} & \
             busybox sleep 0.2; echo started"
        );
        let output = run_spec(caller, &tree.spec(&["/bin/sh", "-c", &script]));
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        assert_eq!(stdout_of(&output), "started\n");
        let survivors = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|entry| {
                    let entry = entry.ok()?;
                    let command = std::fs::read(entry.path().join("cmdline")).ok()?;
                    let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                    (String::from_utf8_lossy(&command).contains(marker) && !stat.contains(") Z "))
                        .then(|| entry.file_name())
                })
                .count()
        };
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            survivors() == 0
        });
        assert!(gone, "{caller:?}: the function's children outlived it");
    });
}

#[test]
fn an_entrypoint_that_cannot_start_is_127_or_126_with_a_line_saying_why() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let missing = run_spec(caller, &tree.spec(&["/lambda-entrypoint.sh", "handler"]));
        assert_eq!(missing.status.code(), Some(127), "{caller:?}");
        let said = stderr_of(&missing);
        assert!(
            said.starts_with(
                "lambda-image: cannot start the image's entrypoint /lambda-entrypoint.sh: \
                 No such file or directory"
            ) && said.contains("Runtime.InvalidEntrypoint")
                && said.contains("set the image's Entrypoint (and Cmd) to the absolute path")
                && said.lines().count() == 1,
            "{caller:?}: {said}"
        );

        // A bare name is looked up in every directory of PATH, and the line says so rather than
        // naming the first directory tried.
        let not_on_path = run_spec(caller, &tree.spec(&["bootstrap"]));
        assert_eq!(not_on_path.status.code(), Some(127), "{caller:?}");
        let said = stderr_of(&not_on_path);
        assert!(
            said.contains("entrypoint bootstrap: no directory of PATH has it (/bin)")
                && said.contains("absolute path"),
            "{caller:?}: {said}"
        );

        let not_executable = run_spec(caller, &tree.spec(&["/not-executable/run"]));
        assert_eq!(not_executable.status.code(), Some(126), "{caller:?}");
        assert!(
            stderr_of(&not_executable).contains("Permission denied"),
            "{caller:?}: {}",
            stderr_of(&not_executable)
        );

        // The kernel looks for `/bin/sh\r`: the line says the script has Windows line endings.
        let crlf = run_spec(caller, &tree.spec(&["/bin/crlf"]));
        assert_eq!(crlf.status.code(), Some(127), "{caller:?}");
        let said = stderr_of(&crlf);
        assert!(
            said.contains("Windows line endings") && said.contains("dos2unix"),
            "{caller:?}: {said}"
        );
        let bash = run_spec(caller, &tree.spec(&["/bin/needs-bash"]));
        assert_eq!(bash.status.code(), Some(127), "{caller:?}");
        let said = stderr_of(&bash);
        assert!(
            said.contains("the interpreter on its #! line, /bin/bash, is missing"),
            "{caller:?}: {said}"
        );

        let directory = run_spec(caller, &tree.spec(&["/var/task"]));
        assert_eq!(directory.status.code(), Some(126), "{caller:?}");
        let said = stderr_of(&directory);
        assert!(
            said.contains("it is a directory") && !said.contains("chmod"),
            "{caller:?}: {said}"
        );
    });
}

#[test]
fn a_trial_run_sets_everything_up_and_starts_nothing() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let mut spec = tree.spec(&[]);
        spec["args"] = json!([]);
        let input = serde_json::to_vec(&json!({ "spec": spec, "probe": true })).unwrap();
        let output = run_with_input(&mut helper(caller), &input);
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        assert_eq!(stdout_of(&output), "");
    });
}

#[test]
fn with_user_namespaces_disabled_the_trial_run_says_so_and_what_to_do() {
    // Disabled for one nested user namespace only (its own user.max_user_namespaces = 0), not
    // for the machine: a user namespace mapping uids 0..65536 as they are, whose root writes
    // the limit and then runs the helper as nobody.
    if cannot_run_as(Caller::Nobody).is_some() {
        eprintln!("skipped: user namespaces are not available here");
        return;
    }
    let tree = Tree::new();
    let mut spec = tree.spec(&[]);
    spec["args"] = json!([]);
    let request = tree.directory.path().join("probe.json");
    std::fs::write(
        &request,
        serde_json::to_vec(&json!({ "spec": spec, "probe": true })).unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(&request, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The first shell waits for its maps, then starts a second one, which has root's
    // capabilities in the namespace (execve gives them once uid 0 is mapped).
    let inner = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 99; \
         exec setpriv --reuid=65534 --regid=65534 --clear-groups {} __sandbox < {}",
        env!("CARGO_BIN_EXE_lambda-image"),
        request.display()
    );
    let mut child = Command::new("unshare")
        .args(["--user", "sh", "-c", "read go && exec sh -c \"$0\""])
        .arg(&inner)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let proc = Path::new("/proc").join(child.id().to_string());
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    let unshared = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        std::fs::read_link(proc.join("ns/user")).is_ok_and(|namespace| namespace != ours)
    });
    assert!(unshared, "unshare --user did not make a namespace");
    for map in ["uid_map", "gid_map"] {
        std::fs::write(proc.join(map), "0 0 65536\n").unwrap();
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    if output.status.code() == Some(99) {
        eprintln!(
            "skipped: cannot set user.max_user_namespaces in a nested namespace here: {}",
            stderr_of(&output)
        );
        return;
    }
    assert_eq!(output.status.code(), Some(125), "{}", stderr_of(&output));
    let said = stderr_of(&output);
    assert!(
        said.starts_with("lambda-image: cannot set up the sandbox: create the namespaces")
            && said.contains("user.max_user_namespaces")
            && said.contains("run lambda-image as root"),
        "{said}"
    );
}

#[test]
fn sigterm_to_the_helper_reaches_the_function() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let script = "trap 'echo got-term; exit 7' TERM; echo ready; \
             while true; do busybox sleep 0.1; done";
        let input =
            serde_json::to_vec(&json!({ "spec": tree.spec(&["/bin/sh", "-c", script]) })).unwrap();
        let mut child = helper(caller)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(line, "ready\n", "{caller:?}");
        // setpriv execs the helper: the child's pid is the helper's either way.
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(rest, "got-term\n", "{caller:?}");
        assert_eq!(status.code(), Some(7), "{caller:?}");
    });
}
