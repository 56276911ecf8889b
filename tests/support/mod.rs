//! Shared support code for the integration tests (each test file does `mod support;`).
//!
//! It provides:
//!
//! * [`fixtures()`]: test inputs generated once per test process under
//!   `$CARGO_TARGET_TMPDIR/fixtures-<pid>/`, most importantly an OCI image layout that
//!   stands in for `public.ecr.aws/lambda/provided:al2023` (an image index with a
//!   linux/amd64 and a linux/arm64/v8 manifest, built from busybox-static, a padding layer
//!   and a hand-written copy of `/lambda-entrypoint.sh`), plus small static `bootstrap`
//!   executables for both architectures and a shell-script bootstrap.
//!   Everything in the base layout is byte-for-byte deterministic.
//! * Helpers to run external tools ([`run`], [`skopeo`], [`umoci`]) and the binary under
//!   test ([`lambda_image`]), panicking with the full command line and stderr on failure.
//! * Digest helpers ([`sha256_hex`], [`sha256_file`], [`gunzip_sha256`], [`read_blob`]).
//! * [`registry`]: the real distribution registry on a loopback port (anonymous, htpasswd,
//!   token auth with the in-process token server of [`token`], TLS), with access-log
//!   counting and skopeo helpers; [`proxy`]: a reverse proxy in front of it that can corrupt
//!   blobs, redirect them to another host, inject failures, reset connections and break blob
//!   bodies off mid-way ([`body_faults`]). Both servers run on the small HTTP/1.1 server of
//!   [`http`] (with [`http_cutoff`] for ending connections without an answer).
//! * [`scratch`]: an isolated docker config, cache and output area for `lambda-image build`;
//!   [`builds`]: builds run in the background with a deadline, and blobs read back with skopeo.
//! * [`ecr`]: moto as the ECR API, and an ECR registry host name that resolves to a loopback
//!   registry (a private `/etc/hosts` in a mount namespace).
//! * [`forward_proxy`]: tinyproxy as a real forward proxy (`HTTPS_PROXY`), and host names for
//!   loopback registries through a private `/etc/hosts`.
//! * [`functions`]: real Lambda functions from `tests/functions/`, built statically once per
//!   process; [`local_lambda`]: `lambda-image serve` in the background and `curl`;
//!   [`runc`]: built images unpacked with umoci and run with runc (and qemu for arm64).
//!
//! The fixture is deliberately independent of the product code: it writes tar, gzip and
//! OCI JSON itself. Tests must treat it as read-only (it is shared by all tests of a
//! process); copy the layout first if a test needs to change it.
//!
//! External tools and the arm64 busybox are installed by `bash tests/run.sh`; when one is
//! missing, the helpers panic with a message saying so instead of skipping tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use flate2::Compression;
use flate2::GzBuilder;
use flate2::read::GzDecoder;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub mod body_faults;
pub mod builds;
pub mod ecr;
pub mod forward_proxy;
pub mod functions;
pub mod http;
pub mod http_cutoff;
pub mod local_lambda;
pub mod proxy;
pub mod registry;
pub mod runc;
pub mod scratch;
pub mod table;
pub mod token;

/// Tag of the image index in the base layout's `index.json`.
pub const BASE_TAG: &str = "al2023";
/// Tag of the linux/amd64 manifest in the base layout's `index.json` (umoci needs a tag
/// that points directly at a manifest).
pub const BASE_TAG_AMD64: &str = "al2023-amd64";
/// Tag of the linux/arm64/v8 manifest in the base layout's `index.json`.
pub const BASE_TAG_ARM64: &str = "al2023-arm64";
/// The architectures of the base image, in the order of its image index.
pub const ARCHES: [&str; 2] = ["amd64", "arm64"];

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// `config.Env` of the base image, exactly as in `public.ecr.aws/lambda/provided:al2023`.
pub const BASE_ENV: [&str; 6] = [
    "LANG=en_US.UTF-8",
    "TZ=:/etc/localtime",
    "PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
    "LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    "LAMBDA_TASK_ROOT=/var/task",
    "LAMBDA_RUNTIME_DIR=/var/runtime",
];
/// `config.WorkingDir` of the base image.
pub const BASE_WORKING_DIR: &str = "/var/task";
/// `config.Entrypoint` of the base image (it has no `Cmd`).
pub const BASE_ENTRYPOINT: [&str; 1] = ["/lambda-entrypoint.sh"];
/// Name of a top-level config field that the oci-spec crate does not know; its value is
/// [`base_config_extra_value`]. Tests use it to check that unknown fields survive.
pub const BASE_CONFIG_EXTRA_FIELD: &str = "lambdaImageFixtureExtra";

