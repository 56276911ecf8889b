//! A new layer goes up while it is compressed: `POST`, one chunked `PATCH` carrying the gzip
//! stream as it is written, then `PUT ?digest=` with no body; a registry that refuses the
//! streamed `PATCH` gets the layer in one `PUT` from the finished file and is not asked again in
//! that run; a layer from the layer cache is not streamed. Through a proxy in front of the real
//! distribution registry, which records when each request's headers arrived and how its body
//! was framed. And the layer cache, whose key is computed beside the compression (or from what
//! it remembers of a file), stores a layer only under the key of what the layer holds.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::support::proxy::{Arrival, ProxyBehaviour, TestProxy};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;
use serde_json::Value;

const BASE_REPOSITORY: &str = "lambda/base";

/// A registry holding the stand-in base at `lambda/base:al2023`.
fn registry_with_base() -> TestRegistry {
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    registry
}

/// The fixture bootstrap of `architecture` with `noise` bytes that do not compress appended: a
/// layer that takes a while to compress. Only a layer still being compressed when the registry
/// is ready is streamed (one finished before goes the way of any blob, `HEAD` first), so the
/// tests' layers are tens of MB: their compression takes ten times longer than the registry's
/// connection and the base's resolution through the proxy.
fn big_bootstrap(scratch: &Scratch, architecture: &str, noise: usize, seed: u64) -> PathBuf {
    let fixture = match architecture {
        "amd64" => &fixtures().bootstrap_amd64,
        _ => &fixtures().bootstrap_arm64,
    };
    let mut bytes = std::fs::read(fixture).unwrap();
    bytes.extend(pseudo_random_bytes(seed, noise));
    let path = scratch.path(&format!("bootstrap-{architecture}"));
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Builds `bootstraps` (`(architecture, path)`) on the base through `proxy` and pushes to `fn:TAG`
/// through it; the JSON report.
fn push_through(
    scratch: &Scratch,
    proxy: &TestProxy,
    bootstraps: &[(&str, &Path)],
    tag: &str,
) -> Value {
    let base = proxy.reference(&format!("{BASE_REPOSITORY}:{BASE_TAG}"));
    let target = proxy.reference(&format!("fn:{tag}"));
    let mut args: Vec<String> = Vec::new();
    for (architecture, path) in bootstraps {
        args.push("--bootstrap".into());
        args.push(format!("{architecture}={}", path.display()));
    }
    args.extend([
        "--base".into(),
        base,
        "--tag".into(),
        target,
        "--json".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&mut scratch.build(&args));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The `PATCH`es to upload sessions of `repository`.
fn patches<'a>(arrivals: &'a [Arrival], repository: &str) -> Vec<&'a Arrival> {
    let prefix = format!("/v2/{repository}/blobs/uploads/");
    arrivals
        .iter()
        .filter(|arrival| arrival.method == "PATCH" && arrival.target.starts_with(&prefix))
        .collect()
}

/// The `PUT`s that closed an upload to `repository` with `digest`.
fn closing_puts<'a>(arrivals: &'a [Arrival], repository: &str, digest: &str) -> Vec<&'a Arrival> {
    let prefix = format!("/v2/{repository}/blobs/uploads/");
    let digest = format!("digest=sha256%3A{}", digest.trim_start_matches("sha256:"));
    arrivals
        .iter()
        .filter(|arrival| {
            arrival.method == "PUT"
                && arrival.target.starts_with(&prefix)
                && arrival.target.contains(&digest)
        })
        .collect()
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// The new layers' digests and sizes, from the report, by architecture.
fn new_layers(report: &Value) -> Vec<(String, String, u64)> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| {
            let layer = &image["layer"];
            (
                image["architecture"].as_str().unwrap().to_owned(),
                layer["digest"].as_str().unwrap().to_owned(),
                layer["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_new_layer_is_streamed_in_one_chunked_patch_that_starts_before_its_compression_ends() {
    let registry = registry_with_base();
    let proxy = TestProxy::start(&registry.url(), ProxyBehaviour::PassThrough);
    let scratch = Scratch::new();
    let bootstrap = big_bootstrap(&scratch, "amd64", 32 << 20, 0x5717);
    let report = push_through(&scratch, &proxy, &[("amd64", &bootstrap)], "v1");
    let [(_, digest, size)] = <[_; 1]>::try_from(new_layers(&report)).unwrap();
    let arrivals = proxy.arrivals();

    let streamed = patches(&arrivals, "fn");
    assert_eq!(
        streamed.len(),
        1,
        "one PATCH for the one new layer: {arrivals:#?}"
    );
    let patch = streamed[0];
    assert!(
        patch.chunked,
        "the PATCH body has no length given: {patch:?}"
    );
    assert_eq!(
        patch.body_bytes as u64, size,
        "the whole layer in the PATCH"
    );
    assert_eq!(patch.status, 202);
    let closing = closing_puts(&arrivals, "fn", &digest);
    assert_eq!(closing.len(), 1, "{arrivals:#?}");
    assert_eq!(
        closing[0].body_bytes, 0,
        "the PUT after the PATCH carries nothing"
    );
    assert_eq!(closing[0].status, 201);

    // The layer cache's copy of the layer was last written when the compression ended; the
    // PATCH had started before that.
    let cached = scratch
        .cache()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert!(
        patch.headers_at < modified(&cached),
        "the upload started only after the layer was complete"
    );

    // And the compression had begun before the base was even asked for: the layer does not
    // depend on it (the file's birth time, kept when it moved into the cache).
    let first_base_get = arrivals
        .iter()
        .find(|arrival| arrival.method == "GET" && arrival.target.contains("/manifests/"))
        .expect("the base was read through the proxy");
    let born = std::fs::metadata(&cached).unwrap().created().unwrap();
    assert!(
        born < first_base_get.headers_at,
        "the layer was started only after the base's manifests were asked for"
    );

    // What the registry holds is the layer the report names, byte for byte.
    let copy = scratch.path("copied");
    registry.skopeo_copy_from("fn:v1", &format!("oci:{}:v1", copy.display()));
    let blob = copy
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert_eq!(
        format!("sha256:{}", sha256_hex(&std::fs::read(blob).unwrap())),
        digest
    );

    // The same inputs again: the layer comes from the cache, is not streamed, and the
    // registry, which has it, is only asked.
    let before = proxy.arrivals().len();
    push_through(&scratch, &proxy, &[("amd64", &bootstrap)], "v2");
    let again = &proxy.arrivals()[before..];
    assert!(patches(again, "fn").is_empty(), "{again:#?}");
    assert!(closing_puts(again, "fn", &digest).is_empty(), "{again:#?}");
}

/// Some registries and proxies refuse a chunked `PATCH` whose length is not given (a `411
/// Length Required`, or a `400`): the layer then goes up in one `PUT` from its finished file, and
/// the next layer is not streamed to that registry at all.
#[test]
fn a_registry_that_refuses_a_streamed_patch_gets_whole_puts_and_is_not_asked_again() {
    let registry = registry_with_base();
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Answer {
            status: 411,
            body: r#"{"errors":[{"code":"UNSUPPORTED","message":"length required"}]}"#.to_owned(),
            times: 1000,
            path_contains: "PATCH /v2/fn/blobs/uploads/".to_owned(),
        },
    );
    let scratch = Scratch::new();
    let amd64 = big_bootstrap(&scratch, "amd64", 24 << 20, 0x411a);
    let arm64 = big_bootstrap(&scratch, "arm64", 24 << 20, 0x411b);
    let report = push_through(
        &scratch,
        &proxy,
        &[("amd64", &amd64), ("arm64", &arm64)],
        "v1",
    );
    let arrivals = proxy.arrivals();
    // Both layers may have been streaming before the first refusal came back; none after it.
    let refused = patches(&arrivals, "fn");
    assert!(
        (1..=2).contains(&refused.len()),
        "the refusal was not remembered: {arrivals:#?}"
    );
    for (_, digest, size) in new_layers(&report) {
        let puts = closing_puts(&arrivals, "fn", &digest);
        assert_eq!(puts.len(), 1, "{digest}: {arrivals:#?}");
        assert!(!puts[0].chunked);
        assert_eq!(
            puts[0].body_bytes as u64, size,
            "the whole layer in one PUT"
        );
        assert_eq!(puts[0].status, 201);
    }
    assert_eq!(registry.tags("fn", None), ["v1", "v1-amd64", "v1-arm64"]);

    // The refusal is remembered for one run only: the next build offers a stream once more.
    let more = big_bootstrap(&scratch, "amd64", 24 << 20, 0x411c);
    let before = proxy.arrivals().len();
    push_through(&scratch, &proxy, &[("amd64", &more)], "v2");
    assert_eq!(patches(&proxy.arrivals()[before..], "fn").len(), 1);
}

/// A stream that fails for a reason that may pass (a 503 to the `PATCH`) is not an error: the
/// layer goes up from its file, and the registry is still offered streams.
#[test]
fn a_streamed_patch_that_fails_once_falls_back_to_the_file_without_an_error() {
    let registry = registry_with_base();
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::Fail {
            status: 503,
            times: 1,
            path_contains: "PATCH /v2/fn/blobs/uploads/".into(),
            retry_after: None,
        },
    );
    let scratch = Scratch::new();
    let bootstrap = big_bootstrap(&scratch, "arm64", 24 << 20, 0x503);
    let report = push_through(&scratch, &proxy, &[("arm64", &bootstrap)], "v1");
    assert_eq!(proxy.injected(), 1);
    let arrivals = proxy.arrivals();
    let [(_, digest, size)] = <[_; 1]>::try_from(new_layers(&report)).unwrap();
    let puts = closing_puts(&arrivals, "fn", &digest);
    assert_eq!(puts.len(), 1, "{arrivals:#?}");
    assert_eq!(puts[0].body_bytes as u64, size);
    assert_eq!(registry.tags("fn", None), ["v1"]);
}

