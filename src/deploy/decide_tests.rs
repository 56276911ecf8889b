//! Unit tests of the decisions that need no AWS call.

use super::*;
use crate::error::ErrorKind;
use Architecture::{Amd64, Arm64};

#[test]
fn a_function_arn_names_its_region() {
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:fn";
    assert_eq!(region_in_function_arn(arn), Some("eu-west-1"));
    assert_eq!(
        region_in_function_arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:fn:live"),
        Some("cn-north-1")
    );
    assert_eq!(region_in_function_arn("fn"), None);
    assert_eq!(region_in_function_arn("123456789012:function:fn"), None);
    assert_eq!(
        region_in_function_arn("arn:aws:lambda::1:function:fn"),
        None
    );
    assert_eq!(region_in_function_arn("arn:aws:s3:us-east-1:1:x"), None);
}

#[test]
fn the_region_comes_from_the_flag_then_the_arn_then_the_sdk_then_the_image() {
    let region = |flag, arn, sdk, image| function_region(flag, arn, sdk, image);
    let all = Some;
    assert_eq!(
        region(all("a-1"), None, all("b-1"), all("c-1")).unwrap(),
        "a-1"
    );
    assert_eq!(
        region(None, all("d-1"), all("b-1"), all("c-1")).unwrap(),
        "d-1"
    );
    assert_eq!(region(None, None, all("b-1"), all("c-1")).unwrap(), "b-1");
    assert_eq!(region(None, None, None, all("c-1")).unwrap(), "c-1");
    assert_eq!(region(all("d-1"), all("d-1"), None, None).unwrap(), "d-1");
    let conflict = region(all("a-1"), all("d-1"), None, None).unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Usage);
    assert!(conflict.message().contains("a-1") && conflict.message().contains("d-1"));
    let none = region(None, None, None, None).unwrap_err();
    assert_eq!(none.kind(), ErrorKind::Usage);
    assert!(none.hint_text().unwrap().contains("--region"));
}

#[test]
fn an_image_from_another_region_is_refused_naming_both() {
    assert!(check_image_region("i", "us-east-1", "us-east-1").is_ok());
    let error = check_image_region("i", "eu-west-1", "us-east-1").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Usage);
    assert!(error.message().contains("eu-west-1") && error.message().contains("us-east-1"));
}

#[test]
fn the_package_type_never_changes() {
    assert!(check_package_kind("f", PackageKind::Zip, PackageKind::Zip).is_ok());
    assert!(check_package_kind("f", PackageKind::Image, PackageKind::Image).is_ok());
    let error = check_package_kind("f", PackageKind::Zip, PackageKind::Image).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Deploy);
    assert!(error.message().contains("package type Zip"), "{error}");
    assert!(error.hint_text().unwrap().contains("--zip"));
    let error = check_package_kind("f", PackageKind::Image, PackageKind::Zip).unwrap_err();
    assert!(error.hint_text().unwrap().contains("--image"));
}

const IMAGE: PackageSource = PackageSource::Image("ecr/fn:v1");
const ZIP: PackageSource = PackageSource::Zip("f.zip");

#[test]
fn an_existing_function_keeps_its_architecture() {
    let both = [Amd64, Arm64];
    assert_eq!(
        choose_architecture("f", Some(Arm64), None, &both, IMAGE, "--architecture").unwrap(),
        (Arm64, false)
    );
    assert_eq!(
        choose_architecture("f", Some(Amd64), None, &[Amd64], ZIP, "--architecture").unwrap(),
        (Amd64, false)
    );
}

#[test]
fn another_architecture_needs_the_flag_and_then_changes_the_function() {
    let refused =
        choose_architecture("f", Some(Arm64), None, &[Amd64], IMAGE, "--architecture").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Deploy);
    assert!(refused.message().contains("exec format error"), "{refused}");
    assert!(
        refused
            .hint_text()
            .unwrap()
            .contains("--architecture x86_64")
    );
    let refused =
        choose_architecture("f", Some(Amd64), None, &[Arm64], ZIP, "--architecture").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Deploy);
    assert_eq!(
        choose_architecture(
            "f",
            Some(Arm64),
            Some(Amd64),
            &[Amd64],
            IMAGE,
            "--architecture"
        )
        .unwrap(),
        (Amd64, true)
    );
    assert_eq!(
        choose_architecture(
            "f",
            Some(Arm64),
            Some(Arm64),
            &[Amd64, Arm64],
            IMAGE,
            "--architecture"
        )
        .unwrap(),
        (Arm64, false)
    );
}

#[test]
fn the_flag_must_name_an_architecture_the_package_has() {
    let image =
        choose_architecture("f", None, Some(Arm64), &[Amd64], IMAGE, "--architecture").unwrap_err();
    assert_eq!(image.kind(), ErrorKind::Base);
    let zip = choose_architecture(
        "f",
        Some(Amd64),
        Some(Arm64),
        &[Amd64],
        ZIP,
        "--architecture",
    )
    .unwrap_err();
    assert_eq!(zip.kind(), ErrorKind::Bootstrap);
    assert!(zip.hint_text().unwrap().contains("GOARCH=arm64"));
    let zip =
        choose_architecture("f", None, Some(Amd64), &[Arm64], ZIP, "--architecture").unwrap_err();
    assert!(zip.hint_text().unwrap().contains("GOARCH=amd64"));
}

