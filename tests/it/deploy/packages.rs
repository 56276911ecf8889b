//! Zip functions: packages from `lambda-image zip`, Python's `zipfile` and Info-ZIP's `zip -r`
//! deployed with the architecture of their bootstrap's ELF, runtime provided.al2023, handler
//! bootstrap, and Lambda's `CodeSha256` equal to the package's; packages over 50 MiB through
//! S3.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::{Setup, assert_refused, code_sha256, lambda_image_zip, python_zip, zip_r};
use crate::support::{fixtures, run, sha256_file};

/// What a zip function created from `zip` must be: `architecture`, the package's CodeSha256,
/// provided.al2023, handler bootstrap; the report says the same.
fn assert_zip_function(setup: &Setup, name: &str, zip: &Path, architecture: &str, report: &Value) {
    let configuration = setup.aws().get_function(name)["Configuration"].clone();
    let sha = code_sha256(zip);
    assert_eq!(configuration["PackageType"], "Zip", "{configuration}");
    assert_eq!(configuration["Architectures"], json!([architecture]));
    assert_eq!(configuration["Runtime"], "provided.al2023");
    assert_eq!(configuration["Handler"], "bootstrap");
    assert_eq!(configuration["CodeSha256"], sha.as_str());
    assert_eq!(report["function_name"], name);
    assert_eq!(report["package_type"], "Zip", "{report}");
    assert_eq!(report["architecture"], architecture);
    assert_eq!(report["code_sha256"], sha.as_str());
    assert_eq!(report["runtime"], "provided.al2023");
    assert_eq!(report["image_uri"], Value::Null);
    assert_eq!(report["image_digest"], Value::Null);
    assert_eq!(report["s3"], Value::Null);
}

#[test]
fn a_package_from_lambda_image_zip_is_created_with_its_bootstraps_architecture_then_updated() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "arm64", &fixtures().bootstrap_arm64, &[]);
    let zip_text = zip.display().to_string();
    let report = setup.create_from_zip("zipped", &zip_text, &role);
    assert_zip_function(&setup, "zipped", &zip, "arm64", &report);
    assert_eq!(report["created"], true);
    assert_eq!(report["version"], "$LATEST");
    assert_eq!(report["state"], "Active");

    // A new package of the same architecture: updated, no --create needed.
    let bootstrap = super::marked_bootstrap(&work, "arm64", "second");
    let second = lambda_image_zip(&work, "second", &bootstrap, &[]);
    assert_ne!(sha256_file(&second), sha256_file(&zip));
    let report = setup.deploy_ok(&[
        "--function",
        "zipped",
        "--zip",
        &second.display().to_string(),
    ]);
    assert_zip_function(&setup, "zipped", &second, "arm64", &report);
    assert_eq!(report["created"], false);
    assert_eq!(report["last_update_status"], "Successful");
    let operations = setup.lambda_operations();
    assert!(
        operations.contains(&"UpdateFunctionCode".to_owned()),
        "{operations:?}"
    );
}

// Packages are often made by other tools. Python's zipfile writes Unix modes when told to;
// Info-ZIP's `zip -r` keeps the modes on disk (node-lambda's motdotla/node-lambda#19 switched to
// it for that reason).
#[test]
fn packages_made_by_pythons_zipfile_and_by_zip_r_deploy_as_they_are() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let data = work.join("data.txt");
    std::fs::write(&data, "data\n").unwrap();
    let python = python_zip(
        &work,
        "python",
        &[
            ("bootstrap", &fixtures().bootstrap_amd64, Some(0o755)),
            ("lib/data.txt", &data, Some(0o644)),
        ],
        0,
    );
    let info_zip = zip_r(&work, "zip-r", &fixtures().bootstrap_arm64);
    for (name, zip, architecture) in [
        ("from-python", &python, "x86_64"),
        ("from-zip-r", &info_zip, "arm64"),
    ] {
        let report = setup.create_from_zip(name, &zip.display().to_string(), &role);
        assert_zip_function(&setup, name, zip, architecture, &report);
    }
}

