//! Every command held to the README's exit-code table, in text mode and with `--json`.
//!
//! Each command runs through every code it can produce, with real inputs: the fixture base
//! layout and bootstraps, an image built from them, a kit written by `base pull`, the real
//! distribution registry requiring a password (given a wrong one), a port nothing listens on,
//! a port already taken, and custom runtimes in `sh` + `curl` that answer, fail, fail their
//! init, exit, or sleep past `--timeout`.
//!
//! For every case, the exit status is the table's code, and:
//! - text mode: on failure stdout is empty (except for the reports that stand for a failure:
//!   `check`'s findings) and stderr has the `lambda-image: error:` line;
//! - `--json`: stdout is exactly one JSON object on one line; on failure its `error.kind` is the
//!   table's name for the code and `error.exit_code` equals the exit status; on success it has
//!   no `error` member.
//!
//! A password given with `--creds` that the registry refuses never shows, in either stream.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::registry::{RegistryAuth, RegistryOptions, TestRegistry, free_port};
use crate::support::table::{copy_tree, run_cases};
use crate::support::*;
use base64::Engine;
use serde_json::Value;

/// The README's exit-code table (its "Exit codes" section), read from the README itself so that
/// the document and the program cannot drift apart: exit code → `error.kind`, for every row
/// `| N | \`kind\` | …` (the success row, 0, has no kind): 1 to 11, then 130 and 143
/// (`interrupted`: 128 + SIGINT, SIGTERM).
fn readme_table() -> &'static [(i32, String)] {
    static TABLE: std::sync::OnceLock<Vec<(i32, String)>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let section = readme
            .split("\n## ")
            .find(|section| section.starts_with("Exit codes"))
            .expect("the README has an Exit codes section");
        let table: Vec<(i32, String)> = section
            .lines()
            .filter_map(|line| {
                let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
                let code = cells.next()?.parse().ok()?;
                let kind = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                Some((code, kind.to_owned()))
            })
            .collect();
        let codes: Vec<i32> = table.iter().map(|(code, _)| *code).collect();
        assert_eq!(
            codes,
            (1..=11).chain([130, 143]).collect::<Vec<_>>(),
            "the README's table: {table:?}"
        );
        table
    })
}

const USER: &str = "exit-codes";
/// The registry's password; never given to lambda-image.
const PASSWORD: &str = "the-right-password";
/// The password lambda-image is given with `--creds`, which the registry refuses.
const WRONG_PASSWORD: &str = "Wr0ng-secret-for-exit-codes";

fn kind_of(code: i32) -> &'static str {
    &readme_table()
        .iter()
        .find(|(table_code, _)| *table_code == code)
        .unwrap_or_else(|| panic!("{code} is not in the README's table"))
        .1
}

/// A custom runtime in `sh` + `curl`; `MODE` (given with `--env`) picks what it does:
/// `respond` (the event back), `error` (a function error), `init-error`, `exit` (before asking
/// for an event), `sleep` (takes the event and never answers).
const RUNTIME: &str = r#"#!/bin/sh
set -u
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
case "${MODE:-respond}" in
  exit) echo "runtime: leaving without a loop" >&2; exit 0 ;;
  init-error)
    curl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.Test' \
      --data '{"errorMessage":"no config","errorType":"Runtime.Test"}' "$API/init/error" >&2
    exit 1 ;;
esac
DIR=$(mktemp -d)
while true; do
  curl -sS -D "$DIR/head" -o "$DIR/event" "$API/invocation/next" || exit 1
  ID=$(tr -d '\r' < "$DIR/head" | sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p')
  case "${MODE:-respond}" in
    sleep) sleep 60 ;;
    error)
      curl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: Test.Boom' \
        --data '{"errorMessage":"boom","errorType":"Test.Boom"}' "$API/invocation/$ID/error" >&2 ;;
    *) curl -sS -X POST --data-binary @"$DIR/event" "$API/invocation/$ID/response" >&2 ;;
  esac
done
"#;

/// One command line and what it must do.
struct Case {
    name: &'static str,
    args: Vec<String>,
    code: i32,
    /// The command takes `--json` (every command but `serve`).
    json: bool,
    /// A failure that still prints its report on stdout in text mode (`check`'s findings).
    report: bool,
}

