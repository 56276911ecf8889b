//! The air-gapped workflow: `base list` shows the catalog; `base pull` copies a base from a
//! registry into a kit (OCI layout or oci-archive) with its digests intact; `base verify` checks
//! every digest and catches a damaged kit; `build --offline` builds from the kit with the same
//! digests as from the registry, refuses a registry base, and, run in a network namespace with
//! nothing but loopback, connects to nothing but the `--tag` registry.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::registry::{RegistryOptions, TestRegistry};
use support::*;

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
    let al2 = listed
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
}

#[test]
fn offline_refuses_a_registry_base_and_says_how_to_make_a_kit() {
    let dir = scratch();
    let out = dir.path().join("out");
    let output = run_unchecked(
        lambda_image()
            .args(["build", "--offline"])
            .args(both_bootstrap_args())
            .args(["--base", "provided.al2023", "--output"])
            .arg(format!("oci:{}", out.display())),
    );
    assert_eq!(output.status.code(), Some(4));
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("--offline") && stderr.contains("lambda-image base pull"),
        "{stderr}"
    );
    assert!(!out.exists());
}

/// In a network namespace holding only loopback (`unshare -n`), the offline build reads the kit
/// and pushes to a registry started in the same namespace; `strace` records every `connect`,
/// and each one goes to that registry.
#[test]
fn offline_build_in_a_namespace_without_network_connects_only_to_the_tag_registry() {
    let probe = Command::new("unshare").args(["-n", "true"]).output();
    if !probe.is_ok_and(|output| output.status.success()) {
        eprintln!("skipped: `unshare -n` is not permitted here (needs root or user namespaces)");
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

    let storage = dir.path().join("registry");
    fs::create_dir_all(&storage).unwrap();
    let port = 5000;
    fs::write(
        dir.path().join("registry.yml"),
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        ),
    )
    .unwrap();
    let bootstraps = both_bootstrap_args().join(" ");
    let trace = dir.path().join("connect.trace");
    let script = format!(
        r#"set -e
ip link set lo up
docker-registry serve {config} >{log} 2>&1 &
registry=$!
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.1; done
strace -f -qq -e trace=connect -o {trace} {binary} build --offline -q --json {bootstraps} \
    --base oci-archive:{kit}:{tag} --tag 127.0.0.1:{port}/fn:v1 --cache-dir {cache} >{report}
kill $registry
"#,
        config = dir.path().join("registry.yml").display(),
        log = dir.path().join("registry.log").display(),
        trace = trace.display(),
        binary = env!("CARGO_BIN_EXE_lambda-image"),
        kit = kit.display(),
        tag = BASE_TAG,
        cache = dir.path().join("offline-cache").display(),
        report = dir.path().join("report.json").display(),
    );
    let output = run_unchecked(Command::new("unshare").args(["-n", "bash", "-c", &script]));
    assert!(
        output.status.success(),
        "{}\nregistry log:\n{}",
        stderr_of(&output),
        fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
    );
    let report = read_json(dir.path().join("report.json"));
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
    assert!(!connects.is_empty(), "the push connected somewhere");
    for line in &connects {
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
