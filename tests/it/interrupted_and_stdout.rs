//! How a command ends when it is stopped or cannot print.
//!
//! - Interrupted: `build` pushing to, `check` and `base pull` reading from a registry port that
//!   accepts connections and never answers, and `invoke` with a bootstrap that sleeps, each
//!   given SIGTERM or SIGINT once it is waiting: exit 128 + the signal (143, 130), with `--json`
//!   the error object of kind `interrupted` whose `exit_code` is that status, in text mode the
//!   error line; no output written; the bootstrap killed. A build stopped while pushing a layer
//!   (the real registry behind the test proxy, which holds the upload halfway) leaves none of
//!   its `.lambda-image-*` temporaries beside its output. SIGINT while a build writes a big layer
//!   into the cache, or while `base pull` downloads a layer (the real registry behind the test
//!   proxy, which stops sending the layer halfway), leaves the cache's `tmp/` empty.
//! - A stdout that cannot be written (`/dev/full`, a closed descriptor): exit 1 and
//!   `lambda-image: error: cannot write to stdout: …` on stderr (a failure keeps its own code);
//!   a reader that went away (a broken pipe, as with `| head`) is not an error.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::body_faults::BodyFault;
use crate::support::proxy::{ProxyBehaviour, TestProxy};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::*;
use serde_json::Value;

/// A port that accepts connections and never answers: a registry that hangs.
struct SilentPort {
    listener: TcpListener,
    held: Vec<TcpStream>,
}

impl SilentPort {
    fn new() -> SilentPort {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        SilentPort {
            listener,
            held: Vec::new(),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.listener.local_addr().unwrap().port())
    }

