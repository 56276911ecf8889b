//! Running programs: external tools (skopeo, umoci, tar) and the binary under test, panicking
//! with the full command line and both streams when a program is missing or fails. Also here:
//! builds in the background with a deadline ([`builds`]), `lambda-image serve` and `curl`
//! ([`local_lambda`]), images run with umoci and runc ([`runc`]), and the table-driven error
//! tests' runner ([`table`]). Not here: the servers the tests talk to ([`super::registries`]).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod builds;
pub mod local_lambda;
pub mod runc;
pub mod table;

/// Runs `cmd`, panicking (with the command line, exit status, stdout and stderr) if it
/// cannot be started or does not exit successfully. Returns its output.
pub fn run(cmd: &mut Command) -> Output {
    let output = run_unchecked(cmd);
    if !output.status.success() {
        panic!(
            "command failed: {cmd:?}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    output
}

/// Runs `cmd` and returns its output whatever its exit status; panics only if it cannot
/// be started (with a hint to run `bash tests/run.sh` if the program is missing).
pub fn run_unchecked(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
            "`{}` not found ({e}) while running {cmd:?}: run `bash tests/run.sh`, \
             which installs the tools the tests need",
            cmd.get_program().to_string_lossy()
        ),
        Err(e) => panic!("could not run {cmd:?}: {e}"),
    }
}

/// Like [`run`], returning stdout as a string (lossily decoded).
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Runs `skopeo --insecure-policy <args>`; returns stdout, panics on failure.
pub fn skopeo(args: &[&str]) -> String {
    run_stdout(Command::new("skopeo").arg("--insecure-policy").args(args))
}

/// Runs `umoci <args>`; returns stdout, panics on failure.
pub fn umoci(args: &[&str]) -> String {
    run_stdout(Command::new("umoci").args(args))
}

/// Unpacks `image` (`<layout>:<tag>`, the tag must point at a manifest) into the runtime
/// bundle directory `bundle` (must not exist) with `umoci unpack --rootless`. The root
/// filesystem ends up in `bundle/rootfs`.
pub fn umoci_unpack(image: &str, bundle: &Path) {
    umoci(&[
        "unpack",
        "--rootless",
        "--image",
        image,
        bundle.to_str().expect("bundle path must be UTF-8"),
    ]);
}

/// `Command` for the binary under test, with `SOURCE_DATE_EPOCH` removed from its
/// environment.
pub fn lambda_image() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-image"));
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

/// Runs `lambda-image ARGS` (which must include `--json`) and parses its stdout; panics with
/// both streams when stdout is not JSON.
pub fn lambda_image_json(args: &[&str]) -> (Output, Value) {
    let output = run_unchecked(lambda_image().args(args));
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout of {args:?} is not JSON ({error}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(&output)
        )
    });
    (output, report)
}

/// The digest a `--json` build report gives for `architecture`.
pub fn report_image_digest(report: &Value, architecture: &str) -> String {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["architecture"] == architecture)
        .unwrap_or_else(|| panic!("no {architecture} image in {report}"))["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A command's stderr as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The names of the files in `directory`, sorted.
pub fn file_names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .unwrap_or_else(|e| panic!("listing {}: {e}", directory.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `command` with `input` on its stdin (a command that exits before reading it is fine:
/// the broken pipe is ignored), and returns what it did.
pub fn with_stdin(command: &mut Command, input: impl AsRef<[u8]>) -> Output {
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {command:?}: {error}"));
    let _ = child.stdin.take().unwrap().write_all(input.as_ref());
    child.wait_with_output().unwrap()
}

/// A layer tar packed by GNU tar, as users pack one (modes as on disk, owner root), from the
/// directory `DIR/NAME-root` that `prepare` fills; returns the tar's path, `DIR/NAME-layer.tar`.
pub fn gnu_tar_layer(dir: &Path, name: &str, prepare: impl FnOnce(&Path)) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    fs::create_dir_all(&root).unwrap();
    prepare(&root);
    let tar = dir.join(format!("{name}-layer.tar"));
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}
