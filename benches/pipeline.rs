//! The benchmark: `lambda-image build` against buildah doing the same job and against the floor
//! (only the work nobody can avoid: `gzip -1`, `sha256sum` and a `curl` upload of each new
//! layer), on the same inputs, in the same run, tools alternating. Not a timed test: run it with
//! `bash benches/run.sh`, which installs the peers and inputs and then runs
//! `cargo bench --bench pipeline`.
//!
//! Inputs: two real Go binaries from Debian per architecture (`restic`, about 20 MB, and
//! `rclone`, about 60 MB), and the tests' stand-in base padded to the size of the real
//! `provided:al2023` (about 35 MB per architecture), pushed into local distribution registries.
//! Every scenario builds both architectures and an index:
//!
//! - **warm**: the base is in the target registry, in another repository;
//! - **cold**: the base is in another registry, and the target is a new registry (every base
//!   blob must cross); empty cache and store;
//! - **re-push**: the same inputs pushed again to the same tag;
//! - **layout**: base from an OCI layout, output to an OCI layout, no registry.
//!
//! Reported: the median of `LAMBDA_IMAGE_BENCH_RUNS` runs (default 5) per tool, the ratios, the
//! peak RSS (GNU time's `%M`), and for re-push the blob uploads lambda-image started. A last run
//! measures lambda-image's peak RSS with a 500 MB bootstrap on a base with a 110 MB layer.

// The integration tests' support code; the benchmark uses only its registry and base fixture.
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Sample, inputs, is_bench_run, lambda_image_binary, measure, median, runs};
use support::registry::{RegistryOptions, TestRegistry};

/// About the size of `provided:al2023`'s layers (26 MB of xz, 35 MB of gzip).
const BASE_PADDING: usize = 32 << 20;
/// The base layer of the memory run: over 100 MB.
const BIG_BASE_PADDING: usize = 110 << 20;
/// The bootstrap of the memory run.
const BIG_BOOTSTRAP: u64 = 500 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Warm,
    Cold,
    Repush,
    Layout,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Warm => "warm",
            Scenario::Cold => "cold",
            Scenario::Repush => "re-push",
            Scenario::Layout => "layout",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tool {
    LambdaImage,
    Buildah,
    Floor,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::LambdaImage => "lambda-image",
            Tool::Buildah => "buildah",
            Tool::Floor => "floor",
        }
    }
}

const TOOLS: [Tool; 3] = [Tool::LambdaImage, Tool::Buildah, Tool::Floor];

/// Everything a scenario needs.
struct Bench {
    work: PathBuf,
    target: TestRegistry,
    elsewhere: TestRegistry,
    base_layout: PathBuf,
    benches: PathBuf,
}

fn main() {
    if !is_bench_run("pipeline.rs", "bash benches/run.sh") {
        return;
    }
    let runs = runs();
    let inputs = inputs();
    let bench = Bench::set_up();

    let mut table = String::new();
    writeln!(
        table,
        "| scenario | bootstraps | lambda-image | buildah | floor | buildah ÷ lambda-image | lambda-image ÷ floor | peak RSS lambda-image / buildah | uploads |"
    )
    .unwrap();
    writeln!(table, "|---|---|---|---|---|---|---|---|---|").unwrap();
    for (program, size) in [("restic", "2 × 20 MB"), ("rclone", "2 × 60 MB")] {
        let bootstraps = [
            inputs.join(format!("{program}-amd64")),
            inputs.join(format!("{program}-arm64")),
        ];
        for path in &bootstraps {
            assert!(
                path.is_file(),
                "{} is missing: run `bash benches/run.sh`",
                path.display()
            );
        }
        for scenario in [
            Scenario::Warm,
            Scenario::Cold,
            Scenario::Repush,
            Scenario::Layout,
        ] {
            let row = bench.scenario(scenario, program, &bootstraps, runs);
            eprintln!("{} {size}: {}", scenario.name(), row.summary());
            writeln!(table, "| {} | {size} | {} |", scenario.name(), row.cells()).unwrap();
        }
    }
    let big = bench.memory_run(&inputs.join("restic-amd64"));
    println!("\n{table}");
    println!(
        "Peak RSS of lambda-image pushing a {} MB bootstrap onto a base with a {} MB layer from another registry: {:.1} MB ({:.1} s)",
        BIG_BOOTSTRAP >> 20,
        BIG_BASE_PADDING >> 20,
        big.peak_rss_kib as f64 / 1024.0,
        big.seconds
    );
}