fn case(name: &'static str, code: i32, args: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|arg| arg.to_string()).collect(),
        code,
        json: true,
        report: false,
    }
}

impl Case {
    fn text_only(mut self) -> Self {
        self.json = false;
        self
    }

    fn with_report(mut self) -> Self {
        self.report = true;
        self
    }
}

/// What the cases run against; everything lives under one scratch directory.
struct Scene {
    dir: tempfile::TempDir,
    registry: TestRegistry,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::Builder::new()
            .prefix("exit-codes-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        std::fs::write(dir.path().join("file"), b"a file, not a directory").unwrap();
        let runtime = dir.path().join("runtime");
        std::fs::write(&runtime, RUNTIME).unwrap();
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
        let registry = TestRegistry::start(RegistryOptions {
            auth: RegistryAuth::basic(USER, PASSWORD),
            ..RegistryOptions::default()
        });
        Scene { dir, registry }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `lambda-image ARGS`, isolated from the machine's credentials and cache; stdin empty.
    fn command(&self, args: &[String]) -> Command {
        let mut command = lambda_image();
        command
            .args(args)
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("SSL_CERT_FILE")
            .stdin(Stdio::null());
        command
    }

    /// `ARCH=PATH` of the custom runtime, for this machine's architecture.
    fn runtime(&self) -> String {
        let arch = if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        };
        format!("{arch}={}", self.path("runtime"))
    }

    /// A reference in the registry that requires a password.
    fn guarded(&self, repository_and_tag: &str) -> String {
        self.registry.reference(repository_and_tag)
    }

    /// Builds both fixture bootstraps onto the fixture base into `oci:DIR/built:v1` (an index).
    fn built_image(&self) -> String {
        let image = format!("oci:{}:v1", self.path("built"));
        let mut args = vec!["build".to_owned(), "-q".to_owned()];
        args.extend(both_bootstrap_args());
        args.extend(["--base".to_owned(), base_reference()]);
        args.extend(["--output".to_owned(), image.clone()]);
        run(&mut self.command(&args));
        image
    }

    /// Runs every case in text mode and with `--json`; panics with every problem found.
    fn expect(&self, cases: &[Case]) {
        let runs: Vec<(&Case, bool)> = cases
            .iter()
            .flat_map(|case| {
                let modes: &[bool] = if case.json { &[false, true] } else { &[false] };
                modes.iter().map(move |json| (case, *json))
            })
            .collect();
        let problems = run_cases(&runs, 2, |(case, json)| {
            // Outputs named `{mode}` differ between the two runs, which may run at once.
            let mode = if *json { "json" } else { "text" };
            let mut args: Vec<String> = case
                .args
                .iter()
                .map(|arg| arg.replace("{mode}", mode))
                .collect();
            if *json {
                args.push("--json".to_owned());
            }
            let output = run_unchecked(&mut self.command(&args));
            let problems = problems_of(case, *json, &output);
            (!problems.is_empty()).then(|| {
                format!(
                    "{} ({}): {}\n  args: {args:?}\n  stdout: {}\n  stderr: {}",
                    case.name,
                    if *json { "--json" } else { "text" },
                    problems.join("; "),
                    String::from_utf8_lossy(&output.stdout),
                    stderr_of(&output)
                )
            })
        });
        assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
    }
}