#[test]
fn a_new_function_takes_the_only_architecture_or_the_flag() {
    assert_eq!(
        choose_architecture("f", None, None, &[Arm64], IMAGE, "--architecture").unwrap(),
        (Arm64, false)
    );
    assert_eq!(
        choose_architecture(
            "f",
            None,
            Some(Arm64),
            &[Amd64, Arm64],
            IMAGE,
            "--architecture"
        )
        .unwrap(),
        (Arm64, false)
    );
    let two =
        choose_architecture("f", None, None, &[Amd64, Arm64], IMAGE, "--architecture").unwrap_err();
    assert_eq!(two.kind(), ErrorKind::Usage);
    assert!(two.message().contains("x86_64 and arm64"), "{two}");
    assert!(two.message().contains("ecr/fn:v1 has images"), "{two}");
    let script = choose_architecture(
        "f",
        None,
        None,
        &[Amd64, Arm64],
        ZIP,
        "--deploy-architecture",
    )
    .unwrap_err();
    assert!(script.message().contains("script"), "{script}");
    assert!(
        script
            .hint_text()
            .unwrap()
            .contains("--deploy-architecture arm64")
    );
}

#[test]
fn a_denial_names_the_action_aws_names_or_the_operation() {
    let message = "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: \
                   iam:PassRole on resource: arn:aws:iam::123456789012:role/fn";
    assert_eq!(denied_action(message, "CreateFunction"), "iam:PassRole");
    let message = "User: x is not authorized to perform: lambda:UpdateFunctionCode on resource";
    assert_eq!(
        denied_action(message, "CreateFunction"),
        "lambda:UpdateFunctionCode"
    );
    assert_eq!(
        denied_action("Access denied", "PublishVersion"),
        "lambda:PublishVersion"
    );
    assert_eq!(
        denied_action("not authorized to perform: nothing", "GetFunction"),
        "lambda:GetFunction"
    );
    assert_eq!(
        denied_action("not authorized to perform: :x", "GetFunction"),
        "lambda:GetFunction"
    );
}

#[test]
fn function_names_and_arns_without_a_qualifier() {
    for good in [
        "my-function_1",
        "arn:aws:lambda:eu-west-1:123456789012:function:fn",
        "arn:aws-cn:lambda:cn-north-1:123456789012:function:fn",
        "123456789012:function:fn",
        &"a".repeat(64),
    ] {
        assert_eq!(parse_function(good).as_deref(), Ok(good), "{good}");
    }
    let qualified = parse_function("fn:live").unwrap_err();
    assert!(qualified.contains("--alias live"), "{qualified}");
    assert!(parse_function("arn:aws:lambda:eu-west-1:123456789012:function:fn:3").is_err());
    for bad in [
        "",
        "my func",
        &"a".repeat(65),
        "arn:aws:s3:::bucket",
        "arn:aws:lambda:eu-west-1:123456789012:function:",
        "arn:aws:lambda:eu-west-1:1234:function:fn",
        "arn:aws:lambda::123456789012:function:fn",
    ] {
        assert!(parse_function(bad).is_err(), "{bad}");
    }
}

#[test]
fn alias_names_are_not_versions() {
    assert_eq!(parse_alias("live").as_deref(), Ok("live"));
    assert_eq!(parse_alias("v2").as_deref(), Ok("v2"));
    assert_eq!(parse_alias("a-b_c").as_deref(), Ok("a-b_c"));
    assert!(parse_alias(&"a".repeat(128)).is_ok());
    for bad in ["", "5", "42", "$LATEST", "a.b", &"a".repeat(129)] {
        assert!(parse_alias(bad).is_err(), "{bad}");
    }
}

#[test]
fn roles_are_iam_role_arns() {
    for good in [
        "arn:aws:iam::123456789012:role/r",
        "arn:aws:iam::123456789012:role/service-role/my-role",
        "arn:aws-us-gov:iam::123456789012:role/r",
    ] {
        assert_eq!(parse_role(good).as_deref(), Ok(good));
    }
    for bad in [
        "r",
        "arn:aws:iam::123456789012:user/r",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam:us-east-1:123456789012:role/r",
        "arn:aws:iam::12345:role/r",
        "arn::iam::123456789012:role/r",
    ] {
        assert!(parse_role(bad).is_err(), "{bad}");
    }
}

#[test]
fn env_names_are_lambdas_and_not_reserved() {
    let pair = parse_env("LOG_LEVEL=debug=1").unwrap();
    assert_eq!(
        (pair.key.as_str(), pair.value.as_str()),
        ("LOG_LEVEL", "debug=1")
    );
    assert!(parse_env("a1_B=").is_ok());
    for bad in [
        "1A=x",
        "_X=x",
        "A-B=x",
        "=x",
        "A B=x",
        "AWS_REGION=x",
        "_HANDLER=x",
        "LAMBDA_TASK_ROOT=x",
    ] {
        assert!(parse_env(bad).is_err(), "{bad}");
    }
}

#[test]
fn descriptions_buckets_and_keys_within_their_limits() {
    assert!(parse_description(&"é".repeat(256)).is_ok());
    assert!(parse_description(&"a".repeat(257)).is_err());
    for good in ["abc", "my.bucket-1", &"a".repeat(63)] {
        assert!(parse_bucket(good).is_ok(), "{good}");
    }
    for bad in [
        "ab",
        "Bad_Bucket!",
        "-abc",
        "abc-",
        ".abc",
        &"a".repeat(64),
        "ABC",
    ] {
        assert!(parse_bucket(bad).is_err(), "{bad}");
    }
    assert!(parse_s3_key("k").is_ok());
    assert!(parse_s3_key(&"k".repeat(1024)).is_ok());
    assert!(parse_s3_key("").is_err());
    assert!(parse_s3_key(&"k".repeat(1025)).is_err());
}

#[test]
fn a_version_qualifier_is_not_offered_as_an_alias() {
    let latest = parse_function("fn:$LATEST").unwrap_err();
    assert!(!latest.contains("--alias"), "{latest}");
    let number = parse_function("123456789012:function:fn:3").unwrap_err();
    assert!(number.contains("without `:3`"), "{number}");
}
