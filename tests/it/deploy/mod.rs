//! `lambda-image deploy` and `build --deploy`: from a pushed image or a zip to a Lambda
//! function, through the real AWS SDK in the binary, with moto's server as Lambda, IAM, S3 and
//! the ECR API (`support::lambda`, patched by `moto_lambda.py` where moto differs from AWS), and
//! the real distribution registry reached under ECR host names, as `ecr.rs` does.
//!
//! Each test checks what the function holds afterwards through boto3 ([`support::lambda::Aws`]),
//! not only what the tool says: the image URI by per-architecture digest, the architecture, the
//! zip's `CodeSha256`, versions and aliases. Refusals are checked for their exit code, a message
//! naming the fix, and (where they must come first) that Lambda was never called.
//!
//! Modules: [`image`] (image functions, `build --deploy`), [`buildx`] (indexes with attestations), [`packages`] (zip functions, S3),
//! [`versions`] (`--publish`, `--alias`), [`refusals`], [`regions`], [`waiting`] (states, access
//! denied).
//!
//! Needs root (the mount namespace of `support::ecr`) and the moto virtualenv `tests/run.sh`
//! installs. Built only with the `deploy` feature (the default).
#![cfg(feature = "deploy")]

mod buildx;
mod existing;
mod image;
mod packages;
mod refusals;
mod regions;
mod versions;
mod waiting;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use serde_json::Value;

