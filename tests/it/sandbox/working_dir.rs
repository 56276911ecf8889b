//! The image's working directory as the sandbox enters it: one the image lacks, a file, a
//! relative path, or a directory uid 993 may not search stops the function before it starts,
//! with exit status 122 and one line naming the directory and, where Lambda's name for the
//! failure is known, `Runtime.InvalidWorkingDir` (the error type of AWS's Runtime Interface
//! Emulator, which refuses a relative path and a missing directory alike). Run as root and as
//! `nobody`, as every sandbox test.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::*;

/// The helper's status for a working directory that cannot be entered
/// (`sandbox::INVALID_WORKING_DIR`).
const INVALID_WORKING_DIR: i32 = 122;

/// Runs a script that says it ran, in `working_dir`; returns the output.
fn run_in(caller: Caller, tree: &Tree, working_dir: &str) -> Output {
    let mut spec = tree.spec(&["/bin/sh", "-c", "echo ran"]);
    spec["working_dir"] = json!(working_dir);
    run_spec(caller, &spec)
}

/// Asserts the function did not run and the helper said why, in one line holding `expected`.
fn assert_refused(caller: Caller, output: &Output, working_dir: &str, expected: &[&str]) {
    let said = stderr_of(output);
    assert_eq!(
        output.status.code(),
        Some(INVALID_WORKING_DIR),
        "{caller:?} {working_dir}: {said}"
    );
    assert_eq!(
        stdout_of(output),
        "",
        "{caller:?}: the function must not run"
    );
    assert_eq!(said.lines().count(), 1, "{caller:?}: {said}");
    assert!(said.starts_with("lambda-image: "), "{caller:?}: {said}");
    for part in expected {
        assert!(said.contains(part), "{caller:?}: {part:?} in {said}");
    }
}

#[test]
fn a_working_directory_the_image_lacks_or_that_is_a_file_is_runtime_invalid_working_dir() {
    let tree = Tree::new();
    as_each_caller(|caller| {
        let missing = run_in(caller, &tree, "/no/such/directory");
        assert_refused(
            caller,
            &missing,
            "/no/such/directory",
            &[
                "cannot enter the image's working directory /no/such/directory",
                "No such file or directory",
                "Runtime.InvalidWorkingDir",
                "set WorkingDir to a directory the image has",
            ],
        );

        let file = run_in(caller, &tree, "/var/task/handler.txt");
        assert_refused(
            caller,
            &file,
            "/var/task/handler.txt",
            &[
                "working directory /var/task/handler.txt",
                "not a directory",
                "Runtime.InvalidWorkingDir",
            ],
        );

        // Refused as AWS's emulator refuses it, not resolved against `/` (where it exists).
        let relative = run_in(caller, &tree, "var/task");
        assert_refused(
            caller,
            &relative,
            "var/task",
            &[
                "working directory \"var/task\" is not an absolute path",
                "Runtime.InvalidWorkingDir",
            ],
        );

        let fine = run_in(caller, &tree, "/var/task");
        assert!(fine.status.success(), "{caller:?}: {}", stderr_of(&fine));
        assert_eq!(stdout_of(&fine), "ran\n");
    });
}

#[test]
fn a_working_directory_993_may_not_search_is_refused_even_when_lambda_image_is_root() {
    let tree = Tree::new();
    let private = tree.root().join("var/private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    as_each_caller(|caller| {
        // Entered as uid 993, after the uid change: root's own right to enter it does not count.
        let output = run_in(caller, &tree, "/var/private");
        assert_refused(
            caller,
            &output,
            "/var/private",
            &[
                "cannot enter the image's working directory /var/private",
                "Permission denied",
                "chmod 755",
            ],
        );
    });
}