/// ECR answers an upload's `PATCH` with `201 Created` instead of the spec's `202 Accepted`
/// (reported against other clients in dotnet/sdk-container-builds#279 and openai/tart#273, which
/// gave up on the upload). The stream is still complete: one `PATCH`, one bodiless `PUT`, the
/// layer not sent twice.
#[test]
fn a_patch_answered_201_as_ecr_does_is_a_streamed_layer_not_sent_again() {
    let registry = registry_with_base();
    let proxy = TestProxy::start(
        &registry.url(),
        ProxyBehaviour::ReplaceStatus {
            path_contains: "PATCH /v2/fn/blobs/uploads/".into(),
            status: 201,
        },
    );
    let scratch = Scratch::new();
    let bootstrap = big_bootstrap(&scratch, "amd64", 24 << 20, 0x201);
    let report = push_through(&scratch, &proxy, &[("amd64", &bootstrap)], "v1");
    assert_eq!(proxy.injected(), 1, "the one layer was streamed");
    let arrivals = proxy.arrivals();
    let [(_, digest, _)] = <[_; 1]>::try_from(new_layers(&report)).unwrap();
    let puts = closing_puts(&arrivals, "fn", &digest);
    assert_eq!(puts.len(), 1, "{arrivals:#?}");
    assert_eq!(
        puts[0].body_bytes, 0,
        "the layer went up once, in the PATCH"
    );
    assert_eq!(registry.tags("fn", None), ["v1"]);
}