use crate::support::ecr::{MOTO_PASSWORD, MotoEcr, ecr_host_name};
use crate::support::lambda::{Aws, deploy_command, lambda_operations};
use crate::support::registry::{RegistryAuth, RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;

/// moto (Lambda, IAM, S3, ECR), a registry that takes moto's ECR token, and a scratch area.
pub(super) struct Setup {
    pub moto: MotoEcr,
    pub registry: TestRegistry,
    pub scratch: Scratch,
}

impl Setup {
    pub fn new() -> Setup {
        Self::with_knobs(&[])
    }

    /// With `moto_lambda.py` knobs set from the start.
    pub fn with_knobs(knobs: &[(&str, &str)]) -> Setup {
        Setup {
            moto: MotoEcr::start_with(Some(12 * 3600), None, knobs),
            registry: TestRegistry::start(RegistryOptions {
                auth: RegistryAuth::basic("AWS", MOTO_PASSWORD),
                ..RegistryOptions::default()
            }),
            scratch: Scratch::new(),
        }
    }

    pub fn aws(&self) -> Aws<'_> {
        Aws::new(&self.moto)
    }

    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com:PORT`, the registry under an ECR name.
    pub fn host(&self, region: &str) -> String {
        format!("{}:{}", ecr_host_name(region), self.registry.port())
    }

    /// `HOST/REPOSITORY_AND_TAG` in us-east-1's ECR host.
    pub fn reference(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host("us-east-1"))
    }

    /// `lambda-image ARGS` in the namespace where ECR names reach the registry (us-east-1,
    /// eu-west-1), with every AWS endpoint at moto.
    pub fn command(&self, args: &[&str]) -> Command {
        let names = [ecr_host_name("us-east-1"), ecr_host_name("eu-west-1")];
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        deploy_command(&self.moto, &self.scratch.path("home"), &names, args)
    }

    /// `build` of `bootstraps` on the stand-in base (plus `extra`), pushed to `reference`
    /// (in an ECR host) with `--json`; its report.
    pub fn build(&self, reference: &str, bootstraps: &[&Path], extra: &[&str]) -> Value {
        let output = run_unchecked(&mut self.build_command(reference, bootstraps, extra));
        assert!(output.status.success(), "build: {}", stderr_of(&output));
        json_of(&output)
    }

    /// The `build` command of [`Setup::build`], not run.
    pub fn build_command(&self, reference: &str, bootstraps: &[&Path], extra: &[&str]) -> Command {
        let host = reference.split('/').next().unwrap();
        let mut command = self.command(&["build"]);
        command.arg("--cache-dir").arg(self.scratch.cache());
        for bootstrap in bootstraps {
            command.arg("--bootstrap").arg(bootstrap);
        }
        command
            .args(["--base", &base_reference()])
            .args(["--tag", reference])
            .args(["--insecure-registry", host, "--json"])
            .args(extra);
        command
    }

    /// `deploy ARGS --json` (with `--insecure-registry` for the ECR hosts and this scratch's
    /// cache); its output, whatever the exit status.
    pub fn deploy(&self, args: &[&str]) -> Output {
        run_unchecked(&mut self.deploy_command(args))
    }

    /// The command of [`Setup::deploy`], not run (to change its environment).
    pub fn deploy_command(&self, args: &[&str]) -> Command {
        let mut command = self.command(&["deploy"]);
        command
            .args(args)
            .args(["--insecure-registry", &self.host("us-east-1")])
            .args(["--insecure-registry", &self.host("eu-west-1")])
            .arg("--cache-dir")
            .arg(self.scratch.cache())
            .arg("--json");
        command
    }

    /// [`Setup::deploy`], which must succeed; its report.
    pub fn deploy_ok(&self, args: &[&str]) -> Value {
        let output = self.deploy(args);
        assert!(
            output.status.success(),
            "deploy {args:?} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            stderr_of(&output)
        );
        json_of(&output)
    }

    /// `deploy --function FUNCTION --zip ZIP --create --role ROLE`, which must succeed; its
    /// report.
    pub fn create_from_zip(&self, function: &str, zip: &str, role: &str) -> Value {
        self.deploy_ok(&[
            "--function",
            function,
            "--zip",
            zip,
            "--create",
            "--role",
            role,
        ])
    }

    /// The Lambda operations moto served so far.
    pub fn lambda_operations(&self) -> Vec<String> {
        lambda_operations(&self.moto)
    }

    /// A directory of this scratch area, made if needed.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.scratch.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

/// stdout as one JSON value.
pub(super) fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(output)
        )
    })
}

/// The command failed with `code`, its stderr holds each of `expected`, no panic, and (with
/// `--json`) stdout is the error object of that code.
pub(super) fn assert_refused(output: &Output, code: i32, expected: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    for text in expected {
        assert!(stderr.contains(text), "stderr lacks `{text}`:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    if let Ok(report) = serde_json::from_slice::<Value>(&output.stdout) {
        assert_eq!(report["error"]["exit_code"], code, "{report}");
        if code == 11 {
            assert_eq!(report["error"]["kind"], "deploy", "{report}");
        }
    }
}

/// base64 of the sha256 of the file at `path`: Lambda's `CodeSha256` of a zip.
pub(super) fn code_sha256(path: &Path) -> String {
    let digest = hex::decode(sha256_file(path)).unwrap();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The per-architecture manifest digest a `build --json` report gives for `architecture`.
pub(super) fn arch_digest(report: &Value, architecture: &str) -> String {
    report_image_digest(report, architecture)
}

/// `lambda-image zip --bootstrap BOOTSTRAP -o DIR/NAME.zip` (plus `extra`), in `dir`.
pub(super) fn lambda_image_zip(
    dir: &Path,
    name: &str,
    bootstrap: &Path,
    extra: &[&str],
) -> PathBuf {
    let zip = dir.join(format!("{name}.zip"));
    run(lambda_image()
        .arg("zip")
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(extra)
        .arg("-o")
        .arg(&zip)
        .current_dir(dir));
    zip
}

/// A zip written by Python's `zipfile` (as build scripts make them): each entry
/// `(name, source file, Unix mode or None)`; None leaves the mode out, as zips made on
/// Windows do (`create_system` 0, no Unix bits). `stored_padding`: an extra entry of that
/// many random bytes, stored uncompressed (to pass the 50 MiB limit).
pub(super) fn python_zip(
    dir: &Path,
    name: &str,
    entries: &[(&str, &Path, Option<u32>)],
    stored_padding: usize,
) -> PathBuf {
    const SCRIPT: &str = r#"
import json, os, sys, zipfile
out, entries, padding = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
    for name, source, mode in entries:
        info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        if mode is None:
            info.create_system = 0
            info.external_attr = 0x20
        else:
            info.create_system = 3
            info.external_attr = (0o100000 | mode) << 16
        with open(source, "rb") as file:
            archive.writestr(info, file.read())
    if padding:
        info = zipfile.ZipInfo("padding.bin", (2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        archive.writestr(info, os.urandom(padding))
"#;
    let zip = dir.join(format!("{name}.zip"));
    let entries: Vec<Value> = entries
        .iter()
        .map(|(name, source, mode)| serde_json::json!([name, source.display().to_string(), mode]))
        .collect();
    run(Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(&zip)
        .arg(Value::from(entries).to_string())
        .arg(stored_padding.to_string()));
    zip
}

/// A zip made by Info-ZIP's `zip -r` in a directory holding `bootstrap` (mode 0755, copied
/// from `bootstrap`) and a `lib/` with a data file, as packaging scripts do.
pub(super) fn zip_r(dir: &Path, name: &str, bootstrap: &Path) -> PathBuf {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::copy(bootstrap, root.join("bootstrap")).unwrap();
    set_mode(&root.join("bootstrap"), 0o755);
    std::fs::write(root.join("lib/data.txt"), b"data\n").unwrap();
    let zip = dir.join(format!("{name}.zip"));
    run(Command::new("zip")
        .args(["-q", "-r", "-X"])
        .arg(&zip)
        .args(["bootstrap", "lib"])
        .current_dir(&root));
    zip
}

/// chmod.
pub(super) fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A copy of the fixture bootstrap of `architecture` with `marker` appended (still a valid
/// ELF that runs): a different package or image layer each time.
pub(super) fn marked_bootstrap(dir: &Path, architecture: &str, marker: &str) -> PathBuf {
    let source = match architecture {
        "amd64" => &fixtures().bootstrap_amd64,
        _ => &fixtures().bootstrap_arm64,
    };
    let mut bytes = std::fs::read(source).unwrap();
    bytes.extend_from_slice(marker.as_bytes());
    let path = dir.join(format!("bootstrap-{architecture}-{marker}"));
    std::fs::write(&path, bytes).unwrap();
    set_mode(&path, 0o755);
    path
}
