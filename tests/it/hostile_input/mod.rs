//! Hostile and malformed input to every command that reads it (`build`, `check`, `zip`):
//! references, registry answers (from a scriptable fake registry), base layers with unsafe
//! paths, odd bootstraps, broken credential sources, redirects and TLS failures. The table is
//! `tests/it/hostile_input/cases.rs` and `cases_local.rs`; this file is the harness, in the style of `tests/it/build_errors.rs`.
//!
//! For every case the test checks the exit code and the message fragments, and that:
//!
//! * stderr shows no panic or backtrace, and never the password [`cases::SECRET`];
//! * stdout is empty (only `check`'s findings report may be there, for a finding);
//! * nothing is written: the working and output directory `{out}` is unchanged, `TMPDIR` is
//!   empty again, and the blob cache holds no temporary file;
//! * the case's own after-checks pass (e.g. no `Authorization` reached a redirect target).
//!
//! The child runs with its own HOME and DOCKER_CONFIG, no auth files from the machine, and no
//! `SSL_CERT_FILE` unless the case sets one. Every failing case is reported, with a command
//! line, before the test fails.

mod case;
mod cases;
mod cases_local;
mod endless;
pub(crate) mod fake_registry;
mod hostile_images;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::support;
use case::{Case, Expect, Scene};