/// The layer cache's key is computed beside the compression, from another read of the files or
/// from what the cache remembers of them (by inode, size and times). A file that no longer holds
/// what the key was made from, same size (rewritten in place during the build, as found by
/// trying it; or remembered wrongly, as here), must fail the build and never put one content in
/// the cache under another's key, where every later build of the first content would take it.
#[test]
fn a_file_that_does_not_hold_what_its_key_was_made_from_fails_and_poisons_nothing() {
    use std::os::unix::fs::MetadataExt;
    let scratch = Scratch::new();
    let bootstrap = big_bootstrap(&scratch, "amd64", 1 << 20, 0xbad);
    let output = scratch.path("out");
    let build = |scratch: &Scratch| {
        let args = [
            "--bootstrap".to_owned(),
            format!("amd64={}", bootstrap.display()),
            "--skip-checks".to_owned(),
            "interpreter".to_owned(),
            "--base".to_owned(),
            format!("oci:{}:{BASE_TAG}", fixtures().base_layout.display()),
            "--output".to_owned(),
            format!("oci:{}:v1", output.display()),
            "--json".to_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_unchecked(&mut scratch.build(&args))
    };
    // The cache remembers the file as holding other content (the digest of nothing).
    let metadata = std::fs::metadata(&bootstrap).unwrap();
    let remembered = scratch.cache().join("files");
    std::fs::create_dir_all(&remembered).unwrap();
    std::fs::write(
        remembered.join(format!("{}-{}", metadata.dev(), metadata.ino())),
        format!(
            "{} {}.{:09} {}.{:09} {}\n",
            metadata.size(),
            metadata.mtime(),
            metadata.mtime_nsec(),
            metadata.ctime(),
            metadata.ctime_nsec(),
            sha256_hex(b"")
        ),
    )
    .unwrap();
    let refused = build(&scratch);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    assert!(
        stderr_of(&refused).contains("changed while it was being added to the layer"),
        "{}",
        stderr_of(&refused)
    );
    let layers = scratch.cache().join("layers");
    assert!(
        !layers.exists() || std::fs::read_dir(&layers).unwrap().count() == 0,
        "a layer was stored under a key made from other content"
    );

    // What was remembered is forgotten: the next build reads the file and is right.
    let built = build(&scratch);
    assert_eq!(built.status.code(), Some(0), "{}", stderr_of(&built));
    let report: Value = serde_json::from_slice(&built.stdout).unwrap();
    let [(_, digest, _)] = <[_; 1]>::try_from(new_layers(&report)).unwrap();
    let blob = output
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let listing = Command::new("tar")
        .arg("-xzOf")
        .arg(&blob)
        .arg("var/runtime/bootstrap")
        .output()
        .unwrap();
    assert_eq!(
        sha256_hex(&listing.stdout),
        sha256_hex(&std::fs::read(&bootstrap).unwrap()),
        "the layer holds the bootstrap as it is"
    );
}