/// Value of [`BASE_CONFIG_EXTRA_FIELD`] in the base image configs.
pub fn base_config_extra_value() -> Value {
    json!({ "kept": true })
}

/// Exit status of `/lambda-entrypoint.sh` when not given exactly one argument.
pub const ENTRYPOINT_USAGE_EXIT_CODE: i32 = 142;

/// Our hand-written equivalent of the base image's `/lambda-entrypoint.sh`.
pub const ENTRYPOINT_SCRIPT: &str = r#"#!/bin/sh
# Test stand-in for the /lambda-entrypoint.sh of public.ecr.aws/lambda/provided:al2023.

if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"

RUNTIME_ENTRYPOINT=/var/runtime/bootstrap
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ]; then
  exec /usr/local/bin/aws-lambda-rie "$RUNTIME_ENTRYPOINT"
else
  exec "$RUNTIME_ENTRYPOINT"
fi
"#;

/// What the compiled bootstrap executables print on stdout (followed by a newline).
pub const BOOTSTRAP_OUTPUT: &str = "hello from bootstrap";

const BOOTSTRAP_C: &str = r#"#include <stdio.h>

int main(void) {
    puts("hello from bootstrap");
    return 0;
}
"#;

const SCRIPT_BOOTSTRAP: &str = "#!/bin/sh\necho \"hello from script bootstrap\"\n";

/// Size of the pseudo-random file in the padding layer.
pub const PADDING_SIZE: usize = 3 * 1024 * 1024;
/// Path (inside the image) of the pseudo-random file in the padding layer.
pub const PADDING_PATH: &str = "opt/padding/blob.bin";

/// Timestamp used for `created` in the base configs (the epoch, for determinism).
const EPOCH_RFC3339: &str = "1970-01-01T00:00:00Z";

const ELF_MACHINE_X86_64: u16 = 62;
const ELF_MACHINE_AARCH64: u16 = 183;

/// Everything [`fixtures()`] generated.
#[derive(Debug)]
pub struct Fixtures {
    /// The directory holding all fixtures of this test process.
    pub dir: PathBuf,
    /// OCI image layout standing in for `public.ecr.aws/lambda/provided:al2023`.
    /// Tags: [`BASE_TAG`] (the image index), [`BASE_TAG_AMD64`], [`BASE_TAG_ARM64`].
    pub base_layout: PathBuf,
    /// Digest (`sha256:<hex>`) of the image index tagged [`BASE_TAG`].
    pub base_digest: String,
    /// Manifest digest per architecture (`"amd64"`, `"arm64"`).
    pub base_manifests: BTreeMap<String, String>,
    /// Compressed layer digests per architecture, bottom layer first.
    pub base_layer_digests: BTreeMap<String, Vec<String>>,
    /// Config blob digest per architecture.
    pub base_configs: BTreeMap<String, String>,
    /// Static x86-64 ELF that prints [`BOOTSTRAP_OUTPUT`] and exits 0 (mode 0755).
    pub bootstrap_amd64: PathBuf,
    /// Static aarch64 ELF that prints [`BOOTSTRAP_OUTPUT`] and exits 0 (mode 0755).
    pub bootstrap_arm64: PathBuf,
    /// A `#!/bin/sh` script (not an ELF), mode 0644 on disk.
    pub script_bootstrap: PathBuf,
    /// The amd64 busybox-static binary used in the base image.
    pub busybox_amd64: PathBuf,
    /// The arm64 busybox-static binary used in the base image.
    pub busybox_arm64: PathBuf,
}

/// The base image layout written by [`generate_base_layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseLayout {
    /// The OCI image layout directory.
    pub layout: PathBuf,
    /// Digest of the image index tagged [`BASE_TAG`].
    pub index_digest: String,
    /// Manifest digest per architecture.
    pub manifests: BTreeMap<String, String>,
    /// Config digest per architecture.
    pub configs: BTreeMap<String, String>,
    /// Compressed layer digests per architecture, bottom layer first.
    pub layer_digests: BTreeMap<String, Vec<String>>,
}

