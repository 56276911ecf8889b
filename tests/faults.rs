//! Faults between `lambda-image` and a real distribution registry, injected by the test proxy
//! (`tests/support/proxy.rs`, `tests/support/body_faults.rs`): connections reset, stalled or
//! cut short in the middle of a blob upload or download, 500/502/503, 429 with `Retry-After`,
//! blobs that do not match their digest. Each fault has exactly one allowed outcome:
//!
//! * survived: the push completes, and what the registry holds is byte-identical to a
//!   fault-free push of the same inputs (same index and manifests, every blob readable by
//!   skopeo and identical);
//! * refused: the build fails with a clear error naming the step (exit 6, or 4 for a base
//!   that is not what its digest says), and the tag still points at the image it pointed at
//!   before (each case first pushes a v1 fault-free, then a different v2 through the fault).
//!
//! The v2 build uses a second base (`lambda/base-b`, another padding layer) so that exactly
//! its padding layers have to travel: uploaded through the proxy (the target is named by the
//! proxy's address, so nothing can be mounted) or downloaded through it (the base is named by
//! the proxy's address, the target is the registry itself). Stalls are found with a 2 s idle
//! limit (`LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS`).
//!
//! Also: four builds at once sharing a base and a cache; outputs killed mid-write; a corrupt
//! cache entry.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::body_faults::BodyFault;
use support::proxy::{ProxyBehaviour, TestProxy};
use support::registry::{RegistryOptions, TestRegistry};
use support::scratch::Scratch;
use support::*;

const BASE_A: &str = "lambda/base";
const BASE_B: &str = "lambda/base-b";
/// The padding of base B: its padding layers (one per architecture) are the blobs that travel.
const BASE_B_PADDING: usize = 1536 * 1024;
/// Body faults hit only bodies this large: base B's padding layers, not configs or manifests.
const LARGE_BODY: usize = 1024 * 1024;
/// The idle limit the builds under test get.
const IDLE_LIMIT_SECS: &str = "2";
/// No build may take longer than this (a stall that is never noticed would hang the test).
const BUILD_DEADLINE: Duration = Duration::from_secs(60);

/// A registry holding base A (the shared fixture) and base B, and the fault-free v2 push.
struct Bench {
    registry: TestRegistry,
    /// `skopeo inspect --raw` of the fault-free v2 index.
    reference_index: String,
    /// The fault-free v2 image as skopeo copies it: blob digest → sha256 of its file.
    reference_blobs: BTreeMap<String, String>,
    _scratch: Scratch,
}

/// Which way base B's padding layers travel through the proxy.
#[derive(Clone, Copy, Debug)]
enum Direction {
    Upload,
    Download,
}

/// What a case must end in.
enum Expect<'a> {
    Survived,
    Refused { exit: i32, stderr: &'a [&'a str] },
}

fn base_b_layout() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("faults-base-b-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        generate_base_layout_with_padding(&dir, BASE_B_PADDING);
        dir
    })
}

impl Bench {
    fn start() -> Bench {
        let registry = TestRegistry::start(RegistryOptions::default());
        registry.skopeo_copy_to(&base_reference(), &format!("{BASE_A}:{BASE_TAG}"));
        let base_b = format!("oci:{}:{BASE_TAG}", base_b_layout().display());
        registry.skopeo_copy_to(&base_b, &format!("{BASE_B}:{BASE_TAG}"));
        let scratch = Scratch::new();
        let base = registry.reference(&format!("{BASE_B}:{BASE_TAG}"));
        let target = registry.reference("reference:live");
        let mut args = v2_args(&base);
        args.extend(["--tag".to_owned(), target]);
        run_build(&mut scratch.build(&str_refs(&args)));
        let reference_index = registry.skopeo_inspect_raw("reference:live");
        let reference_blobs = copied_blobs(&registry, "reference:live", &scratch.path("ref"));
        Bench {
            registry,
            reference_index,
            reference_blobs,
            _scratch: scratch,
        }
    }

