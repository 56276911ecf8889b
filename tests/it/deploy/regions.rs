//! The function's region: `--region`, else the region of a function ARN, else the AWS
//! environment, else (for an image) the ECR host's; none at all is a usage error naming
//! `--region`. An ECR image is only taken in its own region.

use serde_json::json;

use super::{Setup, assert_refused, lambda_image_zip};
use crate::support::fixtures;
use crate::support::lambda::Aws;

const EU_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:fn";

#[test]
fn a_function_arn_gives_the_region() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_arm64, &[]);
    let zip_text = zip.display().to_string();
    // AWS_REGION says us-east-1; the ARN says eu-west-1 and wins.
    let report = setup.create_from_zip(EU_ARN, &zip_text, &role);
    assert_eq!(report["region"], "eu-west-1", "{report}");
    assert_eq!(report["function_arn"], EU_ARN);
    let europe = Aws::in_region(&setup.moto, "eu-west-1").get_function("fn");
    assert_eq!(europe["Configuration"]["Architectures"], json!(["arm64"]));
    let error = setup.aws().get_function_error("fn");
    assert_eq!(error["code"], "ResourceNotFoundException", "{error}");

    // An image of us-east-1 for that function: refused, both regions named.
    let reference = setup.reference("fn:v1");
    let output = setup.deploy(&["--function", EU_ARN, "--image", &reference]);
    assert_refused(&output, 2, &["us-east-1", "eu-west-1"]);
}

#[test]
fn without_region_or_aws_region_an_image_deploys_in_its_ecr_hosts_region_and_a_zip_is_refused() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let reference = format!("{}/fn:v1", setup.host("eu-west-1"));
    let report = setup.build(&reference, &[&fixtures().bootstrap_amd64], &[]);
    let amd64 = super::arch_digest(&report, "amd64");
    let mut command = setup.deploy_command(&[
        "--function",
        "fn",
        "--image",
        &reference,
        "--create",
        "--role",
        &role,
    ]);
    command
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let output = crate::support::run(&mut command);
    let report = super::json_of(&output);
    assert_eq!(report["region"], "eu-west-1", "{report}");
    let function = Aws::in_region(&setup.moto, "eu-west-1").get_function("fn");
    assert_eq!(
        function["Code"]["ImageUri"],
        format!("{}/fn@{amd64}", setup.host("eu-west-1"))
    );

    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    let mut command = setup.deploy_command(&[
        "--function",
        "zip-fn",
        "--zip",
        &zip.display().to_string(),
        "--create",
        "--role",
        &role,
    ]);
    command
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    let output = crate::support::run_unchecked(&mut command);
    assert_refused(&output, 2, &["--region"]);
}
