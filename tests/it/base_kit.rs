//! The air-gapped workflow: `base list` shows the catalog; `base pull` copies a base from a
//! registry into a kit (OCI layout or oci-archive) with its digests intact; `base verify` checks
//! every digest and catches a damaged kit; `build --offline` builds from the kit with the same
//! digests as from the registry, and, run in a network namespace with nothing but loopback,
//! connects to nothing but the `--tag` registry.
//!
//! The cache is a base source too: after an online build, `build --offline` takes the same
//! registry base from the cache (the registry stopped, or out of reach in a namespace) to the same
//! bytes; an empty cache, a missing blob or a damaged one fail before anything is written.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::*;
use serde_json::Value;

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("base-kit-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn registry_with_base() -> TestRegistry {
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("lambda/base:{BASE_TAG}"));
    registry
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", stderr_of(output)))
}

/// `build --json` of both fixture bootstraps with `args`.
fn build(cache: &Path, args: &[&str]) -> Value {
    let mut command = lambda_image();
    command
        .args(["build", "--json", "-q", "--cache-dir"])
        .arg(cache)
        .args(both_bootstrap_args())
        .args(args);
    json(&run(&mut command))
}

#[test]
fn base_list_shows_the_catalog() {
    let text = run_stdout(lambda_image().args(["base", "list"]));
    assert!(
        text.contains("provided.al2023") && text.contains("glibc 2.34"),
        "{text}"
    );
    assert!(
        text.contains("provided.al2 ") && text.contains("glibc 2.26"),
        "{text}"
    );
    let listed = json(&run(lambda_image().args(["base", "list", "--json"])));
    let al2 = listed["bases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|base| base["name"] == "provided.al2")
        .unwrap();
    assert_eq!(al2["reference"], "public.ecr.aws/lambda/provided:al2");
    assert_eq!(al2["config"]["Entrypoint"][0], "/lambda-entrypoint.sh");
    assert!(al2["architectures"]["arm64"].is_string());
}

#[test]
fn a_kit_keeps_the_digests_verifies_and_builds_offline_like_the_registry() {
    let registry = registry_with_base();
    let dir = scratch();
    let cache = dir.path().join("cache");
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let kit = format!("oci-archive:{}", dir.path().join("kit.tar").display());
    run(lambda_image()
        .args(["base", "pull", &base, "-q", "--output", &kit, "--cache-dir"])
        .arg(&cache));

    // The kit's index is the registry's, byte for byte, and skopeo reads it.
    let from_registry = registry.skopeo_inspect_raw(&format!("lambda/base:{BASE_TAG}"));
    let from_kit = skopeo(&["inspect", "--raw", &format!("{kit}:{BASE_TAG}")]);
    assert_eq!(
        sha256_hex(from_kit.as_bytes()),
        sha256_hex(from_registry.as_bytes())
    );

    let verified = json(&run(lambda_image().args(["base", "verify", "--json", &kit])));
    assert_eq!(verified["verified"]["images"], 2, "{verified}");
    assert_eq!(
        verified["tags"].as_array().unwrap().len(),
        3,
        "the index and each architecture"
    );

    // Built offline from the kit (an empty cache: nothing else to draw on) = built from the registry.
    let offline_out = format!("oci:{}:v1", dir.path().join("offline").display());
    let offline = build(
        &dir.path().join("offline-cache"),
        &[
            "--offline",
            "--base",
            &format!("{kit}:{BASE_TAG}"),
            "--output",
            &offline_out,
        ],
    );
    let online_out = format!("oci:{}:v1", dir.path().join("online").display());
    let online = build(&cache, &["--base", &base, "--output", &online_out]);
    assert_eq!(
        offline["images"][0]["digest"],
        online["images"][0]["digest"]
    );
    assert_eq!(
        offline["images"][1]["digest"],
        online["images"][1]["digest"]
    );
    assert_eq!(offline["index"]["digest"], online["index"]["digest"]);
}

#[test]
fn a_damaged_kit_fails_verification_and_one_architecture_can_be_kept() {
    let registry = registry_with_base();
    let dir = scratch();
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let kit = dir.path().join("kit");
    run(lambda_image()
        .args(["base", "pull", &base, "-q", "--arch", "arm64", "--output"])
        .arg(format!("oci:{}", kit.display()))
        .arg("--cache-dir")
        .arg(dir.path().join("cache")));
    let tags = run_stdout(lambda_image().args(["base", "verify"]).arg(&kit));
    // One architecture: no index; TAG and TAG-arm64 both name the manifest, kept byte for byte.
    assert!(
        tags.contains("every digest verifies (2 tags, 1 images"),
        "{tags}"
    );
    let index = read_json(kit.join("index.json"));
    for entry in index["manifests"].as_array().unwrap() {
        assert_eq!(
            entry["digest"].as_str().unwrap(),
            fixtures().base_manifests["arm64"]
        );
    }

    // Flip one byte of the largest layer.
    let largest = fs::read_dir(kit.join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .max_by_key(|path| fs::metadata(path).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&largest).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&largest, &bytes).unwrap();
    let output = run_unchecked(lambda_image().args(["base", "verify"]).arg(&kit));
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));
    let name = largest.file_name().unwrap().to_str().unwrap();
    assert!(stderr_of(&output).contains(name), "{}", stderr_of(&output));
    assert!(output.stdout.is_empty());
    // The way to make it again names the base it was pulled from and the kit's own place,
    // in verify and in a build from it alike.
    let again = format!("hint: the kit oci:{}", kit.display());
    let remake = format!(
        "make it again with `lambda-image base pull {base} --output oci:{}` on a machine with network",
        kit.display()
    );
    let built = run_unchecked(
        lambda_image()
            .args(["build", "-q", "--bootstrap"])
            .arg(&fixtures().bootstrap_arm64)
            .args(["--base", &format!("oci:{}", kit.display()), "--output"])
            .arg(format!("oci:{}", dir.path().join("from-damaged").display())),
    );
    for output in [&output, &built] {
        let stderr = stderr_of(output);
        assert_eq!(output.status.code(), Some(4), "{stderr}");
        assert!(
            stderr.contains(&again) && stderr.contains(&remake),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("from-damaged").exists());
}

