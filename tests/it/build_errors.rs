//! Table-driven tests of bad input to `lambda-image build`.
//!
//! Each case starts from the invocation that works (both fixture bootstraps on the fixture base,
//! written to a new OCI layout) and changes one thing. For every case the test checks:
//!
//! * the exit code (see `src/error.rs`: 2 usage, 3 bootstrap, 4 base, 5 output; clap's own parse
//!   errors are 2);
//! * that each expected fragment appears in stderr, and that stderr shows no panic or backtrace;
//! * that stdout is empty;
//! * that nothing is left behind: the `--output` path does not exist afterwards (or, when the
//!   case put something there first, is unchanged), the output's parent directory (a fresh
//!   directory per case, also the child's working directory) holds exactly what it held before
//!   the run, usually nothing, so no `.lambda-image-*` temporaries; and the child's `TMPDIR`
//!   (also fresh per case) is empty again.
//!
//! All cases run, and every failing one is reported with a command line to reproduce it, before
//! the test fails. The positive controls (`controls_succeed`) run through the same harness and
//! must succeed: the invocation the cases start from, and the copied bases they corrupt, are
//! sound, so each case fails because of its one fault.
//!
//! Arguments and expected fragments may use these placeholders: `{amd64}`, `{arm64}` and
//! `{script}` (the fixture bootstraps), `{layout}` (the fixture base layout), `{in}` (the case's
//! own input directory) and `{out}` (the output's parent directory).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{self, BASE_TAG, BASE_TAG_AMD64, REF_NAME_ANNOTATION, fixtures};
use serde_json::Value;

/// The default `--base`: the fixture's image index with both architectures.
const BASE: &str = "oci:{layout}:al2023";
/// The default `--output`: a new OCI layout in the case's output directory.
const OUTPUT: &str = "oci:{out}/image:latest";

/// One invocation of `lambda-image build` and what it must do.
struct Case {
    name: &'static str,
    /// Creates the case's inputs under `{in}`, and anything that exists beforehand under `{out}`.
    prepare: fn(&Dirs),
    /// One `--bootstrap` each.
    bootstraps: Vec<String>,
    /// `--base`, or `None` to leave the flag out.
    base: Option<String>,
    /// `--output`, or `None` to leave the flag out.
    output: Option<String>,
    /// Further arguments.
    extra: Vec<String>,
    /// Environment variables for the child.
    env: Vec<(&'static str, String)>,
    /// The expected exit code.
    code: i32,
    /// Fragments that must all appear in stderr.
    stderr: Vec<String>,
}

/// A case with the default invocation, failing with `code` and `fragment` in stderr.
fn case(name: &'static str, code: i32, fragment: impl Into<String>) -> Case {
    Case {
        name,
        prepare: |_| {},
        bootstraps: vec!["{amd64}".into(), "{arm64}".into()],
        base: Some(BASE.into()),
        output: Some(OUTPUT.into()),
        extra: Vec::new(),
        env: Vec::new(),
        code,
        stderr: vec![fragment.into()],
    }
}

impl Case {
    fn prepare(mut self, prepare: fn(&Dirs)) -> Self {
        self.prepare = prepare;
        self
    }

    fn bootstraps(mut self, bootstraps: &[&str]) -> Self {
        self.bootstraps = bootstraps.iter().map(|&b| b.to_owned()).collect();
        self
    }

    fn base(mut self, base: impl Into<String>) -> Self {
        self.base = Some(base.into());
        self
    }

    fn output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(output.into());
        self
    }

    fn no_output(mut self) -> Self {
        self.output = None;
        self
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(|&a| a.to_owned()));
        self
    }

    fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    /// Another fragment that must appear in stderr.
    fn stderr(mut self, fragment: impl Into<String>) -> Self {
        self.stderr.push(fragment.into());
        self
    }
}

/// A successful build of `name`: the positive controls.
fn control(name: &'static str) -> Case {
    Case {
        stderr: Vec::new(),
        ..case(name, 0, "")
    }
}

