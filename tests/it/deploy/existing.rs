//! What a new user met trying `deploy` on functions that already exist and on the command
//! line: an existing zip function's own runtime decides the checks (a python3.12 function
//! cannot run a bootstrap; a bootstrap needing glibc 2.34 or OpenSSL 1.0 cannot run on
//! provided.al2 or provided.al2023), qualified names, aliases that are versions, roles that are
//! not role ARNs, `./bootstrap` entries, and `build --deploy` refusing before it pushes.

use std::path::Path;

use serde_json::json;

use super::packages::openssl_10_bootstrap;
use super::{Setup, assert_refused, lambda_image_zip, python_zip};
use crate::support::fixtures;
use crate::support::fixtures::bootstraps::dynamic_bootstrap;

/// A zip function `name` created directly with `runtime`, from `zip`.
fn zip_function(setup: &Setup, name: &str, runtime: &str, zip: &Path) {
    setup.aws().create_role();
    setup.aws().call(
        "lambda",
        "CreateFunction",
        json!({
            "FunctionName": name,
            "Role": crate::support::lambda::role_arn(),
            "PackageType": "Zip",
            "Runtime": runtime,
            "Handler": "bootstrap",
            "Code": {"ZipFile": {"$file": zip.display().to_string()}},
            "Architectures": ["x86_64"],
        }),
    );
}

#[test]
fn an_existing_functions_runtime_decides_the_checks() {
    let setup = Setup::new();
    let work = setup.dir("packages");
    let static_zip = lambda_image_zip(&work, "static", &fixtures().bootstrap_amd64, &[]);
    let static_text = static_zip.display().to_string();
    // Needs GLIBC_2.34: fine on provided.al2023, not on provided.al2 (glibc 2.26).
    let dynamic = python_zip(
        &work,
        "dynamic",
        &[("bootstrap", &dynamic_bootstrap(&work), Some(0o755))],
        0,
    );
    let dynamic_text = dynamic.display().to_string();
    zip_function(&setup, "on-al2", "provided.al2", &static_zip);
    zip_function(&setup, "on-python", "python3.12", &static_zip);

    let output = setup.deploy(&["--function", "on-al2", "--zip", &dynamic_text]);
    assert_refused(&output, 3, &["GLIBC_2.34", "the bootstrap in"]);
    let stderr = crate::support::stderr_of(&output);
    assert!(!stderr.contains(".lambda-image-deploy-"), "{stderr}");
    // Moving the function to provided.al2023 is said with --runtime, and then it deploys.
    let report = setup.deploy_ok(&[
        "--function",
        "on-al2",
        "--zip",
        &dynamic_text,
        "--runtime",
        "provided.al2023",
    ]);
    assert_eq!(report["runtime"], "provided.al2023", "{report}");
    let configuration = setup.aws().get_function("on-al2")["Configuration"].clone();
    assert_eq!(configuration["Runtime"], "provided.al2023");

    // A python function never runs a bootstrap: refused before anything changes.
    let output = setup.deploy(&["--function", "on-python", "--zip", &static_text]);
    assert_refused(&output, 11, &["python3.12", "provided.al2023"]);
    let operations = setup.lambda_operations();
    assert!(
        !operations
            .iter()
            .any(|operation| operation.contains("UpdateFunctionCode")
                && operation.contains("on-python")),
        "{operations:?}"
    );
}

#[test]
fn a_dot_slash_bootstrap_entry_is_the_bootstrap() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = python_zip(
        &work,
        "dotted",
        &[("./bootstrap", &fixtures().bootstrap_amd64, Some(0o755))],
        0,
    );
    let report = setup.create_from_zip("dotted", &zip.display().to_string(), &role);
    assert_eq!(report["architecture"], "x86_64", "{report}");
}

#[test]
fn qualified_names_version_aliases_and_other_roles_are_refused_before_any_call() {
    let setup = Setup::new();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    let zip_text = zip.display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["--function", "fn:live"], "--alias live"),
        (
            &[
                "--function",
                "arn:aws:lambda:us-east-1:123456789012:function:fn:3",
            ],
            "$LATEST",
        ),
        (&["--function", "my func"], "function name"),
        (&["--function", "fn", "--alias", "5"], "version number"),
        (&["--function", "fn", "--create", "--role", "r"], "role ARN"),
    ];
    for (args, said) in cases {
        let mut args = args.to_vec();
        args.extend(["--zip", &zip_text]);
        let output = setup.deploy(&args);
        assert_refused(&output, 2, &[said]);
    }
    assert!(
        setup.moto.requests().is_empty(),
        "{:?}",
        setup.moto.requests()
    );
}

#[test]
fn build_deploy_refuses_a_two_architecture_create_before_pushing() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let fixtures = fixtures();
    let both: [&Path; 2] = [&fixtures.bootstrap_amd64, &fixtures.bootstrap_arm64];
    let reference = setup.reference("fn:v1");
    let output = crate::support::run_unchecked(&mut setup.build_command(
        &reference,
        &both,
        &["--deploy", "new-fn", "--create", "--role", &role],
    ));
    assert_refused(&output, 2, &["--deploy-architecture arm64"]);
    assert_eq!(setup.registry.count_requests("PUT", "/v2/fn/manifests/"), 0);
}

#[test]
fn an_openssl_1_0_bootstrap_is_refused_for_an_al2023_function_naming_the_library() {
    let setup = Setup::new();
    let work = setup.dir("packages");
    let modern = lambda_image_zip(&work, "modern", &fixtures().bootstrap_amd64, &[]);
    zip_function(&setup, "on-al2023", "provided.al2023", &modern);
    let legacy = python_zip(
        &work,
        "legacy",
        &[("bootstrap", &openssl_10_bootstrap(&work), Some(0o755))],
        0,
    );
    let output = setup.deploy(&[
        "--function",
        "on-al2023",
        "--zip",
        &legacy.display().to_string(),
    ]);
    assert_refused(&output, 3, &["libssl.so.10", "provided.al2023"]);
}

#[test]
fn build_deploy_architecture_chooses_for_new_functions_only() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let fixtures = fixtures();
    let both: [&Path; 2] = [&fixtures.bootstrap_amd64, &fixtures.bootstrap_arm64];
    let reference = setup.reference("fn:v1");
    setup
        .aws()
        .create_image_function("old-fn", &format!("{reference}-amd64"), "x86_64");
    let report = setup.build(
        &reference,
        &both,
        &[
            "--deploy",
            "old-fn",
            "--deploy",
            "new-fn",
            "--deploy",
            "old-fn",
            "--create",
            "--role",
            &role,
            "--deploy-architecture",
            "arm64",
        ],
    );
    let deployments = report["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2, "{report}");
    let architectures =
        |name: &str| setup.aws().get_function(name)["Configuration"]["Architectures"].clone();
    assert_eq!(architectures("old-fn"), json!(["x86_64"]));
    assert_eq!(architectures("new-fn"), json!(["arm64"]));
    // An architecture the build does not make: refused before anything is pushed.
    let output = crate::support::run_unchecked(&mut setup.build_command(
        &setup.reference("other:v1"),
        &[&fixtures.bootstrap_amd64],
        &["--deploy", "old-fn", "--deploy-architecture", "arm64"],
    ));
    assert_refused(&output, 2, &["--deploy-architecture arm64"]);
    assert_eq!(
        setup.registry.count_requests("PUT", "/v2/other/manifests/"),
        0
    );
}
