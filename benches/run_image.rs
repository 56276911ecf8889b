//! The benchmark of `lambda-image invoke --image`: from nothing running to the first response of
//! one invocation of an image, against what a user does without lambda-image (umoci + runc, and
//! rootful podman where it runs here), in the same run, tools alternating. Not a timed test: run
//! it with `bash benches/run.sh run_image` (as root: runc and podman need it), which installs the
//! peers and then runs `cargo bench --bench run_image`.
//!
//! The image: the tests' real `lambda_runtime` echo function built by `lambda-image build` on the
//! stand-in base padded to the size of the real `provided:al2023` (about 35 MB of layers), in an
//! OCI layout. Each tool's answer must be the echo function's, to this run's event, from a
//! runtime that has just started (its first invocation).
//!
//! - **lambda-image**: `lambda-image invoke --image oci:DIR:fn --event E --cache-dir C`.
//! - **umoci + runc** (`benches/runc.sh`): `umoci unpack`, config.json edited with jq, `runc run
//!   -d`, `curl`, `runc delete -f`.
//! - **podman** (`benches/podman.sh`): `podman run --rm -d --network host -e … oci:DIR:fn`,
//!   `curl`, `podman rm -f --time 0`; left out, saying why, when podman does not run here with
//!   overlay or vfs storage.
//!
//! The peers' runtime talks to a `lambda-image serve --external` started before each of their
//! runs, not timed, always on the same port (a reused bundle keeps the address it was given).
//! (One `serve` per run keeps the peers' runs independent of each other. The benchmark found
//! that a single `serve` gave the next event to the `GET /runtime/invocation/next` of a runtime
//! `runc delete -f` had killed; that is fixed, and covered by
//! `lambda_fidelity::emulator_external`.)
//!
//! Scenarios: **cold**, an empty cache (lambda-image), no bundle (runc), empty storage (podman),
//! so the layers are unpacked or imported in the timed run; **warm**, what the previous run left
//! is reused (the cached root filesystem, the bundle, the image in podman's storage).
//!
//! Reported: the median of `LAMBDA_IMAGE_BENCH_RUNS` runs (default 5) per tool and scenario after
//! one unmeasured warm-up round, the ratios peer ÷ lambda-image, and the highest peak RSS (GNU
//! time's `%M`: the largest process the timed command waited for, so not the container's own
//! processes, which runc and conmon detach).

// The integration tests' support code; the benchmark uses its base fixture, the echo function
// and `serve`.
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use common::{Sample, is_bench_run, lambda_image_binary, measure_output, median, runs};
use support::functions::echo_function;
use support::local_lambda::INVOCATIONS_PATH;

/// About the size of `provided:al2023`'s layers (26 MB of xz, 35 MB of gzip), as in pipeline.rs.
const BASE_PADDING: usize = 32 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Cold,
    Warm,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::Warm => "warm",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    LambdaImage,
    Runc,
    Podman,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::LambdaImage => "lambda-image",
            Tool::Runc => "umoci+runc",
            Tool::Podman => "podman",
        }
    }
}

/// Everything the runs need.
struct Bench {
    work: PathBuf,
    /// The OCI layout holding the image, tagged `fn`.
    layout: PathBuf,
    /// The port of every `serve --external`.
    port: u16,
    benches: PathBuf,
    /// Where podman's storage roots go: a short path, as podman refuses a run root of more
    /// than 50 characters.
    podman_dir: PathBuf,
    /// podman's storage driver, when podman runs here.
    podman_driver: Option<&'static str>,
}

fn main() {
    if !is_bench_run("run_image.rs", "bash benches/run.sh run_image") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "the run_image benchmark runs runc and podman, which need root"
    );
    let runs = runs();
    let bench = Bench::set_up();
    let mut tools = vec![Tool::LambdaImage, Tool::Runc];
    if bench.podman_driver.is_some() {
        tools.push(Tool::Podman);
    }

    let mut table = String::new();
    writeln!(
        table,
        "| scenario | lambda-image | umoci + runc | podman | runc ÷ lambda-image | podman ÷ lambda-image | peak RSS lambda-image / runc script / podman script |"
    )
    .unwrap();
    writeln!(table, "|---|---|---|---|---|---|---|").unwrap();
    for scenario in [Scenario::Cold, Scenario::Warm] {
        let medians = bench.scenario(scenario, &tools, runs);
        let median_of = |tool: Tool| medians.iter().find(|(t, _)| *t == tool).map(|(_, s)| *s);
        let ours = median_of(Tool::LambdaImage).unwrap();
        let seconds = |sample: Option<Sample>| {
            sample.map_or("-".to_owned(), |sample| format!("{:.2} s", sample.seconds))
        };
        let ratio = |sample: Option<Sample>| {
            sample.map_or("-".to_owned(), |sample| {
                format!("{:.1}×", sample.seconds / ours.seconds)
            })
        };
        let rss = |sample: Option<Sample>| {
            sample.map_or("-".to_owned(), |sample| {
                format!("{:.0}", sample.peak_rss_kib as f64 / 1024.0)
            })
        };
        let (runc, podman) = (median_of(Tool::Runc), median_of(Tool::Podman));
        writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} / {} / {} MB |",
            scenario.name(),
            seconds(Some(ours)),
            seconds(runc),
            seconds(podman),
            ratio(runc),
            ratio(podman),
            rss(Some(ours)),
            rss(runc),
            rss(podman),
        )
        .unwrap();
    }
    for scenario in [Scenario::Cold, Scenario::Warm] {
        remove_podman_store(&bench.podman_dir.join(scenario.name()));
    }
    let _ = fs::remove_dir(&bench.podman_dir);
    println!("\n{table}");
    match bench.podman_driver {
        Some(driver) => println!("podman: {}, {driver} storage", podman_version()),
        None => println!("podman: left out (see above)"),
    }
}

