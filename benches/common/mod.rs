//! What the benchmarks (`pipeline.rs` on loopback, `link.rs` over a shaped link, `run_image.rs`
//! running an image) share: their settings (whether to run at all, runs, inputs), which
//! lambda-image is measured, one timed run of a command under GNU time, and the median of runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Whether this is a real benchmark run: `cargo bench` passes `--bench`, while `cargo test
/// --all-targets` runs the binary without it, and must not start a long benchmark. Says how to
/// run `name` when not.
pub fn is_bench_run(name: &str, how: &str) -> bool {
    let bench = std::env::args().any(|arg| arg == "--bench");
    if !bench {
        eprintln!("benches/{name} is a benchmark: run it with `{how}`");
    }
    bench
}

/// Runs per tool and scenario: `LAMBDA_IMAGE_BENCH_RUNS`, else 5.
pub fn runs() -> usize {
    std::env::var("LAMBDA_IMAGE_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(5)
}

/// Where the input bootstraps are: `LAMBDA_IMAGE_BENCH_INPUTS`, else `target/bench-deps/bin`
/// (filled by `benches/run.sh`).
pub fn inputs() -> PathBuf {
    std::env::var_os("LAMBDA_IMAGE_BENCH_INPUTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-deps/bin"))
}

/// One timed run: wall time in seconds, peak resident memory in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub seconds: f64,
    pub peak_rss_kib: u64,
}

/// Runs `command` under GNU time; its wall time and peak RSS. Panics if it fails.
pub fn measure(command: &mut Command) -> Sample {
    measure_output(command).0
}

/// [`measure`], also returning what `command` printed on stdout.
pub fn measure_output(command: &mut Command) -> (Sample, String) {
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(rss_file.path())
        .arg(command.get_program())
        .args(command.get_args());
    let start = Instant::now();
    let output = timed.output().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let peak_rss_kib = fs::read_to_string(rss_file.path())
        .unwrap()
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or(0);
    let sample = Sample {
        seconds,
        peak_rss_kib,
    };
    (sample, String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The median run by time (the upper middle one for an even count), with the highest peak RSS
/// of the runs.
pub fn median(mut samples: Vec<Sample>) -> Sample {
    samples.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let peak_rss_kib = samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0);
    Sample {
        seconds: samples[samples.len() / 2].seconds,
        peak_rss_kib,
    }
}

/// The lambda-image measured: `LAMBDA_IMAGE_BENCH_BINARY` if set (another build, e.g. an older
/// commit's, for a before-and-after comparison on the same machine), else this checkout's.
pub fn lambda_image_binary() -> PathBuf {
    std::env::var_os("LAMBDA_IMAGE_BENCH_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lambda-image")))
}
