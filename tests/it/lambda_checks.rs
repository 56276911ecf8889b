//! Lambda fidelity checks: `build` refusing bootstraps Lambda could not run (wrong architecture,
//! too-new glibc, missing interpreter) unless told to skip, and `check` linting images: what
//! `build` writes passes (an index by tag with a warning naming what to deploy), and hand-made bad
//! images (a hard link, a missing parent directory, an uncompressed layer, a wrong-architecture
//! bootstrap) are each flagged.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::*;
use serde_json::{Value, json};

/// The exit status of `check IMAGE` when an image finding is an error (`image_rejected`).
const CHECK_FAILED: i32 = 7;
/// The exit status of `check --bootstrap` when a bootstrap check finds an error.
const BOOTSTRAP_REJECTED: i32 = 3;
/// `build`'s exit status for an unusable bootstrap.
const BOOTSTRAP_ERROR: i32 = 3;

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lambda-checks-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The findings of a `check --json` report (image and bootstrap ones), as (check, level).
fn finding_levels(report: &Value) -> Vec<(String, String)> {
    let image = report["image"]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bootstraps = report["bootstraps"].as_array().cloned().unwrap_or_default();
    image
        .iter()
        .chain(&bootstraps)
        .map(|finding| {
            (
                finding["check"].as_str().unwrap().to_owned(),
                finding["level"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn errors_of(report: &Value) -> Vec<String> {
    of_level(report, "error")
}

fn of_level(report: &Value, wanted: &str) -> Vec<String> {
    finding_levels(report)
        .into_iter()
        .filter(|(_, level)| level == wanted)
        .map(|(check, _)| check)
        .collect()
}

/// Runs a build to `output` that must be refused for its bootstrap; returns its stderr.
fn refused_build(args: &[&str], output: &str) -> String {
    let built = run_unchecked(
        lambda_image()
            .arg("build")
            .args(args)
            .args(["--output", output]),
    );
    assert_eq!(
        built.status.code(),
        Some(BOOTSTRAP_ERROR),
        "{}",
        stderr_of(&built)
    );
    let written = Path::new(output.trim_start_matches("oci:"));
    assert!(!written.exists(), "nothing is written to {output}");
    stderr_of(&built)
}

/// The first finding of `check` in a list of findings.
fn finding<'a>(findings: &'a Value, check: &str) -> &'a Value {
    findings
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {findings}"))
}

fn check_json(image: &str) -> (Output, Value) {
    lambda_image_json(&["check", "--json", image])
}

#[test]
fn everything_build_writes_passes_check_and_an_index_is_flagged() {
    let dir = scratch();
    let outputs = [
        format!("oci:{}:v1", path(&dir.path().join("layout"))),
        format!("oci-archive:{}:v1", path(&dir.path().join("image.tar"))),
        format!(
            "docker-archive:{}:fn:v1",
            path(&dir.path().join("docker.tar"))
        ),
    ];
    for output in &outputs {
        let mut args = vec!["build".to_owned(), "--json".to_owned(), "-q".to_owned()];
        args.extend(both_bootstrap_args());
        args.extend([
            "--base".into(),
            base_reference(),
            "--output".into(),
            output.clone(),
        ]);
        let build = run(lambda_image().args(&args));
        let report: Value = serde_json::from_slice(&build.stdout).unwrap();

        // A docker-archive has no index, and no manifests: each architecture is its own image.
        // An index checked by tag is a warning (what to deploy), not an error: `build --tag` then
        // `check` by that tag is what CI runs.
        let docker = output.starts_with("docker-archive:");
        if !docker {
            let (checked, lint) = check_json(output);
            assert_eq!(
                checked.status.code(),
                Some(0),
                "{output}: an index by tag only warns"
            );
            assert_eq!(errors_of(&lint), Vec::<String>::new(), "{output}: {lint}");
            assert_eq!(of_level(&lint, "warning"), ["index"], "{output}: {lint}");
        }
        let index_hint = if docker {
            String::new()
        } else {
            let (_, lint) = check_json(output);
            lint["image"]["findings"][0]["hint"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        for architecture in ["amd64", "arm64"] {
            let digest = report_image_digest(&report, architecture);
            assert!(
                docker || index_hint.contains(&digest),
                "{index_hint} lacks {digest}"
            );
            let single = format!("{}-{architecture}", output);
            let (checked, lint) = check_json(&single);
            assert_eq!(checked.status.code(), Some(0), "{single}: {lint}");
            assert_eq!(lint["image"]["index"], false);
            if !docker {
                assert_eq!(lint["image"]["images"][0]["digest"], json!(digest));
            }
            let passes = finding_levels(&lint);
            assert!(
                passes.contains(&("architecture".into(), "info".into())),
                "the bootstrap's ELF was compared with the config: {lint}"
            );
        }
    }
}

#[test]
fn check_reads_registry_images_and_names_the_digests_to_deploy() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let dir = scratch();
    let tag = registry.reference("fn:v1");
    let mut args = vec!["build".to_owned(), "--json".to_owned(), "-q".to_owned()];
    args.extend(both_bootstrap_args());
    args.extend([
        "--base".into(),
        base_reference(),
        "--tag".into(),
        tag.clone(),
    ]);
    let build = run(lambda_image()
        .args(&args)
        .arg("--cache-dir")
        .arg(dir.path().join("cache")));
    let report: Value = serde_json::from_slice(&build.stdout).unwrap();

    let cache = format!("--cache-dir={}", path(&dir.path().join("cache")));
    let (checked, lint) = lambda_image_json(&["check", "--json", "-q", &cache, &tag]);
    assert_eq!(
        checked.status.code(),
        Some(0),
        "an index by tag only warns: {lint}"
    );
    let hint = lint["image"]["findings"][0]["hint"].as_str().unwrap();
    let amd64 = report["images"][0]["reference"].as_str().unwrap();
    assert!(amd64.contains("/fn@sha256:"), "{amd64}");
    assert!(
        hint.contains(amd64),
        "the index finding names {amd64}: {hint}"
    );

    let (checked, lint) = lambda_image_json(&["check", "--json", "-q", &cache, amd64]);
    assert_eq!(checked.status.code(), Some(0), "{lint}");
}

/// Which defect a hand-made image's function layer has.
#[derive(Clone, Copy, Debug)]
enum Defect {
    None,
    HardLink,
    MissingParent,
    Uncompressed,
    WrongArchitectureBootstrap,
}

/// An OCI layout (tag `bad`) holding the stand-in base's amd64 image plus one function layer
/// with `/var/runtime/bootstrap` and the defect, and `Cmd ["bootstrap"]`.
fn hand_made_image(dir: &Path, defect: Defect) -> String {
    let f = fixtures();
    let bootstrap = match defect {
        Defect::WrongArchitectureBootstrap => fs::read(&f.bootstrap_arm64).unwrap(),
        _ => fs::read(&f.bootstrap_amd64).unwrap(),
    };
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(0o755);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_path(path).unwrap();
        header.set_cksum();
        tar.append(&header, data).unwrap();
    };
    add(
        "var/runtime/bootstrap",
        tar::EntryType::Regular,
        &bootstrap,
        None,
    );
    match defect {
        Defect::HardLink => add(
            "var/runtime/bootstrap.link",
            tar::EntryType::Link,
            &[],
            Some("var/runtime/bootstrap"),
        ),
        Defect::MissingParent => add(
            "var/task/lib/config.json",
            tar::EntryType::Regular,
            b"{}",
            None,
        ),
        _ => {}
    }
    let layer_tar = tar.into_inner().unwrap();
    base_plus_layer(
        dir,
        &format!("{defect:?}"),
        &layer_tar,
        matches!(defect, Defect::Uncompressed),
        |config| config["config"]["Cmd"] = json!(["bootstrap"]),
    )
}

#[test]
fn check_flags_each_defect_of_hand_made_images() {
    let dir = scratch();
    let control = hand_made_image(dir.path(), Defect::None);
    let (checked, lint) = check_json(&control);
    assert_eq!(
        checked.status.code(),
        Some(0),
        "the defect-free control passes: {lint}"
    );

    for (defect, expected) in [
        (Defect::HardLink, "hard-links"),
        (Defect::MissingParent, "missing-parents"),
        (Defect::Uncompressed, "layer-media-type"),
        (Defect::WrongArchitectureBootstrap, "architecture"),
    ] {
        let image = hand_made_image(dir.path(), defect);
        let (checked, lint) = check_json(&image);
        assert_eq!(
            checked.status.code(),
            Some(CHECK_FAILED),
            "{defect:?}: {lint}"
        );
        assert_eq!(errors_of(&lint), [expected], "{defect:?}: {lint}");

        let text = run_unchecked(lambda_image().args(["check", &image]));
        let stdout = String::from_utf8_lossy(&text.stdout);
        assert!(
            stdout.contains(&format!("error[{expected}] amd64")),
            "{stdout}"
        );
        assert_eq!(text.status.code(), Some(CHECK_FAILED));
    }
}

#[test]
fn a_bootstrap_for_another_architecture_fails_build_and_check() {
    let dir = scratch();
    let f = fixtures();
    let given_as_amd64 = format!("amd64={}", path(&f.bootstrap_arm64));
    let out = dir.path().join("out");
    let base = base_reference();
    let stderr = refused_build(
        &["--bootstrap", &given_as_amd64, "--base", &base],
        &format!("oci:{}", path(&out)),
    );
    assert!(
        stderr.contains("is an ELF executable for arm64 (aarch64), but it was given as amd64"),
        "{stderr}"
    );

    let (checked, report) = lambda_image_json(&["check", "--json", "--bootstrap", &given_as_amd64]);
    assert_eq!(checked.status.code(), Some(BOOTSTRAP_REJECTED));
    assert_eq!(errors_of(&report), ["architecture"]);

    // Skipped on request, and said so.
    let (built, report) = lambda_image_json(&[
        "build",
        "--json",
        "--bootstrap",
        &given_as_amd64,
        "--base",
        &base_reference(),
        "--skip-checks",
        "architecture",
        "--output",
        &format!("oci:{}", path(&out)),
    ]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr_of(&built));
    assert!(stderr_of(&built).contains("skipped[architecture] amd64"));
    assert_eq!(
        finding(&report["checks"], "architecture")["level"],
        "skipped"
    );
}

#[test]
fn a_bootstrap_needing_glibc_2_34_fails_on_al2_and_passes_on_al2023() {
    let dir = scratch();
    let dynamic = dynamic_bootstrap(dir.path());

    let (checked, report) = lambda_image_json(&[
        "check",
        "--json",
        "--bootstrap",
        path(&dynamic),
        "--base",
        "provided.al2",
    ]);
    assert_eq!(checked.status.code(), Some(BOOTSTRAP_REJECTED), "{report}");
    assert_eq!(errors_of(&report), ["glibc"]);
    let message = finding(&report["bootstraps"], "glibc")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("GLIBC_2.34") && message.contains("2.26"),
        "{message}"
    );

    let (checked, report) = lambda_image_json(&[
        "check",
        "--json",
        "--bootstrap",
        path(&dynamic),
        "--base",
        "provided.al2023",
    ]);
    assert_eq!(checked.status.code(), Some(0), "{report}");

    // In a build the check comes before anything is downloaded: no registry is reachable here.
    let out = format!("oci:{}", path(&dir.path().join("out")));
    let stderr = refused_build(
        &["--bootstrap", path(&dynamic), "--base", "provided.al2"],
        &out,
    );
    assert!(
        stderr.contains("needs GLIBC_2.34") && stderr.contains("CGO_ENABLED=0"),
        "{stderr}"
    );
}

#[test]
fn a_local_base_is_checked_through_its_own_files() {
    let dir = scratch();
    let dynamic = dynamic_bootstrap(dir.path());
    let out = |name: &str| format!("oci:{}", path(&dir.path().join(name)));

    // The stand-in base has no dynamic linker.
    let base = base_reference();
    let stderr = refused_build(&["--bootstrap", path(&dynamic), "--base", &base], &out("a"));
    assert!(
        stderr.contains("the ELF interpreter /lib64/ld-linux-x86-64.so.2"),
        "{stderr}"
    );

    // --base-glibc states an old glibc: both checks fail, and the first is reported with the other.
    let stderr = refused_build(
        &[
            "--bootstrap",
            path(&dynamic),
            "--base",
            &base,
            "--base-glibc",
            "2.26",
        ],
        &out("b"),
    );
    assert!(
        stderr.contains("has glibc 2.26 (from --base-glibc)"),
        "{stderr}"
    );

    // A base whose layer has this machine's dynamic linker and libc: the glibc is read from it.
    let base = base_with_host_glibc(dir.path());
    let (built, report) = lambda_image_json(&[
        "build",
        "--json",
        "--bootstrap",
        path(&dynamic),
        "--base",
        &base,
        "--output",
        &out("c"),
    ]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr_of(&built));
    let glibc = finding(&report["checks"], "glibc").clone();
    assert_eq!(glibc["level"], "info", "{glibc}");
    assert!(
        glibc["message"]
            .as_str()
            .unwrap()
            .contains("its /usr/lib64/libc.so.6"),
        "{glibc}"
    );

    // A script whose interpreter the base's files lack can never start: refused, as an ELF
    // whose loader is missing is.
    let script = dir.path().join("python-bootstrap");
    fs::write(&script, "#!/usr/bin/python3\nprint('hi')\n").unwrap();
    let stderr = refused_build(
        &[
            "--bootstrap",
            &format!("amd64={}", path(&script)),
            "--base",
            &base_reference(),
        ],
        &out("d"),
    );
    assert!(
        stderr.contains("error: the script interpreter /usr/bin/python3"),
        "{stderr}"
    );

    // A script whose interpreter the base has is built; the missing exec bit is fixed.
    let script = dir.path().join("sh-bootstrap");
    fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let built = run(lambda_image().args([
        "build",
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base_reference(),
        "--output",
        &out("e"),
    ]));
    let stderr = stderr_of(&built);
    assert!(
        stderr.contains("has no execute permission on disk; it is written with mode 0755"),
        "{stderr}"
    );
}

/// The stand-in base plus a layer holding this machine's `ld-linux-x86-64.so.2` (at `/lib64`,
/// through a symlink to `usr/lib64` as on Amazon Linux) and `libc.so.6`.
fn base_with_host_glibc(dir: &Path) -> String {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    tar.append_data(&mut header, "usr/lib64/", std::io::empty())
        .unwrap();
    for (name, source) in [
        ("ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"),
        ("libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"),
    ] {
        let bytes = fs::read(source).unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o755);
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, format!("usr/lib64/{name}"), bytes.as_slice())
            .unwrap();
    }
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    tar.append_link(&mut header, "lib64", "usr/lib64").unwrap();
    let layer_tar = tar.into_inner().unwrap();
    base_plus_layer(dir, "glibc", &layer_tar, false, |_| {})
}

/// Copies the stand-in base into `dir/NAME` with its amd64 image plus one more layer (`layer_tar`,
/// gzipped unless `uncompressed`), the config edited by `edit_config`, tagged `NAME` alone.
fn base_plus_layer(
    dir: &Path,
    name: &str,
    layer_tar: &[u8],
    uncompressed: bool,
    edit_config: impl FnOnce(&mut Value),
) -> String {
    amd64_base_variant(dir, name, Some((layer_tar, uncompressed)), edit_config)
}
