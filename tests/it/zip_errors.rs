//! Bad input to `lambda-image zip`, table-driven like `build_errors.rs`: each case changes one
//! thing in an invocation that works (the control, run first through the same harness) and must
//! exit with its code, say what is wrong in a `lambda-image: error:` (or clap) message, print
//! nothing on stdout, panic nowhere, and leave the output directory (also its working
//! directory) empty: no `.zip`, no temporary file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{file_names, fixtures, lambda_image, stderr_of};

/// One invocation that must fail: its arguments (`{in}` is the case's input directory), exit
/// code and fragments of stderr.
struct BadInput {
    name: &'static str,
    args: Vec<&'static str>,
    env: Option<(&'static str, &'static str)>,
    code: i32,
    stderr: Vec<&'static str>,
}

fn bad(name: &'static str, code: i32, args: &[&'static str], stderr: &[&'static str]) -> BadInput {
    BadInput {
        name,
        args: args.to_vec(),
        env: None,
        code,
        stderr: stderr.to_vec(),
    }
}

fn bad_inputs() -> Vec<BadInput> {
    let escape = "{in}/escaping:/var/task/escaping";
    vec![
        bad(
            "bootstrap missing",
            3,
            &["--bootstrap", "{in}/no-such-bootstrap"],
            &["bootstrap {in}/no-such-bootstrap does not exist", "hint: "],
        ),
        bad(
            "arm64 bootstrap given as amd64",
            3,
            &["--bootstrap", "amd64={arm64}"],
            &[
                "is an ELF executable for arm64",
                "given as amd64",
                "exec format error",
            ],
        ),
        bad(
            "script bootstrap without ARCH=",
            3,
            &["--bootstrap", "{script}"],
            &["is a script", "--bootstrap amd64="],
        ),
        bad(
            "two --bootstrap",
            2,
            &["--bootstrap", "{amd64}", "--bootstrap", "{arm64}"],
            &[
                "holds one bootstrap",
                "2 --bootstrap were given",
                "once per architecture",
            ],
        ),
        bad(
            "output directory missing",
            5,
            &["--bootstrap", "{amd64}", "-o", "{out}/missing/function.zip"],
            &[
                "directory {out}/missing does not exist",
                "create the directory first",
            ],
        ),
        bad(
            "output is a directory",
            5,
            &["--bootstrap", "{amd64}", "-o", "{out}"],
            &["it is a directory"],
        ),
        bad(
            "include outside /var/task",
            2,
            &[
                "--bootstrap",
                "{amd64}",
                "--include",
                "{in}/config.json:/etc/config.json",
            ],
            &[
                "unpacks a .zip package into /var/task",
                "/var/task/config.json",
            ],
        ),
        bad(
            "include with a relative DEST",
            2,
            &[
                "--bootstrap",
                "{amd64}",
                "--include",
                "{in}/config.json:config.json",
            ],
            &["is not SRC:DEST with an absolute DEST"],
        ),
        bad(
            "include source missing",
            2,
            &[
                "--bootstrap",
                "{amd64}",
                "--include",
                "{in}/missing.json:/var/task/x.json",
            ],
            &["cannot read {in}/missing.json"],
        ),
        bad(
            "include onto the bootstrap",
            2,
            &[
                "--bootstrap",
                "{amd64}",
                "--include",
                "{in}/config.json:/var/task/bootstrap",
            ],
            &["/var/task/bootstrap is already in the package"],
        ),
        bad(
            "include a file onto the package root",
            2,
            &[
                "--bootstrap",
                "{amd64}",
                "--include",
                "{in}/config.json:/var/task",
            ],
            &["is the root of the package"],
        ),
        bad(
            "include a link leading out of /var/task",
            2,
            &["--bootstrap", "{amd64}", "--include", escape],
            &["/var/task/escaping/passwd -> /etc/passwd leads outside /var/task"],
        ),
        bad(
            "unknown runtime",
            2,
            &["--bootstrap", "{amd64}", "--runtime", "provided.al1"],
            &["provided.al1"],
        ),
        BadInput {
            env: Some(("SOURCE_DATE_EPOCH", "9999999999")),
            ..bad(
                "SOURCE_DATE_EPOCH after 2107",
                2,
                &["--bootstrap", "{amd64}"],
                &["after 2107-12-31"],
            )
        },
    ]
}

/// What [`run_with_fresh_directories`] saw.
struct Ran {
    output: Output,
    /// The output directory's files afterwards.
    left: Vec<String>,
    /// The command line, expanded.
    command: String,
    /// `{in}` and `{out}` of this run (removed by now).
    input: PathBuf,
    out: PathBuf,
}

/// Runs `lambda-image zip` in a fresh output directory (also its working directory) with a
/// fresh input directory holding `config.json` and `escaping/passwd` (a link to /etc/passwd).
fn run_with_fresh_directories(args: &[&str], env: Option<(&str, &str)>) -> Ran {
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (input, out) = (work.path().join("in"), work.path().join("out"));
    fs::create_dir_all(input.join("escaping")).unwrap();
    fs::create_dir(&out).unwrap();
    fs::write(input.join("config.json"), b"{}").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", input.join("escaping/passwd")).unwrap();
    let mut args: Vec<String> = args.iter().map(|a| expand(a, &input, &out)).collect();
    if !args.iter().any(|a| a == "-o") {
        args.extend(["-o".to_owned(), expand("{out}/function.zip", &input, &out)]);
    }
    let mut command = lambda_image();
    command.arg("zip").args(&args).current_dir(&out);
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    Ran {
        output,
        left: file_names(&out),
        command: args.join(" "),
        input,
        out,
    }
}

/// Fills in `{in}`, `{out}` and the fixture bootstraps `{amd64}`, `{arm64}`, `{script}`.
fn expand(text: &str, input: &Path, out: &Path) -> String {
    let f = fixtures();
    text.replace("{in}", path_text(input))
        .replace("{out}", path_text(out))
        .replace("{amd64}", path_text(&f.bootstrap_amd64))
        .replace("{arm64}", path_text(&f.bootstrap_arm64))
        .replace("{script}", path_text(&f.script_bootstrap))
}

#[test]
fn bad_input_fails_cleanly_and_writes_nothing() {
    // The control: the invocation the cases change, in the same harness, works.
    let control = run_with_fresh_directories(&["--bootstrap", "{amd64}"], None);
    assert!(
        control.output.status.success(),
        "{}",
        stderr_of(&control.output)
    );
    assert_eq!(control.left, ["function.zip"]);

    let mut failures = Vec::new();
    for case in bad_inputs() {
        let ran = run_with_fresh_directories(&case.args, case.env);
        let (output, left, command) = (&ran.output, &ran.left, &ran.command);
        let stderr = stderr_of(output);
        let mut problems = Vec::new();
        if output.status.code() != Some(case.code) {
            problems.push(format!(
                "exit {:?}, expected {}",
                output.status.code(),
                case.code
            ));
        }
        for fragment in &case.stderr {
            let fragment = expand(fragment, &ran.input, &ran.out);
            if !stderr.contains(&fragment) {
                problems.push(format!("no {fragment:?} in stderr"));
            }
        }
        if !stderr.contains("error:") || stderr.contains("panicked") {
            problems.push("stderr is not one clean error".to_owned());
        }
        if !output.stdout.is_empty() {
            problems.push("stdout is not empty".to_owned());
        }
        if !left.is_empty() {
            problems.push(format!("left behind: {left:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n  lambda-image zip {command}\n  stderr: {stderr}",
                case.name,
                problems.join("; "),
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn path_text(path: &Path) -> &str {
    path.to_str().unwrap()
}
