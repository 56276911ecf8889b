//! Zip functions: packages from `lambda-image zip`, Python's `zipfile` and Info-ZIP's `zip -r`
//! deployed with the architecture of their bootstrap's ELF, runtime provided.al2023, handler
//! bootstrap, and Lambda's `CodeSha256` equal to the package's; packages over 50 MiB through
//! S3.

use std::path::Path;

use serde_json::{Value, json};

use super::{Setup, assert_refused, code_sha256, lambda_image_zip, python_zip, zip_r};
use crate::support::{fixtures, sha256_file};

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
    let report = setup.deploy_ok(&[
        "--function",
        "zipped",
        "--zip",
        &zip_text,
        "--create",
        "--role",
        &role,
    ]);
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
        let report = setup.deploy_ok(&[
            "--function",
            name,
            "--zip",
            &zip.display().to_string(),
            "--create",
            "--role",
            &role,
        ]);
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