#[test]
fn a_package_over_50_mib_needs_s3_bucket_and_then_goes_through_s3() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    // 51 MiB of random bytes, stored: the zip is just over Lambda's direct upload limit.
    let zip = python_zip(
        &work,
        "big",
        &[("bootstrap", &fixtures().bootstrap_amd64, Some(0o755))],
        51 * 1024 * 1024,
    );
    let size = std::fs::metadata(&zip).unwrap().len();
    assert!(size > 52_428_800, "{size}");
    let zip_text = zip.display().to_string();
    let base = [
        "--function",
        "big",
        "--zip",
        &zip_text,
        "--create",
        "--role",
        &role,
    ];

    let output = setup.deploy(&base);
    assert_refused(&output, 2, &["--s3-bucket"]);
    assert!(
        setup.lambda_operations().is_empty(),
        "{:?}",
        setup.lambda_operations()
    );

    let bucket = "lambda-image-packages";
    setup.aws().create_bucket(bucket);
    let mut args = base.to_vec();
    args.extend(["--s3-bucket", bucket]);
    let report = setup.deploy_ok(&args);
    let key = format!("lambda-image/big/{}.zip", sha256_file(&zip));
    let object = setup
        .aws()
        .head_object(bucket, &key)
        .unwrap_or_else(|| panic!("no s3://{bucket}/{key}: {report}"));
    assert_eq!(object["ContentLength"], size);
    assert_eq!(report["s3"], json!({"bucket": bucket, "key": key}));
    let function = setup.aws().get_function("big");
    assert_eq!(function["Configuration"]["CodeSha256"], code_sha256(&zip));
    assert_eq!(
        function["Configuration"]["Architectures"],
        json!(["x86_64"])
    );
    assert_eq!(function["Code"]["RepositoryType"], "S3");
    assert!(
        function["Code"]["Location"]
            .as_str()
            .unwrap()
            .ends_with(&key),
        "the function's code is the S3 object: {function}"
    );
    assert_eq!(report["code_sha256"], code_sha256(&zip));

    // An explicit key, on update.
    let mut args = vec![
        "--function",
        "big",
        "--zip",
        &zip_text,
        "--s3-bucket",
        bucket,
    ];
    args.extend(["--s3-key", "releases/big-2.zip"]);
    let report = setup.deploy_ok(&args);
    assert!(
        setup
            .aws()
            .head_object(bucket, "releases/big-2.zip")
            .is_some()
    );
    assert_eq!(
        report["s3"],
        json!({"bucket": bucket, "key": "releases/big-2.zip"})
    );
    assert_eq!(report["created"], false);
}

/// A dynamically linked x86-64 bootstrap that needs `libssl.so.10` (OpenSSL 1.0, which
/// provided.al2 has and provided.al2023 has not) and nothing from the C library (its own
/// `_start`, no glibc symbol versions), linked here against a stub of that name.
pub(super) fn openssl_10_bootstrap(dir: &Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("ssl.c"),
        "int SSL_library_init(void) { return 1; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("start.c"),
        "int SSL_library_init(void);\n\
         void _start(void) {\n\
           long code = SSL_library_init() - 1;\n\
           __asm__ volatile (\"syscall\" :: \"a\"(60), \"D\"(code));\n\
           for (;;) {}\n\
         }\n",
    )
    .unwrap();
    let library = dir.join("libssl.so.10");
    run(Command::new("gcc")
        .args([
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libssl.so.10",
            "-o",
        ])
        .arg(&library)
        .arg(dir.join("ssl.c")));
    let bootstrap = dir.join("bootstrap-openssl10");
    run(Command::new("gcc")
        .args(["-nostdlib", "-nostartfiles", "-O2", "-o"])
        .arg(&bootstrap)
        .arg(dir.join("start.c"))
        .arg(&library));
    bootstrap
}

#[test]
fn the_runtime_is_provided_al2_when_the_bootstrap_needs_openssl_1_0_or_when_asked() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let legacy = python_zip(
        &work,
        "legacy",
        &[("bootstrap", &openssl_10_bootstrap(&work), Some(0o755))],
        0,
    );
    let modern = lambda_image_zip(&work, "modern", &fixtures().bootstrap_amd64, &[]);
    let cases: [(&str, &Path, &[&str]); 2] = [
        ("legacy", &legacy, &[]),
        ("asked", &modern, &["--runtime", "provided.al2"]),
    ];
    for (name, zip, extra) in cases {
        let zip_text = zip.display().to_string();
        let mut args = vec![
            "--function",
            name,
            "--zip",
            &zip_text,
            "--create",
            "--role",
            &role,
        ];
        args.extend_from_slice(extra);
        let report = setup.deploy_ok(&args);
        let configuration = setup.aws().get_function(name)["Configuration"].clone();
        assert_eq!(configuration["Runtime"], "provided.al2", "{name}");
        assert_eq!(report["runtime"], "provided.al2", "{name}: {report}");
    }
}