    /// Pushes v1 to `REPOSITORY:live` fault-free, then v2 through a proxy doing `behaviour`;
    /// checks the outcome against `expect`. Returns the proxy, for counting what it did.
    fn case(
        &self,
        repository: &str,
        direction: Direction,
        behaviour: ProxyBehaviour,
        expect: Expect,
    ) -> TestProxy {
        let scratch = Scratch::new();
        let registry = &self.registry;
        let tag = format!("{repository}:live");
        let base_a = registry.reference(&format!("{BASE_A}:{BASE_TAG}"));
        let mut v1 = both_bootstrap_args();
        v1.extend([
            "--base".into(),
            base_a,
            "--tag".into(),
            registry.reference(&tag),
        ]);
        run_build(&mut scratch.build(&str_refs(&v1)));
        let v1_index = sha256_hex(registry.skopeo_inspect_raw(&tag).as_bytes());

        let proxy = TestProxy::start(&registry.url(), behaviour.clone());
        let (base, target) = match direction {
            Direction::Upload => (
                registry.reference(&format!("{BASE_B}:{BASE_TAG}")),
                proxy.reference(&tag),
            ),
            Direction::Download => (
                proxy.reference(&format!("{BASE_B}:{BASE_TAG}")),
                registry.reference(&tag),
            ),
        };
        let mut v2 = v2_args(&base);
        v2.extend(["--tag".into(), target]);
        let output = run_build_unchecked(&mut scratch.build(&str_refs(&v2)));
        let stderr = stderr_of(&output);
        let context = format!("{repository}: {behaviour:?} ({direction:?})\nstderr:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{context}");
        // (CorruptBlob does not count its injections; the error message shows it happened.)
        if !matches!(behaviour, ProxyBehaviour::CorruptBlob { .. }) {
            assert!(
                proxy.injected() >= 1,
                "no fault was injected: {context}\n{:#?}",
                proxy.requests()
            );
        }
        match expect {
            Expect::Survived => {
                assert_eq!(output.status.code(), Some(0), "{context}");
                assert_eq!(
                    registry.skopeo_inspect_raw(&tag),
                    self.reference_index,
                    "the index differs from a fault-free push: {context}"
                );
                let copied = copied_blobs(registry, &tag, &scratch.path("copy"));
                assert_eq!(copied, self.reference_blobs, "{context}");
            }
            Expect::Refused {
                exit,
                stderr: expected,
            } => {
                assert_eq!(output.status.code(), Some(exit), "{context}");
                assert!(stderr.contains("lambda-image: error: "), "{context}");
                for text in expected {
                    assert!(stderr.contains(text), "stderr lacks `{text}`: {context}");
                }
                assert_eq!(
                    sha256_hex(registry.skopeo_inspect_raw(&tag).as_bytes()),
                    v1_index,
                    "the tag moved: {context}"
                );
            }
        }
        proxy
    }
}

/// The v2 build on `base`: both fixture bootstraps and an extra environment variable.
fn v2_args(base: &str) -> Vec<String> {
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base.to_owned(),
        "--env".into(),
        "BUILD=v2".into(),
    ]);
    args
}

