//! What `deploy` refuses, with its exit code and a message naming the fix: images Lambda cannot
//! take (not in ECR, ECR of another region) before any AWS call; a change of package type; an
//! architecture that differs from the function's unless `--architecture` says so; a missing
//! function without `--create`; packages without a runnable bootstrap.

use std::path::Path;

use serde_json::json;

use super::{Setup, assert_refused, lambda_image_zip, python_zip};
use crate::support::fixtures;
use crate::support::lambda::role_arn;

/// A digest-pinned image URI in us-east-1's ECR host, for functions made by other tools.
fn some_image(setup: &Setup) -> String {
    format!("{}@sha256:{}", setup.reference("fn"), "1".repeat(64))
}

#[test]
fn images_lambda_cannot_take_are_refused_before_any_aws_call() {
    let setup = Setup::new();
    let port = setup.registry.port();
    let outside = [
        format!("127.0.0.1:{port}/fn:v1"),
        "registry.example.com/fn:v1".to_owned(),
        "public.ecr.aws/lambda/provided:al2023".to_owned(),
        "ghcr.io/owner/fn@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .to_owned(),
    ];
    for image in &outside {
        let output = setup.deploy(&[
            "--function",
            "fn",
            "--image",
            image,
            "--create",
            "--role",
            &role_arn(),
            "--architecture",
            "arm64",
        ]);
        assert_refused(&output, 2, &["ECR"]);
    }
    // An ECR image of eu-west-1 for a function in us-east-1 (from --region, and from
    // AWS_REGION): Lambda only takes images of its own region.
    let other_region = format!("{}/fn:v1", setup.host("eu-west-1"));
    for extra in [&["--region", "us-east-1"][..], &[]] {
        let mut args = vec!["--function", "fn", "--image", &other_region];
        args.extend_from_slice(extra);
        let output = setup.deploy(&args);
        assert_refused(&output, 2, &["eu-west-1", "us-east-1"]);
    }
    let requests = setup.moto.requests();
    assert!(requests.is_empty(), "AWS was called: {requests:?}");
}

#[test]
fn the_package_type_of_a_function_is_never_changed() {
    let setup = Setup::new();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "amd64", &fixtures().bootstrap_amd64, &[]);
    setup.aws().create_zip_function("zip-fn", &zip, "x86_64");
    setup
        .aws()
        .create_image_function("image-fn", &some_image(&setup), "x86_64");
    let before = |name: &str| setup.aws().get_function(name)["Configuration"]["CodeSha256"].clone();
    let (zip_sha, image_sha) = (before("zip-fn"), before("image-fn"));

    let both = [
        &fixtures().bootstrap_amd64 as &Path,
        &fixtures().bootstrap_arm64,
    ];
    let reference = setup.reference("fn:v1");
    setup.build(&reference, &both, &[]);
    let output = setup.deploy(&["--function", "zip-fn", "--image", &reference]);
    assert_refused(&output, 11, &["zip-fn", "Zip", "Image"]);
    let output = setup.deploy(&[
        "--function",
        "image-fn",
        "--zip",
        &zip.display().to_string(),
    ]);
    assert_refused(&output, 11, &["image-fn", "Zip", "Image"]);

    assert_eq!(before("zip-fn"), zip_sha);
    assert_eq!(before("image-fn"), image_sha);
    let operations = setup.lambda_operations();
    assert!(
        !operations
            .iter()
            .any(|operation| operation.starts_with("Update")),
        "{operations:?}"
    );
}

// Reported again and again: an arm64 image or bootstrap on an x86_64 function (or the other
// way round) deploys fine and fails at the first invoke with "exec format error"
// (Runtime.InvalidEntrypoint: awslabs/swift-aws-lambda-runtime#541, aws/aws-lambda-base-images#26,
// grafana/loki#7078). A mismatch is refused unless --architecture asks for the change.
#[test]
fn an_architecture_other_than_the_functions_needs_architecture_and_then_changes_it() {
    let setup = Setup::new();
    // An image with only arm64, and an x86_64 Image function.
    let reference = setup.reference("fn:arm64-only");
    let report = setup.build(&reference, &[&fixtures().bootstrap_arm64], &[]);
    let arm64 = super::arch_digest(&report, "arm64");
    setup
        .aws()
        .create_image_function("image-fn", &some_image(&setup), "x86_64");
    let output = setup.deploy(&["--function", "image-fn", "--image", &reference]);
    assert_refused(&output, 11, &["x86_64", "arm64", "--architecture"]);
    let function = setup.aws().get_function("image-fn");
    assert_eq!(function["Code"]["ImageUri"], some_image(&setup));

    let report = setup.deploy_ok(&[
        "--function",
        "image-fn",
        "--image",
        &reference,
        "--architecture",
        "arm64",
    ]);
    let function = setup.aws().get_function("image-fn");
    assert_eq!(function["Configuration"]["Architectures"], json!(["arm64"]));
    assert_eq!(
        function["Code"]["ImageUri"],
        format!("{}@{arm64}", setup.reference("fn"))
    );
    assert_eq!(report["architecture"], "arm64");

    // The same for a zip: an arm64 bootstrap for an x86_64 Zip function.
    let work = setup.dir("packages");
    let amd64_zip = lambda_image_zip(&work, "amd64", &fixtures().bootstrap_amd64, &[]);
    let arm64_zip = lambda_image_zip(&work, "arm64", &fixtures().bootstrap_arm64, &[]);
    setup
        .aws()
        .create_zip_function("zip-fn", &amd64_zip, "x86_64");
    let arm64_text = arm64_zip.display().to_string();
    let output = setup.deploy(&["--function", "zip-fn", "--zip", &arm64_text]);
    assert_refused(&output, 11, &["x86_64", "arm64", "--architecture"]);
    // --architecture must agree with the bootstrap itself.
    let output = setup.deploy(&[
        "--function",
        "zip-fn",
        "--zip",
        &arm64_text,
        "--architecture",
        "amd64",
    ]);
    assert_refused(&output, 3, &["arm64"]);
    setup.deploy_ok(&[
        "--function",
        "zip-fn",
        "--zip",
        &arm64_text,
        "--architecture",
        "arm64",
    ]);
    let configuration = setup.aws().get_function("zip-fn")["Configuration"].clone();
    assert_eq!(configuration["Architectures"], json!(["arm64"]));
    assert_eq!(configuration["CodeSha256"], super::code_sha256(&arm64_zip));
}