#[test]
fn create_on_an_existing_function_updates_it_and_the_text_report_says_so() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let first = lambda_image_zip(&work, "first", &fixtures().bootstrap_amd64, &[]);
    let second = lambda_image_zip(
        &work,
        "second",
        &super::marked_bootstrap(&work, "amd64", "2"),
        &[],
    );
    for (zip, created) in [(&first, "created"), (&second, "updated")] {
        let zip_text = zip.display().to_string();
        let mut command = setup.command(&[
            "deploy",
            "--function",
            "fn",
            "--zip",
            &zip_text,
            "--create",
            "--role",
            &role,
        ]);
        let output = run(&mut command);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let first_line = stdout.lines().next().unwrap_or_default();
        assert!(
            first_line.starts_with(&format!("deployed fn (x86_64, {created})")),
            "{stdout}"
        );
        assert!(
            stdout.contains("arn:aws:lambda:us-east-1:123456789012:function:fn"),
            "{stdout}"
        );
        assert!(stdout.contains(&code_sha256(zip)), "{stdout}");
    }
    let operations = setup.lambda_operations();
    let creates = operations
        .iter()
        .filter(|op| *op == "CreateFunction")
        .count();
    assert_eq!(creates, 1, "{operations:?}");
    let configuration = setup.aws().get_function("fn")["Configuration"].clone();
    assert_eq!(configuration["CodeSha256"], code_sha256(&second));
}

#[test]
fn a_function_holding_other_code_than_was_sent_is_an_error() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    let zip_text = zip.display().to_string();
    setup.create_from_zip("fn", &zip_text, &role);
    // As if another deploy had replaced the code meanwhile.
    let other = "b3RoZXIgY29kZSB0aGFuIHdhcyBzZW50IGJ5IHRoaXMgdGVzdA==";
    setup
        .moto
        .set_knobs(&json!({"MOTO_LAMBDA_CODE_SHA256": other}));
    let output = setup.deploy(&["--function", "fn", "--zip", &zip_text]);
    assert_refused(&output, 11, &["CodeSha256", other, &code_sha256(&zip)]);
}

#[test]
fn settings_given_on_create_are_the_new_functions() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_arm64, &[]);
    setup.deploy_ok(&[
        "--function",
        "fn",
        "--zip",
        &zip.display().to_string(),
        "--create",
        "--role",
        &role,
        "--memory",
        "512",
        "--timeout",
        "20",
        "--env",
        "STAGE=test",
        "--env",
        "LEVEL=debug",
        "--description",
        "made by lambda-image",
    ]);
    let configuration = setup.aws().get_function("fn")["Configuration"].clone();
    assert_eq!(configuration["MemorySize"], 512);
    assert_eq!(configuration["Timeout"], 20);
    assert_eq!(configuration["Description"], "made by lambda-image");
    assert_eq!(
        configuration["Environment"]["Variables"],
        json!({"STAGE": "test", "LEVEL": "debug"})
    );
    assert_eq!(configuration["Role"], role.as_str());
}

#[test]
fn a_script_bootstrap_has_no_architecture_of_its_own_so_creating_needs_architecture() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let script = work.join("script");
    std::fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    let zip = python_zip(&work, "script", &[("bootstrap", &script, Some(0o755))], 0);
    let zip_text = zip.display().to_string();
    let create = [
        "--function",
        "fn",
        "--zip",
        &zip_text,
        "--create",
        "--role",
        &role,
    ];
    let output = setup.deploy(&create);
    assert_refused(&output, 2, &["--architecture"]);
    let mut args = create.to_vec();
    args.extend(["--architecture", "arm64"]);
    let report = setup.deploy_ok(&args);
    assert_zip_function(&setup, "fn", &zip, "arm64", &report);
}

/// `zip -r -y` (links stored as links) of a directory whose `bootstrap` is a symbolic link
/// to `target`, next to `bin/app` (a copy of `app`).
fn zip_with_linked_bootstrap(
    dir: &Path,
    name: &str,
    app: &Path,
    target: &str,
) -> std::path::PathBuf {
    let root = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(app, root.join("bin/app")).unwrap();
    super::set_mode(&root.join("bin/app"), 0o755);
    std::os::unix::fs::symlink(target, root.join("bootstrap")).unwrap();
    let zip = dir.join(format!("{name}.zip"));
    run(Command::new("zip")
        .args(["-q", "-r", "-y", "-X"])
        .arg(&zip)
        .args(["bootstrap", "bin"])
        .current_dir(&root));
    zip
}

#[test]
fn a_bootstrap_stored_as_a_link_is_followed_inside_the_zip_only() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let arm64 = &fixtures().bootstrap_arm64;
    let inside = zip_with_linked_bootstrap(&work, "inside", arm64, "bin/app");
    let report = setup.create_from_zip("linked", &inside.display().to_string(), &role);
    assert_zip_function(&setup, "linked", &inside, "arm64", &report);

    let outside = zip_with_linked_bootstrap(&work, "outside", arm64, "../../usr/bin/env");
    let output = setup.deploy(&[
        "--function",
        "outside",
        "--zip",
        &outside.display().to_string(),
        "--create",
        "--role",
        &role,
    ]);
    assert_refused(&output, 3, &["bootstrap"]);
    let error = setup.aws().get_function_error("outside");
    assert_eq!(error["code"], "ResourceNotFoundException", "{error}");
}
