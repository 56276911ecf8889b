//! Lambda's per-execution-environment quotas inside the sandbox: 1,024 open files
//! (`RLIMIT_NOFILE`) and 1,024 processes and threads (`RLIMIT_NPROC`), soft and hard (AWS Lambda
//! Developer Guide, "Lambda quotas"), whatever limits lambda-image itself was started with. Run
//! as root and as `nobody`, as every sandbox test; the helper is started with limits far above
//! Lambda's, so a sandbox that passed its own on would fail here.

use std::os::unix::process::CommandExt;

use super::*;

/// Lambda's quota of file descriptors, and of processes and threads.
const LAMBDA_LIMIT: u64 = 1024;

/// The helper's command as `caller`, started with these (soft, hard) limits on open files and
/// processes instead of this test's.
fn helper_with_limits(caller: Caller, open_files: (u64, u64), processes: (u64, u64)) -> Command {
    let mut command = helper(caller);
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        command.pre_exec(move || {
            for (resource, (soft, hard)) in [
                (libc::RLIMIT_NOFILE, open_files),
                (libc::RLIMIT_NPROC, processes),
            ] {
                let limit = libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                };
                if libc::setrlimit(resource, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
}

/// Runs `spec` in a helper started with limits well above Lambda's.
fn run_with_high_limits(caller: Caller, spec: &Value) -> Output {
    let input = serde_json::to_vec(&json!({ "spec": spec })).unwrap();
    let mut command = helper_with_limits(caller, (8192, 8192), (65536, 65536));
    run_with_input(&mut command, &input)
}

/// The soft and hard limits of `name` ("Max open files") in a `/proc/PID/limits` text.
fn limits_of(text: &str, name: &str) -> Option<(String, String)> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    let mut values = line[name.len()..].split_whitespace();
    Some((values.next()?.to_owned(), values.next()?.to_owned()))
}

#[test]
fn the_function_has_lambdas_1024_open_files_and_1024_processes_soft_and_hard() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let script = "echo files=$(ulimit -Sn) $(ulimit -Hn); \
             echo processes=$(ulimit -Su) $(ulimit -Hu); \
             busybox cat /proc/self/limits";
        let output = run_with_high_limits(caller, &tree.spec(&["/bin/sh", "-c", script]));
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        let values = reported(&output);
        assert_eq!(values["files"], "1024 1024", "{caller:?}");
        assert_eq!(values["processes"], "1024 1024", "{caller:?}");
        let text = stdout_of(&output);
        let lambda = (LAMBDA_LIMIT.to_string(), LAMBDA_LIMIT.to_string());
        for name in ["Max open files", "Max processes"] {
            assert_eq!(
                limits_of(&text, name).as_ref(),
                Some(&lambda),
                "{caller:?}: {name} in\n{text}"
            );
        }
        assert_eq!(stderr_of(&output), "", "{caller:?}: no warning");
    });
}

#[test]
fn opening_more_than_1024_descriptors_fails_with_emfile() {
    let tree = Tree::new();
    // Opens /dev/null until the kernel refuses, then says how far it got and why.
    let source = tree.directory.path().join("open-many.c");
    std::fs::write(
        &source,
        "#include <errno.h>\n#include <fcntl.h>\n#include <stdio.h>\n\
         int main(void) {\n  int opened = 0, highest = -1, fd;\n  \
         while (opened < 100000 && (fd = open(\"/dev/null\", O_RDONLY)) >= 0) {\n    \
         opened++;\n    highest = fd;\n  }\n  \
         printf(\"opened=%d\\nhighest=%d\\nerror=%s\\n\", opened, highest,\n         \
         fd >= 0 ? \"none\" : errno == EMFILE ? \"EMFILE\" : \"other\");\n  return 0;\n}\n",
    )
    .unwrap();
    run(Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(tree.root().join("bin/open-many"))
        .arg(&source));
    as_each_caller(|caller| {
        let output = run_with_high_limits(caller, &tree.spec(&["/bin/open-many"]));
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        let values = reported(&output);
        assert_eq!(
            values["error"],
            "EMFILE",
            "{caller:?}: {}",
            stdout_of(&output)
        );
        // Descriptors 0 to 1023: stdin, stdout and stderr, and the ones it opened.
        assert_eq!(
            values["highest"],
            "1023",
            "{caller:?}: {}",
            stdout_of(&output)
        );
        let opened: u64 = values["opened"].parse().unwrap();
        assert!(
            (1000..=1021).contains(&opened),
            "{caller:?}: opened {opened}"
        );
    });
}

/// Whether this test process may raise a hard limit (`CAP_SYS_RESOURCE`, capability 24, in
/// its effective set: root has it, except in containers that drop it).
fn may_raise_hard_limits() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << 24) != 0)
}

#[test]
fn a_lower_hard_limit_is_raised_by_root_and_else_kept_with_a_warning() {
    let tree = Tree::new();
    let root_may_raise = may_raise_hard_limits();
    if !root_may_raise {
        eprintln!("root lacks CAP_SYS_RESOURCE here: it keeps the lower limit too");
    }
    as_each_caller(|caller| {
        let spec = tree.spec(&["/bin/sh", "-c", "echo files=$(ulimit -Sn) $(ulimit -Hn)"]);
        let input = serde_json::to_vec(&json!({ "spec": spec })).unwrap();
        let mut command = helper_with_limits(caller, (512, 512), (65536, 65536));
        let output = run_with_input(&mut command, &input);
        assert!(
            output.status.success(),
            "{caller:?}: {}",
            stderr_of(&output)
        );
        let files = &reported(&output)["files"];
        let said = stderr_of(&output);
        if matches!(caller, Caller::Root) && root_may_raise {
            // Root may raise a hard limit: Lambda's, exactly.
            assert_eq!(files, "1024 1024", "{caller:?}: {said}");
            assert_eq!(said, "", "{caller:?}");
        } else {
            // Nobody may not (nor a root without CAP_SYS_RESOURCE): the lower limit stays, and
            // the function's log says so.
            assert_eq!(files, "512 512", "{caller:?}: {said}");
            assert!(
                said.starts_with("lambda-image: warning: ")
                    && said.contains("open files (RLIMIT_NOFILE) is 512, below Lambda's 1024")
                    && said.lines().count() == 1,
                "{caller:?}: {said}"
            );
        }
    });
}
