//! After the call: waiting until Lambda says the function is ready (or failed, with its reason),
//! `--no-wait`, and refusals of the IAM policy named by their action. moto's knobs
//! (`moto_lambda.py`) make it answer `Pending`/`InProgress` for a few polls, end in `Failed`, or
//! deny an operation as AWS words it.

use serde_json::json;

use super::{Setup, assert_refused, lambda_image_zip, marked_bootstrap};
use crate::support::fixtures;

/// The operations after the last `marker` in `operations`.
fn after_last<'a>(operations: &'a [String], marker: &str) -> &'a [String] {
    let at = operations
        .iter()
        .rposition(|operation| operation == marker)
        .unwrap_or_else(|| panic!("no {marker} in {operations:?}"));
    &operations[at + 1..]
}

fn polls(operations: &[String]) -> usize {
    operations
        .iter()
        .filter(|operation| operation.starts_with("GetFunction"))
        .count()
}

// Calls made while a function is still updating fail with ResourceConflictException "An update
// is in progress" (SeanRoy/lambda-maven-plugin#117, motdotla/node-lambda#535,
// appleboy/lambda-action#46): each step has to wait for the one before. moto, patched, answers
// such calls that way too.
#[test]
fn each_step_waits_until_lambda_says_the_function_is_ready() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    setup
        .moto
        .set_knobs(&json!({"MOTO_LAMBDA_PENDING_POLLS": 3}));

    // Created: Pending for 3 polls, then Active.
    let report = setup.create_from_zip("fn", &zip.display().to_string(), &role);
    assert_eq!(report["state"], "Active", "{report}");
    let operations = setup.lambda_operations();
    assert!(
        polls(after_last(&operations, "CreateFunction")) >= 3,
        "{operations:?}"
    );

    // Configuration and code: each waited for (else moto answers 409), environment merged.
    setup.moto.set_knobs(&json!({}));
    setup.aws().call(
        "lambda",
        "UpdateFunctionConfiguration",
        json!({"FunctionName": "fn", "Environment": {"Variables": {"KEPT": "yes"}}}),
    );
    setup
        .moto
        .set_knobs(&json!({"MOTO_LAMBDA_PENDING_POLLS": 3}));
    let second = lambda_image_zip(&work, "two", &marked_bootstrap(&work, "amd64", "two"), &[]);
    let report = setup.deploy_ok(&[
        "--function",
        "fn",
        "--zip",
        &second.display().to_string(),
        "--memory",
        "256",
        "--timeout",
        "30",
        "--env",
        "ADDED=1",
        "--description",
        "second",
        "--publish",
    ]);
    assert_eq!(report["last_update_status"], "Successful", "{report}");
    assert_eq!(report["version"], "1");
    let operations = setup.lambda_operations();
    let configuration_at = operations
        .iter()
        .rposition(|operation| operation == "UpdateFunctionConfiguration")
        .unwrap();
    let code_at = operations
        .iter()
        .rposition(|operation| operation == "UpdateFunctionCode")
        .unwrap();
    assert!(configuration_at < code_at, "{operations:?}");
    assert!(
        polls(&operations[configuration_at..code_at]) >= 3,
        "{operations:?}"
    );
    assert!(
        polls(after_last(&operations, "UpdateFunctionCode")) >= 3,
        "{operations:?}"
    );
    setup.moto.set_knobs(&json!({}));
    let configuration = setup.aws().get_function("fn")["Configuration"].clone();
    assert_eq!(configuration["MemorySize"], 256);
    assert_eq!(configuration["Timeout"], 30);
    assert_eq!(configuration["Description"], "second");
    assert_eq!(
        configuration["Environment"]["Variables"],
        json!({"KEPT": "yes", "ADDED": "1"})
    );
    assert_eq!(configuration["CodeSha256"], super::code_sha256(&second));
}

#[test]
fn a_failed_update_or_creation_exits_11_with_lambdas_reason() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    let zip_text = zip.display().to_string();
    setup.create_from_zip("fn", &zip_text, &role);

    let reason = "Lambda was unable to configure access to your environment variables because \
                  the KMS key is invalid for CreateGrant.";
    setup.moto.set_knobs(&json!({
        "MOTO_LAMBDA_PENDING_POLLS": 1,
        "MOTO_LAMBDA_FAIL_REASON": reason,
        "MOTO_LAMBDA_FAIL_CODE": "KMSKeyNotFound",
    }));
    let output = setup.deploy(&["--function", "fn", "--zip", &zip_text]);
    assert_refused(&output, 11, &[reason]);
    // A creation that fails: State Failed, its StateReason.
    let output = setup.deploy(&[
        "--function",
        "other",
        "--zip",
        &zip_text,
        "--create",
        "--role",
        &role,
    ]);
    assert_refused(&output, 11, &[reason]);
}