    /// Waits until `child` connects (it is then waiting for an answer that never comes).
    fn wait_for_a_connection(&mut self, child: &mut Child) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.held.push(stream);
                    return;
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => panic!("accept: {error}"),
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the command ended ({status}) before it connected");
            }
            assert!(Instant::now() < deadline, "no connection within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

fn spawn(args: &[String], home: &Path) -> Child {
    lambda_image()
        .args(args)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("DOCKER_CONFIG", home.join("docker"))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("LAMBDA_IMAGE_BASE_MIRROR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Checks that `output` is the interruption by `signal` (`json`: the error object on stdout).
fn expect_interrupted(name: &str, output: &Output, signal: i32, json: bool) {
    let code = 128 + signal;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = stderr_of(output);
    let context = format!("{name}\nstdout: {stdout}\nstderr: {stderr}");
    assert_eq!(output.status.code(), Some(code), "{context}");
    let name_of_signal = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    assert!(
        stderr.contains(&format!(
            "lambda-image: error: interrupted by {name_of_signal}"
        )),
        "{context}"
    );
    if !json {
        assert!(stdout.is_empty(), "{context}");
        return;
    }
    assert!(
        stdout.ends_with('\n') && stdout.matches('\n').count() == 1,
        "one line: {context}"
    );
    let object: Value = serde_json::from_str(&stdout).expect(&context);
    assert_eq!(object["error"]["kind"], "interrupted", "{context}");
    assert_eq!(object["error"]["exit_code"], code, "{context}");
    assert!(object["error"]["hint"].is_string(), "{context}");
}

#[test]
fn commands_waiting_on_a_registry_end_as_interrupted_by_the_signal() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path();
    std::fs::create_dir_all(home.join("docker")).unwrap();
    let amd64 = fixtures().bootstrap_amd64.display().to_string();
    for (run, (signal_number, json)) in [
        (libc::SIGTERM, true),
        (libc::SIGINT, true),
        (libc::SIGTERM, false),
    ]
    .into_iter()
    .enumerate()
    {
        let mut port = SilentPort::new();
        let host = port.host();
        let kit = home.join(format!("kit-{run}"));
        let output = home.join(format!("out-{run}"));
        let mut commands: Vec<(&str, Vec<String>)> = vec![
            (
                "build pushing",
                vec![
                    "build".into(),
                    "-q".into(),
                    "--bootstrap".into(),
                    amd64.clone(),
                    "--base".into(),
                    base_reference(),
                    "--tag".into(),
                    format!("{host}/fn:v1"),
                    "--output".into(),
                    format!("oci:{}:v1", output.display()),
                ],
            ),
            ("check IMAGE", vec!["check".into(), format!("{host}/fn:v1")]),
            (
                "base pull",
                vec![
                    "base".into(),
                    "pull".into(),
                    format!("{host}/lambda/provided:al2023"),
                    "--output".into(),
                    format!("oci:{}", kit.display()),
                ],
            ),
        ];
        for (name, args) in &mut commands {
            if json {
                args.push("--json".into());
            }
            let mut child = spawn(args, home);
            port.wait_for_a_connection(&mut child);
            signal(&child, signal_number);
            let finished = child.wait_with_output().unwrap();
            expect_interrupted(name, &finished, signal_number, json);
        }
        assert!(!kit.exists(), "base pull left {}", kit.display());
        assert!(!output.exists(), "build left {}", output.display());
    }
}

/// Waits until `proxy` has held a transfer (`what`, e.g. "an upload"); panics with `command`'s
/// stderr if it ends first, or after 60 s.
fn wait_until_the_proxy_stalls(proxy: &TestProxy, child: &mut Child, command: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.injected() == 0 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("{command} ended ({status}) before {what} stalled: {stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not stall within 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_interrupted_build_removes_its_temporaries() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path();
    let parent = home.join("outputs");
    std::fs::create_dir_all(&parent).unwrap();
    // The real registry behind the test proxy, which reads half of the first large blob the
    // build uploads (the base's padding layer) and then holds the connection without answering.
    let registry = TestRegistry::start(RegistryOptions::default());
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::BreakBody {
            fault: BodyFault::StallUpload,
            times: 1,
            path_contains: "PUT /v2/fn/blobs/uploads/".into(),
            min_body: 1 << 20,
        },
    );
    let args: Vec<String> = [
        "build",
        "-q",
        "--bootstrap",
        &fixtures().bootstrap_amd64.display().to_string(),
        "--base",
        &base_reference(),
        "--tag",
        &proxy.reference("fn:v1"),
        "--output",
        &format!("oci:{}:v1", parent.join("out").display()),
        "--json",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let mut child = spawn(&args, home);
    wait_until_the_proxy_stalls(&proxy, &mut child, "the build", "an upload");
    let request = "an upload held by the proxy";
    let temporaries = || {
        file_names(&parent)
            .into_iter()
            .filter(|name| name.starts_with(".lambda-image-"))
            .collect::<Vec<_>>()
    };
    assert!(
        !temporaries().is_empty(),
        "the test needs the build's scratch to exist while it pushes ({request})"
    );
    signal(&child, libc::SIGTERM);
    let output = child.wait_with_output().unwrap();
    expect_interrupted("build", &output, libc::SIGTERM, true);
    assert_eq!(temporaries(), Vec::<String>::new());
    assert!(!parent.join("out").exists());
}

/// A bootstrap that writes its process id to `$MARK` and sleeps.
const SLEEPER: &str =
    "#!/bin/sh\necho $$ > \"$MARK.tmp\" && mv \"$MARK.tmp\" \"$MARK\"\nexec sleep 60\n";

fn this_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

#[test]
fn invoke_interrupted_kills_the_bootstrap_and_reports_the_signal() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path();
    let bootstrap = home.join("sleeper");
    std::fs::write(&bootstrap, SLEEPER).unwrap();
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (signal_number, json) in [(libc::SIGINT, true), (libc::SIGTERM, false)] {
        let mark = home.join(format!("pid-{signal_number}"));
        let mut args: Vec<String> = vec![
            "invoke".into(),
            "--bootstrap".into(),
            format!("{}={}", this_architecture(), bootstrap.display()),
            "--env".into(),
            format!("MARK={}", mark.display()),
            "--event".into(),
            "{}".into(),
        ];
        if json {
            args.push("--json".into());
        }
        let mut child = spawn(&args, home);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !mark.exists() {
            assert!(child.try_wait().unwrap().is_none(), "invoke ended early");
            assert!(Instant::now() < deadline, "the bootstrap never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid: i32 = std::fs::read_to_string(&mark)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        signal(&child, signal_number);
        let output = child.wait_with_output().unwrap();
        expect_interrupted("invoke", &output, signal_number, json);
        assert!(
            stderr_of(&output).contains("the bootstrap was killed"),
            "{}",
            stderr_of(&output)
        );
        // The bootstrap (here `sleep`, which replaced the shell) is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: kill with signal 0 only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0
            && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z "))
        {
            assert!(Instant::now() < deadline, "the bootstrap {pid} still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How stdout is set up for a run.
#[derive(Clone, Copy, Debug)]
enum Stdout {
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
    /// Descriptor 1 closed (`>&-`).
    Closed,
    /// A pipe whose reader has gone.
    BrokenPipe,
}

fn run_with_stdout(args: &[String], stdout: Stdout, home: &Path) -> Output {
    let mut command = match stdout {
        Stdout::Closed => {
            let mut command = Command::new("sh");
            command
                .arg("-c")
                .arg("exec \"$0\" \"$@\" >&-")
                .arg(env!("CARGO_BIN_EXE_lambda-image"))
                .args(args);
            command
        }
        _ => {
            let mut command = lambda_image();
            command.args(args);
            command
        }
    };
    command
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env_remove("LAMBDA_IMAGE_BASE_MIRROR")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    match stdout {
        Stdout::Full => {
            command.stdout(std::fs::File::create("/dev/full").unwrap());
            command.output().unwrap()
        }
        Stdout::Closed => command.output().unwrap(),
        Stdout::BrokenPipe => {
            command.stdout(Stdio::piped());
            let mut child = command.spawn().unwrap();
            drop(child.stdout.take());
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            let status = child.wait().unwrap();
            Output {
                status,
                stdout: Vec::new(),
                stderr: stderr.into_bytes(),
            }
        }
    }
}

/// A runtime in `sh` + `curl` that answers one event with `{"ok":true}` and keeps asking.
const RESPONDER: &str = r#"#!/bin/sh
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
DIR=$(mktemp -d)
while true; do
  curl -sS -D "$DIR/head" -o "$DIR/event" "$API/invocation/next" || exit 1
  ID=$(tr -d '\r' < "$DIR/head" | sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p')
  curl -sS -X POST --data '{"ok":true}' "$API/invocation/$ID/response" >&2
done
"#;

#[test]
fn a_stdout_that_cannot_be_written_is_a_failure_and_a_broken_pipe_is_not() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path();
    let responder = home.join("responder");
    std::fs::write(&responder, RESPONDER).unwrap();
    std::fs::set_permissions(&responder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let amd64 = fixtures().bootstrap_amd64.display().to_string();
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut runs = 0;
    let mut problems = Vec::new();
    for stdout in [Stdout::Full, Stdout::Closed, Stdout::BrokenPipe] {
        let mut commands = vec![
            strings(&["--help"]),
            strings(&["--version"]),
            strings(&["build", "--help"]),
            strings(&["completions", "bash"]),
            strings(&["man"]),
            strings(&["base", "list"]),
            strings(&["base", "list", "--json"]),
            strings(&[
                "invoke",
                "--bootstrap",
                &format!("{}={}", this_architecture(), responder.display()),
                "--event",
                "{}",
                "--json",
            ]),
        ];
        for json in [false, true] {
            runs += 1;
            let out = home.join(format!("out-{runs}"));
            let mut build = strings(&[
                "build",
                "-q",
                "--bootstrap",
                &amd64,
                "--base",
                &base_reference(),
                "--output",
                &format!("oci:{}:v1", out.display()),
            ]);
            if json {
                build.push("--json".into());
            }
            commands.push(build);
        }
        for args in &commands {
            let output = run_with_stdout(args, stdout, home);
            let stderr = stderr_of(&output);
            let complaint = stderr.contains("lambda-image: error: cannot write to stdout: ");
            let (expected_code, expected_complaint) = match stdout {
                Stdout::BrokenPipe => (0, false),
                _ => (1, true),
            };
            if output.status.code() != Some(expected_code) || complaint != expected_complaint {
                problems.push(format!(
                    "{args:?} with {stdout:?}: {}, stderr: {stderr}",
                    output.status
                ));
            }
        }
    }
    // A failure keeps its own exit code, and says that stdout could not be written either.
    let output = run_with_stdout(
        &strings(&["check", "--json", "--bootstrap", "/nonexistent"]),
        Stdout::Full,
        home,
    );
    let stderr = stderr_of(&output);
    if output.status.code() != Some(3) || !stderr.contains("cannot write to stdout") {
        problems.push(format!("a failing check: {}, {stderr}", output.status));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The files in the cache's `tmp/` (none when it does not exist).
fn cache_temporaries(home: &Path) -> Vec<String> {
    let tmp = home.join("cache/lambda-image/tmp");
    if tmp.exists() {
        file_names(&tmp)
    } else {
        Vec::new()
    }
}

/// Waits until the cache's `tmp/` holds a file whose name starts with `prefix` and that has
/// content (the command is writing it), then stops `child` with SIGINT.
fn interrupt_while_writing_a_cache_temporary(child: &mut Child, home: &Path, prefix: &str) {
    let tmp = home.join("cache/lambda-image/tmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let writing = cache_temporaries(home).into_iter().any(|name| {
            name.starts_with(prefix)
                && std::fs::metadata(tmp.join(&name)).is_ok_and(|meta| meta.len() > 0)
        });
        if writing {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the command ended ({status}) before it wrote a temporary in the cache");
        }
        assert!(Instant::now() < deadline, "no cache temporary within 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(child, libc::SIGINT);
}

#[test]
fn an_interrupted_build_removes_the_layer_it_was_writing_into_the_cache() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path();
    // Random bytes do not compress: the layer takes seconds to write.
    let big = home.join("big.bin");
    run(Command::new("head")
        .args(["-c", "150000000", "/dev/urandom"])
        .stdout(std::fs::File::create(&big).unwrap()));
    let args: Vec<String> = [
        "build".to_string(),
        "-q".into(),
        "--bootstrap".into(),
        fixtures().bootstrap_amd64.display().to_string(),
        "--include".into(),
        format!("{}:/opt/big.bin", big.display()),
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("oci:{}:v1", home.join("out").display()),
    ]
    .into();
    let mut child = spawn(&args, home);
    interrupt_while_writing_a_cache_temporary(&mut child, home, ".lambda-image-layer-");
    let output = child.wait_with_output().unwrap();
    expect_interrupted("build", &output, libc::SIGINT, false);
    assert_eq!(cache_temporaries(home), Vec::<String>::new());
    assert!(!home.join("out").exists());
}

#[test]
fn an_interrupted_base_pull_removes_its_partial_download_from_the_cache() {
    let scratch = tempfile::tempdir().unwrap();
    let home = scratch.path();
    // The real registry holds the fixture base; the proxy in front of it sends the head and half
    // of the first big layer asked for, then nothing, holding the connection open.
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("lambda/provided:{BASE_TAG}"));
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::BreakBody {
            fault: BodyFault::StallDownload,
            times: 1,
            path_contains: "GET /v2/lambda/provided/blobs/sha256:".into(),
            min_body: 2 << 20,
        },
    );
    let kit = home.join("kit");
    let args: Vec<String> = [
        "base".to_string(),
        "pull".into(),
        proxy.reference(&format!("lambda/provided:{BASE_TAG}")),
        "--arch".into(),
        "amd64".into(),
        "--output".into(),
        format!("oci:{}", kit.display()),
        "--json".into(),
    ]
    .into();
    let mut child = spawn(&args, home);
    wait_until_the_proxy_stalls(&proxy, &mut child, "base pull", "a layer download");
    interrupt_while_writing_a_cache_temporary(&mut child, home, ".tmp");
    let output = child.wait_with_output().unwrap();
    expect_interrupted("base pull", &output, libc::SIGINT, true);
    assert_eq!(cache_temporaries(home), Vec::<String>::new());
    assert!(!kit.exists());
}
