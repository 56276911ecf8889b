//! `--base scratch`, the built-in base with no layers: built for both architectures inside a
//! network namespace with no network and with no cache (nothing to download, nothing cached
//! for the base), reproducibly; the image holds one layer (the bootstrap 0755, `/tmp` 1777, a
//! CA bundle openssl reads as Mozilla's roots) and the Lambda config; a static C runtime (both
//! architectures, arm64 under qemu-user-static when binfmt_misc can run it) and the real
//! `lambda_runtime` echo function answer events under runc through `serve --external`; a
//! dynamically linked bootstrap or a shell script is refused with exit 3 and the fix, by
//! `build` and by `check --bootstrap --base scratch` alike.
//!
//! Reproduces, as the tool's answer to them:
//! - scratch images without CA certificates, whose HTTPS calls fail with "x509: certificate
//!   signed by unknown authority" / "failed to load system roots": harshavardhana/s3www#7,
//!   bytebase/relay#5, AcalephStorage/rudder#10; curl looking for
//!   /etc/ssl/certs/ca-certificates.crt: moparisthebest/static-curl#5;
//! - dynamically linked binaries on scratch failing with "exec user process caused: no such
//!   file or directory" (fixed by CGO_ENABLED=0): cs3org/reva#1765, ory/oathkeeper#207,
//!   stevesloka/envoy-xds-server#2.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::functions::echo_function;
use crate::support::local_lambda::{Serve, curl_post};
use crate::support::runc::{Container, cannot_run_containers, qemu_aarch64_binfmt, unpack_bundle};
use crate::support::*;
use serde_json::{Value, json};

/// A Lambda runtime in C with no library but libc's, linked statically: it asks the Runtime
/// API for each event over a plain socket and answers with what it sees of the image (the
/// machine, /tmp's mode and whether it can write there, the CA bundle's certificate count,
/// the working directory, the handler given as its argument) and the event.
const STATIC_RUNTIME_C: &str = r#"#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static char buffer[1 << 20];

/* One HTTP/1.1 exchange with Connection: close; the whole response in buffer, its length returned. */
static int exchange(const char *request, size_t length) {
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    char host[64];
    if (!api || strlen(api) >= sizeof host) exit(2);
    strcpy(host, api);
    char *colon = strchr(host, ':');
    if (!colon) exit(2);
    *colon = 0;
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons(atoi(colon + 1));
    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) exit(2);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&address, sizeof address) != 0) exit(3);
    for (size_t sent = 0; sent < length;) {
        ssize_t n = write(s, request + sent, length - sent);
        if (n <= 0) exit(3);
        sent += n;
    }
    int total = 0;
    for (ssize_t n; (n = read(s, buffer + total, sizeof buffer - 1 - total)) > 0;) total += n;
    buffer[total] = 0;
    close(s);
    return total;
}

static int count_certificates(const char *path) {
    FILE *file = path ? fopen(path, "r") : NULL;
    if (!file) return -1;
    char line[256];
    int count = 0;
    while (fgets(line, sizeof line, file))
        if (strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0) count++;
    fclose(file);
    return count;
}

int main(int argc, char **argv) {
    static char request[1 << 20], answer[1 << 19], id[128], event[1 << 18];
    for (;;) {
        const char *next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n";
        exchange(next, strlen(next));
        char *header = strcasestr(buffer, "\r\nLambda-Runtime-Aws-Request-Id:");
        char *body = strstr(buffer, "\r\n\r\n");
        if (!header || !body) return 4;
        header += strlen("\r\nLambda-Runtime-Aws-Request-Id:");
        while (*header == ' ') header++;
        size_t id_length = strcspn(header, "\r\n");
        if (id_length >= sizeof id) return 4;
        memcpy(id, header, id_length);
        id[id_length] = 0;
        snprintf(event, sizeof event, "%s", body + 4);

        struct utsname machine;
        uname(&machine);
        struct stat tmp;
        int tmp_mode = stat("/tmp", &tmp) == 0 ? (int)(tmp.st_mode & 07777) : -1;
        FILE *scribble = fopen("/tmp/written", "w");
        int tmp_writable = scribble != NULL && fputs("x", scribble) >= 0 && fclose(scribble) == 0;
        char cwd[256] = "";
        if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
        int answer_length = snprintf(answer, sizeof answer,
            "{\"machine\":\"%s\",\"tmp_mode\":\"%o\",\"tmp_writable\":%s,\"certificates\":%d,"
            "\"cwd\":\"%s\",\"argument\":\"%s\",\"event\":%s}",
            machine.machine, tmp_mode, tmp_writable ? "true" : "false",
            count_certificates(getenv("SSL_CERT_FILE")), cwd, argc > 1 ? argv[1] : "", event);
        int length = snprintf(request, sizeof request,
            "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: api\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
            id, answer_length, answer);
        exchange(request, length);
    }
}
"#;