#[test]
fn hostile_input_fails_cleanly() {
    let cases = cases::cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let failures = run_all(&cases);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The fake registry, the hostile layout's untouched images and a symlinked bootstrap work,
/// so the cases fail because of their one fault. A bootstrap that is a symlink to a file
/// (anywhere) is followed: the layer holds the file's bytes at `/var/runtime/bootstrap`.
#[test]
fn controls_succeed() {
    let controls = vec![
        case::build("control: the fixture base from the fake registry", 0, "")
            .prepare(|s| {
                let registry = fake_registry::FakeRegistry::serving_base();
                s.set("reg", registry.host());
                s.keep(registry);
            })
            .base("{reg}/lambda/base:al2023"),
        case::build("control: a bootstrap symlinked from elsewhere", 0, "")
            .prepare(|s| {
                std::os::unix::fs::symlink(&support::fixtures().bootstrap_amd64, s.input("link"))
                    .unwrap()
            })
            .bootstraps(&["{in}/link"]),
        case::build(
            "control: the hostile layout's generator, with a harmless layer",
            0,
            "",
        )
        .prepare(|s| {
            let image = hostile_images::layout_with_extra_layer(
                &s.input("layout"),
                &[hostile_images::RawEntry::Directory("safe")],
            );
            s.set("hostile", image);
        })
        .base("{hostile}"),
    ];
    let failures = run_all(&controls);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A manifest and a config that never end are refused while they are read: the registry
/// manages to send about the limit (plus what socket buffers hold), never the gigabyte its
/// `Content-Length` announces, and nothing is written.
#[test]
fn endless_documents_are_not_read_past_their_limit() {
    use endless::{Body, EndlessServer};
    let f = support::fixtures();
    let manifest = support::read_blob(&f.base_layout, &f.base_manifests["amd64"]);
    let config_path = format!("/v2/lambda/base/blobs/{}", f.base_configs["amd64"]);
    let scenarios = [
        (
            "endless manifest",
            vec![(
                "/v2/lambda/base/manifests/v1".to_owned(),
                Body::Endless(support::MEDIA_TYPE_MANIFEST),
            )],
            4 << 20,
            "over the 4194304-byte limit",
        ),
        (
            "endless config",
            vec![
                (
                    "/v2/lambda/base/manifests/v1".to_owned(),
                    Body::Document(support::MEDIA_TYPE_MANIFEST, manifest),
                ),
                (config_path, Body::Endless("application/octet-stream")),
            ],
            8 << 20,
            "content does not match its digest",
        ),
    ];
    // Loopback socket buffers can hold a few MB between the server's writes and the client.
    const BUFFERED: u64 = 16 << 20;
    for (name, routes, limit, fragment) in scenarios {
        let server = EndlessServer::start(routes.into_iter().collect());
        let scene = Scene::new();
        let output = scene.out.path().join("image");
        let result = support::run_unchecked(
            support::lambda_image()
                .args(["build", "--bootstrap"])
                .arg(&f.bootstrap_amd64)
                .arg("--base")
                .arg(format!("{}/lambda/base:v1", server.host()))
                .arg("--output")
                .arg(format!("oci:{}:v1", output.display()))
                .arg("--cache-dir")
                .arg(scene.cache.path())
                .env("HOME", scene.home())
                .env("TMPDIR", scene.tmp.path()),
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(4), "{name}: {stderr}");
        assert!(stderr.contains(fragment), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(result.stdout.is_empty(), "{name}");
        assert!(!output.exists(), "{name}: the output was written");
        let sent = server.endless_bytes_sent();
        assert!(
            sent <= limit + BUFFERED,
            "{name}: the registry sent {sent} bytes of a document limited to {limit}"
        );
    }
}

/// Runs the cases two to four at a time (TLS cases start servers); returns the reports of
/// those that failed, in table order.
fn run_all(cases: &[Case]) -> Vec<String> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    support::table::run_cases(cases, workers, run_case)
}

/// Runs one case; returns a description of everything it got wrong, if anything.
fn run_case(case: &Case) -> Option<String> {
    let mut scene = Scene::new();
    (case.prepare)(&mut scene);
    let args: Vec<String> = case.arguments().iter().map(|a| scene.expand(a)).collect();
    let before = snapshot(scene.out.path());

    let mut command = support::lambda_image();
    command
        .args(&args)
        .current_dir(scene.out.path())
        .env("TMPDIR", scene.tmp.path())
        .env("HOME", scene.home())
        .env("DOCKER_CONFIG", scene.home().join(".docker"))
        .env("XDG_RUNTIME_DIR", scene.input("run"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("RUST_BACKTRACE");
    for (key, value) in &scene.extra_env {
        command.env(key, value);
    }
    let result = support::run_unchecked(&mut command);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);

    if std::env::var_os("HOSTILE_SHOW").is_some() {
        eprintln!(
            "=== {} (exit {:?})\n{stdout}{stderr}",
            case.name,
            result.status.code()
        );
    }
    let mut problems = Vec::new();
    match result.status.code() {
        Some(code) if code == case.code => {}
        Some(code) => problems.push(format!("exit code {code}, expected {}", case.code)),
        None => problems.push(format!("killed: {}", result.status)),
    }
    let searched = match case.expect {
        Expect::Error => &stderr,
        Expect::Finding => &stdout,
    };
    for fragment in &case.fragments {
        let fragment = scene.expand(fragment);
        if !searched.contains(&fragment) {
            problems.push(format!("{:?} output lacks {fragment:?}", case.expect));
        }
    }
    for forbidden in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        cases::SECRET,
    ] {
        if stderr.contains(forbidden) || stdout.contains(forbidden) {
            problems.push(format!("output contains {forbidden:?}"));
        }
    }
    if case.code != 0 {
        if case.expect == Expect::Error && !stdout.is_empty() {
            problems.push(format!("stdout is not empty: {stdout:?}"));
        }
        if case.expect == Expect::Error
            && !stderr.contains("lambda-image: error: ")
            && case.code != 2
        {
            problems.push("stderr lacks `lambda-image: error: `".to_owned());
        }
        let after = snapshot(scene.out.path());
        if before != after {
            problems.push(format!(
                "{{out}} changed: {:?}",
                after.keys().collect::<Vec<_>>()
            ));
        }
    }
    let leftovers = snapshot(scene.tmp.path());
    if !leftovers.is_empty() {
        problems.push(format!(
            "left in TMPDIR: {:?}",
            leftovers.keys().collect::<Vec<_>>()
        ));
    }
    let cache_temporaries = snapshot(&scene.cache.path().join("tmp"));
    if !cache_temporaries.is_empty() {
        problems.push(format!(
            "temporaries left in the cache: {cache_temporaries:?}"
        ));
    }
    problems.extend(scene.after.iter().filter_map(|check| check()));

    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "case `{}`:\n  - {}\n  command: lambda-image {}\n  {}\n  --- stdout ---\n{stdout}\n  --- stderr ---\n{stderr}",
        case.name,
        problems.join("\n  - "),
        args.join(" ").chars().take(600).collect::<String>(),
        result.status,
    ))
}

/// Every entry under `root` (none if it does not exist), by relative path, with its size.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, u64> {
    fn walk(root: &Path, dir: &Path, entries: &mut BTreeMap<PathBuf, u64>) {
        let Ok(listing) = fs::read_dir(dir) else {
            return;
        };
        for item in listing.flatten() {
            let path = item.path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            entries.insert(path.strip_prefix(root).unwrap().to_owned(), metadata.len());
            if metadata.is_dir() {
                walk(root, &path, entries);
            }
        }
    }
    let mut entries = BTreeMap::new();
    walk(root, root, &mut entries);
    entries
}
