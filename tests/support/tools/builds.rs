//! Running `lambda-image build` in the background with a deadline (a build that hangs fails
//! its test instead of hanging it), and reading back what a build pushed or cached.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::registry::TestRegistry;
use crate::support::{sha256_file, stderr_of};

/// No build may take longer than this (a stall that is never noticed would hang the test).
pub const BUILD_DEADLINE: Duration = Duration::from_secs(60);

pub fn str_refs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// The blobs of `tag` as skopeo copies them to a layout: digest → sha256 of the file. skopeo
/// fails on a missing blob or one that does not match its digest.
pub fn copied_blobs(registry: &TestRegistry, tag: &str, layout: &Path) -> BTreeMap<String, String> {
    registry.skopeo_copy_from(tag, &format!("oci:{}:copy", layout.display()));
    let directory = layout.join("blobs/sha256");
    std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, sha256_file(&path))
        })
        .collect()
}

/// A `lambda-image` run in the background, its output collected.
pub struct Running {
    pub child: std::process::Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    pub started: Instant,
    description: String,
}

/// Starts a build.
pub fn spawn_build(command: &mut Command) -> Running {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("starting lambda-image");
    let drain = |mut stream: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    Running {
        child,
        stdout,
        stderr,
        started: Instant::now(),
        description: format!("{command:?}"),
    }
}

impl Running {
    /// Waits for the end, killing it (and failing) after [`BUILD_DEADLINE`].
    pub fn finish(mut self) -> Output {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > BUILD_DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "lambda-image hung for {BUILD_DEADLINE:?}: {}\nstderr:\n{}",
                    self.description,
                    String::from_utf8_lossy(&self.stderr.join().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
        }
    }
}

/// Runs a build, killing it (and failing) after [`BUILD_DEADLINE`].
pub fn run_build_unchecked(command: &mut Command) -> Output {
    spawn_build(command).finish()
}

pub fn run_build(command: &mut Command) -> Output {
    let output = run_build_unchecked(command);
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        stderr_of(&output)
    );
    output
}

/// Every blob in the cache directory `cached` matches its name (a cache never written to has
/// no such directory, and nothing broken in it).
pub fn assert_cache_is_whole(cached: &Path) {
    if !cached.exists() {
        return;
    }
    for entry in std::fs::read_dir(cached).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_file(&path),
            name,
            "a cached blob does not match its name"
        );
    }
}