impl Bench {
    fn set_up() -> Self {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("run-image-{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).unwrap();
        let base = work.join("base");
        support::generate_base_layout_with_padding(&base, BASE_PADDING);
        let layout = work.join("image");
        let built = Command::new(lambda_image_binary())
            .args(["build", "-q", "--bootstrap"])
            .arg(echo_function())
            .arg("--base")
            .arg(format!("oci:{}:{}", base.display(), support::BASE_TAG))
            .arg("--output")
            .arg(format!("oci:{}:fn", layout.display()))
            .arg("--cache-dir")
            .arg(work.join("build-cache"))
            .status()
            .unwrap();
        assert!(built.success(), "building the image failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut bench = Self {
            work,
            layout,
            port,
            benches: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches"),
            podman_dir: Path::new("/tmp").join(format!("run-image-{}", std::process::id())),
            podman_driver: None,
        };
        bench.podman_driver = bench.find_podman_driver();
        bench
    }

    /// The first storage driver (overlay, then vfs) with which one podman run, untimed, gives
    /// the echo function's answer; says why podman is left out when none does.
    fn find_podman_driver(&self) -> Option<&'static str> {
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!("podman: left out: not installed");
            return None;
        }
        for driver in ["overlay", "vfs"] {
            let store = self.podman_dir.join(format!("probe-{driver}"));
            let event = json!({"bench": format!("probe-{driver}")}).to_string();
            let serve = External::start(&self.work, self.port);
            let output = Command::new("bash")
                .args(self.podman_args(driver, &store, &event, &serve))
                .output()
                .unwrap();
            drop(serve);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let answer = check_answer(&stdout, &event);
            remove_podman_store(&store);
            match answer {
                Ok(()) if output.status.success() => return Some(driver),
                Ok(()) => eprintln!("podman with {driver} storage failed"),
                Err(why) => eprintln!(
                    "podman with {driver} storage: {why}\n{}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            }
        }
        eprintln!("podman: left out: it runs with neither overlay nor vfs storage here");
        None
    }

    fn podman_args(
        &self,
        driver: &str,
        store: &Path,
        event: &str,
        serve: &External,
    ) -> Vec<String> {
        let mut args = vec![
            self.benches.join("podman.sh").display().to_string(),
            driver.to_owned(),
            store.display().to_string(),
            format!("oci:{}:fn", self.layout.display()),
            serve.invocations_url(),
            event.to_owned(),
        ];
        args.extend(serve.environment.iter().cloned());
        args
    }

    /// One warm-up round (not measured), then `runs` rounds, the tools' order rotating. Every
    /// run's answer is checked.
    fn scenario(&self, scenario: Scenario, tools: &[Tool], runs: usize) -> Vec<(Tool, Sample)> {
        let mut samples: Vec<(Tool, Vec<Sample>)> =
            tools.iter().map(|&tool| (tool, Vec::new())).collect();
        for round in 0..=runs {
            for offset in 0..tools.len() {
                let tool = tools[(round + offset) % tools.len()];
                let sample = self.run(scenario, tool, round);
                eprintln!(
                    "{} {} round {round}: {:.3} s, {:.1} MB{}",
                    scenario.name(),
                    tool.name(),
                    sample.seconds,
                    sample.peak_rss_kib as f64 / 1024.0,
                    if round == 0 { " (warm-up)" } else { "" }
                );
                if round > 0 {
                    samples
                        .iter_mut()
                        .find(|(t, _)| *t == tool)
                        .unwrap()
                        .1
                        .push(sample);
                }
            }
        }
        samples
            .into_iter()
            .map(|(tool, runs)| (tool, median(runs)))
            .collect()
    }

    fn run(&self, scenario: Scenario, tool: Tool, round: usize) -> Sample {
        let dir = |what: &str| {
            self.work
                .join(format!("{}-{}-{what}", scenario.name(), tool.name()))
        };
        let cold = scenario == Scenario::Cold;
        let event =
            json!({"bench": format!("{}-{}-{round}", scenario.name(), tool.name())}).to_string();
        let serve = (tool != Tool::LambdaImage).then(|| External::start(&self.work, self.port));
        let mut command = match tool {
            Tool::LambdaImage => {
                let cache = dir("cache");
                if cold {
                    let _ = fs::remove_dir_all(&cache);
                }
                let mut command = Command::new(lambda_image_binary());
                command
                    .args(["invoke", "--image"])
                    .arg(format!("oci:{}:fn", self.layout.display()))
                    .args(["--event", &event, "--cache-dir"])
                    .arg(cache);
                command
            }
            Tool::Runc => {
                let serve = serve.as_ref().unwrap();
                let bundle = dir("bundle");
                if cold {
                    let _ = fs::remove_dir_all(&bundle);
                }
                let mut command = Command::new("bash");
                command
                    .arg(self.benches.join("runc.sh"))
                    .arg(format!("{}:fn", self.layout.display()))
                    .arg(bundle)
                    .arg(dir("runc-state"))
                    .arg(serve.invocations_url())
                    .arg(&event)
                    .args(&serve.environment);
                command
            }
            Tool::Podman => {
                let driver = self.podman_driver.unwrap();
                let store = self.podman_dir.join(scenario.name());
                if cold {
                    remove_podman_store(&store);
                }
                let mut command = Command::new("bash");
                command.args(self.podman_args(driver, &store, &event, serve.as_ref().unwrap()));
                command
            }
        };
        let (sample, stdout) = measure_output(&mut command);
        if let Err(why) = check_answer(&stdout, &event) {
            panic!(
                "{} {}: {why}\n--- serve ---\n{}",
                scenario.name(),
                tool.name(),
                serve.map(|serve| serve.stderr()).unwrap_or_default()
            );
        }
        sample
    }
}

/// `lambda-image serve --external --port PORT` in the background, stopped with SIGTERM when
/// dropped.
struct External {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    /// The environment it prints for an external runtime, as `KEY=VALUE`.
    environment: Vec<String>,
}

impl External {
    /// Starts it and waits until it has printed the runtime's environment.
    fn start(work: &Path, port: u16) -> External {
        let log = work.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_lambda-image"))
            .args(["serve", "--external", "--timeout", "30", "--port"])
            .arg(port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut serve = External {
            child,
            port,
            log,
            environment: Vec::new(),
        };
        let api = format!("AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let stderr = serve.stderr();
            if stderr.contains("Ctrl-C stops") {
                serve.environment = stderr
                    .lines()
                    .filter_map(|line| line.strip_prefix("  "))
                    .filter(|line| line.contains('='))
                    .map(str::to_owned)
                    .collect();
                assert!(
                    serve.environment.contains(&api),
                    "serve --external prints the Runtime API's address:\n{stderr}"
                );
                return serve;
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("serve --external exited ({status}):\n{stderr}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve --external did not start:\n{stderr}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn invocations_url(&self) -> String {
        format!("http://127.0.0.1:{}{INVOCATIONS_PATH}", self.port)
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for External {
    fn drop(&mut self) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's, not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Whether `stdout` is the echo function's answer to `event`, from a runtime that has just
/// started (its first invocation).
fn check_answer(stdout: &str, event: &str) -> Result<(), String> {
    let line = stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .ok_or("no answer on stdout")?;
    let answer: Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON ({error}): {line}"))?;
    let event: Value = serde_json::from_str(event).unwrap();
    if answer["echo"] != event
        || answer["handler"] != "bootstrap"
        || answer["function"] != "test_function"
        || answer["invocation"] != 1
    {
        return Err(format!(
            "not the echo function's first answer to {event}: {line}"
        ));
    }
    Ok(())
}

/// Removes a podman storage root, unmounting first what is still mounted under it (the
/// overlay driver mounts its own directory, and layers while a container runs). Tried a few
/// times: podman's cleanup process, which runs after `podman rm` has returned, may mount the
/// store again meanwhile (seen as EBUSY).
fn remove_podman_store(store: &Path) {
    let mut attempt = 0;
    while store.exists() {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| Path::new(point).starts_with(store))
            .collect();
        mounts.sort_by_key(|point| std::cmp::Reverse(point.len()));
        for point in mounts {
            let _ = Command::new("umount").args(["-l", point]).output();
        }
        match fs::remove_dir_all(store) {
            Ok(()) => return,
            Err(error) if attempt < 20 => {
                eprintln!("removing {}: {error}; trying again", store.display());
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
            Err(error) => panic!("cannot remove {}: {error}", store.display()),
        }
    }
}

/// `podman --version`, e.g. `podman version 4.3.1`.
fn podman_version() -> String {
    Command::new("podman")
        .arg("--version")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}