fn str_refs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// The blobs of `tag` as skopeo copies them to a layout: digest → sha256 of the file. skopeo
/// fails on a missing blob or one that does not match its digest.
fn copied_blobs(registry: &TestRegistry, tag: &str, layout: &Path) -> BTreeMap<String, String> {
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
struct Running {
    child: std::process::Child,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    started: Instant,
    description: String,
}

/// Starts a build with the short idle limit.
fn spawn_build(command: &mut Command) -> Running {
    command
        .env("LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS", IDLE_LIMIT_SECS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    fn finish(mut self) -> Output {
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

/// Runs a build with the short idle limit, killing it (and failing) after [`BUILD_DEADLINE`].
fn run_build_unchecked(command: &mut Command) -> Output {
    spawn_build(command).finish()
}

fn run_build(command: &mut Command) -> Output {
    let output = run_build_unchecked(command);
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        stderr_of(&output)
    );
    output
}

fn fail(
    status: u16,
    times: usize,
    path_contains: &str,
    retry_after: Option<u64>,
) -> ProxyBehaviour {
    ProxyBehaviour::Fail {
        status,
        times,
        path_contains: path_contains.into(),
        retry_after,
    }
}

fn break_body(fault: BodyFault, times: usize, path_contains: &str) -> ProxyBehaviour {
    ProxyBehaviour::BreakBody {
        fault,
        times,
        path_contains: path_contains.into(),
        min_body: LARGE_BODY,
    }
}

#[test]
fn upload_faults_are_survived_with_identical_images() {
    let bench = Bench::start();
    let upload = "PUT /v2/up";
    let cases = [
        ("up-reset", break_body(BodyFault::ResetUpload, 1, upload)),
        ("up-stall", break_body(BodyFault::StallUpload, 1, upload)),
        (
            "up-500",
            fail(500, 1, "PUT /v2/up-500/blobs/uploads/", None),
        ),
        (
            "up-502",
            fail(502, 2, "POST /v2/up-502/blobs/uploads/", None),
        ),
        ("up-503", fail(503, 1, "PUT /v2/up-503/manifests/", None)),
        (
            "up-429",
            fail(429, 1, "PUT /v2/up-429/blobs/uploads/", Some(1)),
        ),
    ];
    for (repository, behaviour) in cases {
        let proxy = bench.case(repository, Direction::Upload, behaviour, Expect::Survived);
        if repository == "up-reset" || repository == "up-stall" {
            // The broken upload was redone from a new session, and completed.
            assert!(
                proxy.count_requests("POST", "/blobs/uploads/") >= 3,
                "{:#?}",
                proxy.requests()
            );
        }
    }
}

#[test]
fn upload_faults_that_persist_fail_naming_the_step_and_leave_the_tag() {
    let bench = Bench::start();
    bench.case(
        "up-corrupt",
        Direction::Upload,
        break_body(
            BodyFault::CorruptUpload,
            1,
            "PUT /v2/up-corrupt/blobs/uploads/",
        ),
        Expect::Refused {
            exit: 6,
            stderr: &["upload blob sha256:", "to up-corrupt failed", "400"],
        },
    );
    let proxy = bench.case(
        "up-503-always",
        Direction::Upload,
        fail(503, 1000, "PUT /v2/up-503-always/manifests/sha256:", None),
        Expect::Refused {
            exit: 6,
            stderr: &[
                "put manifest up-503-always:sha256:",
                "503 Service Unavailable",
                "after 4 tries",
            ],
        },
    );
    assert_eq!(proxy.injected(), 4, "the tries are bounded");
}

#[test]
fn download_faults_are_survived_with_identical_images() {
    let bench = Bench::start();
    let blob = "GET /v2/lambda/base-b/blobs/sha256:";
    let cases = [
        ("down-reset", break_body(BodyFault::ResetDownload, 1, blob)),
        ("down-stall", break_body(BodyFault::StallDownload, 1, blob)),
        (
            "down-truncated",
            break_body(BodyFault::TruncateDownload, 1, blob),
        ),
        ("down-500", fail(500, 1, blob, None)),
        ("down-502", fail(502, 1, blob, None)),
        ("down-503", fail(503, 1, blob, None)),
        ("down-429", fail(429, 1, blob, Some(1))),
    ];
    for (repository, behaviour) in cases {
        bench.case(repository, Direction::Download, behaviour, Expect::Survived);
    }
}

#[test]
fn download_faults_that_persist_fail_naming_the_step_and_leave_the_tag() {
    let bench = Bench::start();
    bench.case(
        "down-corrupt",
        Direction::Download,
        ProxyBehaviour::CorruptBlob {
            digest_hex: base_b_padding_hex("amd64"),
        },
        Expect::Refused {
            exit: 4,
            stderr: &["does not match its digest", "nothing was tagged"],
        },
    );
    bench.case(
        "down-reset-always",
        Direction::Download,
        break_body(
            BodyFault::ResetDownload,
            1000,
            "GET /v2/lambda/base-b/blobs/sha256:",
        ),
        Expect::Refused {
            exit: 6,
            stderr: &[
                "get blob sha256:",
                "of lambda/base-b failed",
                "after 4 tries",
            ],
        },
    );
}

/// The digest hex of base B's padding layer for `architecture`.
fn base_b_padding_hex(architecture: &str) -> String {
    let layout = base_b_layout();
    let tag = format!("{BASE_TAG}-{architecture}");
    let descriptor = layout_descriptor(layout, &tag).expect("base B is tagged per architecture");
    let manifest = read_blob_json(layout, descriptor["digest"].as_str().unwrap());
    let digest = manifest["layers"][1]["digest"].as_str().unwrap();
    digest.strip_prefix("sha256:").unwrap().to_owned()
}

#[test]
fn four_concurrent_builds_sharing_a_base_and_a_cache_all_push() {
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_A}:{BASE_TAG}"));
    // The base through the proxy's address: its layers are downloaded (into the one shared
    // cache) and uploaded, by all four at once, rather than mounted.
    let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::PassThrough);
    let base = proxy.reference(&format!("{BASE_A}:{BASE_TAG}"));
    let scratch = Scratch::new();
    let targets = ["fn-one:v1", "fn-two:v1", "shared:three", "shared:four"];
    let builds: Vec<Running> = targets
        .iter()
        .map(|target| {
            let function = target.replace(':', "-");
            let mut args = both_bootstrap_args();
            args.extend([
                "--base".into(),
                base.clone(),
                "--handler".into(),
                function.clone(),
                "--env".into(),
                format!("FUNCTION={function}"),
                "--tag".into(),
                registry.reference(target),
                "--json".into(),
            ]);
            spawn_build(&mut scratch.build(&str_refs(&args)))
        })
        .collect();
    let mut indexes = Vec::new();
    for (target, build) in targets.iter().zip(builds) {
        let output = build.finish();
        let stderr = stderr_of(&output);
        assert!(output.status.success(), "{target}:\n{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let stored = sha256_hex(registry.skopeo_inspect_raw(target).as_bytes());
        assert_eq!(
            report["index"]["digest"],
            format!("sha256:{stored}"),
            "{target}"
        );
        let copy = scratch.path(&format!("copy-{}", target.replace(':', "-")));
        copied_blobs(&registry, target, &copy);
        skopeo(&["inspect", &format!("oci:{}:copy", copy.display())]);
        indexes.push(stored);
    }
    indexes.sort();
    indexes.dedup();
    assert_eq!(
        indexes.len(),
        4,
        "four different functions, four different images"
    );
    // The shared cache holds only whole, verified blobs.
    let cached = scratch.cache().join("blobs/sha256");
    for entry in std::fs::read_dir(&cached).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_file(&path),
            name,
            "a cached blob does not match its name"
        );
    }
}