/// The static C runtime for `architecture` (`amd64` with gcc, `arm64` with the aarch64 cross
/// compiler), built in `work`.
fn static_runtime(work: &Path, architecture: &str) -> PathBuf {
    let source = work.join("runtime.c");
    std::fs::write(&source, STATIC_RUNTIME_C).unwrap();
    let compiler = match architecture {
        "amd64" => "gcc",
        _ => "aarch64-linux-gnu-gcc",
    };
    let output = work.join(format!("runtime-{architecture}"));
    run(Command::new(compiler)
        .args(["-static", "-O2", "-o"])
        .arg(&output)
        .arg(&source));
    assert!(functions::is_static_elf(&output));
    output
}

fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("scratch-base-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Why a network namespace cannot be made here, if it cannot (`unshare -n` needs root or
/// user namespaces).
fn cannot_unshare_network() -> Option<String> {
    let output = run_unchecked(Command::new("unshare").args(["-n", "true"]));
    (!output.status.success()).then(|| {
        format!(
            "`unshare -n` is not permitted here: {}",
            stderr_of(&output).trim()
        )
    })
}

/// `lambda-image build ARGS --json` run inside a new network namespace (no interface but a
/// down loopback: no network at all), with the environment `cache` chooses.
fn build_without_network(args: &[&str], cache: &Cache) -> (Output, Value) {
    let mut command = Command::new("unshare");
    command
        .args(["-n", "--"])
        .arg(env!("CARGO_BIN_EXE_lambda-image"))
        .arg("build")
        .args(args)
        .arg("--json")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("LAMBDA_IMAGE_BASE_MIRROR");
    match cache {
        // Neither XDG_CACHE_HOME nor HOME: the tool has no cache at all.
        Cache::None => command.env("HOME", ""),
        Cache::At(directory) => command.arg("--cache-dir").arg(directory),
    };
    let output = run_unchecked(&mut command);
    let report = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output, report)
}

enum Cache {
    None,
    At(PathBuf),
}

/// The digests a build report names: the index's, then each image's.
fn digests(report: &Value) -> Vec<String> {
    let mut digests = vec![report["index"]["digest"].as_str().unwrap().to_owned()];
    for image in report["images"].as_array().unwrap() {
        digests.push(image["digest"].as_str().unwrap().to_owned());
    }
    digests
}

