//! Image functions: created and updated by the digest of the architecture's own manifest, never
//! a tag or the index, and `build --tag ECR_REF --deploy NAME` from bootstrap to function in one
//! command.

use std::path::Path;

use serde_json::{Value, json};

use super::{Setup, arch_digest, assert_refused, json_of};
use crate::support::ecr::MOTO_PASSWORD;
use crate::support::lambda::REGION;
use crate::support::{fixtures, sha256_hex};

/// The function's image, as Lambda holds it: `Code.ImageUri`, and the configuration.
fn image_of(setup: &Setup, name: &str) -> (String, Value) {
    let function = setup.aws().get_function(name);
    let uri = function["Code"]["ImageUri"].as_str().unwrap().to_owned();
    (uri, function["Configuration"].clone())
}

/// `uri` names the repository `repository` in us-east-1's ECR host by `digest`: not a tag, not
/// the index.
fn assert_by_digest(setup: &Setup, uri: &str, repository: &str, digest: &str, index: &str) {
    assert_eq!(uri, format!("{}@{digest}", setup.reference(repository)));
    assert!(!uri.contains(index), "{uri} is the index");
}

// Reported: Lambda refuses an image index ("The image manifest, config or layer media type
// for the source image ... is not supported", aws/aws-lambda-roadmap#82, docker/buildx#1533),
// and a function given a tag keeps the image the tag named at deploy time, so pushing the tag
// again redeploys nothing (terraform-aws-modules/terraform-aws-lambda#611,
// aws-cloudformation/cloudformation-cli#853; serverless/serverless#8683 resolves the digest for
// that reason). The function must always get the per-architecture manifest's digest.
#[test]
fn an_image_function_is_created_then_updated_by_its_architectures_manifest_digest() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let fixtures = fixtures();
    let both: [&Path; 2] = [&fixtures.bootstrap_amd64, &fixtures.bootstrap_arm64];
    let v1_ref = setup.reference("fn:v1");
    let v1 = setup.build(&v1_ref, &both, &[]);
    let v1_index = v1["index"]["digest"].as_str().unwrap().to_owned();

    let report = setup.deploy_ok(&[
        "--function",
        "fn",
        "--image",
        &v1_ref,
        "--create",
        "--role",
        &role,
        "--architecture",
        "arm64",
    ]);
    let v1_arm64 = arch_digest(&v1, "arm64");
    let (uri, configuration) = image_of(&setup, "fn");
    assert_by_digest(&setup, &uri, "fn", &v1_arm64, &v1_index);
    assert_eq!(configuration["Architectures"], serde_json::json!(["arm64"]));
    assert_eq!(configuration["PackageType"], "Image");
    let resolved = setup.aws().get_function("fn")["Code"]["ResolvedImageUri"].clone();
    assert_eq!(resolved, uri.as_str());
    assert_eq!(report["created"], true, "{report}");
    assert_eq!(report["function_name"], "fn");
    assert_eq!(
        report["function_arn"],
        format!("arn:aws:lambda:{REGION}:123456789012:function:fn")
    );
    assert_eq!(report["region"], REGION);
    assert_eq!(report["package_type"], "Image");
    assert_eq!(report["architecture"], "arm64");
    assert_eq!(report["image_uri"], uri.as_str());
    assert_eq!(report["image_digest"], v1_arm64.as_str());
    assert_eq!(report["version"], "$LATEST");
    assert_eq!(report["state"], "Active");
    assert!(report["elapsed_seconds"].as_f64().unwrap() >= 0.0);
    // moto, patched as AWS answers: CodeSha256 of an image is its manifest digest's hex.
    assert_eq!(
        report["code_sha256"],
        v1_arm64.trim_start_matches("sha256:")
    );

    // A new build under a new tag: the update follows the function's own architecture
    // (arm64, no flag needed) to v2's arm64 manifest.
    let work = setup.dir("v2");
    std::fs::write(work.join("VERSION"), "v2\n").unwrap();
    let include = format!("{}:/var/task/VERSION", work.join("VERSION").display());
    let v2_ref = setup.reference("fn:v2");
    let v2 = setup.build(&v2_ref, &both, &["--include", &include]);
    let v2_arm64 = arch_digest(&v2, "arm64");
    assert_ne!(v2_arm64, v1_arm64, "the include changes the image");
    let report = setup.deploy_ok(&["--function", "fn", "--image", &v2_ref]);
    let (uri, configuration) = image_of(&setup, "fn");
    assert_by_digest(
        &setup,
        &uri,
        "fn",
        &v2_arm64,
        v2["index"]["digest"].as_str().unwrap(),
    );
    assert_eq!(configuration["Architectures"], serde_json::json!(["arm64"]));
    assert_eq!(report["created"], false, "{report}");
    assert_eq!(report["image_digest"], v2_arm64.as_str());
    assert_eq!(report["last_update_status"], "Successful");

    // Given by digest (the index's), the same resolution to the arm64 manifest.
    let by_index = format!(
        "{}@{}",
        setup.reference("fn"),
        v1["index"]["digest"].as_str().unwrap()
    );
    setup.deploy_ok(&["--function", "fn", "--image", &by_index]);
    let (uri, _) = image_of(&setup, "fn");
    assert_by_digest(&setup, &uri, "fn", &v1_arm64, &v1_index);
    let operations = setup.lambda_operations();
    assert_eq!(
        operations
            .iter()
            .filter(|operation| *operation == "CreateFunction")
            .count(),
        1,
        "{operations:?}"
    );
}