/// Every way `output` breaks the table or the output rules for `case`.
fn problems_of(case: &Case, json: bool, output: &Output) -> Vec<String> {
    let mut problems = Vec::new();
    let code = output.status.code();
    if code != Some(case.code) {
        problems.push(format!("exit status {:?}, expected {}", code, case.code));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = stderr_of(output);
    for secret in secrets() {
        if stdout.contains(&secret) || stderr.contains(&secret) {
            problems.push(format!("the password shows as {secret:?}"));
        }
    }
    if stderr.contains("panicked") {
        problems.push("a panic".to_owned());
    }
    if case.code != 0 && !stderr.contains("error: ") {
        problems.push("no error line on stderr".to_owned());
    }
    if !json {
        if case.code != 0 && !case.report && !stdout.is_empty() {
            problems.push("text on stdout on failure".to_owned());
        }
        if case.code == 0 && stderr.contains("lambda-image: error:") {
            problems.push("an error line on success".to_owned());
        }
        return problems;
    }
    let object = match one_json_object(&output.stdout) {
        Ok(object) => Value::Object(object),
        Err(problem) => {
            problems.push(problem);
            return problems;
        }
    };
    let error = &object["error"];
    if case.code == 0 {
        if !error.is_null() {
            problems.push("an error member on success".to_owned());
        }
        return problems;
    }
    if error["kind"] != kind_of(case.code) {
        problems.push(format!(
            "error.kind {}, expected {}",
            error["kind"],
            kind_of(case.code)
        ));
    }
    if error["exit_code"].as_i64() != code.map(i64::from) {
        problems.push(format!(
            "error.exit_code {} is not the exit status",
            error["exit_code"]
        ));
    }
    if error["message"].as_str().is_none_or(str::is_empty) {
        problems.push("no error.message".to_owned());
    }
    if !(error["hint"].is_null() || error["hint"].is_string()) {
        problems.push("error.hint is neither a string nor null".to_owned());
    }
    problems
}

/// The one JSON object `stdout` must be: one line, ended by a newline, nothing else.
fn one_json_object(stdout: &[u8]) -> Result<serde_json::Map<String, Value>, String> {
    let text = std::str::from_utf8(stdout).map_err(|_| "stdout is not UTF-8".to_owned())?;
    if !text.ends_with('\n') || text.matches('\n').count() != 1 {
        return Err("stdout is not one line ended by a newline".to_owned());
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let first = values
        .next()
        .ok_or("stdout has no JSON")?
        .map_err(|error| format!("stdout is not JSON: {error}"))?;
    if values.next().is_some() {
        return Err("stdout has more than one JSON value".to_owned());
    }
    match first {
        Value::Object(object) => Ok(object),
        other => Err(format!("stdout's JSON is not an object: {other}")),
    }
}

/// Every form in which the wrong password could leak.
fn secrets() -> Vec<String> {
    let base64 = base64::engine::general_purpose::STANDARD;
    vec![
        WRONG_PASSWORD.to_owned(),
        base64.encode(format!("{USER}:{WRONG_PASSWORD}")),
        base64.encode(WRONG_PASSWORD),
    ]
}

fn wrong_creds() -> String {
    format!("{USER}:{WRONG_PASSWORD}")
}

fn amd64() -> String {
    fixtures().bootstrap_amd64.display().to_string()
}

/// `amd64=` the arm64 fixture: the architecture check rejects it.
fn contradicted() -> String {
    format!("amd64={}", fixtures().bootstrap_arm64.display())
}

/// A port nothing listens on.
fn dead_registry() -> String {
    format!("127.0.0.1:{}/fn:v1", free_port())
}

#[test]
fn build_exits_2_3_4_5_6() {
    let scene = Scene::new();
    let (base, out) = (
        base_reference(),
        format!("oci:{}:v1", scene.path("out-{mode}")),
    );
    let creds = wrong_creds();
    let guarded = scene.guarded("fn:v1");
    let missing = scene.path("missing");
    let under_a_file = format!("oci:{}:v1", scene.path("file/out"));
    let missing_base = format!("oci:{}:al2023", scene.path("missing-base"));
    let amd64 = amd64();
    let build = |rest: &[&str]| {
        let mut args = vec!["build", "-q"];
        args.extend_from_slice(rest);
        args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>()
    };
    let cases = [
        Case {
            args: build(&["--bootstrap", &amd64, "--base", &base, "--output", &out]),
            ..case("build: written", 0, &[])
        },
        Case {
            args: build(&["--bootstrap", &amd64, "--base", &base]),
            ..case("build: nothing to write", 2, &[])
        },
        Case {
            args: build(&["--bootstrap", &amd64, "--env", "NOEQUALS", "--output", &out]),
            ..case("build: bad flag value (clap)", 2, &[])
        },
        Case {
            args: build(&["--bootstrap", &missing, "--base", &base, "--output", &out]),
            ..case("build: missing bootstrap", 3, &[])
        },
        Case {
            args: build(&["--bootstrap", &contradicted(), "--base", &base, "-o", &out]),
            ..case("build: bootstrap of the wrong architecture", 3, &[])
        },
        Case {
            args: build(&["--bootstrap", &amd64, "--base", &missing_base, "-o", &out]),
            ..case("build: missing base", 4, &[])
        },
        Case {
            args: build(&["--bootstrap", &amd64, "--base", &base, "-o", &under_a_file]),
            ..case("build: output under a file", 5, &[])
        },
        Case {
            args: build(&[
                "--bootstrap",
                &amd64,
                "--base",
                &base,
                "--tag",
                &guarded,
                "--creds",
                &creds,
            ]),
            ..case("build: push refused (wrong password)", 6, &[])
        },
    ];
    scene.expect(&cases);
}

#[test]
fn check_exits_0_3_4_6_7() {
    let scene = Scene::new();
    let built = scene.built_image();
    let creds = wrong_creds();
    let guarded = scene.guarded("fn:v1");
    let missing = format!("oci:{}:v1", scene.path("missing"));
    let dead = dead_registry();
    let contradicted = contradicted();
    let cases = [
        // The index named by tag: a warning, listing what to deploy.
        case("check: a warning only", 0, &["check", &built]),
        case(
            "check: a bootstrap that passes",
            0,
            &["check", "--bootstrap", &amd64()],
        ),
        case("check: nothing to check", 2, &["check"]),
        case(
            "check: a bootstrap error finding",
            3,
            &["check", "--bootstrap", &contradicted],
        )
        .with_report(),
        case(
            "check: bootstrap and image error findings",
            3,
            &["check", "--bootstrap", &contradicted, "--image-uri", &built],
        )
        .with_report(),
        case("check: missing image", 4, &["check", &missing]),
        case(
            "check: registry refuses the password",
            6,
            &["check", "-q", &guarded, "--creds", &creds],
        ),
        case("check: nothing listens", 6, &["check", "-q", &dead]),
        // The same index given as an ImageUri: Lambda rejects it.
        case(
            "check: an image error finding",
            7,
            &["check", "--image-uri", &built],
        )
        .with_report(),
    ];
    scene.expect(&cases);

    // The first case is 0 with a warning in its report, not 0 for want of findings.
    let output = run(&mut scene.command(&["check", "--json", &built].map(String::from)));
    let report = Value::Object(one_json_object(&output.stdout).unwrap());
    let levels: Vec<&Value> = report["image"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| &finding["level"])
        .collect();
    assert!(levels.contains(&&Value::from("warning")), "{report}");
}

#[test]
fn check_bootstrap_opens_a_local_base_as_build_does() {
    let scene = Scene::new();
    let damaged = scene.path("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(
        format!("{damaged}/oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(format!("{damaged}/index.json"), b"{").unwrap();
    let arm64_kit = scene.path("arm64-kit");
    skopeo(&[
        "copy",
        &format!("oci:{}:{BASE_TAG_ARM64}", fixtures().base_layout.display()),
        &format!("oci:{arm64_kit}:al2023"),
    ]);
    let bases = [
        ("a missing layout", format!("oci:{}", scene.path("nosuch"))),
        ("a damaged layout", format!("oci:{damaged}")),
        (
            "a missing oci-archive",
            format!("oci-archive:{}", scene.path("nosuch.tar")),
        ),
        (
            "a kit without the bootstrap's architecture",
            format!("oci:{arm64_kit}:al2023"),
        ),
    ];
    let amd64 = amd64();
    let dynamic = dynamic_bootstrap(Path::new(&scene.path("")))
        .display()
        .to_string();
    let out = format!("oci:{}:v1", scene.path("out-{mode}"));
    let mut cases = Vec::new();
    for (what, base) in &bases {
        // A static bootstrap needs nothing from the base, but the base must still be there.
        for bootstrap in [&amd64, &dynamic] {
            for command in ["check", "build"] {
                let mut args = vec![command, "-q", "--bootstrap", bootstrap, "--base", base];
                if command == "build" {
                    args.extend(["--output", &out]);
                }
                let name = format!("{command} --bootstrap {bootstrap} --base {what}");
                cases.push(Case {
                    args: args.iter().map(|arg| arg.to_string()).collect(),
                    ..case(Box::leak(name.into_boxed_str()), 4, &[])
                });
            }
        }
    }
    // A registry base is never contacted: nothing listens there, and the check passes.
    let dead = dead_registry();
    cases.push(case(
        "check --bootstrap with a registry base nothing serves",
        0,
        &["check", "-q", "--bootstrap", &amd64, "--base", &dead],
    ));
    // The base that is there, with the architecture: the check runs and passes.
    cases.push(case(
        "check --bootstrap with the fixture base",
        0,
        &["check", "--bootstrap", &amd64, "--base", &base_reference()],
    ));
    scene.expect(&cases);
}

#[test]
fn zip_exits_2_3_5() {
    let scene = Scene::new();
    let (amd64, zip) = (amd64(), scene.path("function-{mode}.zip"));
    let under_a_file = scene.path("file/function.zip");
    let missing = scene.path("missing");
    let cases = [
        case(
            "zip: written",
            0,
            &["zip", "--bootstrap", &amd64, "-o", &zip],
        ),
        case(
            "zip: two bootstraps",
            2,
            &[
                "zip",
                "--bootstrap",
                &amd64,
                "--bootstrap",
                &amd64,
                "-o",
                &zip,
            ],
        ),
        case(
            "zip: missing bootstrap",
            3,
            &["zip", "--bootstrap", &missing, "-o", &zip],
        ),
        case(
            "zip: output under a file",
            5,
            &["zip", "--bootstrap", &amd64, "-o", &under_a_file],
        ),
    ];
    scene.expect(&cases);
}

#[test]
fn invoke_exits_0_2_3_8_9_10() {
    let scene = Scene::new();
    let runtime = scene.runtime();
    let missing = scene.path("missing");
    let missing_event = format!("@{}", scene.path("missing.json"));
    let large_event = scene.path("large.json");
    std::fs::write(&large_event, vec![b' '; 6_291_456]).unwrap();
    let large_event = format!("@{large_event}");
    let invoke = |mode: &str, rest: &[&str]| {
        let mut args: Vec<String> = ["invoke", "--bootstrap", &runtime, "--env"]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
        args.push(format!("MODE={mode}"));
        args.extend(rest.iter().map(|arg| arg.to_string()));
        args
    };
    let cases = [
        Case {
            args: invoke("respond", &["--event", r#"{"n": 1}"#]),
            ..case("invoke: a response", 0, &[])
        },
        Case {
            args: invoke("respond", &["--event", &missing_event]),
            ..case("invoke: unreadable event", 2, &[])
        },
        Case {
            args: invoke("respond", &["--event", &large_event]),
            ..case("invoke: event too large", 2, &[])
        },
        Case {
            args: invoke("respond", &["--event", "{}", "--timeout", "0"]),
            ..case("invoke: bad flag value (clap)", 2, &[])
        },
        case(
            "invoke: missing bootstrap",
            3,
            &["invoke", "--bootstrap", &missing, "--event", "{}"],
        ),
        case(
            "invoke: bootstrap of the wrong architecture",
            3,
            &["invoke", "--bootstrap", &contradicted(), "--event", "{}"],
        ),
        Case {
            args: invoke("error", &["--event", "{}"]),
            ..case("invoke: function error", 8, &[])
        },
        Case {
            args: invoke("init-error", &["--event", "{}"]),
            ..case("invoke: init error", 9, &[])
        },
        Case {
            args: invoke("exit", &["--event", "{}"]),
            ..case("invoke: exited before answering", 9, &[])
        },
        Case {
            args: invoke("sleep", &["--event", "{}", "--timeout", "1"]),
            ..case("invoke: timeout", 10, &[])
        },
    ];
    scene.expect(&cases);
}

#[test]
fn serve_exits_2_and_3() {
    let scene = Scene::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let missing = scene.path("missing");
    let runtime = scene.runtime();
    let cases = [
        case(
            "serve: port in use",
            2,
            &["serve", "--port", &port, "--bootstrap", &runtime],
        )
        .text_only(),
        case(
            "serve: missing bootstrap",
            3,
            &["serve", "--port", "0", "--bootstrap", &missing],
        )
        .text_only(),
        case(
            "serve: bootstrap of the wrong architecture",
            3,
            &["serve", "--port", "0", "--bootstrap", &contradicted()],
        )
        .text_only(),
    ];
    scene.expect(&cases);
    drop(taken);
}

#[test]
fn completions_and_man_exit_0_2_5() {
    let scene = Scene::new();
    let pages = scene.path("pages");
    std::fs::create_dir_all(&pages).unwrap();
    let missing = scene.path("no-such-dir");
    let a_file = scene.path("file");
    let cases = [
        case("completions bash", 0, &["completions", "bash"]).text_only(),
        case("completions: an unknown shell", 2, &["completions", "tcsh"]).text_only(),
        case("man", 0, &["man"]).text_only(),
        case("man --dir", 0, &["man", "--dir", &pages]).text_only(),
        case("man --dir: missing", 5, &["man", "--dir", &missing]).text_only(),
        case("man --dir: a file", 5, &["man", "--dir", &a_file]).text_only(),
    ];
    scene.expect(&cases);
    assert!(Path::new(&pages).join("lambda-image-build.1").is_file());
}

#[test]
fn base_list_pull_verify_exit_0_2_4_5_6() {
    let scene = Scene::new();
    let base = base_reference();
    let kit = format!("oci:{}", scene.path("kit"));
    let creds = wrong_creds();
    let guarded = scene.guarded("lambda/provided:al2023");
    let missing_base = format!("oci:{}:al2023", scene.path("missing-base"));
    let under_a_file = format!("oci:{}", scene.path("file/kit"));
    let dead = dead_registry();
    // The kit the verify cases read.
    run(&mut scene.command(&["base", "pull", &base, "--output", &kit].map(String::from)));
    let corrupt = scene.path("corrupt");
    copy_tree(&scene.dir.path().join("kit"), Path::new(&corrupt));
    corrupt_a_layer(Path::new(&corrupt));
    let cases = [
        case("base list", 0, &["base", "list"]),
        case(
            "base pull: a kit",
            0,
            &[
                "base",
                "pull",
                &base,
                "--output",
                &format!("{kit}-{{mode}}"),
            ],
        ),
        case(
            "base pull: a local base, no --output",
            2,
            &["base", "pull", &base],
        ),
        case(
            "base pull: missing base",
            4,
            &[
                "base",
                "pull",
                &missing_base,
                "--output",
                &format!("{kit}-never"),
            ],
        ),
        case(
            "base pull: output under a file",
            5,
            &["base", "pull", &base, "--output", &under_a_file],
        ),
        case(
            "base pull: registry refuses the password",
            6,
            &["base", "pull", "-q", &guarded, "--creds", &creds],
        ),
        case(
            "base pull: nothing listens",
            6,
            &["base", "pull", "-q", &dead],
        ),
        case("base verify", 0, &["base", "verify", &kit]),
        case(
            "base verify: missing kit",
            4,
            &["base", "verify", &scene.path("missing-kit")],
        ),
        case(
            "base verify: a corrupt layer",
            4,
            &["base", "verify", &corrupt],
        ),
    ];
    scene.expect(&cases);
}

/// Flips a byte in the largest blob of the layout `kit` (a layer).
fn corrupt_a_layer(kit: &Path) {
    let blobs = kit.join("blobs/sha256");
    let largest: PathBuf = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .max_by_key(|path| path.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&largest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&largest, bytes).unwrap();
}

#[test]
fn a_command_line_error_with_json_is_the_error_object_and_help_is_unchanged() {
    let scene = Scene::new();
    let cases = [
        case("check: unknown flag", 2, &["check", "--jsno"]),
        case("build: no --bootstrap", 2, &["build"]),
        case(
            "base pull: unknown architecture",
            2,
            &["base", "pull", "--arch", "s390x"],
        ),
        case("no command", 2, &["frobnicate"]),
    ];
    scene.expect(&cases);

    // The error object names the flag, and the tip is the hint.
    let output =
        run_unchecked(&mut scene.command(&["check", "--json", "--jsno"].map(String::from)));
    let object = one_json_object(&output.stdout).unwrap();
    assert_eq!(
        object["error"]["message"], "unexpected argument '--jsno' found",
        "{object:?}"
    );
    assert!(
        object["error"]["hint"].as_str().unwrap().contains("--json"),
        "{object:?}"
    );
    assert!(
        stderr_of(&output).contains("Usage: "),
        "clap's text stays on stderr"
    );

    // `--json=yes` (the flag takes no value): clap refuses it, and the command line asked for
    // JSON, so the usage error object is on stdout.
    for given in ["--json=yes", "--json=true"] {
        let output = run_unchecked(&mut scene.command(&["zip", given].map(String::from)));
        assert_eq!(output.status.code(), Some(2), "{given}");
        let object = one_json_object(&output.stdout)
            .unwrap_or_else(|problem| panic!("{given}: {problem}\n{}", stderr_of(&output)));
        assert_eq!(object["error"]["kind"], "usage", "{object:?}");
        assert_eq!(object["error"]["exit_code"], 2, "{object:?}");
    }

    // `serve` has no --json, but a command line with it gets its error as JSON all the same.
    let output = run_unchecked(
        &mut scene
            .command(&["serve", "--json", "--port", "0", "--bootstrap", "x"].map(String::from)),
    );
    assert_eq!(output.status.code(), Some(2));
    let object = one_json_object(&output.stdout).unwrap();
    assert_eq!(object["error"]["kind"], "usage", "{object:?}");

    // After a lone `--`, `--json` is an argument, not the flag.
    let output = run_unchecked(
        &mut scene.command(&["invoke", "--bootstrap", "x", "--", "--json"].map(String::from)),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    for args in [
        ["check", "--json", "--help"],
        ["check", "--json", "--version"],
    ] {
        let output = run(&mut scene.command(&args.map(String::from)));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.starts_with('{'), "{args:?}: {stdout}");
        assert!(
            stdout.contains("lambda-image") || stdout.contains("Usage"),
            "{stdout}"
        );
    }
}

#[test]
fn invoke_json_reports_the_outcome_the_request_id_and_the_response() {
    let scene = Scene::new();
    let runtime = scene.runtime();
    let invoke = |mode: &str, event: &str| {
        let args = [
            "invoke",
            "--json",
            "--bootstrap",
            &runtime,
            "--env",
            &format!("MODE={mode}"),
            "--event",
            event,
        ];
        let output = run_unchecked(&mut scene.command(&args.map(String::from)));
        let object = one_json_object(&output.stdout)
            .unwrap_or_else(|problem| panic!("{mode}: {problem}\n{}", stderr_of(&output)));
        (output.status.code().unwrap(), Value::Object(object))
    };

    let (code, answered) = invoke("respond", r#"{"n": [1, 2]}"#);
    assert_eq!(code, 0, "{answered}");
    assert_eq!(answered["outcome"], "response");
    assert_eq!(answered["response"], serde_json::json!({"n": [1, 2]}));
    assert!(
        answered["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "{answered}"
    );
    assert!(answered.get("error").is_none(), "{answered}");

    // An event that is not JSON is delivered as it is; its echo is a string.
    let (code, answered) = invoke("respond", "plain words");
    assert_eq!(
        (code, &answered["response"]),
        (0, &Value::from("plain words"))
    );

    let (code, failed) = invoke("error", "{}");
    assert_eq!(code, 8, "{failed}");
    assert_eq!(failed["outcome"], "function_error");
    assert_eq!(
        failed["response"],
        serde_json::json!({"errorMessage": "boom", "errorType": "Test.Boom"})
    );
    assert_eq!(failed["error"]["kind"], "function_error");

    let (code, failed) = invoke("init-error", "{}");
    assert_eq!(code, 9, "{failed}");
    assert_eq!(failed["outcome"], "init_error");
    assert_eq!(failed["response"]["errorMessage"], "no config");

    let (code, exited) = invoke("exit", "{}");
    assert_eq!(code, 9, "{exited}");
    assert_eq!(exited["outcome"], "exited");
    assert_eq!(exited["response"], Value::Null);
    assert!(
        exited["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exited before answering"),
        "{exited}"
    );
}

#[test]
fn base_pull_json_lists_what_it_wrote_per_architecture() {
    let scene = Scene::new();
    let kit = format!("oci:{}", scene.path("kit"));
    let args = [
        "base",
        "pull",
        "--json",
        &base_reference(),
        "--output",
        &kit,
    ];
    let output = run(&mut scene.command(&args.map(String::from)));
    let report = Value::Object(one_json_object(&output.stdout).unwrap());
    let fixtures = fixtures();
    assert_eq!(report["digest"], fixtures.base_digest.as_str(), "{report}");
    // A local base named by a tag: the kit gets that tag, and `output` names it.
    assert_eq!(report["output"], format!("{kit}:{BASE_TAG}"), "{report}");
    assert_eq!(report["cache"], Value::Null, "a local base uses no cache");
    let images = report["images"].as_array().unwrap();
    let listed: Vec<(&str, &str, &str, String)> = images
        .iter()
        .map(|image| {
            (
                image["architecture"].as_str().unwrap(),
                image["lambda_architecture"].as_str().unwrap(),
                image["digest"].as_str().unwrap(),
                image["reference"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "amd64",
                "x86_64",
                fixtures.base_manifests["amd64"].as_str(),
                format!("{kit}:{BASE_TAG}-amd64")
            ),
            (
                "arm64",
                "arm64",
                fixtures.base_manifests["arm64"].as_str(),
                format!("{kit}:{BASE_TAG}-arm64")
            ),
        ]
    );
    assert_eq!(report["index"]["digest"], fixtures.base_digest.as_str());
    assert_eq!(report["index"]["reference"], format!("{kit}:{BASE_TAG}"));
    // What it lists is in the kit.
    for (_, _, digest, _) in &listed {
        assert!(blob_path(&scene.dir.path().join("kit"), digest).exists());
    }
    for image in images {
        assert_eq!(image["references"], serde_json::json!([image["reference"]]));
    }

    // A kit of one architecture tags its image TAG and TAG-ARCH: both are listed.
    let one = format!("oci:{}", scene.path("kit-arm64"));
    let args = [
        "base",
        "pull",
        "--json",
        "--arch",
        "arm64",
        &base_reference(),
        "--output",
        &one,
    ];
    let output = run(&mut scene.command(&args.map(String::from)));
    let report = Value::Object(one_json_object(&output.stdout).unwrap());
    let image = &report["images"][0];
    // The kit's tag is the one the base was read under (`al2023`).
    assert_eq!(image["reference"], format!("{one}:{BASE_TAG}"), "{report}");
    assert_eq!(
        image["references"],
        serde_json::json!([
            format!("{one}:{BASE_TAG}"),
            format!("{one}:{BASE_TAG}-arm64")
        ]),
        "{report}"
    );
    let index = read_json(scene.dir.path().join("kit-arm64/index.json"));
    let mut names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|descriptor| {
            descriptor["annotations"][REF_NAME_ANNOTATION]
                .as_str()
                .unwrap()
        })
        .collect();
    names.sort();
    assert_eq!(names, [BASE_TAG.to_owned(), format!("{BASE_TAG}-arm64")]);
}

#[test]
fn base_pull_json_without_output_names_the_cache_and_the_digests_in_the_registry() {
    let scene = Scene::new();
    scene
        .registry
        .skopeo_copy_to(&base_reference(), "lambda/provided:al2023");
    let base = scene.guarded("lambda/provided:al2023");
    let creds = format!("{USER}:{PASSWORD}");
    let args = ["base", "pull", "-q", "--json", &base, "--creds", &creds];
    let output = run(&mut scene.command(&args.map(String::from)));
    let report = Value::Object(one_json_object(&output.stdout).unwrap());
    let fixtures = fixtures();
    let repository = format!("{}/lambda/provided", scene.registry.host());
    assert_eq!(report["base"], base.as_str(), "{report}");
    assert_eq!(report["output"], Value::Null, "{report}");
    let cache = report["cache"].as_str().unwrap();
    assert!(
        cache.starts_with(&scene.path("cache")),
        "{cache}: XDG_CACHE_HOME"
    );
    for (at, architecture) in ["amd64", "arm64"].iter().enumerate() {
        let digest = &fixtures.base_manifests[*architecture];
        let image = &report["images"][at];
        assert_eq!(image["architecture"], *architecture, "{report}");
        assert_eq!(image["digest"], digest.as_str(), "{report}");
        assert_eq!(image["reference"], format!("{repository}@{digest}"));
    }
    assert_eq!(
        report["index"]["reference"],
        format!("{repository}@{}", fixtures.base_digest)
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains(PASSWORD));
}