/// Every path under `root` (relative, sorted) with its permission bits (symlinks not followed).
fn tree_modes(root: &Path) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for item in std::fs::read_dir(&directory).unwrap() {
            let path = item.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            found.push((relative, metadata.permissions().mode() & 0o7777));
            if metadata.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The number of certificates openssl reads from the PEM bundle at `path`.
fn openssl_certificate_count(path: &Path) -> usize {
    let listed = run_stdout(
        Command::new("sh")
            .arg("-c")
            .arg("openssl crl2pkcs7 -nocrl -certfile \"$1\" | openssl pkcs7 -print_certs -noout")
            .arg("sh")
            .arg(path),
    );
    listed
        .lines()
        .filter(|line| line.starts_with("subject="))
        .count()
}

#[test]
fn scratch_builds_both_architectures_with_no_network_and_no_cache_reproducibly() {
    if let Some(reason) = cannot_unshare_network() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let amd64 = static_runtime(work.path(), "amd64");
    let arm64 = static_runtime(work.path(), "arm64");
    let build = |output: &Path, cache: &Cache| {
        let output = format!("oci:{}:fn", output.display());
        let args = [
            "--bootstrap",
            amd64.to_str().unwrap(),
            "--bootstrap",
            arm64.to_str().unwrap(),
            "--base",
            "scratch",
            "--output",
            &output,
        ];
        let (result, report) = build_without_network(&args, cache);
        assert!(
            result.status.success(),
            "a scratch build needs no network and no cache:\n{}",
            stderr_of(&result)
        );
        report
    };
    let layout = work.path().join("no-cache");
    let first = build(&layout, &Cache::None);
    let cache = work.path().join("cache-not-yet");
    let second = build(&work.path().join("fresh-cache"), &Cache::At(cache.clone()));
    assert_eq!(
        digests(&first),
        digests(&second),
        "the same image with no cache and with an empty one"
    );
    assert_eq!(
        first["base"],
        json!({"reference": "scratch", "digest": null})
    );
    // Only the new layers went into the cache: no record of a base.
    assert!(!cache.join("refs").exists(), "{:?}", file_names(&cache));

    let index = read_json(layout.join("index.json"));
    let index_blob = read_blob_json(
        &layout,
        layout_descriptor(&layout, "fn").unwrap()["digest"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(index_blob["mediaType"], MEDIA_TYPE_INDEX, "{index}");
    for (architecture, machine) in [("amd64", "x86-64"), ("arm64", "aarch64")] {
        let descriptor = layout_descriptor(&layout, &format!("fn-{architecture}")).unwrap();
        let manifest = read_blob_json(&layout, descriptor["digest"].as_str().unwrap());
        assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST, "OCI by default");
        assert_eq!(
            manifest["layers"].as_array().unwrap().len(),
            1,
            "one layer: {manifest}"
        );
        assert!(
            manifest
                .get("annotations")
                .is_none_or(|annotations| annotations
                    .as_object()
                    .unwrap()
                    .keys()
                    .all(|key| !key.starts_with("org.opencontainers.image.base."))),
            "no base to annotate: {manifest}"
        );
        let config = read_blob_json(&layout, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["architecture"], architecture);
        assert_eq!(config["os"], "linux");
        if architecture == "arm64" {
            assert_eq!(config["variant"], "v8");
        }
        assert_eq!(
            config["config"]["Entrypoint"],
            json!(["/var/runtime/bootstrap"])
        );
        assert_eq!(config["config"]["Cmd"], json!(["bootstrap"]));
        assert_eq!(config["config"]["WorkingDir"], "/var/task");
        assert_eq!(
            config["config"]["Env"],
            json!([
                "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
                "TZ=:/etc/localtime",
                "LAMBDA_TASK_ROOT=/var/task",
                "LAMBDA_RUNTIME_DIR=/var/runtime",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
            ])
        );
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(config["history"].as_array().unwrap().len(), 1);

        let bundle = work.path().join(format!("bundle-{architecture}"));
        umoci(&[
            "unpack",
            "--image",
            &format!("{}:fn-{architecture}", layout.display()),
            bundle.to_str().unwrap(),
        ]);
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            tree_modes(&rootfs),
            [
                ("etc", 0o755),
                ("etc/ssl", 0o755),
                ("etc/ssl/certs", 0o755),
                ("etc/ssl/certs/ca-certificates.crt", 0o644),
                ("tmp", 0o1777),
                ("var", 0o755),
                ("var/runtime", 0o755),
                ("var/runtime/bootstrap", 0o755),
                ("var/task", 0o755),
            ]
            .map(|(path, mode)| (path.to_owned(), mode)),
            "nothing but the bootstrap, /var/task, /tmp and the CA bundle"
        );
        let bootstrap = std::fs::read(rootfs.join("var/runtime/bootstrap")).unwrap();
        assert_eq!(
            bootstrap,
            std::fs::read(if architecture == "amd64" {
                &amd64
            } else {
                &arm64
            })
            .unwrap(),
            "{machine}"
        );
        let bundle_file = rootfs.join("etc/ssl/certs/ca-certificates.crt");
        let count = openssl_certificate_count(&bundle_file);
        assert!(count > 100, "openssl reads {count} certificates");
        let pem = std::fs::read_to_string(&bundle_file).unwrap();
        assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), count);
    }
}

