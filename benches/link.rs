//! The link benchmark: pushing over a rate-limited link, against the physical limit. Not a timed
//! test: run it with `bash benches/run.sh link` (root: it makes a network namespace), which
//! installs the peers, iproute2 and the inputs and then runs `cargo bench --bench link`.
//!
//! The target registry (the real `docker-registry`) runs in a network namespace reached through
//! a veth pair whose two ends are shaped by `tc ... tbf` (benches/link/net.rs), at 100 Mbit/s
//! and at 1 Gbit/s. No delay is added (this kernel has no `sch_netem`). Inputs: two real Go
//! binaries from Debian per architecture (`restic`, about 20 MB, and `rclone`, about 60 MB) on
//! the tests' stand-in base padded to the size of `provided:al2023`. Both architectures and an
//! index are pushed every time:
//!
//! - **warm**: the base is in the target registry, in another repository (its layers are
//!   mounted); lambda-image's layer cache is empty each run;
//! - **cold**: the base is in another registry on the unshaped loopback, and the target is a new
//!   registry behind the link: every base blob crosses it; empty cache and store.
//!
//! Tools, alternating in the same run after one unmeasured warm-up round: lambda-image (the
//! release binary), buildah (benches/buildah.sh), and the curl floor (benches/curl_floor.sh):
//! curl uploading the finished layers (compressed beforehand, outside the timing, taken from an
//! OCI layout lambda-image built with the same inputs), all in parallel.
//!
//! The physical limit is the bytes lambda-image must send divided by the link's rate: warm, the
//! new blobs of the image (two layers, two configs, two manifests and the index); cold, every
//! blob of the image (the base's layers and configs too). Reported: the median of
//! `LAMBDA_IMAGE_BENCH_RUNS` runs (default 5) per tool and the ratios; min and max go to stderr.
//! `LAMBDA_IMAGE_BENCH_LINKS` (`100mbit,1gbit`) and `LAMBDA_IMAGE_BENCH_PROGRAMS`
//! (`restic,rclone`) choose a subset. `LAMBDA_IMAGE_BENCH_RTT_MS=20` adds a round trip of
//! 20 ms: the veth pair is then replaced by two TUN devices joined by a userspace packet delay
//! line (benches/link/delay.rs).

// The integration tests' support code; the benchmark uses only its registry and base fixture.
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

#[path = "common/mod.rs"]
mod common;

#[path = "link/delay.rs"]
mod delay;
#[path = "link/net.rs"]
mod net;
#[path = "link/sizes.rs"]
mod sizes;

use std::cell::Cell;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Sample, inputs, is_bench_run, lambda_image_binary, measure, median, runs};
use net::{Link, NsRegistry, Rate};
use support::registry::{RegistryOptions, TestRegistry};

/// About the size of `provided:al2023`'s layers (26 MB of xz, 35 MB of gzip), as in pipeline.rs.
const BASE_PADDING: usize = 32 << 20;
/// The port of the warm registry in the namespace; cold registries take the next ones.
const WARM_PORT: u16 = 5000;

const RATES: [Rate; 2] = [
    Rate {
        bits_per_second: 100_000_000,
        label: "100mbit",
    },
    Rate {
        bits_per_second: 1_000_000_000,
        label: "1gbit",
    },
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Warm,
    Cold,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Warm => "warm",
            Scenario::Cold => "cold",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    LambdaImage,
    Buildah,
    Curl,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::LambdaImage => "lambda-image",
            Tool::Buildah => "buildah",
            Tool::Curl => "curl",
        }
    }
}

const TOOLS: [Tool; 3] = [Tool::LambdaImage, Tool::Buildah, Tool::Curl];

/// One input set: the bootstraps, and what lambda-image makes of them.
struct Input {
    program: String,
    size: &'static str,
    bootstraps: [PathBuf; 2],
    /// The new blobs of the image (layers, configs, manifests, index): what a warm push sends.
    warm_bytes: u64,
    /// Every blob of the image: what a cold push sends.
    cold_bytes: u64,
    /// The two new layers, finished: what the curl floor uploads warm.
    new_layers: Vec<PathBuf>,
    /// Every layer of both images: what the curl floor uploads cold.
    all_layers: Vec<PathBuf>,
}