/// The medians of one scenario.
struct Row {
    medians: Vec<(Tool, Sample)>,
    uploads: Option<usize>,
}

impl Row {
    fn median(&self, tool: Tool) -> Sample {
        self.medians.iter().find(|(t, _)| *t == tool).unwrap().1
    }

    fn cells(&self) -> String {
        let (ours, buildah, floor) = (
            self.median(Tool::LambdaImage),
            self.median(Tool::Buildah),
            self.median(Tool::Floor),
        );
        format!(
            "{:.2} s | {:.2} s | {:.2} s | {:.1}× | {:.2} | {:.0} / {:.0} MB | {}",
            ours.seconds,
            buildah.seconds,
            floor.seconds,
            buildah.seconds / ours.seconds,
            ours.seconds / floor.seconds,
            ours.peak_rss_kib as f64 / 1024.0,
            buildah.peak_rss_kib as f64 / 1024.0,
            self.uploads
                .map_or("-".to_owned(), |uploads| uploads.to_string()),
        )
    }

    fn summary(&self) -> String {
        self.medians
            .iter()
            .map(|(tool, sample)| format!("{} {:.2} s", tool.name(), sample.seconds))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Bench {
    fn set_up() -> Self {
        // Lower case only: buildah names images it pulls from an OCI layout after its path.
        let work =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).unwrap();
        let base_layout = work.join("base");
        support::generate_base_layout_with_padding(&base_layout, BASE_PADDING);
        let source = format!("oci:{}:{}", base_layout.display(), support::BASE_TAG);
        let target = TestRegistry::start(RegistryOptions::default());
        let elsewhere = TestRegistry::start(RegistryOptions::default());
        for registry in [&target, &elsewhere] {
            registry.skopeo_copy_to(&source, "lambda/base:al2023");
        }
        Self {
            work,
            target,
            elsewhere,
            base_layout,
            benches: Path::new(env!("CARGO_MANIFEST_DIR")).join("benches"),
        }
    }

    /// One warm-up run per tool (not measured), then `runs` rounds, the tools' order rotating.
    fn scenario(
        &self,
        scenario: Scenario,
        program: &str,
        bootstraps: &[PathBuf; 2],
        runs: usize,
    ) -> Row {
        let mut samples: Vec<(Tool, Vec<Sample>)> =
            TOOLS.iter().map(|&tool| (tool, Vec::new())).collect();
        let mut uploads = None;
        for round in 0..=runs {
            for offset in 0..TOOLS.len() {
                let tool = TOOLS[(round + offset) % TOOLS.len()];
                let name = format!("{program}-{}-{}-{round}", scenario.name(), tool.name());
                let before = self.target.count_requests("POST", "/blobs/uploads/");
                let sample = self.run(scenario, tool, program, &name, bootstraps);
                if round == 0 {
                    continue;
                }
                if tool == Tool::LambdaImage && scenario == Scenario::Repush {
                    let started = self.target.count_requests("POST", "/blobs/uploads/") - before;
                    uploads = Some(uploads.unwrap_or(0).max(started));
                }
                samples
                    .iter_mut()
                    .find(|(t, _)| *t == tool)
                    .unwrap()
                    .1
                    .push(sample);
            }
        }
        Row {
            medians: samples
                .into_iter()
                .map(|(tool, runs)| (tool, median(runs)))
                .collect(),
            uploads,
        }
    }

    fn run(
        &self,
        scenario: Scenario,
        tool: Tool,
        program: &str,
        name: &str,
        bootstraps: &[PathBuf; 2],
    ) -> Sample {
        let dir = |what: &str| {
            self.work.join(format!(
                "{program}-{}-{}-{what}",
                scenario.name(),
                tool.name()
            ))
        };
        let fresh = |path: PathBuf| {
            let _ = fs::remove_dir_all(&path);
            path
        };
        let repository = match scenario {
            Scenario::Repush => format!("{program}-{}-repush", tool.name()),
            _ => name.to_owned(),
        };
        let base_registry = match scenario {
            Scenario::Cold => &self.elsewhere,
            _ => &self.target,
        };
        let base = base_registry.reference("lambda/base:al2023");
        // A cold target is a registry of its own, started for this run: it has none of the
        // base's blobs, and no tool's memory of other registries (buildah's blob-info cache) helps.
        let cold_target;
        let target = match scenario {
            Scenario::Cold => {
                cold_target = TestRegistry::start(RegistryOptions::default());
                &cold_target
            }
            _ => &self.target,
        };
        let layout_base = format!("oci:{}:{}", self.base_layout.display(), support::BASE_TAG);
        let output = fresh(self.work.join(format!("out-{name}")));
        let mut command = match tool {
            Tool::LambdaImage => {
                // Only a re-push may find its layers in the cache: the others measure compressing.
                let cache = match scenario {
                    Scenario::Repush => dir("cache"),
                    _ => fresh(dir("cache")),
                };
                let mut command = Command::new(lambda_image_binary());
                command.arg("build").arg("-q").arg("--cache-dir").arg(cache);
                for bootstrap in bootstraps {
                    command.arg("--bootstrap").arg(bootstrap);
                }
                match scenario {
                    // Debian's Go binaries are dynamically linked, and the stand-in base (unlike
                    // the real one) has no /lib64/ld-linux-x86-64.so.2: a local base is checked
                    // for it, so that check is skipped here.
                    Scenario::Layout => command
                        .args(["--skip-checks", "interpreter"])
                        .args(["--base", &layout_base, "--output"])
                        .arg(format!("oci:{}:v1", output.display())),
                    _ => command
                        .args(["--base", &base, "--tag"])
                        .arg(target.reference(&format!("{repository}:v1"))),
                };
                command
            }
            Tool::Buildah => {
                let store = match scenario {
                    Scenario::Cold => fresh(dir("store")),
                    _ => dir("store"),
                };
                let (base, target) = match scenario {
                    Scenario::Layout => {
                        (layout_base.clone(), format!("oci:{}:v1", output.display()))
                    }
                    _ => (
                        format!("docker://{base}"),
                        format!("docker://{}", target.reference(&format!("{repository}:v1"))),
                    ),
                };
                let mut command = Command::new("bash");
                command
                    .arg(self.benches.join("buildah.sh"))
                    .arg(store)
                    .arg(base)
                    .arg(target)
                    .args(bootstraps);
                command
            }
            Tool::Floor => {
                let registry = match scenario {
                    Scenario::Layout => "-".to_owned(),
                    _ => target.host(),
                };
                let mut command = Command::new("bash");
                command
                    .arg(self.benches.join("floor.sh"))
                    .arg(registry)
                    .arg(&repository)
                    .args(bootstraps);
                command
            }
        };
        let sample = measure(&mut command);
        let _ = fs::remove_dir_all(&output);
        sample
    }

    /// lambda-image alone: a 500 MB bootstrap (a real ELF with noise appended) onto a base whose
    /// padding layer is 110 MB, from another registry, with an empty cache.
    fn memory_run(&self, elf: &Path) -> Sample {
        let big_base = self.work.join("big-base");
        support::generate_base_layout_with_padding(&big_base, BIG_BASE_PADDING);
        self.elsewhere.skopeo_copy_to(
            &format!("oci:{}:{}", big_base.display(), support::BASE_TAG),
            "lambda/big-base:al2023",
        );
        let bootstrap = self.work.join("big-bootstrap");
        let mut bytes = fs::read(elf).unwrap();
        let noise = support::pseudo_random_bytes(42, BIG_BOOTSTRAP as usize - bytes.len());
        bytes.extend_from_slice(&noise);
        fs::write(&bootstrap, &bytes).unwrap();
        drop(bytes);
        let mut command = Command::new(lambda_image_binary());
        command
            .args(["build", "-q", "--cache-dir"])
            .arg(self.work.join("big-cache"))
            .arg("--bootstrap")
            .arg(format!("amd64={}", bootstrap.display()))
            .args([
                "--base",
                &self.elsewhere.reference("lambda/big-base:al2023"),
            ])
            .args(["--tag", &self.target.reference("big:v1")]);
        measure(&mut command)
    }
}