fn cases() -> Vec<Case> {
    let f = fixtures();
    let padding_amd64 = f.base_layer_digests["amd64"][1].clone();
    let manifest_amd64 = f.base_manifests["amd64"].clone();
    let tag_128 = "t".repeat(128);
    let tag_129 = "t".repeat(129);

    vec![
        // ---- the bootstrap (exit 3) ----------------------------------------------------------
        case(
            "bootstrap missing",
            3,
            "bootstrap {in}/no-such-bootstrap does not exist",
        )
        .bootstraps(&["{in}/no-such-bootstrap", "{arm64}"]),
        case(
            "bootstrap is a directory",
            3,
            "bootstrap {in}/bootstrap-dir is a directory",
        )
        .prepare(|d| fs::create_dir(d.input("bootstrap-dir")).unwrap())
        .bootstraps(&["{in}/bootstrap-dir"]),
        case("bootstrap is empty", 3, "bootstrap {in}/empty is empty (0 bytes)")
            .prepare(|d| write_executable(&d.input("empty"), b""))
            .bootstraps(&["{in}/empty"]),
        case(
            "bootstrap is plain text",
            3,
            "bootstrap {in}/notes.txt is neither an ELF executable nor a #! script",
        )
        .prepare(|d| write_executable(&d.input("notes.txt"), b"just some notes, not code\n"))
        .bootstraps(&["{in}/notes.txt"]),
        case(
            "bootstrap is random bytes",
            3,
            "is neither an ELF executable nor a #! script",
        )
        .prepare(|d| {
            write_executable(&d.input("noise"), &support::pseudo_random_bytes(7, 4096));
        })
        .bootstraps(&["{in}/noise"]),
        case(
            "bootstrap is a shared library",
            3,
            "is a shared library (no entry point, no interpreter, not marked PIE), not an executable",
        )
        .bootstraps(&["/lib/x86_64-linux-gnu/libz.so.1"]),
        case(
            "script bootstrap without ARCH=",
            3,
            "bootstrap {script} is a script (/bin/sh), so its architecture cannot be read",
        )
        .stderr("--bootstrap amd64={script}")
        .bootstraps(&["{script}"]),
        case(
            "ELF for RISC-V",
            3,
            "is an ELF executable for RISCV; Lambda runs only x86-64 (amd64) and aarch64 (arm64)",
        )
        .prepare(|d| patched_amd64(d, "riscv", |elf| elf[18..20].copy_from_slice(&243u16.to_le_bytes())))
        .bootstraps(&["{in}/riscv"]),
        case("32-bit ELF", 3, "bootstrap {in}/elf32 is a 32-bit ELF")
            .prepare(|d| patched_amd64(d, "elf32", |elf| elf[4] = 1))
            .bootstraps(&["{in}/elf32"]),
        case(
            "truncated ELF",
            3,
            "bootstrap {in}/truncated has a truncated or malformed ELF header",
        )
        .prepare(|d| patched_amd64(d, "truncated", |elf| elf.truncate(10)))
        .bootstraps(&["{in}/truncated"]),
        case("big-endian ELF", 3, "is a big-endian ELF")
            .prepare(|d| patched_amd64(d, "big-endian", |elf| elf[5] = 2))
            .bootstraps(&["{in}/big-endian"]),
        case("ELF object file", 3, "relocatable object (.o)")
            .prepare(|d| patched_amd64(d, "object.o", |elf| elf[16..18].copy_from_slice(&1u16.to_le_bytes())))
            .bootstraps(&["{in}/object.o"]),
        case(
            "bootstrap is a named pipe",
            3,
            "bootstrap {in}/pipe is not a regular file (device, socket or pipe)",
        )
        .prepare(|d| make_fifo(&d.input("pipe")))
        .bootstraps(&["{in}/pipe"]),
        case(
            "arm64= on an amd64 ELF",
            3,
            "bootstrap {amd64} is an ELF executable for amd64 (x86-64), but it was given as arm64",
        )
        .bootstraps(&["arm64={amd64}"]),
        case("two amd64 bootstraps", 3, "two bootstraps for amd64")
            .prepare(|d| {
                fs::copy(&fixtures().bootstrap_amd64, d.input("bootstrap-amd64-copy")).unwrap();
            })
            .bootstraps(&["{amd64}", "{in}/bootstrap-amd64-copy"]),
        case("two arm64 bootstraps, one stated", 3, "two bootstraps for arm64")
            .bootstraps(&["{arm64}", "arm64={script}"]),
        // ---- --bootstrap syntax (exit 2) -----------------------------------------------------
        case("no --bootstrap", 2, "--bootstrap").bootstraps(&[]),
        case("--bootstrap with an unknown ARCH=", 2, "unknown architecture `sparc`")
            .bootstraps(&["sparc={amd64}"]),
        case("--bootstrap ARCH= without a path", 2, "names no file after `arm64=`")
            .bootstraps(&["arm64="]),
        // ---- the base (exit 4) ---------------------------------------------------------------
        case(
            "base layout missing",
            4,
            "base oci:{in}/no-such-layout:al2023 is not a directory",
        )
        .base("oci:{in}/no-such-layout:al2023"),
        case(
            "base layer blob corrupt, oci output",
            4,
            "a base blob is missing or corrupt, so the build stopped and oci:{out}/image:latest was not written",
        )
        .stderr(format!("expected {padding_amd64}"))
        .prepare(|d| flip_bytes(&blob(&d.base_copy(), &fixtures().base_layer_digests["amd64"][1])))
        .base("oci:{in}/base:al2023"),
        case(
            "base layer blob corrupt, oci-archive output",
            4,
            "a base blob is missing or corrupt, so the build stopped and oci-archive:{out}/image.tar:latest was not written",
        )
        .stderr(format!("expected {padding_amd64}"))
        .prepare(|d| flip_bytes(&blob(&d.base_copy(), &fixtures().base_layer_digests["amd64"][1])))
        .base("oci:{in}/base:al2023")
        .output("oci-archive:{out}/image.tar:latest"),
        case(
            "base layer blob corrupt, docker-archive output",
            4,
            "a base blob is missing or corrupt, so the build stopped and docker-archive:{out}/image.tar:fn:latest was not written",
        )
        .stderr(format!("expected {padding_amd64}"))
        .prepare(|d| flip_bytes(&blob(&d.base_copy(), &fixtures().base_layer_digests["amd64"][1])))
        .base("oci:{in}/base:al2023")
        .output("docker-archive:{out}/image.tar:fn:latest"),
        case("base layer blob truncated", 4, "a base blob is missing or corrupt")
            .stderr("but its descriptor says")
            .prepare(|d| {
                let path = blob(&d.base_copy(), &fixtures().base_layer_digests["amd64"][1]);
                let bytes = fs::read(&path).unwrap();
                fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            })
            .base("oci:{in}/base:al2023"),
        // A base that lacks a blob is a base problem, not an output problem.
        case("base layer blob missing", 4, "a base blob is missing or corrupt")
            .stderr(format!("base blob {padding_amd64} cannot be read"))
            .prepare(|d| {
                fs::remove_file(blob(&d.base_copy(), &fixtures().base_layer_digests["amd64"][1]))
                    .unwrap();
            })
            .base("oci:{in}/base:al2023"),
        case(
            "base manifest blob corrupt",
            4,
            format!("{manifest_amd64} is corrupt"),
        )
        .prepare(|d| flip_bytes(&blob(&d.base_copy(), &fixtures().base_manifests["amd64"])))
        .base("oci:{in}/base:al2023"),
        case("base index.json is garbage", 4, "index.json is malformed")
            .stderr("base oci:{in}/base:al2023")
            .prepare(|d| fs::write(d.base_copy().join("index.json"), "}{ not json").unwrap())
            .base("oci:{in}/base:al2023"),
        case(
            "base lacks arm64 (amd64 manifest re-tagged)",
            4,
            "has no image for linux/arm64; it has: linux/amd64",
        )
        .prepare(|d| amd64_only_base(&d.base_copy()))
        .bootstraps(&["{arm64}"])
        .base("oci:{in}/base:al2023"),
        case(
            "base lacks arm64, both bootstraps",
            4,
            "has no image for linux/arm64; it has: linux/amd64",
        )
        .prepare(|d| amd64_only_base(&d.base_copy()))
        .base("oci:{in}/base:al2023"),
        case(
            "base tag names the amd64 manifest, arm64 bootstrap",
            4,
            "has no image for linux/arm64; it has: linux/amd64",
        )
        .bootstraps(&["{arm64}"])
        .base(format!("oci:{{layout}}:{BASE_TAG_AMD64}")),
        case("base tag missing", 4, "has no image tagged `al2024`")
            .stderr(BASE_TAG)
            .base("oci:{layout}:al2024"),
        case("base without a tag, several images", 2, "holds 2 images and no tag says which one is meant")
            .prepare(|d| base_with_an_unrelated_image(&d.base_copy()))
            .stderr("hint: name one: --base oci:{in}/base:al2023 or --base oci:{in}/base:other")
            .base("oci:{in}/base"),
        case("base oci-archive is not a tar", 4, "cannot read the archive")
            .prepare(|d| fs::write(d.input("base.tar"), "not a tar archive\n").unwrap())
            .base("oci-archive:{in}/base.tar:al2023"),
        case(
            "base docker-archive missing",
            4,
            "base docker-archive:{in}/no-such.tar does not exist",
        )
        .base("docker-archive:{in}/no-such.tar"),
        // ---- flags (exit 2) ------------------------------------------------------------------
        case(
            "--base-creds with --offline (the base's registry is never contacted)",
            2,
            "cannot be used with '--base-creds",
        )
        .args(&["--offline", "--base-creds", "user:secret"]),
        case("--env NOEQUALS", 2, "`NOEQUALS` is not KEY=VALUE").args(&["--env", "NOEQUALS"]),
        case("--env =value", 2, "`=value` is not KEY=VALUE").args(&["--env", "=value"]),
        case("--label with a space in the key", 2, "`A B=c` is not KEY=VALUE")
            .args(&["--label", "A B=c"]),
        case(
            "--format docker with --annotation",
            2,
            "--annotation needs OCI manifests",
        )
        .args(&["--format", "docker", "--annotation", "team=payments"]),
        case("--format bogus", 2, "invalid value 'bogus'").args(&["--format", "bogus"]),
        case("--handler empty", 2, "--handler must not be empty").args(&["--handler", ""]),
        case("--handler blank", 2, "--handler must not be empty").args(&["--handler", "  "]),
        case("--include without DEST", 2, "`nodest` is not SRC:DEST").args(&["--include", "nodest"]),
        case(
            "--include with a relative DEST",
            2,
            "`file:relative/dest` is not SRC:DEST with an absolute DEST",
        )
        .args(&["--include", "file:relative/dest"]),
        case("--include DEST with ..", 2, "`/var/../etc` must not contain `..`")
            .args(&["--include", "file:/var/../etc"]),
        case("--include onto the image root", 2, "names the image root")
            .args(&["--include", "file:/"]),
        case(
            "--include source missing",
            2,
            "--include {in}/missing.json:/var/task/config.json: cannot read {in}/missing.json",
        )
        .args(&["--include", "{in}/missing.json:/var/task/config.json"]),
        case(
            "--include of a named pipe",
            2,
            "{in}/pipe is not a regular file or directory",
        )
        .prepare(|d| make_fifo(&d.input("pipe")))
        .args(&["--include", "{in}/pipe:/var/task/pipe"]),
        case(
            "--include of a directory holding a named pipe",
            2,
            "{in}/config/pipe is a device, socket or pipe, which cannot go in a layer",
        )
        .prepare(|d| {
            fs::create_dir(d.input("config")).unwrap();
            make_fifo(&d.input("config/pipe"));
        })
        .args(&["--include", "{in}/config:/var/task/config"]),
        case(
            "two --include to one destination",
            2,
            "/var/task/config.json is already in the layer",
        )
        .prepare(|d| {
            fs::write(d.input("a.json"), "{}").unwrap();
            fs::write(d.input("b.json"), "[]").unwrap();
        })
        .args(&[
            "--include",
            "{in}/a.json:/var/task/config.json",
            "--include",
            "{in}/b.json:/var/task/config.json",
        ]),
        case(
            "--include onto the bootstrap",
            2,
            "/var/runtime/bootstrap is already in the layer",
        )
        .prepare(|d| fs::write(d.input("other"), "x").unwrap())
        .args(&["--include", "{in}/other:/var/runtime/bootstrap"]),
        case(
            "--include into a directory, onto the bootstrap",
            2,
            "/var/runtime/bootstrap is already in the layer",
        )
        .prepare(|d| write_executable(&d.input("bootstrap"), b"x"))
        .args(&["--include", "{in}/bootstrap:/var/runtime/"]),
        case(
            "--include a directory holding a bootstrap onto /var/runtime",
            2,
            "/var/runtime/bootstrap is already in the layer",
        )
        .prepare(|d| {
            fs::create_dir(d.input("runtime")).unwrap();
            write_executable(&d.input("runtime/bootstrap"), b"x");
        })
        .args(&["--include", "{in}/runtime:/var/runtime"]),
        case(
            "--include under the bootstrap",
            2,
            "/var/runtime/bootstrap is a file in the layer",
        )
        .prepare(|d| fs::write(d.input("other"), "x").unwrap())
        .args(&["--include", "{in}/other:/var/runtime/bootstrap/extra"]),
        case(
            "SOURCE_DATE_EPOCH not a number",
            2,
            "SOURCE_DATE_EPOCH=notanumber is not a number of seconds since 1970",
        )
        .env("SOURCE_DATE_EPOCH", "notanumber"),
        case("SOURCE_DATE_EPOCH negative", 2, "SOURCE_DATE_EPOCH=-1 is not a number")
            .env("SOURCE_DATE_EPOCH", "-1"),
        case(
            "SOURCE_DATE_EPOCH past year 9999",
            2,
            "SOURCE_DATE_EPOCH=253402300800 is not a number",
        )
        .env("SOURCE_DATE_EPOCH", "253402300800"),
        case("unknown flag", 2, "unexpected argument '--frobnicate'").args(&["--frobnicate"]),
        case("no --output", 2, "--output").no_output(),
        // ---- --output syntax (exit 2) --------------------------------------------------------
        case("--output foo:bar", 2, "`foo:bar` is not an image location").output("foo:bar"),
        case("--output oci:", 2, "`oci:` names no path").output("oci:"),
        case(
            "--output registry reference",
            2,
            "`registry.example.com/fn:v1` is a registry reference (registry.example.com/fn:v1)",
        )
        .output("registry.example.com/fn:v1"),
        case(
            "--output bare name is a Docker Hub reference",
            2,
            "is a registry reference (docker.io/library/fn:latest)",
        )
        .output("fn"),
        case(
            "--output registry reference with upper-case repository",
            2,
            "repository names must be lowercase",
        )
        .output("registry.example.com/Fn:v1"),
        case(
            "--output docker:// reference",
            2,
            "is a registry reference (registry.example.com/fn:v1)",
        )
        .output("docker://registry.example.com/fn:v1"),
        case("--output tag over 128 characters", 2, "is not a valid tag")
            .output(format!("oci:{{out}}/image:{tag_129}")),
        case(
            "--output tag too long once -amd64 is added",
            2,
            format!("tag `{tag_128}-amd64` would be over 128 characters"),
        )
        .output(format!("oci:{{out}}/image:{tag_128}")),
        case("--output tag starting with -", 2, "`-bad` in `oci:{out}/image:-bad` is not a valid tag")
            .output("oci:{out}/image:-bad"),
        case(
            "--output docker-archive @0",
            2,
            "@INDEX selects an image when reading",
        )
        .output("docker-archive:{out}/image.tar:@0"),
        case("--output docker-archive uppercase name", 2, "is not a NAME:TAG")
            .output("docker-archive:{out}/image.tar:Upper:x"),
        case("--output docker-archive without a file", 2, "names no file")
            .output("docker-archive:"),
        // ---- where the output goes (exit 5) --------------------------------------------------
        case(
            "--output into a non-empty directory that is not a layout",
            5,
            "{out}/image exists, is not empty and is not an OCI image layout",
        )
        .prepare(|d| {
            fs::create_dir_all(d.out("image/sub")).unwrap();
            fs::write(d.out("image/notes.txt"), "keep me\n").unwrap();
            fs::write(d.out("image/sub/data.bin"), [0u8, 1, 2, 3]).unwrap();
        }),
        case(
            "--output into a layout whose index.json is garbage",
            5,
            "{out}/image: index.json is malformed",
        )
        .prepare(|d| {
            fs::create_dir(d.out("image")).unwrap();
            fs::write(d.out("image/oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
            fs::write(d.out("image/index.json"), "}{ not json").unwrap();
        }),
        case(
            "--output oci: onto a regular file",
            5,
            "{out}/image exists and is not a directory",
        )
        .prepare(|d| fs::write(d.out("image"), "a file, not a layout\n").unwrap()),
        case("--output oci-archive: onto a directory", 5, "{out}/image.tar is a directory")
            .prepare(|d| fs::create_dir(d.out("image.tar")).unwrap())
            .output("oci-archive:{out}/image.tar:latest"),
        case(
            "--output oci: parent directory missing",
            5,
            "cannot write {out}/missing/image: directory {out}/missing does not exist",
        )
        .output("oci:{out}/missing/image:latest"),
        case(
            "--output oci-archive: parent directory missing",
            5,
            "cannot write {out}/missing/image.tar: directory {out}/missing does not exist",
        )
        .output("oci-archive:{out}/missing/image.tar:latest"),
        case(
            "--output docker-archive: parent directory missing",
            5,
            "cannot write {out}/missing/image.tar: directory {out}/missing does not exist",
        )
        .output("docker-archive:{out}/missing/image.tar:fn:latest"),
        case("--output parent is a regular file", 5, "{out}/file")
            .prepare(|d| fs::write(d.out("file"), "not a directory\n").unwrap())
            .output("oci:{out}/file/image:latest"),
    ]
}

#[test]
fn bad_input_fails_cleanly() {
    let cases = cases();
    let failures = run_all(&cases);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The starting invocation, and the inputs the failing cases derive from, do build: so each case
/// fails because of its fault, and the harness can tell a failure from a success.
#[test]
fn controls_succeed() {
    let controls = vec![
        control("the default invocation"),
        control("a copy of the base layout")
            .prepare(|d| {
                d.base_copy();
            })
            .base("oci:{in}/base:al2023"),
        control("the amd64-only base with an amd64 bootstrap")
            .prepare(|d| amd64_only_base(&d.base_copy()))
            .bootstraps(&["{amd64}"])
            .base("oci:{in}/base:al2023"),
        control("a script with ARCH=").bootstraps(&["amd64={script}", "{arm64}"]),
        control("--include, --env, --handler and SOURCE_DATE_EPOCH")
            .prepare(|d| fs::write(d.input("config.json"), "{}").unwrap())
            .args(&[
                "--include",
                "{in}/config.json:/var/task/config.json",
                "--env",
                "MODE=prod",
                "--handler",
                "my.handler",
            ])
            .env("SOURCE_DATE_EPOCH", "1700000000"),
        control("a tag of 122 characters").output(format!("oci:{{out}}/image:{}", "t".repeat(122))),
        control("an existing empty output directory")
            .prepare(|d| fs::create_dir(d.out("image")).unwrap()),
        control("oci-archive output").output("oci-archive:{out}/image.tar:latest"),
        control("docker-archive output").output("docker-archive:{out}/image.tar:fn:latest"),
    ];
    let failures = run_all(&controls);
    assert!(
        failures.is_empty(),
        "{} of {} controls failed:\n\n{}",
        failures.len(),
        controls.len(),
        failures.join("\n\n")
    );
}

// -------------------------------------------------------------------------------------------
// Running a case
// -------------------------------------------------------------------------------------------

/// The directories of one case.
struct Dirs {
    /// Inputs made for the case (patched bootstraps, copied bases): `{in}`.
    input: tempfile::TempDir,
    /// The output's parent directory and the child's working directory: `{out}`.
    out: tempfile::TempDir,
    /// The child's `TMPDIR`.
    tmp: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Self {
        let dir = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("creating a temporary directory")
        };
        Self {
            input: dir("build-errors-in-"),
            out: dir("build-errors-out-"),
            tmp: dir("build-errors-tmp-"),
        }
    }

    fn input(&self, name: &str) -> PathBuf {
        self.input.path().join(name)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.out.path().join(name)
    }

    /// Copies the fixture base layout to `{in}/base` and returns that path.
    fn base_copy(&self) -> PathBuf {
        let copy = self.input("base");
        support::table::copy_tree(&fixtures().base_layout, &copy);
        copy
    }

    fn expand(&self, text: &str) -> String {
        let f = fixtures();
        let path = |p: &Path| p.to_str().expect("test paths are UTF-8").to_owned();
        text.replace("{amd64}", &path(&f.bootstrap_amd64))
            .replace("{arm64}", &path(&f.bootstrap_arm64))
            .replace("{script}", &path(&f.script_bootstrap))
            .replace("{layout}", &path(&f.base_layout))
            .replace("{in}", &path(self.input.path()))
            .replace("{out}", &path(self.out.path()))
    }
}

/// Runs the cases a few at a time; returns the reports of those that failed, in table order.
fn run_all(cases: &[Case]) -> Vec<String> {
    let workers = std::thread::available_parallelism().map_or(4, |n| n.get().min(8));
    support::table::run_cases(cases, workers, run_case)
}

/// Runs one case; returns a description of everything it got wrong, if anything.
fn run_case(case: &Case) -> Option<String> {
    let dirs = Dirs::new();
    (case.prepare)(&dirs);

    let mut args = vec!["build".to_owned()];
    for bootstrap in &case.bootstraps {
        args.extend(["--bootstrap".to_owned(), dirs.expand(bootstrap)]);
    }
    if let Some(base) = &case.base {
        args.extend(["--base".to_owned(), dirs.expand(base)]);
    }
    let output = case.output.as_deref().map(|o| dirs.expand(o));
    if let Some(output) = &output {
        args.extend(["--output".to_owned(), output.clone()]);
    }
    args.extend(case.extra.iter().map(|a| dirs.expand(a)));

    let output_path = output
        .as_deref()
        .and_then(output_path)
        .map(|p| dirs.out.path().join(p));
    let output_existed = output_path
        .as_deref()
        .is_some_and(|p| p.symlink_metadata().is_ok());
    let before = snapshot(dirs.out.path());

    let mut command = support::lambda_image();
    command
        .args(&args)
        .current_dir(dirs.out.path())
        .env("TMPDIR", dirs.tmp.path());
    for (key, value) in &case.env {
        command.env(key, value);
    }
    let result = support::run_unchecked(&mut command);
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);

    let mut problems = Vec::new();
    match result.status.code() {
        Some(code) if code == case.code => {}
        Some(code) => problems.push(format!("exit code {code}, expected {}", case.code)),
        None => problems.push(format!("killed: {}", result.status)),
    }
    for fragment in &case.stderr {
        let fragment = dirs.expand(fragment);
        if !stderr.contains(&fragment) {
            problems.push(format!("stderr lacks {fragment:?}"));
        }
    }
    for forbidden in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        if stderr.contains(forbidden) {
            problems.push(format!("stderr contains {forbidden:?}"));
        }
    }

    let after = snapshot(dirs.out.path());
    let temporaries: Vec<&PathBuf> = after
        .keys()
        .filter(|path| {
            path.components().any(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .starts_with(".lambda-image-")
            })
        })
        .collect();
    if !temporaries.is_empty() {
        problems.push(format!("temporaries left in {{out}}: {temporaries:?}"));
    }
    let leftovers = snapshot(dirs.tmp.path());
    if !leftovers.is_empty() {
        problems.push(format!(
            "left in TMPDIR: {:?}",
            leftovers.keys().collect::<Vec<_>>()
        ));
    }

    if case.code == 0 {
        if stdout.trim().is_empty() {
            problems.push("stdout is empty after a successful build".into());
        }
        match &output_path {
            Some(path) if path.exists() => {}
            _ => problems.push(format!("the output {output_path:?} was not created")),
        }
        let outside: Vec<&PathBuf> = after
            .keys()
            .filter(|path| !before.contains_key(*path))
            .filter(|path| {
                output_path
                    .as_deref()
                    .is_none_or(|out| !dirs.out.path().join(path).starts_with(out))
            })
            .collect();
        if !outside.is_empty() {
            problems.push(format!("new entries besides the output: {outside:?}"));
        }
    } else {
        if !stdout.is_empty() {
            problems.push(format!("stdout is not empty: {stdout:?}"));
        }
        if let Some(path) = &output_path
            && !output_existed
            && path.symlink_metadata().is_ok()
        {
            problems.push(format!("the output {} exists", path.display()));
        }
        if before != after {
            problems.push(format!(
                "{{out}} changed: {}",
                describe_changes(&before, &after)
            ));
        }
    }

    if problems.is_empty() {
        return None;
    }
    let environment: String = case
        .env
        .iter()
        .map(|(key, value)| format!("{key}={value} "))
        .collect();
    Some(format!(
        "case `{}`:\n  - {}\n  command: {environment}lambda-image {}\n  {}\n  \
         --- stdout ---\n{stdout}\n  --- stderr ---\n{stderr}",
        case.name,
        problems.join("\n  - "),
        shell_words(&args),
        result.status,
    ))
}