/// The fixtures of this test process, generated on first use.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_fixture_dirs(root);
        let dir = root.join(format!("fixtures-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .unwrap_or_else(|e| panic!("removing old {}: {e}", dir.display()));
        }
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        generate_fixtures(&dir)
    })
}

/// Generates all fixtures into `dir` (which must exist). [`fixtures()`] calls this once
/// per process; tests may call it to get a second, independent copy.
pub fn generate_fixtures(dir: &Path) -> Fixtures {
    let base = generate_base_layout(&dir.join("base-al2023"));

    let bin_dir = dir.join("bootstrap");
    fs::create_dir_all(&bin_dir).unwrap();
    let source = bin_dir.join("bootstrap.c");
    fs::write(&source, BOOTSTRAP_C).unwrap();
    let bootstrap_amd64 = bin_dir.join("bootstrap-amd64");
    let bootstrap_arm64 = bin_dir.join("bootstrap-arm64");
    compile_static("gcc", &source, &bootstrap_amd64);
    compile_static("aarch64-linux-gnu-gcc", &source, &bootstrap_arm64);
    check_elf_machine(&bootstrap_amd64, ELF_MACHINE_X86_64);
    check_elf_machine(&bootstrap_arm64, ELF_MACHINE_AARCH64);
    set_mode(&bootstrap_amd64, 0o755);
    set_mode(&bootstrap_arm64, 0o755);

    let script_bootstrap = bin_dir.join("script-bootstrap");
    fs::write(&script_bootstrap, SCRIPT_BOOTSTRAP).unwrap();
    set_mode(&script_bootstrap, 0o644);

    Fixtures {
        dir: dir.to_path_buf(),
        base_layout: base.layout,
        base_digest: base.index_digest,
        base_manifests: base.manifests,
        base_layer_digests: base.layer_digests,
        base_configs: base.configs,
        bootstrap_amd64,
        bootstrap_arm64,
        script_bootstrap,
        busybox_amd64: busybox_amd64(),
        busybox_arm64: busybox_arm64(),
    }
}

/// Writes the stand-in for `public.ecr.aws/lambda/provided:al2023` as an OCI image layout
/// at `layout` (created; must not exist yet or be empty). Deterministic: the same inputs
/// (busybox binaries) always give the same digests.
pub fn generate_base_layout(layout: &Path) -> BaseLayout {
    generate_base_layout_with_padding(layout, PADDING_SIZE)
}

