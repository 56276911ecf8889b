//! Tests of `lambda-image zip`, the `.zip` deployment package, checked with tools that are not
//! ours: Python's `zipfile` (entries, modes, "made by" system, timestamps, extra fields, CRCs),
//! Debian's `unzip -t` and `unzip` (extraction, links), and `zipinfo` (the modes people see).
//!
//! Each test works in its own directory under `CARGO_TARGET_TMPDIR`; bootstraps come from the
//! shared fixtures (static amd64/arm64), plus a dynamically linked one compiled here with gcc
//! for the glibc checks. Bad input is tested in `zip_errors.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use crate::support::{
    self, BOOTSTRAP_OUTPUT, dynamic_bootstrap, file_names, fixtures, lambda_image, run, run_stdout,
    sha256_file, stderr_of,
};
use base64::Engine;
use serde_json::Value;

/// A fresh directory for one test, removed at the end.
fn workspace() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("zip-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// `lambda-image zip ARGS` run in `directory`.
fn zip_in(directory: &Path, args: &[&str]) -> Output {
    lambda_image()
        .arg("zip")
        .args(args)
        .current_dir(directory)
        .output()
        .unwrap()
}

/// Like [`zip_in`], panicking with stderr unless it succeeds; returns stdout.
fn zip_ok(directory: &Path, args: &[&str]) -> (String, String) {
    let output = zip_in(directory, args);
    assert!(
        output.status.success(),
        "lambda-image zip {args:?} failed: {}",
        stderr_of(&output)
    );
    let stderr = stderr_of(&output);
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

fn path_text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Inputs for a package with every kind of entry: a config file (0600 on disk), and a
/// directory holding a script (0755), a nested data file and a link to it.
fn write_inputs(root: &Path) {
    write_file(&root.join("config.json"), b"{\"stage\":\"test\"}\n", 0o600);
    write_file(&root.join("assets/run.sh"), b"#!/bin/sh\necho run\n", 0o755);
    write_file(&root.join("assets/sub/data.txt"), b"some data\n", 0o644);
    std::os::unix::fs::symlink("sub/data.txt", root.join("assets/link")).unwrap();
}

/// Every entry as Python's `zipfile` reads it, after `testzip()` found every CRC right.
fn python_entries(zip: &Path) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    bad = archive.testzip()
    assert bad is None, "bad CRC in " + bad
    print(json.dumps([{
        "name": info.filename,
        "mode": info.external_attr >> 16,
        "system": info.create_system,
        "date_time": list(info.date_time),
        "extra": info.extra.hex(),
        "comment": info.comment.hex(),
        "compress_type": info.compress_type,
        "size": info.file_size,
    } for info in archive.infolist()]))
"#;
    let stdout = run_stdout(Command::new("python3").args(["-c", SCRIPT]).arg(zip));
    serde_json::from_str::<Value>(&stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// `zipinfo`'s mode column (e.g. `-rwxr-xr-x`) by entry name.
fn zipinfo_modes(zip: &Path) -> BTreeMap<String, String> {
    run_stdout(Command::new("zipinfo").arg(zip))
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let mode = *fields.first()?;
            let looks_like_entry = fields.len() >= 9 && mode.len() == 10;
            looks_like_entry.then(|| (fields[fields.len() - 1].to_owned(), mode.to_owned()))
        })
        .collect()
}

/// The finding of check `name` in a `--json` report.
fn check_in<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

#[test]
fn package_has_lambdas_layout_and_modes_and_extracts_to_a_working_bootstrap() {
    let work = workspace();
    let root = work.path();
    write_inputs(&root.join("in"));
    // Not executable on disk: the package makes it 0755 anyway, and says so.
    write_file(
        &root.join("in/bootstrap"),
        &fs::read(&fixtures().bootstrap_amd64).unwrap(),
        0o644,
    );
    fs::create_dir(root.join("out")).unwrap();
    let (stdout, stderr) = zip_ok(
        root,
        &[
            "--bootstrap",
            "in/bootstrap",
            "--include",
            "in/config.json:/var/task/config.json",
            "--include",
            "in/assets:/var/task/lib/assets",
            "-o",
            "out/function.zip",
        ],
    );
    let zip = root.join("out/function.zip");
    assert_eq!(
        file_names(&root.join("out")),
        ["function.zip"],
        "no temporaries"
    );
    assert!(stderr.contains("written with mode 0755"), "{stderr}");
    assert!(!stderr.contains("package-size"), "{stderr}");

    // The entries as zipfile reads them: sorted, every parent directory present, Unix modes
    // with their file types, one 1980-01-01 timestamp, nothing extra.
    let entries = python_entries(&zip);
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "bootstrap",
            "config.json",
            "lib/",
            "lib/assets/",
            "lib/assets/link",
            "lib/assets/run.sh",
            "lib/assets/sub/",
            "lib/assets/sub/data.txt",
        ]
    );
    let expected_modes = [
        0o100755, 0o100644, 0o40755, 0o40755, 0o120777, 0o100755, 0o40755, 0o100644,
    ];
    for (entry, mode) in entries.iter().zip(expected_modes) {
        let name = &entry["name"];
        assert_eq!(entry["mode"], mode, "mode of {name}: {entry}");
        assert_eq!(entry["system"], 3, "{name} made by Unix");
        assert_eq!(entry["date_time"], serde_json::json!([1980, 1, 1, 0, 0, 0]));
        assert_eq!(entry["extra"], "", "no extra fields in {name}");
        assert_eq!(entry["comment"], "");
        let deflated = mode & 0o170000 == 0o100000;
        assert_eq!(
            entry["compress_type"],
            if deflated { 8 } else { 0 },
            "{name}"
        );
    }

    let modes = zipinfo_modes(&zip);
    assert_eq!(modes["bootstrap"], "-rwxr-xr-x");
    assert_eq!(modes["config.json"], "-rw-r--r--");
    assert_eq!(modes["lib/"], "drwxr-xr-x");
    assert_eq!(modes["lib/assets/run.sh"], "-rwxr-xr-x");
    assert_eq!(modes["lib/assets/sub/data.txt"], "-rw-r--r--");
    assert_eq!(modes["lib/assets/link"], "lrwxrwxrwx");

    let tested = run_stdout(Command::new("unzip").arg("-t").arg(&zip));
    assert!(tested.contains("No errors detected"), "{tested}");
    let extracted = root.join("extracted");
    run(Command::new("unzip")
        .arg("-q")
        .arg(&zip)
        .arg("-d")
        .arg(&extracted));
    let bootstrap = extracted.join("bootstrap");
    assert_eq!(
        sha256_file(&bootstrap),
        sha256_file(&fixtures().bootstrap_amd64)
    );
    assert_eq!(
        run_stdout(&mut Command::new(&bootstrap)).trim_end(),
        BOOTSTRAP_OUTPUT
    );
    assert_eq!(
        fs::read_link(extracted.join("lib/assets/link")).unwrap(),
        Path::new("sub/data.txt")
    );
    assert_eq!(
        fs::read(extracted.join("config.json")).unwrap(),
        fs::read(root.join("in/config.json")).unwrap()
    );

    // The report: where, which digest, how big, which architecture, how to deploy.
    let digest = sha256_file(&zip);
    let size = fs::metadata(&zip).unwrap().len();
    assert!(
        stdout.contains("zip           out/function.zip\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("sha256        {digest}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("(Lambda --architectures x86_64)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "aws lambda create-function --function-name NAME --role ROLE_ARN --runtime provided.al2023 \
             --handler bootstrap --architectures x86_64 --zip-file fileb://out/function.zip"
        ),
        "{stdout}"
    );
    let ungrouped = stdout.replace(',', "");
    assert!(
        ungrouped.contains(&format!("{size} bytes zipped")),
        "{stdout}"
    );
}