/// Whether `unshare -n` may be used here (root or user namespaces).
fn network_namespaces_allowed() -> bool {
    let probe = Command::new("unshare").args(["-n", "true"]).output();
    let allowed = probe.is_ok_and(|output| output.status.success());
    if !allowed {
        eprintln!("skipped: `unshare -n` is not permitted here (needs root or user namespaces)");
    }
    allowed
}

/// Runs `build --offline --base BASE --tag 127.0.0.1:PORT/fn:v1` under `strace -e connect` in a
/// network namespace holding only loopback (`unshare -n`), with a registry started inside it on
/// `port`; returns the build's report and every `connect` it made. `base` may be a kit or a
/// registry reference served from `cache`.
fn offline_build_in_a_namespace(
    dir: &Path,
    base: &str,
    cache: &Path,
    port: u16,
) -> (Value, Vec<String>) {
    let storage = dir.join("registry");
    fs::create_dir_all(&storage).unwrap();
    fs::write(
        dir.join("registry.yml"),
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        ),
    )
    .unwrap();
    let bootstraps = both_bootstrap_args().join(" ");
    let trace = dir.join("connect.trace");
    let script = format!(
        r#"set -e
ip link set lo up
docker-registry serve {config} >{log} 2>&1 &
registry=$!
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.1; done
strace -f -qq -e trace=connect -o {trace} {binary} build --offline -q --json {bootstraps} \
    --base {base} --tag 127.0.0.1:{port}/fn:v1 --cache-dir {cache} >{report}
kill $registry
"#,
        config = dir.join("registry.yml").display(),
        log = dir.join("registry.log").display(),
        trace = trace.display(),
        binary = env!("CARGO_BIN_EXE_lambda-image"),
        cache = cache.display(),
        report = dir.join("report.json").display(),
    );
    let output = run_unchecked(Command::new("unshare").args(["-n", "bash", "-c", &script]));
    assert!(
        output.status.success(),
        "{}\nregistry log:\n{}",
        stderr_of(&output),
        fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
    );
    let report = read_json(dir.join("report.json"));
    assert!(
        report["index"]["reference"]
            .as_str()
            .unwrap()
            .ends_with("/fn:v1")
    );
    let connects: Vec<String> = fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|line| line.contains("connect("))
        .map(str::to_owned)
        .collect();
    (report, connects)
}