/// [`generate_base_layout`] with `padding` bytes of incompressible data in the padding layer
/// (the benchmark makes a base the size of the real one this way).
pub fn generate_base_layout_with_padding(layout: &Path, padding: usize) -> BaseLayout {
    fs::create_dir_all(layout.join("blobs").join("sha256"))
        .unwrap_or_else(|e| panic!("creating {}: {e}", layout.display()));
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();

    let mut manifests = BTreeMap::new();
    let mut configs = BTreeMap::new();
    let mut layer_digests = BTreeMap::new();
    let mut index_entries = Vec::new();
    let mut layout_entries = Vec::new();

    for (arch, seed) in [
        ("amd64", 0x5eed_0000_00a4_d064_u64),
        ("arm64", 0x5eed_0000_a4a6_4000),
    ] {
        let busybox_path = match arch {
            "amd64" => busybox_amd64(),
            _ => busybox_arm64(),
        };
        let busybox = fs::read(&busybox_path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", busybox_path.display()));

        let layers = [
            (
                busybox_layer_tar(&busybox),
                format!("lambda-image test fixture: busybox-static ({arch})"),
            ),
            (
                padding_layer_tar(seed, padding),
                "lambda-image test fixture: pseudo-random padding".to_string(),
            ),
            (
                entrypoint_layer_tar(),
                "lambda-image test fixture: /lambda-entrypoint.sh".to_string(),
            ),
        ];

        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        let mut history = Vec::new();
        let mut digests = Vec::new();
        for (tar_bytes, created_by) in &layers {
            diff_ids.push(format!("sha256:{}", sha256_hex(tar_bytes)));
            let gz = gzip(tar_bytes);
            let (digest, size) = write_blob(layout, &gz);
            descriptors.push(json!({
                "mediaType": MEDIA_TYPE_LAYER_GZIP,
                "digest": digest,
                "size": size,
            }));
            history.push(json!({ "created": EPOCH_RFC3339, "created_by": created_by }));
            digests.push(digest);
        }

        let mut config = json!({
            "architecture": arch,
            "os": "linux",
            "created": EPOCH_RFC3339,
            "config": {
                "Env": BASE_ENV,
                "Entrypoint": BASE_ENTRYPOINT,
                "WorkingDir": BASE_WORKING_DIR,
            },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
            BASE_CONFIG_EXTRA_FIELD: base_config_extra_value(),
        });
        if arch == "arm64" {
            config["variant"] = json!("v8");
        }
        let (config_digest, config_size) = write_blob(layout, &to_json_bytes(&config));

        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {
                "mediaType": MEDIA_TYPE_CONFIG,
                "digest": config_digest,
                "size": config_size,
            },
            "layers": descriptors,
        });
        let (manifest_digest, manifest_size) = write_blob(layout, &to_json_bytes(&manifest));

        let mut platform = json!({ "architecture": arch, "os": "linux" });
        if arch == "arm64" {
            platform["variant"] = json!("v8");
        }
        index_entries.push(json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": platform,
        }));
        layout_entries.push(json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": platform,
            "annotations": { REF_NAME_ANNOTATION: format!("{BASE_TAG}-{arch}") },
        }));

        manifests.insert(arch.to_string(), manifest_digest);
        configs.insert(arch.to_string(), config_digest);
        layer_digests.insert(arch.to_string(), digests);
    }

    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": index_entries,
    });
    let (index_digest, index_size) = write_blob(layout, &to_json_bytes(&index));

    layout_entries.insert(
        0,
        json!({
            "mediaType": MEDIA_TYPE_INDEX,
            "digest": index_digest,
            "size": index_size,
            "annotations": { REF_NAME_ANNOTATION: BASE_TAG },
        }),
    );
    let layout_index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": layout_entries,
    });
    fs::write(layout.join("index.json"), to_json_bytes(&layout_index)).unwrap();

    BaseLayout {
        layout: layout.to_path_buf(),
        index_digest,
        manifests,
        configs,
        layer_digests,
    }
}

// ---------------------------------------------------------------------------------------
// Running tools
// ---------------------------------------------------------------------------------------

/// Runs `cmd`, panicking (with the command line, exit status, stdout and stderr) if it
/// cannot be started or does not exit successfully. Returns its output.
pub fn run(cmd: &mut Command) -> Output {
    let output = run_unchecked(cmd);
    if !output.status.success() {
        panic!(
            "command failed: {cmd:?}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    output
}

/// Runs `cmd` and returns its output whatever its exit status; panics only if it cannot
/// be started (with a hint to run `bash tests/run.sh` if the program is missing).
pub fn run_unchecked(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
            "`{}` not found ({e}) while running {cmd:?}: run `bash tests/run.sh`, \
             which installs the tools the tests need",
            cmd.get_program().to_string_lossy()
        ),
        Err(e) => panic!("could not run {cmd:?}: {e}"),
    }
}

/// Like [`run`], returning stdout as a string (lossily decoded).
pub fn run_stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Runs `skopeo --insecure-policy <args>`; returns stdout, panics on failure.
pub fn skopeo(args: &[&str]) -> String {
    run_stdout(Command::new("skopeo").arg("--insecure-policy").args(args))
}

/// Runs `umoci <args>`; returns stdout, panics on failure.
pub fn umoci(args: &[&str]) -> String {
    run_stdout(Command::new("umoci").args(args))
}

/// Unpacks `image` (`<layout>:<tag>`, the tag must point at a manifest) into the runtime
/// bundle directory `bundle` (must not exist) with `umoci unpack --rootless`. The root
/// filesystem ends up in `bundle/rootfs`.
pub fn umoci_unpack(image: &str, bundle: &Path) {
    umoci(&[
        "unpack",
        "--rootless",
        "--image",
        image,
        bundle.to_str().expect("bundle path must be UTF-8"),
    ]);
}

/// `oci:<stand-in layout>:al2023`, the stand-in base as a `--base` or skopeo source.
pub fn base_reference() -> String {
    format!("oci:{}:{BASE_TAG}", fixtures().base_layout.display())
}