#[test]
fn json_report_names_the_architecture_the_digest_and_the_checks() {
    let work = workspace();
    let arm64 = path_text(&fixtures().bootstrap_arm64);
    let (stdout, stderr) = zip_ok(
        work.path(),
        &["--bootstrap", arm64, "--json", "-o", "f.zip"],
    );
    assert_eq!(
        stderr, "",
        "a static bootstrap that passes every check prints nothing"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let zip = work.path().join("f.zip");
    let digest = sha256_file(&zip);
    let raw = hex::decode(&digest).unwrap();
    assert_eq!(report["path"], "f.zip");
    assert_eq!(report["sha256"], digest.as_str());
    assert_eq!(
        report["code_sha256"],
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    assert_eq!(report["size"], fs::metadata(&zip).unwrap().len());
    assert_eq!(
        report["unzipped_size"],
        fs::metadata(&fixtures().bootstrap_arm64).unwrap().len()
    );
    assert_eq!(report["architecture"], "arm64");
    assert_eq!(report["lambda_architecture"], "arm64");
    assert_eq!(report["runtime"], "provided.al2023");
    assert_eq!(report["upload"], "direct");
    assert_eq!(check_in(&report, "architecture")["level"], "info");
    assert_eq!(check_in(&report, "glibc")["level"], "info");
    assert!(
        check_in(&report, "glibc")["message"]
            .as_str()
            .unwrap()
            .contains("statically linked")
    );
}

#[test]
fn same_inputs_give_the_same_bytes_and_source_date_epoch_changes_them() {
    let work = workspace();
    let root = work.path();
    let amd64 = fixtures().bootstrap_amd64.clone();
    for copy in ["a", "b"] {
        write_inputs(&root.join(copy));
        fs::copy(&amd64, root.join(copy).join("bootstrap")).unwrap();
    }
    let args = |directory: &str, output: &str| -> Vec<String> {
        [
            "--bootstrap",
            &format!("{directory}/bootstrap"),
            "--include",
            &format!("{directory}/config.json:/var/task/"),
            "--include",
            &format!("{directory}/assets:/var/task/assets"),
            "-o",
            output,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let zip_with = |cwd: &Path, args: Vec<String>, epoch: Option<&str>| {
        let mut command = lambda_image();
        command.arg("zip").args(&args).current_dir(cwd);
        if let Some(epoch) = epoch {
            command.env("SOURCE_DATE_EPOCH", epoch);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
    };

    // From the root with relative paths to copy `a`...
    zip_with(root, args("a", "first.zip"), None);
    // ...then from inside `b`, after every input of `b` got other mtimes.
    let later = SystemTime::now() + Duration::from_secs(3600);
    for path in [
        "bootstrap",
        "config.json",
        "assets/run.sh",
        "assets/sub/data.txt",
    ] {
        let file = fs::File::options()
            .write(true)
            .open(root.join("b").join(path))
            .unwrap();
        file.set_modified(later).unwrap();
    }
    let b = root.join("b");
    zip_with(&b, args(".", "../second.zip"), None);
    zip_with(root, args("a", "epoch-zero.zip"), Some("0"));
    zip_with(root, args("a", "dated.zip"), Some("1700000000"));

    let bytes = |name: &str| fs::read(root.join(name)).unwrap();
    assert!(
        bytes("first.zip") == bytes("second.zip"),
        "same inputs, other bytes"
    );
    assert!(
        bytes("first.zip") == bytes("epoch-zero.zip"),
        "before 1980 is 1980-01-01, the unset default"
    );
    assert!(bytes("first.zip") != bytes("dated.zip"));
    let dated = python_entries(&root.join("dated.zip"));
    assert_eq!(
        dated[0]["date_time"],
        serde_json::json!([2023, 11, 14, 22, 13, 20])
    );
}

#[test]
fn glibc_is_checked_against_the_runtime() {
    let work = workspace();
    let root = work.path();
    let bootstrap = dynamic_bootstrap(root);
    let bootstrap = path_text(&bootstrap);

    let refused = zip_in(
        root,
        &[
            "--bootstrap",
            bootstrap,
            "--runtime",
            "provided.al2",
            "-o",
            "al2.zip",
        ],
    );
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    for fragment in [
        "GLIBC_2.34",
        "__libc_start_main",
        "glibc 2.26",
        "provided.al2",
    ] {
        assert!(stderr.contains(fragment), "no {fragment:?} in {stderr}");
    }
    assert!(refused.stdout.is_empty());
    assert!(!root.join("al2.zip").exists());

    let (stdout, _) = zip_ok(
        root,
        &["--bootstrap", bootstrap, "--json", "-o", "al2023.zip"],
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let glibc = check_in(&report, "glibc");
    assert_eq!(glibc["level"], "info", "{glibc}");
    assert!(glibc["message"].as_str().unwrap().contains("glibc 2.34"));

    let (stdout, stderr) = zip_ok(
        root,
        &[
            "--bootstrap",
            bootstrap,
            "--runtime",
            "provided.al2",
            "--skip-checks",
            "glibc",
            "--json",
            "-o",
            "skipped.zip",
        ],
    );
    assert!(stderr.contains("skipped[glibc]"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["runtime"], "provided.al2");
    assert_eq!(check_in(&report, "glibc")["level"], "skipped");
}

#[test]
fn over_250_mb_unzipped_fails_and_leaves_the_old_output() {
    let work = workspace();
    let root = work.path();
    // Sparse: 251 MiB that take no disk space and are never read.
    let big = root.join("in/big.bin");
    fs::create_dir(root.join("in")).unwrap();
    fs::File::create(&big).unwrap().set_len(251 << 20).unwrap();
    fs::create_dir(root.join("out")).unwrap();
    fs::write(root.join("out/function.zip"), b"the previous package").unwrap();

    let output = zip_in(
        root,
        &[
            "--bootstrap",
            path_text(&fixtures().bootstrap_amd64),
            "--include",
            "in/big.bin:/var/task/big.bin",
            "-o",
            "out/function.zip",
        ],
    );
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    let unzipped = (251 << 20) + fs::metadata(&fixtures().bootstrap_amd64).unwrap().len();
    assert!(
        stderr
            .replace(',', "")
            .contains(&format!("would be {unzipped} bytes unzipped")),
        "{stderr}"
    );
    assert!(stderr.contains("262,144,000 bytes (250 MB)"), "{stderr}");
    assert!(stderr.contains("hint: "), "{stderr}");
    assert!(output.stdout.is_empty());
    assert_eq!(file_names(&root.join("out")), ["function.zip"]);
    assert_eq!(
        fs::read(root.join("out/function.zip")).unwrap(),
        b"the previous package"
    );
}

#[test]
fn over_50_mb_zipped_says_to_upload_through_s3() {
    let work = workspace();
    let root = work.path();
    // 51 MiB that deflate cannot shrink.
    let noise = support::pseudo_random_bytes(0x5eed_0051, 51 << 20);
    write_file(&root.join("noise.bin"), &noise, 0o644);
    let (stdout, stderr) = zip_ok(
        root,
        &[
            "--bootstrap",
            path_text(&fixtures().bootstrap_amd64),
            "--include",
            "noise.bin:/var/task/",
            "--json",
            "-o",
            "big.zip",
        ],
    );
    let size = fs::metadata(root.join("big.zip")).unwrap().len();
    assert!(size > 50 << 20, "{size}");
    assert!(stderr.contains("warning[package-size]"), "{stderr}");
    assert!(stderr.contains("upload it through S3"), "{stderr}");
    assert!(stderr.contains("52,428,800 bytes (50 MB)"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["upload"], "s3");
    assert_eq!(check_in(&report, "package-size")["level"], "warning");
}