/// Builds `bootstraps` on scratch into `work/layout:fn` (no network needed, so not in a
/// namespace here: runc runs on the host's), unpacks `fn-ARCH` (or `fn` for one architecture)
/// with the environment `serve` prints, and starts it under runc.
fn run_scratch_image(
    work: &Path,
    bootstrap: &Path,
    architecture: &str,
    serve: &Serve,
) -> Container {
    let layout = work.join(format!("layout-{architecture}"));
    run(lambda_image().args([
        "build",
        "--quiet",
        "--bootstrap",
        &format!("{architecture}={}", bootstrap.display()),
        "--base",
        "scratch",
        "--output",
        &format!("oci:{}:fn", layout.display()),
    ]));
    let environment: Vec<(String, String)> = serve
        .stderr()
        .lines()
        .filter_map(|line| line.strip_prefix("  ")?.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let bundle = work.join(format!("bundle-{architecture}"));
    let config = unpack_bundle(&format!("{}:fn", layout.display()), &bundle, &environment);
    assert_eq!(
        config["process"]["args"],
        json!(["/var/runtime/bootstrap", "bootstrap"]),
        "the bootstrap itself is the entrypoint: there is no shell to run a script"
    );
    assert_eq!(config["process"]["cwd"], "/var/task");
    let id = format!(
        "lambda-image-scratch-{}-{architecture}-{}",
        std::process::id(),
        work.file_name().unwrap().to_string_lossy()
    );
    Container::start(&bundle, &id)
}

/// The static C runtime answers from inside the image: /tmp is 1777 and writable, the CA bundle
/// SSL_CERT_FILE names holds Mozilla's roots, the working directory is /var/task.
fn static_runtime_answers(architecture: &str, machine: &str) {
    let work = workdir();
    let runtime = static_runtime(work.path(), architecture);
    let serve = Serve::start(&["--external", "--timeout", "20"]);
    let container = run_scratch_image(work.path(), &runtime, architecture, &serve);
    let answer = curl_post(&serve.invocations_url(), r#"{"from": "scratch"}"#);
    assert_eq!(
        answer.status,
        200,
        "{}\n--- container ---\n{}",
        serve.stderr(),
        container.log()
    );
    let answer = answer.json();
    assert_eq!(answer["machine"], machine);
    assert_eq!(answer["event"], json!({"from": "scratch"}));
    assert_eq!(answer["tmp_mode"], "1777");
    assert_eq!(answer["tmp_writable"], true);
    assert_eq!(answer["cwd"], "/var/task");
    assert_eq!(answer["argument"], "bootstrap", "the image's Cmd");
    assert!(
        answer["certificates"].as_i64().unwrap() > 100,
        "SSL_CERT_FILE names the bundle: {answer}"
    );
    let again = curl_post(&serve.invocations_url(), r#"{"from": "scratch, again"}"#).json();
    assert_eq!(again["event"], json!({"from": "scratch, again"}));
    drop(container);
    assert!(serve.stop().success());
}

#[test]
fn a_static_c_runtime_answers_under_runc_on_amd64() {
    if let Some(reason) = cannot_run_containers() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the amd64 image is run on x86_64 hosts only");
        return;
    }
    static_runtime_answers("amd64", "x86_64");
}

#[test]
fn a_static_c_runtime_answers_under_runc_on_arm64_under_qemu() {
    if let Some(reason) = cannot_run_containers() {
        eprintln!("skipped: {reason}");
        return;
    }
    if let Err(reason) = qemu_aarch64_binfmt() {
        eprintln!("skipped: cannot run arm64 code here: {reason}");
        return;
    }
    static_runtime_answers("arm64", "aarch64");
}

/// The real `lambda_runtime` function (Rust, linked statically) runs on scratch.
#[test]
fn the_lambda_runtime_echo_function_answers_under_runc() {
    if let Some(reason) = cannot_run_containers() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the amd64 image is run on x86_64 hosts only");
        return;
    }
    let work = workdir();
    let serve = Serve::start(&["--external", "--timeout", "10"]);
    let container = run_scratch_image(work.path(), echo_function(), "amd64", &serve);
    let answer = curl_post(&serve.invocations_url(), r#"{"from": "lambda_runtime"}"#);
    assert_eq!(
        answer.status,
        200,
        "{}\n--- container ---\n{}",
        serve.stderr(),
        container.log()
    );
    let answer = answer.json();
    assert_eq!(answer["echo"], json!({"from": "lambda_runtime"}));
    assert_eq!(answer["function"], "test_function");
    assert_eq!(answer["environment"]["LAMBDA_TASK_ROOT"], "/var/task");
    drop(container);
    assert!(serve.stop().success());
}

/// A dynamically linked bootstrap and a `#!/bin/sh` script are refused (exit 3) with the fix,
/// by `build` (before anything is written) and by `check --bootstrap --base scratch`.
#[test]
fn dynamic_bootstraps_and_scripts_are_refused_with_the_fix() {
    let work = workdir();
    let dynamic = dynamic_bootstrap(work.path());
    let output = work.path().join("out");
    let built = run_unchecked(lambda_image().args([
        "build",
        "--bootstrap",
        dynamic.to_str().unwrap(),
        "--base",
        "scratch",
        "--output",
        &format!("oci:{}:fn", output.display()),
    ]));
    assert_eq!(built.status.code(), Some(3), "{}", stderr_of(&built));
    let stderr = stderr_of(&built);
    assert!(stderr.contains("no C library"), "{stderr}");
    assert!(stderr.contains("link it statically"), "{stderr}");
    assert!(stderr.contains("CGO_ENABLED=0"), "{stderr}");
    assert!(stderr.contains("x86_64-unknown-linux-musl"), "{stderr}");
    assert!(stderr.contains("+crt-static"), "{stderr}");
    assert!(!output.exists(), "nothing written");

    let checked = run_unchecked(lambda_image().args([
        "check",
        "--bootstrap",
        dynamic.to_str().unwrap(),
        "--base",
        "scratch",
    ]));
    assert_eq!(checked.status.code(), Some(3), "{}", stderr_of(&checked));
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(report.contains("error[glibc]"), "{report}");
    assert!(report.contains("link it statically"), "{report}");

    let script = fixtures().script_bootstrap.display().to_string();
    let refused = run_unchecked(lambda_image().args([
        "build",
        "--bootstrap",
        &format!("amd64={script}"),
        "--base",
        "scratch",
        "--output",
        &format!("oci:{}:fn", output.display()),
    ]));
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    assert!(
        stderr_of(&refused).contains("no shell"),
        "{}",
        stderr_of(&refused)
    );
    assert!(!output.exists(), "nothing written");
    let refused = run_unchecked(lambda_image().args([
        "check",
        "--bootstrap",
        &format!("amd64={script}"),
        "--base",
        "scratch",
    ]));
    assert_eq!(refused.status.code(), Some(3), "{}", stderr_of(&refused));
    let report = String::from_utf8_lossy(&refused.stdout);
    assert!(report.contains("/bin/sh"), "{report}");
    assert!(report.contains("no shell"), "{report}");

    // A static one passes the same check.
    let fine = run_unchecked(lambda_image().args([
        "check",
        "--bootstrap",
        fixtures().bootstrap_amd64.to_str().unwrap(),
        "--base",
        "scratch",
    ]));
    assert!(fine.status.success(), "{}", stderr_of(&fine));
}

/// `scratch` takes no tag or digest (usage, exit 2); `base list` shows it; `base pull` has
/// nothing to pull.
#[test]
fn scratch_is_in_the_catalog_and_takes_no_tag_or_digest() {
    for base in [
        "scratch:latest".to_owned(),
        format!("scratch@sha256:{}", "a".repeat(64)),
    ] {
        let refused = run_unchecked(lambda_image().args([
            "build",
            "--bootstrap",
            fixtures().bootstrap_amd64.to_str().unwrap(),
            "--base",
            &base,
        ]));
        assert_eq!(refused.status.code(), Some(2), "{}", stderr_of(&refused));
        assert!(stderr_of(&refused).contains("built into lambda-image"));
    }
    let (listed, catalog) = lambda_image_json(&["base", "list", "--json"]);
    assert!(listed.status.success());
    let scratch = catalog["bases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|base| base["name"] == "scratch")
        .expect("base list shows scratch");
    assert_eq!(scratch["kind"], "built-in");
    assert_eq!(scratch["glibc"], Value::Null);
    let pulled = run_unchecked(lambda_image().args(["base", "pull", "scratch"]));
    assert_eq!(pulled.status.code(), Some(2), "{}", stderr_of(&pulled));
    assert!(stderr_of(&pulled).contains("nothing to pull"));
    // Flags about a base's glibc or registry mean something else was meant (found by trying it).
    for (flag, value) in [("--base-glibc", "2.34"), ("--base-creds", "user:secret")] {
        let refused = run_unchecked(lambda_image().args([
            "build",
            "--bootstrap",
            fixtures().bootstrap_amd64.to_str().unwrap(),
            "--base",
            "scratch",
            flag,
            value,
            "--output",
            "oci:/nonexistent-dir-for-this-test/out:fn",
        ]));
        let stderr = stderr_of(&refused);
        assert_eq!(refused.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{flag} does not apply to --base scratch")),
            "{stderr}"
        );
        assert!(!stderr.contains("secret"), "{stderr}");
    }
}

/// `lambda-image ARGS` under `timeout 120`, so that a hang fails the test (exit 124) instead of
/// the suite.
fn within_timeout(args: &[&str], configure: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new("timeout");
    command
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_lambda-image"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH");
    configure(&mut command);
    run_unchecked(&mut command)
}

#[test]
fn a_cache_that_cannot_be_written_is_no_cache_by_default_and_an_error_when_named() {
    // Found by trying it: `nobody` in a CI container has HOME=/nonexistent, and a build there
    // waited forever for a layer writer that had failed before it started.
    let fixtures = fixtures();
    let work = workdir();
    let bootstrap = fixtures.bootstrap_amd64.display().to_string();
    // As `nobody` (uid 65534), who may write only where the test lets it: the output's
    // directory. Root could make any HOME, so the default cache would not fail for it.
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = work.path().join("no-such-home");
    let out = shared.join("out");
    let output = format!("oci:{}:fn", out.display());
    let as_nobody = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "true",
        ])
        .status()
        .is_ok_and(|status| status.success());
    if as_nobody {
        let mut command = Command::new("setpriv");
        command
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "timeout",
                "120",
            ])
            .arg(env!("CARGO_BIN_EXE_lambda-image"))
            .args([
                "build",
                "-q",
                "--bootstrap",
                &bootstrap,
                "--base",
                "scratch",
                "--output",
                &output,
            ])
            .current_dir(&shared)
            .env("HOME", &home)
            .env_remove("XDG_CACHE_HOME")
            .env_remove("SOURCE_DATE_EPOCH");
        let built = run_unchecked(&mut command);
        assert!(built.status.success(), "{}", stderr_of(&built));
        assert!(out.join("index.json").exists());
        assert!(!home.exists(), "no cache was made");
    } else {
        eprintln!("skipped the default-cache half: setpriv cannot run a command as nobody here");
    }

    let not_a_directory = work.path().join("a-file");
    std::fs::write(&not_a_directory, b"x").unwrap();
    let cache = not_a_directory.join("cache");
    let second = work.path().join("second");
    let refused = within_timeout(
        &[
            "build",
            "-q",
            "--bootstrap",
            &bootstrap,
            "--base",
            "scratch",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--output",
            &format!("oci:{}:fn", second.display()),
        ],
        |_| {},
    );
    let stderr = stderr_of(&refused);
    assert_eq!(
        refused.status.code(),
        Some(5),
        "an output error, not a hang: {stderr}"
    );
    assert!(
        stderr.contains("cannot use the cache directory"),
        "{stderr}"
    );
    assert!(!second.exists(), "nothing written");
}