#[test]
fn build_with_deploy_pushes_then_deploys_and_reports_each_function() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let fixtures = fixtures();
    let both: [&Path; 2] = [&fixtures.bootstrap_amd64, &fixtures.bootstrap_arm64];
    let reference = setup.reference("fn:v1");

    // A function that exists (x86_64, made by other tools) gets the amd64 manifest.
    setup.aws().create_image_function(
        "existing",
        &format!("{}@sha256:{}", setup.reference("fn"), "0".repeat(64)),
        "x86_64",
    );
    let report = setup.build(&reference, &both, &["--deploy", "existing"]);
    let index = report["index"]["digest"].as_str().unwrap().to_owned();
    let deployments = report["deployments"]
        .as_array()
        .unwrap_or_else(|| panic!("no deployments in {report}"));
    assert_eq!(deployments.len(), 1, "{report}");
    let deployment = &deployments[0];
    let amd64 = arch_digest(&report, "amd64");
    let (uri, configuration) = image_of(&setup, "existing");
    assert_by_digest(&setup, &uri, "fn", &amd64, &index);
    assert_eq!(
        configuration["Architectures"],
        serde_json::json!(["x86_64"])
    );
    assert_eq!(deployment["function_name"], "existing");
    assert_eq!(deployment["created"], false);
    assert_eq!(deployment["architecture"], "x86_64");
    assert_eq!(deployment["image_uri"], uri.as_str());
    assert_eq!(deployment["image_digest"], amd64.as_str());
    // The image in the registry is the one built and reported.
    let raw = setup.registry.skopeo_inspect_raw("fn:v1");
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), index);

    // Two functions created by one build, in the architecture asked for.
    let report = setup.build(
        &reference,
        &both,
        &[
            "--deploy",
            "first",
            "--deploy",
            "second",
            "--create",
            "--role",
            &role,
            "--deploy-architecture",
            "arm64",
            "--alias",
            "live",
        ],
    );
    let arm64 = arch_digest(&report, "arm64");
    let deployments = report["deployments"].as_array().unwrap();
    let names: Vec<&str> = deployments
        .iter()
        .map(|deployment| deployment["function_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second"], "{report}");
    for deployment in deployments {
        let name = deployment["function_name"].as_str().unwrap();
        let (uri, configuration) = image_of(&setup, name);
        assert_by_digest(&setup, &uri, "fn", &arm64, &index);
        assert_eq!(configuration["Architectures"], serde_json::json!(["arm64"]));
        assert_eq!(deployment["created"], true, "{deployment}");
        assert_eq!(deployment["architecture"], "arm64");
        assert_eq!(deployment["image_digest"], arm64.as_str());
        assert_eq!(deployment["version"], "1", "{deployment}");
        assert_eq!(deployment["alias"]["name"], "live");
        assert_eq!(setup.aws().get_alias(name, "live")["FunctionVersion"], "1");
    }
}