/// Starts `command`, kills it (SIGKILL) as soon as a temporary output file or directory
/// (`.lambda-image-*`) appears under `watched`, and returns whether it was killed (false: it
/// finished first).
fn kill_mid_write(command: &mut Command, watched: &Path) -> bool {
    let mut build = spawn_build(command);
    loop {
        if build.child.try_wait().unwrap().is_some() {
            return false;
        }
        if has_temporary_entry(watched) {
            build.child.kill().unwrap();
            let output = build.finish();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(output.status.signal(), Some(9));
            return true;
        }
        assert!(
            build.started.elapsed() < BUILD_DEADLINE,
            "the build never wrote"
        );
    }
}

/// Whether `directory` or its `blobs/sha256` holds a `.lambda-image-*` temporary entry.
fn has_temporary_entry(directory: &Path) -> bool {
    [directory.to_owned(), directory.join("blobs/sha256")]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .any(|entry| {
            entry.is_ok_and(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".lambda-image-")
            })
        })
}

#[test]
fn outputs_killed_mid_write_leave_nothing_a_later_run_would_trust() {
    let scratch = Scratch::new();
    // 48 MB that gzip cannot shrink: the new layer takes a while to write.
    let big = scratch.path("big.bin");
    std::fs::write(&big, pseudo_random_bytes(0x0b16_b10b, 48 << 20)).unwrap();
    let out = scratch.path("out");
    std::fs::create_dir_all(&out).unwrap();
    let build = |output: &str| {
        let mut args = both_bootstrap_args();
        args.extend([
            "--base".into(),
            base_reference(),
            "--include".into(),
            format!("{}:/opt/big.bin", big.display()),
            "--output".into(),
            output.to_owned(),
        ]);
        scratch.build(&str_refs(&args))
    };

    // An existing layout gets blobs renamed into place and index.json replaced last.
    let existing = out.join("existing");
    let mut small = both_bootstrap_args();
    small.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("oci:{}:v1", existing.display()),
    ]);
    run_build(&mut scratch.build(&str_refs(&small)));
    let index_before = std::fs::read(existing.join("index.json")).unwrap();

    let archive = out.join("image.tar");
    let docker_archive = out.join("docker.tar");
    let layout = out.join("layout");
    let outputs = [
        (
            format!("oci-archive:{}:v1", archive.display()),
            archive.clone(),
            out.clone(),
        ),
        (
            format!("docker-archive:{}:fn:v1", docker_archive.display()),
            docker_archive.clone(),
            out.clone(),
        ),
        (
            format!("oci:{}:v1", layout.display()),
            layout.clone(),
            out.clone(),
        ),
        (
            format!("oci:{}:v2", existing.display()),
            existing.join("index.json"),
            existing.clone(),
        ),
    ];
    for (output, destination, watched) in &outputs {
        assert!(
            kill_mid_write(&mut build(output), watched),
            "{output}: finished before it could be killed"
        );
        if destination.ends_with("index.json") {
            // Still the old index, and every image it names still complete.
            assert_eq!(
                std::fs::read(destination).unwrap(),
                index_before,
                "{output}"
            );
            skopeo(&["inspect", &format!("oci:{}:v1-amd64", existing.display())]);
            skopeo(&["inspect", &format!("oci:{}:v1-arm64", existing.display())]);
        } else {
            assert!(
                !destination.exists(),
                "{output}: a half-written output at the destination name"
            );
        }
        // A later run succeeds and gives a complete output.
        run_build(&mut build(output));
    }
    skopeo(&[
        "inspect",
        &format!("oci-archive:{}:v1-amd64", archive.display()),
    ]);
    skopeo(&[
        "inspect",
        &format!("docker-archive:{}:fn:v1-arm64", docker_archive.display()),
    ]);
    skopeo(&["inspect", &format!("oci:{}:v1-arm64", layout.display())]);
    skopeo(&["inspect", &format!("oci:{}:v2-amd64", existing.display())]);
}