/// The path part of an `--output` location, when it names one.
fn output_path(location: &str) -> Option<PathBuf> {
    ["oci:", "oci-archive:", "docker-archive:"]
        .iter()
        .find_map(|prefix| location.strip_prefix(prefix))
        .map(|rest| rest.split(':').next().unwrap_or_default())
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._-:=@".contains(&b))
            {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every entry under `root`, by relative path: its type, mode and contents (or link target).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, entries: &mut BTreeMap<PathBuf, String>) {
        let Ok(listing) = fs::read_dir(dir) else {
            return;
        };
        for item in listing {
            let path = item.expect("reading a directory entry").path();
            let metadata = fs::symlink_metadata(&path).expect("reading metadata");
            let mode = metadata.permissions().mode() & 0o7777;
            let relative = path.strip_prefix(root).unwrap().to_owned();
            let description = if metadata.is_dir() {
                walk(root, &path, entries);
                format!("directory {mode:o}")
            } else if metadata.file_type().is_symlink() {
                format!("symlink to {:?}", fs::read_link(&path).unwrap())
            } else {
                format!("file {mode:o} sha256:{}", support::sha256_file(&path))
            };
            entries.insert(relative, description);
        }
    }
    let mut entries = BTreeMap::new();
    walk(root, root, &mut entries);
    entries
}