/// A dynamically linked x86-64 bootstrap built here by gcc from the fixture's `bootstrap.c`,
/// written to `directory/bootstrap-dynamic`: against Debian's glibc (2.36) it needs
/// `__libc_start_main@GLIBC_2.34`, so glibc 2.34 (provided.al2023's) and its loader
/// `/lib64/ld-linux-x86-64.so.2`.
pub fn dynamic_bootstrap(directory: &Path) -> PathBuf {
    let output = directory.join("bootstrap-dynamic");
    run(Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&output)
        .arg(fixtures().dir.join("bootstrap/bootstrap.c")));
    output
}

/// `--bootstrap <amd64> --bootstrap <arm64>` for the fixture bootstraps.
pub fn both_bootstrap_args() -> Vec<String> {
    let fixtures = fixtures();
    vec![
        "--bootstrap".into(),
        fixtures.bootstrap_amd64.display().to_string(),
        "--bootstrap".into(),
        fixtures.bootstrap_arm64.display().to_string(),
    ]
}

/// The digest a `--json` build report gives for `architecture`.
pub fn report_image_digest(report: &Value, architecture: &str) -> String {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["architecture"] == architecture)
        .unwrap_or_else(|| panic!("no {architecture} image in {report}"))["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A command's stderr as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The names of the files in `directory`, sorted.
pub fn file_names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .unwrap_or_else(|e| panic!("listing {}: {e}", directory.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `Command` for the binary under test, with `SOURCE_DATE_EPOCH` removed from its
/// environment.
pub fn lambda_image() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambda-image"));
    cmd.env_remove("SOURCE_DATE_EPOCH");
    cmd
}

// ---------------------------------------------------------------------------------------
// Digests and blobs
// ---------------------------------------------------------------------------------------

/// Lower-case hex sha256 of `bytes` (no `sha256:` prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lower-case hex sha256 of the file at `path` (no `sha256:` prefix), streamed.
pub fn sha256_file(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    sha256_reader(file).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Lower-case hex sha256 of the decompressed contents of the gzip file at `path`
/// (no `sha256:` prefix), streamed. For a layer blob this is the `diff_id`'s hex.
pub fn gunzip_sha256(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    sha256_reader(GzDecoder::new(io::BufReader::new(file)))
        .unwrap_or_else(|e| panic!("decompressing {}: {e}", path.display()))
}

fn sha256_reader(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Path of the blob `digest` (`sha256:<hex>`) in the OCI layout `layout`.
pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest
        .split_once(':')
        .unwrap_or_else(|| panic!("digest without algorithm: {digest:?}"));
    layout.join("blobs").join(algorithm).join(hex)
}

/// Contents of the blob `digest` (`sha256:<hex>`) in the OCI layout `layout`.
pub fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = blob_path(layout, digest);
    fs::read(&path).unwrap_or_else(|e| panic!("reading blob {digest} at {}: {e}", path.display()))
}

/// The blob `digest` in `layout`, parsed as JSON.
pub fn read_blob_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&read_blob(layout, digest))
        .unwrap_or_else(|e| panic!("blob {digest} in {} is not JSON: {e}", layout.display()))
}

/// The file at `path`, parsed as JSON.
pub fn read_json(path: impl AsRef<Path>) -> Value {
    let path = path.as_ref();
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The descriptor in `<layout>/index.json` whose `org.opencontainers.image.ref.name`
/// annotation is `tag`, if any.
pub fn layout_descriptor(layout: &Path, tag: &str) -> Option<Value> {
    let index = read_json(layout.join("index.json"));
    index["manifests"]
        .as_array()?
        .iter()
        .find(|d| d["annotations"][REF_NAME_ANNOTATION] == tag)
        .cloned()
}

// ---------------------------------------------------------------------------------------
// Fixture internals
// ---------------------------------------------------------------------------------------

/// The amd64 busybox-static binary (Debian package busybox-static).
pub fn busybox_amd64() -> PathBuf {
    for candidate in ["/usr/bin/busybox", "/bin/busybox"] {
        let path = Path::new(candidate);
        if path.is_file() {
            check_elf_machine(path, ELF_MACHINE_X86_64);
            return path.to_path_buf();
        }
    }
    panic!(
        "busybox not found at /usr/bin/busybox or /bin/busybox: run `bash tests/run.sh`, \
         which installs busybox-static"
    );
}

/// The arm64 busybox-static binary: `$LAMBDA_IMAGE_TEST_BUSYBOX_ARM64`, or the one that
/// `tests/run.sh` extracts under `target/test-deps/busybox-arm64/`.
pub fn busybox_arm64() -> PathBuf {
    let path = match std::env::var_os("LAMBDA_IMAGE_TEST_BUSYBOX_ARM64") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "LAMBDA_IMAGE_TEST_BUSYBOX_ARM64={} is not a file",
                path.display()
            );
            path
        }
        _ => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/busybox-arm64");
            ["bin/busybox", "usr/bin/busybox"]
                .iter()
                .map(|p| root.join(p))
                .find(|p| p.is_file())
                .unwrap_or_else(|| {
                    panic!(
                        "arm64 busybox not found under {}: run `bash tests/run.sh`, which \
                         downloads busybox-static:arm64 there \
                         (or set LAMBDA_IMAGE_TEST_BUSYBOX_ARM64)",
                        root.display()
                    )
                })
        }
    };
    check_elf_machine(&path, ELF_MACHINE_AARCH64);
    path
}