/// Everything the runs need. Field order is drop order: registries before the link.
struct Bench {
    work: PathBuf,
    warm: NsRegistry,
    elsewhere: TestRegistry,
    link: Link,
    base_layout: PathBuf,
    benches: PathBuf,
    next_port: Cell<u16>,
}

fn main() {
    if !is_bench_run("link.rs", "bash benches/run.sh link") {
        return;
    }
    let runs = runs();
    let inputs = inputs();
    let chosen = |variable: &str, name: &str| {
        std::env::var(variable).map_or(true, |list| list.split(',').any(|item| item == name))
    };
    let round_trip = std::env::var("LAMBDA_IMAGE_BENCH_RTT_MS").ok().map(|ms| {
        Duration::from_millis(ms.parse().expect("LAMBDA_IMAGE_BENCH_RTT_MS: milliseconds"))
    });
    let link_label = |rate: Rate| match round_trip {
        Some(round_trip) => format!("{}, {} ms RTT", rate.label, round_trip.as_millis()),
        None => rate.label.to_owned(),
    };
    let started = Instant::now();
    let bench = Bench::set_up(round_trip);
    let programs: Vec<Input> = [("restic", "2 × 20 MB"), ("rclone", "2 × 60 MB")]
        .into_iter()
        .filter(|(program, _)| chosen("LAMBDA_IMAGE_BENCH_PROGRAMS", program))
        .map(|(program, size)| bench.input(&inputs, program, size))
        .collect();

    let mut table = String::new();
    writeln!(
        table,
        "| link | scenario | inputs | MB over the link | limit | lambda-image | buildah | curl floor | lambda-image ÷ curl |"
    )
    .unwrap();
    writeln!(table, "|---|---|---|---|---|---|---|---|---|").unwrap();
    for rate in RATES {
        if !chosen("LAMBDA_IMAGE_BENCH_LINKS", rate.label) {
            continue;
        }
        bench.link.shape(rate);
        eprintln!(
            "link {}: burst {} bytes, latency {} ms\n{}",
            link_label(rate),
            rate.burst_bytes(),
            net::QUEUE_LATENCY_MS,
            bench.link.describe()
        );
        for input in &programs {
            for scenario in [Scenario::Warm, Scenario::Cold] {
                let bytes = match scenario {
                    Scenario::Warm => input.warm_bytes,
                    Scenario::Cold => input.cold_bytes,
                };
                let limit = bytes as f64 * 8.0 / rate.bits_per_second as f64;
                let samples = bench.scenario(rate, scenario, input, runs);
                let median = |tool: Tool| median_of(&samples, tool);
                for tool in TOOLS {
                    let seconds: Vec<f64> = samples
                        .iter()
                        .filter(|(t, _)| *t == tool)
                        .map(|(_, sample)| sample.seconds)
                        .collect();
                    eprintln!(
                        "{} {} {}: {} median {:.2} s = {:.2} × limit ({:.2} s); runs {:?}, peak RSS {:.0} MB",
                        link_label(rate),
                        scenario.name(),
                        input.program,
                        tool.name(),
                        median(tool).seconds,
                        median(tool).seconds / limit,
                        limit,
                        seconds
                            .iter()
                            .map(|s| (s * 100.0).round() / 100.0)
                            .collect::<Vec<_>>(),
                        median(tool).peak_rss_kib as f64 / 1024.0,
                    );
                }
                let cell = |tool: Tool| {
                    format!(
                        "{:.2} s ({:.2} ×)",
                        median(tool).seconds,
                        median(tool).seconds / limit
                    )
                };
                writeln!(
                    table,
                    "| {} | {} | {} | {:.1} | {:.2} s | {} | {} | {} | {:.2} |",
                    link_label(rate),
                    scenario.name(),
                    input.size,
                    bytes as f64 / 1e6,
                    limit,
                    cell(Tool::LambdaImage),
                    cell(Tool::Buildah),
                    cell(Tool::Curl),
                    median(Tool::LambdaImage).seconds / median(Tool::Curl).seconds,
                )
                .unwrap();
            }
        }
    }
    let work = bench.work.clone();
    drop(bench);
    let _ = fs::remove_dir_all(work);
    println!("\n{table}");
    println!(
        "({runs} runs per tool and row after a warm-up round; the whole benchmark took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
}

impl Bench {
    fn set_up(round_trip: Option<Duration>) -> Self {
        // Lower case only: buildah names images it pulls from an OCI layout after its path.
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("link-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).unwrap();
        let base_layout = work.join("base");
        support::generate_base_layout_with_padding(&base_layout, BASE_PADDING);
        let source = format!("oci:{}:{}", base_layout.display(), support::BASE_TAG);
        let elsewhere = TestRegistry::start(RegistryOptions::default());
        elsewhere.skopeo_copy_to(&source, "lambda/base:al2023");
        let link = Link::create(round_trip);
        let warm = NsRegistry::start(&link, WARM_PORT, &work.join("warm-registry"));
        // Before shaping: setting up is not measured.
        support::skopeo(&[
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &source,
            &format!("docker://{}", warm.reference("lambda/base:al2023")),
        ]);
        eprintln!(
            "round trip to the registry in the namespace (fastest of 5 TCP connects): {:.2} ms",
            connect_time(warm.host()) * 1e3
        );
        Self {
            work,
            warm,
            elsewhere,
            link,
            base_layout,
            benches: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches"),
            next_port: Cell::new(WARM_PORT + 1),
        }
    }

    /// Builds `program`'s two bootstraps into an OCI layout with lambda-image (not measured):
    /// the sizes of the limit, and the finished layers for the curl floor.
    fn input(&self, inputs: &Path, program: &str, size: &'static str) -> Input {
        let bootstraps = [
            inputs.join(format!("{program}-amd64")),
            inputs.join(format!("{program}-arm64")),
        ];
        for path in &bootstraps {
            assert!(
                path.is_file(),
                "{} is missing: run `bash benches/run.sh link`",
                path.display()
            );
        }
        let layout = self.work.join(format!("{program}-layout"));
        let mut command = Command::new(lambda_image_binary());
        command
            .args(["build", "-q", "--cache-dir"])
            .arg(self.work.join(format!("{program}-layout-cache")))
            .arg("--bootstrap")
            .arg(&bootstraps[0])
            .arg("--bootstrap")
            .arg(&bootstraps[1])
            .args(["--base", &self.elsewhere.reference("lambda/base:al2023")])
            .arg("--output")
            .arg(format!("oci:{}:v1", layout.display()));
        measure(&mut command);
        let base = sizes::reachable(&self.base_layout);
        let image = sizes::reachable(&layout);
        let new: Vec<&sizes::Blob> = image
            .values()
            .filter(|blob| !base.contains_key(&blob.hex))
            .collect();
        let new_layers: Vec<PathBuf> = new
            .iter()
            .filter(|blob| blob.is_layer())
            .map(|blob| blob.path.clone())
            .collect();
        let all_layers: Vec<PathBuf> = image
            .values()
            .filter(|blob| blob.is_layer())
            .map(|blob| blob.path.clone())
            .collect();
        assert_eq!(new_layers.len(), 2, "two new layers expected: {new:#?}");
        let input = Input {
            program: program.to_owned(),
            size,
            warm_bytes: sizes::total(new.iter().copied()),
            cold_bytes: sizes::total(image.values()),
            new_layers,
            all_layers,
            bootstraps,
        };
        eprintln!(
            "{program}: new blobs {} ({} bytes: layers {}), every blob of the image {} ({} bytes)",
            new.len(),
            input.warm_bytes,
            sizes::total(new.iter().copied().filter(|blob| blob.is_layer())),
            image.len(),
            input.cold_bytes,
        );
        input
    }

    /// One warm-up round (not measured), then `runs` rounds, the tools' order rotating; every
    /// measured sample.
    fn scenario(
        &self,
        rate: Rate,
        scenario: Scenario,
        input: &Input,
        runs: usize,
    ) -> Vec<(Tool, Sample)> {
        let mut samples = Vec::new();
        for round in 0..=runs {
            for offset in 0..TOOLS.len() {
                let tool = TOOLS[(round + offset) % TOOLS.len()];
                let name = format!(
                    "{}-{}-{}-{}-{round}",
                    input.program,
                    scenario.name(),
                    tool.name(),
                    rate.label
                );
                let sample = self.run(scenario, tool, input, &name);
                if round > 0 {
                    samples.push((tool, sample));
                }
            }
        }
        samples
    }

    fn run(&self, scenario: Scenario, tool: Tool, input: &Input, repository: &str) -> Sample {
        let dir = |what: &str| {
            self.work.join(format!(
                "{}-{}-{}-{what}",
                input.program,
                scenario.name(),
                tool.name()
            ))
        };
        let fresh = |path: PathBuf| {
            let _ = fs::remove_dir_all(&path);
            path
        };
        // A cold target is a registry of its own behind the link, started for this run: it has
        // none of the base's blobs, and no tool's memory of other registries (buildah's
        // blob-info cache) helps.
        let cold_target;
        let (target, base) = match scenario {
            Scenario::Warm => (&self.warm, self.warm.reference("lambda/base:al2023")),
            Scenario::Cold => {
                let port = self.next_port.get();
                self.next_port.set(port + 1);
                cold_target = NsRegistry::start(&self.link, port, &self.work.join("cold-registry"));
                (&cold_target, self.elsewhere.reference("lambda/base:al2023"))
            }
        };
        let tag = target.reference(&format!("{repository}:v1"));
        let mut command = match tool {
            Tool::LambdaImage => {
                let mut command = Command::new(lambda_image_binary());
                command
                    .args(["build", "-q", "--cache-dir"])
                    .arg(fresh(dir("cache")))
                    .args(["--insecure-registry", target.host()]);
                for bootstrap in &input.bootstraps {
                    command.arg("--bootstrap").arg(bootstrap);
                }
                command.args(["--base", &base, "--tag", &tag]);
                command
            }
            Tool::Buildah => {
                let store = match scenario {
                    Scenario::Cold => fresh(dir("store")),
                    Scenario::Warm => dir("store"),
                };
                let mut command = Command::new("bash");
                command
                    .arg(self.benches.join("buildah.sh"))
                    .arg(store)
                    .arg(format!("docker://{base}"))
                    .arg(format!("docker://{tag}"))
                    .args(&input.bootstraps);
                command
            }
            Tool::Curl => {
                let blobs = match scenario {
                    Scenario::Warm => &input.new_layers,
                    Scenario::Cold => &input.all_layers,
                };
                let mut command = Command::new("bash");
                command
                    .arg(self.benches.join("curl_floor.sh"))
                    .arg(target.host())
                    .arg(repository)
                    .args(blobs);
                command
            }
        };
        let sample = measure(&mut command);
        if scenario == Scenario::Cold && tool == Tool::LambdaImage {
            let stored = sizes::stored_bytes(&target.storage());
            if stored != input.cold_bytes {
                eprintln!(
                    "note: the cold target stores {stored} bytes of blobs after lambda-image's push; the limit counts {}",
                    input.cold_bytes
                );
            }
        }
        sample
    }
}

/// The fastest of five TCP connects to `host` (one round trip each), in seconds.
fn connect_time(host: &str) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            drop(std::net::TcpStream::connect(host).unwrap());
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// `tool`'s median run by time (the upper middle one for an even count), with the highest
/// peak RSS of its runs.
fn median_of(samples: &[(Tool, Sample)], tool: Tool) -> Sample {
    median(
        samples
            .iter()
            .filter(|(t, _)| *t == tool)
            .map(|(_, sample)| *sample)
            .collect(),
    )
}