#[test]
fn a_new_function_takes_the_only_architecture_an_image_has_or_needs_architecture() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let fixtures = fixtures();
    let both: [&Path; 2] = [&fixtures.bootstrap_amd64, &fixtures.bootstrap_arm64];
    let two = setup.reference("fn:two");
    let two_report = setup.build(&two, &both, &[]);
    let one = setup.reference("fn:one");
    let one_report = setup.build(&one, &[&fixtures.bootstrap_arm64], &[]);

    // Two architectures and no --architecture: which one is the user's to say.
    let output = setup.deploy(&[
        "--function",
        "new",
        "--image",
        &two,
        "--create",
        "--role",
        &role,
    ]);
    assert_refused(&output, 2, &["--architecture"]);
    assert!(
        !setup
            .lambda_operations()
            .contains(&"CreateFunction".to_owned()),
        "{:?}",
        setup.lambda_operations()
    );

    // One architecture: that one.
    let report = setup.deploy_ok(&[
        "--function",
        "new",
        "--image",
        &one,
        "--create",
        "--role",
        &role,
    ]);
    let arm64 = arch_digest(&one_report, "arm64");
    let (uri, configuration) = image_of(&setup, "new");
    assert_eq!(uri, format!("{}@{arm64}", setup.reference("fn")));
    assert_eq!(configuration["Architectures"], serde_json::json!(["arm64"]));
    assert_eq!(report["architecture"], "arm64");

    // A manifest given by its own digest (not an index) is taken as it is.
    let amd64 = arch_digest(&two_report, "amd64");
    let by_manifest = format!("{}@{amd64}", setup.reference("fn"));
    setup.deploy_ok(&[
        "--function",
        "by-manifest",
        "--image",
        &by_manifest,
        "--create",
        "--role",
        &role,
    ]);
    let (uri, configuration) = image_of(&setup, "by-manifest");
    assert_eq!(uri, by_manifest);
    assert_eq!(
        configuration["Architectures"],
        serde_json::json!(["x86_64"])
    );
}

#[test]
fn build_with_deploy_refuses_a_tag_outside_ecr_and_reports_a_failed_deployment() {
    let setup = Setup::new();
    let fixtures = fixtures();
    let both: [&Path; 2] = [&fixtures.bootstrap_amd64, &fixtures.bootstrap_arm64];
    // Not an ECR host: Lambda could not take it; refused before building or pushing.
    let plain = format!("127.0.0.1:{}/fn:v1", setup.registry.port());
    let output = crate::support::run_unchecked(&mut setup.build_command(
        &plain,
        &both,
        &["--creds", &format!("AWS:{MOTO_PASSWORD}"), "--deploy", "fn"],
    ));
    assert_refused(&output, 2, &["ECR"]);
    assert_eq!(setup.registry.count_requests("PUT", "/v2/fn/manifests/"), 0);
    assert!(
        setup.moto.requests().is_empty(),
        "{:?}",
        setup.moto.requests()
    );

    // No such function (and no --create): found by looking it up before building, so nothing
    // is pushed.
    let reference = setup.reference("fn:v1");
    let output = crate::support::run_unchecked(&mut setup.build_command(
        &reference,
        &both,
        &["--deploy", "missing"],
    ));
    assert_refused(&output, 11, &["missing", "--create --role"]);
    assert_eq!(setup.registry.count_requests("PUT", "/v2/fn/manifests/"), 0);

    // The push works and the update fails (Lambda's LastUpdateStatus Failed): exit 11, the
    // build's report (with its digests) still on stdout with the error, the image pushed, and
    // the command that deploys it again.
    setup
        .aws()
        .create_image_function("fn", &format!("{reference}-amd64"), "x86_64");
    setup.moto.set_knobs(&json!({
        "MOTO_LAMBDA_PENDING_POLLS": 1,
        "MOTO_LAMBDA_FAIL_REASON": "The image cannot be read.",
    }));
    let output = crate::support::run_unchecked(&mut setup.build_command(
        &reference,
        &both,
        &["--deploy", "fn"],
    ));
    let again = format!("lambda-image deploy --function fn --image {reference}");
    assert_refused(
        &output,
        11,
        &["The image cannot be read.", "pushed", &again],
    );
    let report = json_of(&output);
    assert_eq!(report["images"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["error"]["kind"], "deploy", "{report}");
    let tags = setup.registry.tags("fn", Some(("AWS", MOTO_PASSWORD)));
    assert!(tags.contains(&"v1".to_owned()), "{tags:?}");
}