#[test]
fn corrupt_cache_entries_are_dropped_fetched_again_and_the_build_succeeds() {
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_A}:{BASE_TAG}"));
    let scratch = Scratch::new();
    let base = registry.reference(&format!("{BASE_A}:{BASE_TAG}"));
    let build = |layout: &Path| {
        let mut args = both_bootstrap_args();
        args.extend([
            "--base".into(),
            base.clone(),
            "--output".into(),
            format!("oci:{}:v1", layout.display()),
        ]);
        run_build(&mut scratch.build(&str_refs(&args)))
    };
    build(&scratch.path("first"));

    // One layer with a byte flipped (same size), one cut short.
    let flipped = fixtures().base_layer_digests["amd64"][1].clone();
    let truncated = fixtures().base_layer_digests["arm64"][0].clone();
    let cached = |digest: &str| {
        scratch
            .cache()
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    };
    let mut bytes = std::fs::read(cached(&flipped)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(cached(&flipped), &bytes).unwrap();
    let bytes = std::fs::read(cached(&truncated)).unwrap();
    std::fs::write(cached(&truncated), &bytes[..bytes.len() / 3]).unwrap();

    let gets = |digest: &str| registry.count_requests("GET", &format!("/blobs/{digest}"));
    let before = (gets(&flipped), gets(&truncated));
    build(&scratch.path("second"));
    assert_eq!(
        (gets(&flipped), gets(&truncated)),
        (before.0 + 1, before.1 + 1),
        "each bad copy is fetched again, once"
    );
    for digest in [&flipped, &truncated] {
        assert_eq!(
            format!("sha256:{}", sha256_file(cached(digest))),
            *digest,
            "the cache holds a good copy again"
        );
    }
    for layout in ["first", "second"] {
        skopeo(&[
            "inspect",
            &format!("oci:{}:v1-amd64", scratch.path(layout).display()),
        ]);
    }
    assert_eq!(
        std::fs::read(scratch.path("first").join("index.json")).unwrap(),
        std::fs::read(scratch.path("second").join("index.json")).unwrap()
    );
}