/// Every `connect` went to the registry on 127.0.0.1:`port` (or was a local socket).
fn assert_only_connects_to(connects: &[String], port: u16) {
    assert!(!connects.is_empty(), "the push connected somewhere");
    for line in connects {
        let to_registry = line.contains("sin_addr=inet_addr(\"127.0.0.1\")")
            && line.contains(&format!("sin_port=htons({port})"));
        // Local sockets (e.g. nscd lookups) are not network connections.
        let local_socket = line.contains("AF_UNIX");
        assert!(
            to_registry || local_socket,
            "a connection other than the --tag registry: {line}"
        );
    }
}

/// In a network namespace holding only loopback (`unshare -n`), the offline build reads the kit
/// and pushes to a registry started in the same namespace; `strace` records every `connect`,
/// and each one goes to that registry.
#[test]
fn offline_build_in_a_namespace_without_network_connects_only_to_the_tag_registry() {
    if !network_namespaces_allowed() {
        return;
    }
    let dir = scratch();
    let kit = dir.path().join("kit.tar");
    // The kit comes from the fixture layout; it could as well come from a registry elsewhere.
    run(lambda_image()
        .args(["base", "pull", &base_reference(), "-q", "--output"])
        .arg(format!("oci-archive:{}:{BASE_TAG}", kit.display()))
        .arg("--cache-dir")
        .arg(dir.path().join("cache")));
    let port = 5000;
    let (_, connects) = offline_build_in_a_namespace(
        dir.path(),
        &format!("oci-archive:{}:{BASE_TAG}", kit.display()),
        &dir.path().join("offline-cache"),
        port,
    );
    assert_only_connects_to(&connects, port);
}

/// An online build from a registry base with a fresh cache, for the offline tests: the registry
/// (still running), the base's reference, the cache and the build's report. The build writes
/// `oci:DIR/online:v1`.
fn online_build_filling_a_cache(dir: &Path) -> (TestRegistry, String, std::path::PathBuf, Value) {
    let registry = registry_with_base();
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let cache = dir.join("cache");
    let online_out = format!("oci:{}:v1", dir.join("online").display());
    let online = build(&cache, &["--base", &base, "--output", &online_out]);
    (registry, base, cache, online)
}

/// Every file of an OCI layout, by path, with its sha256.
fn layout_files(layout: &Path) -> std::collections::BTreeMap<String, String> {
    let mut files = std::collections::BTreeMap::new();
    for name in ["oci-layout", "index.json"] {
        files.insert(name.to_owned(), sha256_file(layout.join(name)));
    }
    for name in file_names(&layout.join("blobs/sha256")) {
        files.insert(
            format!("blobs/sha256/{name}"),
            sha256_file(layout.join("blobs/sha256").join(&name)),
        );
    }
    files
}

#[test]
fn offline_takes_a_registry_base_from_the_cache_to_the_same_bytes_as_online() {
    let dir = scratch();
    let (registry, base, cache, online) = online_build_filling_a_cache(dir.path());
    // The tag's record, beside the blobs.
    let record = read_json(
        cache
            .join("refs")
            .join(registry.host())
            .join(format!("lambda/base/_tags/{BASE_TAG}")),
    );
    assert_eq!(record["digest"], fixtures().base_digest);
    let base_by_digest = registry.reference(&format!("lambda/base@{}", fixtures().base_digest));
    // The manifests name the base as given (`org.opencontainers.image.base.name`), so a build
    // from the digest is compared with an online build from the digest.
    let online_by_digest = build(
        &cache,
        &[
            "--base",
            &base_by_digest,
            "--output",
            &format!("oci:{}:v1", dir.path().join("pinned").display()),
        ],
    );
    // Nothing can be fetched from here on.
    drop(registry);

    for (name, reference, online, online_dir) in [
        ("by-tag", &base, &online, "online"),
        ("by-digest", &base_by_digest, &online_by_digest, "pinned"),
    ] {
        let out = dir.path().join(name);
        let offline = build(
            &cache,
            &[
                "--offline",
                "--base",
                reference,
                "--output",
                &format!("oci:{}:v1", out.display()),
            ],
        );
        assert_eq!(offline["images"], {
            let mut images = online["images"].clone();
            for image in images.as_array_mut().unwrap() {
                let reference = image["reference"]
                    .as_str()
                    .unwrap()
                    .replace(online_dir, name);
                image["reference"] = reference.clone().into();
                image["references"] = serde_json::json!([reference]);
                // The new layers come from the layer cache the online build filled.
                image["layer"]["cached"] = true.into();
            }
            images
        });
        assert_eq!(offline["index"]["digest"], online["index"]["digest"]);
        assert_eq!(offline["base"]["digest"], fixtures().base_digest);
        assert_eq!(offline["base"]["reference"], reference.as_str());
        // Byte for byte the same layout: index.json, manifests, configs, every layer.
        assert_eq!(
            layout_files(&out),
            layout_files(&dir.path().join(online_dir)),
            "{name}"
        );
    }
}