#[test]
fn a_missing_function_needs_create_and_role() {
    let setup = Setup::new();
    setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "amd64", &fixtures().bootstrap_amd64, &[]);
    let zip_text = zip.display().to_string();
    let output = setup.deploy(&["--function", "missing", "--zip", &zip_text]);
    assert_refused(&output, 11, &["missing", "--create --role"]);
    let output = setup.deploy(&["--function", "missing", "--zip", &zip_text, "--create"]);
    assert_refused(&output, 2, &["--role"]);
    let error = setup.aws().get_function_error("missing");
    assert_eq!(error["code"], "ResourceNotFoundException", "{error}");
    let operations = setup.lambda_operations();
    assert!(
        !operations.contains(&"CreateFunction".to_owned()),
        "{operations:?}"
    );
}

// Zips made on Windows or by tools that drop Unix modes unpack on Lambda without execute bits:
// "fork/exec /var/task/bootstrap: permission denied" at the first invoke
// (aws/aws-lambda-go#13, aws/aws-sam-cli#2193, serverless/serverless#3557).
#[test]
fn packages_without_a_runnable_bootstrap_are_refused_before_any_aws_call() {
    let setup = Setup::new();
    let work = setup.dir("packages");
    let data = work.join("data.txt");
    std::fs::write(&data, "data\n").unwrap();
    let amd64 = fixtures().bootstrap_amd64.as_path();
    let cases = [
        (
            "no bootstrap",
            python_zip(&work, "none", &[("main", amd64, Some(0o755))], 0),
            vec!["bootstrap"],
        ),
        (
            "bootstrap in a folder",
            python_zip(&work, "nested", &[("app/bootstrap", amd64, Some(0o755))], 0),
            vec!["bootstrap"],
        ),
        (
            "bootstrap without execute bits",
            python_zip(&work, "mode", &[("bootstrap", amd64, Some(0o644))], 0),
            vec!["bootstrap"],
        ),
        (
            "made on Windows: no Unix mode at all",
            python_zip(&work, "dos", &[("bootstrap", amd64, None)], 0),
            vec!["bootstrap"],
        ),
        (
            "bootstrap not an ELF",
            python_zip(&work, "script", &[("bootstrap", &data, Some(0o755))], 0),
            vec!["bootstrap"],
        ),
    ];
    for (case, zip, expected) in &cases {
        let output = setup.deploy(&[
            "--function",
            "fn",
            "--zip",
            &zip.display().to_string(),
            "--create",
            "--role",
            &role_arn(),
        ]);
        assert_eq!(output.status.code(), Some(3), "{case}");
        assert_refused(&output, 3, expected);
    }
    assert!(
        setup.lambda_operations().is_empty(),
        "{:?}",
        setup.lambda_operations()
    );
}

// Not in the spec; the codes follow the error table: an unreadable zip is a bootstrap problem
// (3), a file that is not there a usage error (2), an image that is not there a missing input
// image (4).
#[test]
fn inputs_that_are_not_there_or_not_packages_are_refused_before_any_lambda_call() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let text = work.join("not.zip");
    std::fs::write(&text, "not a zip").unwrap();
    let text = text.display().to_string();
    let missing_tag = setup.reference("fn:nope");
    let create = ["--create", "--role", &role, "--architecture", "arm64"];
    let cases: [(&[&str], i32, &[&str]); 3] = [
        (&["--zip", &text], 3, &["not.zip", "lambda-image zip"]),
        (
            &["--zip", "/nonexistent/function.zip"],
            2,
            &["/nonexistent/function.zip"],
        ),
        (&["--image", &missing_tag], 4, &["fn:nope"]),
    ];
    for (package, code, expected) in cases {
        let mut args = vec!["--function", "fn"];
        args.extend_from_slice(package);
        args.extend_from_slice(&create);
        let output = setup.deploy(&args);
        assert_refused(&output, code, expected);
    }
    assert!(
        setup.lambda_operations().is_empty(),
        "{:?}",
        setup.lambda_operations()
    );
}
