//! `--publish` and `--alias`: a version published from what was deployed, and an alias that
//! follows each deployment.

use serde_json::Value;

use super::{Setup, code_sha256, lambda_image_zip, marked_bootstrap};

#[test]
fn publish_makes_a_version_and_alias_points_at_each_new_one() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let work = setup.dir("packages");
    let first = lambda_image_zip(
        &work,
        "first",
        &marked_bootstrap(&work, "amd64", "one"),
        &[],
    );
    let second = lambda_image_zip(
        &work,
        "second",
        &marked_bootstrap(&work, "amd64", "two"),
        &[],
    );
    let third = lambda_image_zip(
        &work,
        "third",
        &marked_bootstrap(&work, "amd64", "three"),
        &[],
    );

    // --publish alone: version 1, no alias.
    let report = setup.deploy_ok(&[
        "--function",
        "fn",
        "--zip",
        &first.display().to_string(),
        "--create",
        "--role",
        &role,
        "--publish",
    ]);
    assert_eq!(report["version"], "1", "{report}");
    assert_eq!(report["alias"], Value::Null);
    let versions = setup.aws().published_versions("fn");
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0]["Version"], "1");
    assert_eq!(versions[0]["CodeSha256"], code_sha256(&first));

    // --alias implies --publish: version 2, and the alias made for it.
    let report = setup.deploy_ok(&[
        "--function",
        "fn",
        "--zip",
        &second.display().to_string(),
        "--alias",
        "live",
    ]);
    assert_eq!(report["version"], "2", "{report}");
    let alias = setup.aws().get_alias("fn", "live");
    assert_eq!(alias["FunctionVersion"], "2", "{alias}");
    assert_eq!(report["alias"]["name"], "live");
    assert_eq!(report["alias"]["version"], "2");
    assert_eq!(report["alias"]["arn"], alias["AliasArn"]);

    // The next deployment moves the alias.
    let report = setup.deploy_ok(&[
        "--function",
        "fn",
        "--zip",
        &third.display().to_string(),
        "--alias",
        "live",
    ]);
    assert_eq!(report["version"], "3", "{report}");
    let alias = setup.aws().get_alias("fn", "live");
    assert_eq!(alias["FunctionVersion"], "3", "{alias}");
    let versions = setup.aws().published_versions("fn");
    let shas: Vec<&Value> = versions
        .iter()
        .map(|version| &version["CodeSha256"])
        .collect();
    assert_eq!(
        shas,
        [
            &Value::from(code_sha256(&first)),
            &Value::from(code_sha256(&second)),
            &Value::from(code_sha256(&third))
        ]
    );
    let operations = setup.lambda_operations();
    assert!(
        operations.contains(&"CreateAlias".to_owned()),
        "{operations:?}"
    );
    assert!(
        operations.contains(&"UpdateAlias".to_owned()),
        "{operations:?}"
    );

    // --no-wait cannot go with either (clap refuses the combination).
    for flag in [&["--publish"][..], &["--alias", "live"]] {
        let mut args = vec!["--function", "fn", "--zip", "unused.zip", "--no-wait"];
        args.extend_from_slice(flag);
        let output = setup.deploy(&args);
        assert_eq!(output.status.code(), Some(2), "{flag:?}");
    }
}