/// The same offline build from the cache, run where the base's registry cannot be reached (a
/// network namespace with only loopback), pushes the base's layers from the cache to a registry
/// inside the namespace, and `strace` shows no `connect` to anything else.
#[test]
fn offline_build_from_the_cache_in_a_namespace_connects_only_to_the_tag_registry() {
    if !network_namespaces_allowed() {
        return;
    }
    let dir = scratch();
    let (registry, base, cache, online) = online_build_filling_a_cache(dir.path());
    // Inside the namespace the base's registry port is closed; the tag registry takes another.
    let port = if registry.port() == 5000 { 5001 } else { 5000 };
    let requests_online = registry.requests().len();
    let (pushed, connects) = offline_build_in_a_namespace(dir.path(), &base, &cache, port);
    assert_only_connects_to(&connects, port);
    assert_eq!(pushed["index"]["digest"], online["index"]["digest"]);
    assert_eq!(
        report_image_digest(&pushed, "amd64"),
        report_image_digest(&online, "amd64")
    );
    assert_eq!(
        report_image_digest(&pushed, "arm64"),
        report_image_digest(&online, "arm64")
    );
    // Every base layer went up to the namespace's registry (from the cache: there was no other
    // source), and the base's registry was never asked for anything.
    let storage = dir.path().join("registry/docker/registry/v2/blobs/sha256");
    for layer in fixtures().base_layer_digests.values().flatten() {
        let hex = layer.strip_prefix("sha256:").unwrap();
        assert!(
            storage.join(&hex[..2]).join(hex).join("data").is_file(),
            "base layer {layer} was not pushed"
        );
    }
    assert_eq!(registry.requests().len(), requests_online);
}

/// A build whose base cannot be had offline: exit 4, the reason and the way out on stderr, and
/// nothing written (nor any registry contacted: the `--tag` registry does not exist).
fn assert_offline_build_fails(cache: &Path, base: &str, out: &Path, expected: &[&str]) {
    let output = run_unchecked(
        lambda_image()
            .args(["build", "--offline", "-q", "--cache-dir"])
            .arg(cache)
            .args(both_bootstrap_args())
            .args(["--base", base, "--tag", "127.0.0.1:9/fn:v1", "--output"])
            .arg(format!("oci:{}:v1", out.display())),
    );
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "no `{text}` in:\n{stderr}");
    }
    assert!(
        !stderr.contains("panicked"),
        "the failure is an error, not a panic: {stderr}"
    );
    assert!(output.stdout.is_empty());
    assert!(!out.exists(), "output was written");
}

#[test]
fn offline_with_an_empty_cache_names_the_missing_base_and_how_to_make_a_kit() {
    let dir = scratch();
    let cache = dir.path().join("empty-cache");
    assert_offline_build_fails(
        &cache,
        "provided.al2023",
        &dir.path().join("out"),
        &[
            "base public.ecr.aws/lambda/provided:al2023 (--offline, from the cache",
            "no record of which image the tag `al2023` names",
            "hint: with network, run `lambda-image base pull public.ecr.aws/lambda/provided:al2023 --cache-dir",
            "lambda-image base pull public.ecr.aws/lambda/provided:al2023 --output oci:DIR",
            "build with --base oci:DIR",
        ],
    );
    // By digest there is no record to miss: the index itself is.
    let digest = fixtures().base_digest.clone();
    assert_offline_build_fails(
        &cache,
        &format!("127.0.0.1:9/lambda/base@{digest}"),
        &dir.path().join("out"),
        &[&format!(
            "the index or manifest {digest} is not in the cache"
        )],
    );
}

