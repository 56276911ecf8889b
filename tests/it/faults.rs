//! Faults between `lambda-image` and a real distribution registry, injected by the test proxy
//! (`tests/support/registries/proxy.rs`, `tests/support/registries/body_faults.rs`): connections reset, stalled or
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
//! Builds at once, outputs killed mid-write and corrupt cache entries: `tests/it/faults_outputs.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::body_faults::BodyFault;
use crate::support::builds::{
    assert_cache_is_whole, copied_blobs, run_build, run_build_unchecked, str_refs,
};
use crate::support::proxy::{ProxyBehaviour, TestProxy};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;

const BASE_A: &str = "lambda/base";
const BASE_B: &str = "lambda/base-b";
/// The padding of base B: its padding layers (one per architecture) are the blobs that travel.
const BASE_B_PADDING: usize = 1536 * 1024;
/// Body faults hit only bodies this large: base B's padding layers, not configs or manifests.
const LARGE_BODY: usize = 1024 * 1024;
/// The idle limit the builds under test get.
const IDLE_LIMIT_SECS: &str = "2";

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
        run_build(&mut build(&scratch, &args));
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
        run_build(&mut build(&scratch, &v1));
        // The index tag and each architecture's tag, as v1 left them.
        let tags = [tag.clone(), format!("{tag}-amd64"), format!("{tag}-arm64")];
        let digests_of = |tags: &[String]| -> Vec<String> {
            tags.iter()
                .map(|tag| sha256_hex(registry.skopeo_inspect_raw(tag).as_bytes()))
                .collect()
        };
        let v1_digests = digests_of(&tags);

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
        let output = run_build_unchecked(&mut build(&scratch, &v2));
        // Whatever happened, the cache holds only whole blobs.
        assert_cache_is_whole(&scratch.cache().join("blobs/sha256"));
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
                let copied = copied_blobs(registry, &tag, &scratch.path("copy"));
                match direction {
                    Direction::Upload => {
                        assert_eq!(
                            registry.skopeo_inspect_raw(&tag),
                            self.reference_index,
                            "the index differs from a fault-free push: {context}"
                        );
                        assert_eq!(copied, self.reference_blobs, "{context}");
                    }
                    // The base was named by the proxy's address, and the manifests record it
                    // (org.opencontainers.image.base.name): everything else must be identical.
                    Direction::Download => {
                        let pushed = without_base_name(registry, &tag, &base);
                        let base_b = registry.reference(&format!("{BASE_B}:{BASE_TAG}"));
                        let reference = without_base_name(registry, "reference:live", &base_b);
                        assert_eq!(pushed.manifests, reference.manifests, "{context}");
                        assert_eq!(
                            configs_and_layers(&copied, &pushed),
                            configs_and_layers(&self.reference_blobs, &reference),
                            "configs and layers differ from a fault-free push: {context}"
                        );
                    }
                }
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
                assert_eq!(digests_of(&tags), v1_digests, "a tag moved: {context}");
            }
        }
        proxy
    }
}

/// What a pushed image is apart from the name it gives its base: its manifests by config
/// digest, as JSON without the `org.opencontainers.image.base.name` annotation (checked to be
/// `base` first), and the digests (hex) of the index and manifests themselves.
struct Unnamed {
    manifests: BTreeMap<String, serde_json::Value>,
    documents: Vec<String>,
}

fn without_base_name(registry: &TestRegistry, tag: &str, base: &str) -> Unnamed {
    let raw_index = registry.skopeo_inspect_raw(tag);
    let index: serde_json::Value = serde_json::from_str(&raw_index).unwrap();
    let repository = tag.split(':').next().unwrap();
    let base = base.strip_prefix("docker://").unwrap_or(base);
    let mut unnamed = Unnamed {
        manifests: BTreeMap::new(),
        documents: vec![sha256_hex(raw_index.as_bytes())],
    };
    for descriptor in index["manifests"].as_array().unwrap() {
        let digest = descriptor["digest"].as_str().unwrap();
        let raw = registry.skopeo_inspect_raw(&format!("{repository}@{digest}"));
        unnamed.documents.push(sha256_hex(raw.as_bytes()));
        let mut manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let name = manifest["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("org.opencontainers.image.base.name")
            .unwrap_or_else(|| panic!("{tag}: {digest} has no base.name"));
        assert_eq!(name, base, "{tag}: {digest}");
        let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
        unnamed.manifests.insert(config, manifest);
    }
    unnamed
}

/// Blobs that are neither the index nor a manifest of `image`.
fn configs_and_layers(
    blobs: &BTreeMap<String, String>,
    image: &Unnamed,
) -> BTreeMap<String, String> {
    blobs
        .iter()
        .filter(|(digest, _)| !image.documents.contains(digest))
        .map(|(digest, sha)| (digest.clone(), sha.clone()))
        .collect()
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

/// Every download of a padding layer broken off, the rest asked for with a `Range` included
/// (each try gets half of what is left, so the rests are never small).
fn break_every_download(fault: BodyFault) -> ProxyBehaviour {
    ProxyBehaviour::BreakBody {
        fault,
        times: 1000,
        path_contains: "GET /v2/lambda/base-b/blobs/sha256:".into(),
        min_body: LARGE_BODY / 16,
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
                "put manifest up-503-always@sha256:",
                "503 Service Unavailable",
                "after 4 tries",
            ],
        },
    );
    // The two architectures' manifests go up side by side, each with its own four tries.
    assert_eq!(proxy.injected(), 8, "the tries are bounded");
    let proxy = bench.case(
        "up-reset-always",
        Direction::Upload,
        break_body(BodyFault::ResetUpload, 1000, "PUT /v2/up-reset-always/"),
        Expect::Refused {
            exit: 6,
            stderr: &[
                "upload blob sha256:",
                "to up-reset-always failed",
                "after 4 tries",
            ],
        },
    );
    // Base B's two padding layers go up at once, four tries each.
    assert_eq!(proxy.injected(), 8, "the tries are bounded");
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
    let partial_answers = || {
        let registry = &bench.registry;
        registry
            .requests()
            .iter()
            .filter(|entry| entry.status == 206 && entry.uri.contains("/lambda/base-b/blobs/"))
            .count()
    };
    for (repository, behaviour) in cases {
        let broken_off = matches!(behaviour, ProxyBehaviour::BreakBody { .. });
        let before = partial_answers();
        bench.case(repository, Direction::Download, behaviour, Expect::Survived);
        if broken_off {
            // The rest was asked for with a Range, and the registry sent only the rest.
            assert_eq!(partial_answers(), before + 1, "{repository}");
        }
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
        break_every_download(BodyFault::ResetDownload),
        Expect::Refused {
            exit: 6,
            stderr: &[
                "get blob sha256:",
                "of lambda/base-b failed",
                "after 4 tries",
            ],
        },
    );
    let proxy = bench.case(
        "down-stall-always",
        Direction::Download,
        break_every_download(BodyFault::StallDownload),
        Expect::Refused {
            exit: 6,
            stderr: &[
                "of lambda/base-b failed: no data for 2 s",
                "LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS",
                "after 4 tries",
            ],
        },
    );
    assert!(proxy.injected() >= 4, "every try stalled");
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

/// `lambda-image build ARGS` in `scratch`, with the short idle limit.
fn build(scratch: &Scratch, args: &[String]) -> Command {
    let mut command = scratch.build(&str_refs(args));
    command.env("LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS", IDLE_LIMIT_SECS);
    command
}
