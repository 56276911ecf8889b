//! Faults away from the network: outputs (OCI layout, oci-archive, docker-archive) whose
//! writing is killed with SIGKILL mid-way leave nothing at the destination name and an existing
//! layout's `index.json` as it was; a cache entry corrupted on disk (a flipped byte, a cut) is
//! dropped, fetched again and the build succeeds, and a download killed mid-blob leaves no
//! partial blob in it; four builds at once, sharing a base and a
//! cache, all push complete images. Registry faults: `tests/it/faults.rs`.

use std::path::Path;
use std::process::Command;

use crate::support::body_faults::BodyFault;
use crate::support::builds::{
    BUILD_DEADLINE, Running, assert_cache_is_whole, copied_blobs, run_build, spawn_build, str_refs,
};
use crate::support::proxy::{ProxyBehaviour, TestProxy};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;

const BASE_A: &str = "lambda/base";

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
    assert_cache_is_whole(&cached);
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
        std::thread::sleep(std::time::Duration::from_millis(1));
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

#[test]
fn a_download_killed_mid_blob_leaves_nothing_in_the_cache_that_a_later_run_would_trust() {
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_A}:{BASE_TAG}"));
    // Half of one padding layer arrives, then nothing: the build sits mid-blob until killed.
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::BreakBody {
            fault: BodyFault::StallDownload,
            times: 1,
            path_contains: format!("GET /v2/{BASE_A}/blobs/sha256:"),
            min_body: 2 << 20,
        },
    );
    let scratch = Scratch::new();
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        proxy.reference(&format!("{BASE_A}:{BASE_TAG}")),
        "--output".into(),
        format!("oci:{}:v1", scratch.path("layout").display()),
    ]);
    let mut command = scratch.build(&str_refs(&args));
    command.env("LAMBDA_IMAGE_BLOB_IDLE_TIMEOUT_SECS", "600");
    let mut build = spawn_build(&mut command);
    while proxy.injected() == 0 {
        assert!(
            build.started.elapsed() < BUILD_DEADLINE,
            "no download stalled"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Let the half that was sent reach the cache's temporary file.
    std::thread::sleep(std::time::Duration::from_millis(500));
    build.child.kill().unwrap();
    build.finish();
    let stalled = proxy
        .requests()
        .into_iter()
        .find(|(_, _, status)| *status == 0)
        .map(|(_, target, _)| target.rsplit_once("sha256:").unwrap().1.to_owned())
        .expect("the stalled request is recorded");
    let cached = scratch.cache().join("blobs/sha256");
    assert!(!cached.join(&stalled).exists(), "a partial blob was cached");
    assert_cache_is_whole(&cached);
    assert!(!scratch.path("layout").exists());

    // The next run (the proxy now passes everything) fetches it whole and succeeds.
    run_build(&mut scratch.build(&str_refs(&args)));
    assert_eq!(sha256_file(cached.join(&stalled)), stalled);
    skopeo(&[
        "inspect",
        &format!("oci:{}:v1-amd64", scratch.path("layout").display()),
    ]);
}