/// Panics unless `path` is a little-endian 64-bit ELF file for machine `e_machine`.
fn check_elf_machine(path: &Path, machine: u16) {
    let mut header = [0u8; 20];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .unwrap_or_else(|e| panic!("reading the ELF header of {}: {e}", path.display()));
    assert!(
        header[..4] == *b"\x7fELF" && header[4] == 2 && header[5] == 1,
        "{} is not a little-endian 64-bit ELF file",
        path.display()
    );
    let actual = u16::from_le_bytes([header[18], header[19]]);
    assert_eq!(
        actual,
        machine,
        "{} has ELF e_machine {actual}, expected {machine}",
        path.display()
    );
}

fn compile_static(compiler: &str, source: &Path, output: &Path) {
    run(Command::new(compiler)
        .args([OsStr::new("-static"), OsStr::new("-O2"), OsStr::new("-o")])
        .arg(output)
        .arg(source));
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Runs `lambda-image ARGS` (which must include `--json`) and parses its stdout; panics with
/// both streams when stdout is not JSON.
pub fn lambda_image_json(args: &[&str]) -> (Output, Value) {
    let output = run_unchecked(lambda_image().args(args));
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout of {args:?} is not JSON ({error}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(&output)
        )
    });
    (output, report)
}

/// Runs `command` with `input` on its stdin (a command that exits before reading it is fine:
/// the broken pipe is ignored), and returns what it did.
pub fn with_stdin(command: &mut Command, input: impl AsRef<[u8]>) -> Output {
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting {command:?}: {error}"));
    let _ = child.stdin.take().unwrap().write_all(input.as_ref());
    child.wait_with_output().unwrap()
}

/// A layer tar packed by GNU tar, as users pack one (modes as on disk, owner root), from the
/// directory `DIR/NAME-root` that `prepare` fills; returns the tar's path, `DIR/NAME-layer.tar`.
pub fn gnu_tar_layer(dir: &Path, name: &str, prepare: impl FnOnce(&Path)) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    fs::create_dir_all(&root).unwrap();
    prepare(&root);
    let tar = dir.join(format!("{name}-layer.tar"));
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    tar
}

/// A copy of the stand-in base's amd64 image under `dir/NAME`, tagged `NAME` alone, with
/// `edit_config` applied to its config and, when given, one more layer: `(tar, uncompressed)`,
/// the tar stored gzipped unless `uncompressed`. Returns its `oci:DIR:NAME` reference.
pub fn amd64_base_variant(
    dir: &Path,
    name: &str,
    layer: Option<(&[u8], bool)>,
    edit_config: impl FnOnce(&mut Value),
) -> String {
    let f = fixtures();
    let layout = dir.join(name);
    run(Command::new("cp")
        .arg("-r")
        .arg(&f.base_layout)
        .arg(&layout));
    let mut manifest = read_blob_json(&layout, &f.base_manifests["amd64"]);
    let mut config = read_blob_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    if let Some((tar, uncompressed)) = layer {
        let (media_type, blob) = if uncompressed {
            ("application/vnd.oci.image.layer.v1.tar", tar.to_vec())
        } else {
            (MEDIA_TYPE_LAYER_GZIP, gzip(tar))
        };
        let (layer_digest, layer_size) = write_blob(&layout, &blob);
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("sha256:{}", sha256_hex(tar))));
        config["history"]
            .as_array_mut()
            .unwrap()
            .push(json!({"created_by": "test"}));
        manifest["layers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"mediaType": media_type, "digest": layer_digest, "size": layer_size}));
    }
    edit_config(&mut config);
    let (config_digest, config_size) = write_blob(&layout, &to_json_bytes(&config));
    manifest["config"] =
        json!({"mediaType": MEDIA_TYPE_CONFIG, "digest": config_digest, "size": config_size});
    let (manifest_digest, manifest_size) = write_blob(&layout, &to_json_bytes(&manifest));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [{
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": { REF_NAME_ANNOTATION: name },
        }],
    });
    fs::write(layout.join("index.json"), to_json_bytes(&index)).unwrap();
    format!("oci:{}:{name}", layout.display())
}