fn describe_changes(
    before: &BTreeMap<PathBuf, String>,
    after: &BTreeMap<PathBuf, String>,
) -> String {
    let mut changes = Vec::new();
    for (path, description) in after {
        match before.get(path) {
            None => changes.push(format!("added {} ({description})", path.display())),
            Some(old) if old != description => {
                changes.push(format!(
                    "changed {} ({old} -> {description})",
                    path.display()
                ));
            }
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|path| !after.contains_key(*path)) {
        changes.push(format!("removed {}", path.display()));
    }
    changes.join("; ")
}

// -------------------------------------------------------------------------------------------
// Making faulty inputs
// -------------------------------------------------------------------------------------------

fn write_executable(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn make_fifo(path: &Path) {
    support::run(std::process::Command::new("mkfifo").arg(path));
}

/// Writes `{in}/<name>`: the amd64 bootstrap with `patch` applied.
fn patched_amd64(dirs: &Dirs, name: &str, patch: impl FnOnce(&mut Vec<u8>)) {
    let mut elf = fs::read(&fixtures().bootstrap_amd64).unwrap();
    patch(&mut elf);
    write_executable(&dirs.input(name), &elf);
}

/// The path of blob `digest` in `layout`.
fn blob(layout: &Path, digest: &str) -> PathBuf {
    support::blob_path(layout, digest)
}

/// Inverts a few bytes in the middle of `path`, keeping its size.
fn flip_bytes(path: &Path) {
    let mut bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4] {
        *byte ^= 0xff;
    }
    fs::write(path, bytes).unwrap();
}

/// Rewrites the layout's `index.json` to hold only the amd64 manifest, tagged as the index was.
/// The stand-in base plus an image no index of it lists (its amd64 manifest with one more
/// annotation), tagged `other`: without a tag, the layout is ambiguous.
fn base_with_an_unrelated_image(layout: &Path) {
    let f = fixtures();
    let mut manifest = support::read_blob_json(layout, &f.base_manifests["amd64"]);
    manifest["annotations"] = serde_json::json!({"test": "other"});
    let (digest, size) = support::write_blob(layout, &support::to_json_bytes(&manifest));
    let path = layout.join("index.json");
    let mut index = support::read_json(&path);
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": support::MEDIA_TYPE_MANIFEST,
            "digest": digest,
            "size": size,
            "annotations": { REF_NAME_ANNOTATION: "other" },
        }));
    fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn amd64_only_base(layout: &Path) {
    let path = layout.join("index.json");
    let mut index = support::read_json(&path);
    let manifests = index["manifests"].as_array_mut().unwrap();
    manifests.retain(|d| d["annotations"][REF_NAME_ANNOTATION] == BASE_TAG_AMD64);
    assert_eq!(
        manifests.len(),
        1,
        "the fixture has one {BASE_TAG_AMD64} entry"
    );
    manifests[0]["annotations"][REF_NAME_ANNOTATION] = Value::from(BASE_TAG);
    fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}