#[test]
fn a_dynamic_bootstrap_with_its_loader_needs_its_libraries_too_except_musls_own() {
    // Found by trying it: with glibc's loader `--include`d, a dynamic bootstrap built and then
    // failed at start ("libc.so.6: cannot open shared object file"): scratch has no
    // /etc/ld.so.cache and no LD_LIBRARY_PATH, so a library in no default directory is certain
    // to be missing. musl's loader is its libc, so a musl bootstrap with its loader is whole.
    let work = workdir();
    let source = work.path().join("bootstrap.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n",
    )
    .unwrap();
    let glibc = work.path().join("glibc-dynamic");
    run(Command::new("gcc").arg("-o").arg(&glibc).arg(&source));
    let out = work.path().join("out");
    let refused = run_unchecked(lambda_image().args([
        "build",
        "-q",
        "--bootstrap",
        glibc.to_str().unwrap(),
        "--base",
        "scratch",
        "--include",
        "/lib64/ld-linux-x86-64.so.2:/lib64/ld-linux-x86-64.so.2",
        "--output",
        &format!("oci:{}:fn", out.display()),
    ]));
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("libc.so.6"), "{stderr}");
    assert!(
        stderr.contains("--env LD_LIBRARY_PATH=/var/task/lib"),
        "{stderr}"
    );
    assert!(!out.exists());

    let musl = work.path().join("musl-dynamic");
    run(Command::new("musl-gcc").arg("-o").arg(&musl).arg(&source));
    let built = run_unchecked(lambda_image().args([
        "build",
        "-q",
        "--bootstrap",
        musl.to_str().unwrap(),
        "--base",
        "scratch",
        "--include",
        "/lib/x86_64-linux-musl/libc.so:/lib/ld-musl-x86_64.so.1",
        "--output",
        &format!("oci:{}:fn", out.display()),
    ]));
    let stderr = stderr_of(&built);
    assert!(built.status.success(), "{stderr}");
    assert!(
        !stderr.contains("libraries"),
        "no warning about libc.so: {stderr}"
    );
}