/// Writes `bytes` as a blob of `layout`; returns its digest and size.
pub fn write_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = format!("sha256:{}", sha256_hex(bytes));
    let path = blob_path(layout, &digest);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    (digest, bytes.len() as u64)
}

pub fn to_json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serializing JSON")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// One entry of a fixture tar.
enum Entry<'a> {
    Dir {
        path: &'a str,
        mode: u32,
    },
    File {
        path: &'a str,
        mode: u32,
        data: &'a [u8],
    },
    Symlink {
        path: &'a str,
        target: &'a str,
    },
}

impl Entry<'_> {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
                path
            }
        }
    }
}

/// A deterministic tar: entries sorted by path, ustar headers, mtime 0, owner root:root.
/// Directory paths are given without a trailing slash; the tar gets one.
fn tar_bytes(mut entries: Vec<Entry<'_>>) -> Vec<u8> {
    entries.sort_by(|a, b| a.path().cmp(b.path()));
    let mut builder = tar::Builder::new(Vec::new());
    for entry in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root").unwrap();
        header.set_groupname("root").unwrap();
        let data: &[u8] = match entry {
            Entry::Dir { path, mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_path(format!("{path}/")).unwrap();
                header.set_mode(*mode);
                header.set_size(0);
                &[]
            }
            Entry::File { path, mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_path(path).unwrap();
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                data
            }
            Entry::Symlink { path, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_path(path).unwrap();
                header.set_link_name(target).unwrap();
                header.set_mode(0o777);
                header.set_size(0);
                &[]
            }
        };
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn busybox_layer_tar(busybox: &[u8]) -> Vec<u8> {
    let mut entries = vec![
        Entry::Dir {
            path: "bin",
            mode: 0o755,
        },
        Entry::File {
            path: "bin/busybox",
            mode: 0o755,
            data: busybox,
        },
        Entry::Dir {
            path: "tmp",
            mode: 0o1777,
        },
        Entry::Dir {
            path: "usr",
            mode: 0o755,
        },
        Entry::Dir {
            path: "usr/local",
            mode: 0o755,
        },
        Entry::Dir {
            path: "usr/local/bin",
            mode: 0o755,
        },
        Entry::Dir {
            path: "var",
            mode: 0o755,
        },
        Entry::Dir {
            path: "var/runtime",
            mode: 0o755,
        },
        Entry::Dir {
            path: "var/task",
            mode: 0o755,
        },
    ];
    for path in ["bin/sh", "bin/cat", "bin/echo", "bin/env", "bin/ls"] {
        entries.push(Entry::Symlink {
            path,
            target: "busybox",
        });
    }
    tar_bytes(entries)
}

fn padding_layer_tar(seed: u64, size: usize) -> Vec<u8> {
    let data = pseudo_random_bytes(seed, size);
    tar_bytes(vec![
        Entry::Dir {
            path: "opt",
            mode: 0o755,
        },
        Entry::Dir {
            path: "opt/padding",
            mode: 0o755,
        },
        Entry::File {
            path: PADDING_PATH,
            mode: 0o644,
            data: &data,
        },
    ])
}

fn entrypoint_layer_tar() -> Vec<u8> {
    tar_bytes(vec![Entry::File {
        path: "lambda-entrypoint.sh",
        mode: 0o755,
        data: ENTRYPOINT_SCRIPT.as_bytes(),
    }])
}

/// `len` bytes from a xorshift64* generator seeded with `seed` (must be non-zero).
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    assert_ne!(seed, 0, "xorshift needs a non-zero seed");
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Removes `fixtures-<pid>` directories under `root` left by test processes that are gone.
fn remove_stale_fixture_dirs(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("fixtures-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