#[test]
fn no_wait_returns_while_lambda_is_still_updating() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    setup.create_from_zip("fn", &zip.display().to_string(), &role);
    setup
        .moto
        .set_knobs(&json!({"MOTO_LAMBDA_PENDING_POLLS": 3}));
    let second = lambda_image_zip(&work, "two", &marked_bootstrap(&work, "amd64", "two"), &[]);
    let report = setup.deploy_ok(&[
        "--function",
        "fn",
        "--zip",
        &second.display().to_string(),
        "--no-wait",
    ]);
    assert_eq!(report["last_update_status"], "InProgress", "{report}");
    // Nothing read after the call: its own answer is the report.
    let operations = setup.lambda_operations();
    assert_eq!(
        polls(after_last(&operations, "UpdateFunctionCode")),
        0,
        "{operations:?}"
    );
    let configuration = setup.aws().get_function("fn")["Configuration"].clone();
    assert_eq!(configuration["LastUpdateStatus"], "InProgress");

    // The next deploy finds the update still in progress and waits for it first (moto, as
    // AWS, answers 409 to an update made meanwhile).
    let third = lambda_image_zip(
        &work,
        "three",
        &marked_bootstrap(&work, "amd64", "three"),
        &[],
    );
    let report = setup.deploy_ok(&["--function", "fn", "--zip", &third.display().to_string()]);
    assert_eq!(report["last_update_status"], "Successful", "{report}");
    assert_eq!(report["code_sha256"], super::code_sha256(&third));
}

#[test]
fn access_denied_names_the_iam_action() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    let zip_text = zip.display().to_string();
    setup.create_from_zip("fn", &zip_text, &role);

    setup
        .moto
        .set_knobs(&json!({"MOTO_LAMBDA_DENY": "UpdateFunctionCode"}));
    let output = setup.deploy(&["--function", "fn", "--zip", &zip_text]);
    assert_refused(&output, 11, &["lambda:UpdateFunctionCode"]);

    setup
        .moto
        .set_knobs(&json!({"MOTO_LAMBDA_DENY": "CreateFunction=iam:PassRole"}));
    let output = setup.deploy(&[
        "--function",
        "new",
        "--zip",
        &zip_text,
        "--create",
        "--role",
        &role,
    ]);
    assert_refused(&output, 11, &["iam:PassRole"]);

    setup
        .moto
        .set_knobs(&json!({"MOTO_LAMBDA_DENY": "GetFunction,GetFunctionConfiguration"}));
    let output = setup.deploy(&["--function", "fn", "--zip", &zip_text]);
    assert_refused(&output, 11, &["lambda:GetFunction"]);
}

#[test]
fn waiting_shows_progress_lines_unless_quiet() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let zip = lambda_image_zip(&work, "one", &fixtures().bootstrap_amd64, &[]);
    let zip_text = zip.display().to_string();
    setup.create_from_zip("fn", &zip_text, &role);
    for (quiet, marker) in [(false, "one"), (true, "two")] {
        setup
            .moto
            .set_knobs(&json!({"MOTO_LAMBDA_PENDING_POLLS": 2}));
        let next = lambda_image_zip(
            &work,
            marker,
            &marked_bootstrap(&work, "amd64", marker),
            &[],
        );
        let next_text = next.display().to_string();
        let mut args = vec!["deploy", "--function", "fn", "--zip", &next_text];
        if quiet {
            args.push("-q");
        }
        let output = crate::support::run(&mut setup.command(&args));
        let stderr = crate::support::stderr_of(&output);
        let waiting = stderr
            .lines()
            .filter(|line| line.contains("InProgress"))
            .count();
        if quiet {
            assert_eq!(stderr, "", "-q");
        } else {
            assert!(waiting >= 1, "no progress line while waiting:\n{stderr}");
        }
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            stdout.starts_with("deployed fn (x86_64, updated)"),
            "{stdout}"
        );
    }
}