#[test]
fn offline_with_a_damaged_or_missing_cached_blob_fails_naming_it() {
    let dir = scratch();
    let (registry, base, cache, _) = online_build_filling_a_cache(dir.path());
    drop(registry);
    let blobs = cache.join("blobs/sha256");

    // Flip one byte of the largest cached blob (a base layer).
    let largest = fs::read_dir(&blobs)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .max_by_key(|path| fs::metadata(path).unwrap().len())
        .unwrap();
    let name = largest.file_name().unwrap().to_str().unwrap().to_owned();
    let mut bytes = fs::read(&largest).unwrap();
    bytes[1000] ^= 0xff;
    fs::write(&largest, &bytes).unwrap();
    assert_offline_build_fails(
        &cache,
        &base,
        &dir.path().join("out"),
        &[
            &format!("layer sha256:{name}"),
            "is damaged",
            &format!("hint: with network, run `lambda-image base pull {base} --cache-dir"),
        ],
    );

    bytes[1000] ^= 0xff;
    fs::write(&largest, &bytes).unwrap();

    // A config that is gone.
    let config = fixtures().base_configs["arm64"].clone();
    let config_path = blobs.join(config.strip_prefix("sha256:").unwrap());
    let config_bytes = fs::read(&config_path).unwrap();
    fs::remove_file(&config_path).unwrap();
    assert_offline_build_fails(
        &cache,
        &base,
        &dir.path().join("out"),
        &[
            &format!("the config {config} is not in the cache"),
            &format!("hint: with network, run `lambda-image base pull {base} --cache-dir"),
        ],
    );
    fs::write(&config_path, config_bytes).unwrap();

    // A layer that is gone (as when the online build only mounted it): `base pull` caches it.
    fs::remove_file(&largest).unwrap();
    assert_offline_build_fails(
        &cache,
        &base,
        &dir.path().join("out"),
        &[
            &format!("layer sha256:{name} is not in the cache"),
            "not those a push mounted or found already in the registry",
            &format!("run `lambda-image base pull {base}"),
        ],
    );
}

/// `base pull REF` without `--output` fills the cache with the whole base, so an offline build
/// can use it even when no earlier build read the layers (a push that only mounted them). A
/// local base has nothing to cache and needs `--output`.
#[test]
fn base_pull_without_output_fills_the_cache_for_offline_builds() {
    let dir = scratch();
    let registry = registry_with_base();
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let cache = dir.path().join("cache");
    let mut pull = lambda_image();
    pull.args(["base", "pull", &base, "-q", "--cache-dir"])
        .arg(&cache);
    let pulled = run(&mut pull);
    // The report on stdout; the advice (also with -q, which silences only progress) on stderr.
    let (text, advice) = (String::from_utf8_lossy(&pulled.stdout), stderr_of(&pulled));
    assert!(
        advice.contains("cached in") && advice.contains("--offline"),
        "{advice}"
    );
    assert!(
        !text.contains("cached in") && text.contains("amd64  sha256:"),
        "{text}"
    );
    drop(registry);

    let out = dir.path().join("offline");
    let offline = build(
        &cache,
        &[
            "--offline",
            "--base",
            &base,
            "--output",
            &format!("oci:{}:v1", out.display()),
        ],
    );
    assert_eq!(offline["base"]["digest"], fixtures().base_digest);
    for layer in fixtures().base_layer_digests.values().flatten() {
        assert!(
            blob_path(&out, layer).is_file(),
            "base layer {layer} missing"
        );
    }

    let local = run_unchecked(
        lambda_image()
            .args(["base", "pull", &base_reference(), "--cache-dir"])
            .arg(&cache),
    );
    assert_eq!(local.status.code(), Some(2), "{}", stderr_of(&local));
    assert!(stderr_of(&local).contains("a local base needs --output"));
    assert!(local.stdout.is_empty());
}
