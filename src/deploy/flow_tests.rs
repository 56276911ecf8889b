//! Unit tests of the deployment's steps, over a fake Lambda that records the calls and plays a
//! function's states.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use super::*;
use crate::deploy::ImagePackage;
use crate::deploy::api::AliasFacts;
use crate::digest::Sha256Digest;
use crate::error::ErrorKind;
use crate::image::config::KeyValue;
use crate::platform::Architecture;

/// A fake Lambda: one function (or none), the calls made, and states to answer `GetFunction`
/// with before the function's own.
#[derive(Default)]
struct FakeLambda {
    function: RefCell<Option<FunctionFacts>>,
    calls: RefCell<Vec<String>>,
    /// Answers `GetFunction` gives first, in order, instead of the function.
    pending: RefCell<VecDeque<FunctionFacts>>,
}

impl FakeLambda {
    fn with(function: FunctionFacts) -> Self {
        let fake = FakeLambda::default();
        *fake.function.borrow_mut() = Some(function);
        fake
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

fn image_function(architecture: Architecture) -> FunctionFacts {
    FunctionFacts {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:f".to_owned(),
        package_type: Some(PackageKind::Image),
        architecture: Some(architecture),
        state: Some("Active".to_owned()),
        last_update_status: Some("Successful".to_owned()),
        version: Some("$LATEST".to_owned()),
        ..FunctionFacts::default()
    }
}

impl FunctionApi for FakeLambda {
    fn get(&self, _name: &str) -> Result<Option<FunctionFacts>> {
        self.calls.borrow_mut().push("GetFunction".to_owned());
        if let Some(next) = self.pending.borrow_mut().pop_front() {
            return Ok(Some(next));
        }
        Ok(self.function.borrow().clone())
    }

    fn create(&self, function: &NewFunction) -> Result<FunctionFacts> {
        let Code::Image(uri) = function.code else {
            panic!("images only here")
        };
        self.calls.borrow_mut().push(format!(
            "CreateFunction {uri} {}",
            function.architecture.lambda_name()
        ));
        let mut created = image_function(function.architecture);
        created.image_uri = Some(uri.to_owned());
        created.resolved_image_uri = Some(uri.to_owned());
        created.environment = function.settings.environment.clone().unwrap_or_default();
        *self.function.borrow_mut() = Some(created.clone());
        Ok(created)
    }

    fn update_configuration(&self, _name: &str, settings: &Settings) -> Result<FunctionFacts> {
        let environment = settings.environment.clone().unwrap_or_default();
        self.calls.borrow_mut().push(format!(
            "UpdateFunctionConfiguration {}",
            environment
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(",")
        ));
        let mut function = self.function.borrow_mut();
        let function = function.as_mut().unwrap();
        function.environment = environment;
        Ok(function.clone())
    }

    fn update_code(
        &self,
        _name: &str,
        code: Code,
        architecture: Architecture,
    ) -> Result<FunctionFacts> {
        let Code::Image(uri) = code else {
            panic!("images only here")
        };
        self.calls.borrow_mut().push(format!(
            "UpdateFunctionCode {uri} {}",
            architecture.lambda_name()
        ));
        let mut function = self.function.borrow_mut();
        let function = function.as_mut().unwrap();
        function.image_uri = Some(uri.to_owned());
        function.resolved_image_uri = Some(uri.to_owned());
        function.architecture = Some(architecture);
        Ok(function.clone())
    }

    fn publish(&self, _name: &str, code_sha256: &str) -> Result<FunctionFacts> {
        self.calls
            .borrow_mut()
            .push(format!("PublishVersion {code_sha256}"));
        let mut version = self.function.borrow().clone().unwrap();
        version.version = Some("7".to_owned());
        Ok(version)
    }

    fn point_alias(&self, _name: &str, alias: &str, version: &str) -> Result<AliasFacts> {
        self.calls
            .borrow_mut()
            .push(format!("PointAlias {alias} {version}"));
        Ok(AliasFacts {
            arn: format!("arn:alias:{alias}"),
            version: version.to_owned(),
        })
    }

    fn upload(&self, _bucket: &str, _key: &str, _path: &Path) -> Result<()> {
        unreachable!("no S3 here")
    }
}

fn digest(byte: char) -> Sha256Digest {
    format!("sha256:{}", byte.to_string().repeat(64))
        .parse()
        .unwrap()
}

fn image(architectures: &[(Architecture, char)]) -> Package {
    Package::Image(ImagePackage {
        shown: "ecr/fn:v1".to_owned(),
        repository: "ecr/fn".to_owned(),
        manifests: architectures
            .iter()
            .map(|(architecture, byte)| (*architecture, digest(*byte)))
            .collect::<BTreeMap<_, _>>(),
    })
}

fn request() -> DeployRequest {
    DeployRequest {
        function: "f".to_owned(),
        wait: true,
        quiet: true,
        ..DeployRequest::default()
    }
}

#[test]
fn an_existing_function_gets_its_architectures_manifest_by_digest() {
    let fake = FakeLambda::with(image_function(Architecture::Arm64));
    let package = image(&[(Architecture::Amd64, 'a'), (Architecture::Arm64, 'b')]);
    let report = deploy(&fake, &request(), &package, "us-east-1").unwrap();
    let uri = format!("ecr/fn@{}", digest('b'));
    assert_eq!(report.image_uri.as_deref(), Some(uri.as_str()));
    assert_eq!(report.architecture, "arm64");
    assert!(!report.created);
    assert_eq!(report.version, "$LATEST");
    assert_eq!(
        fake.calls(),
        [
            "GetFunction".to_owned(),
            format!("UpdateFunctionCode {uri} arm64"),
            // The wait's one poll is also what the function is checked against.
            "GetFunction".to_owned(),
        ]
    );
}

#[test]
fn a_missing_function_is_created_only_with_create_and_a_role() {
    let package = image(&[(Architecture::Amd64, 'a')]);
    let refused = deploy(&FakeLambda::default(), &request(), &package, "us-east-1").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Deploy);
    assert!(refused.hint_text().unwrap().contains("--create --role"));
    let no_role = DeployRequest {
        create: true,
        ..request()
    };
    let refused = deploy(&FakeLambda::default(), &no_role, &package, "us-east-1").unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Usage);
    let create = DeployRequest {
        create: true,
        role: Some("arn:aws:iam::1:role/r".to_owned()),
        env: vec!["A=1".parse::<KeyValue>().unwrap()],
        ..request()
    };
    let fake = FakeLambda::default();
    let report = deploy(&fake, &create, &package, "us-east-1").unwrap();
    assert!(report.created);
    assert_eq!(
        fake.calls()[1],
        format!("CreateFunction ecr/fn@{} x86_64", digest('a'))
    );
    assert_eq!(
        fake.function.borrow().as_ref().unwrap().environment["A"],
        "1"
    );
}

#[test]
fn env_is_merged_into_the_functions_variables_before_the_code() {
    let mut function = image_function(Architecture::Amd64);
    function.environment = [
        ("KEEP".to_owned(), "k".to_owned()),
        ("A".to_owned(), "0".to_owned()),
    ]
    .into_iter()
    .collect();
    let fake = FakeLambda::with(function);
    let with_env = DeployRequest {
        env: vec!["A=1".parse().unwrap(), "B=2".parse().unwrap()],
        ..request()
    };
    deploy(&fake, &with_env, &image(&[(Architecture::Amd64, 'a')]), "r").unwrap();
    let calls = fake.calls();
    assert_eq!(calls[1], "UpdateFunctionConfiguration A=1,B=2,KEEP=k");
    assert!(calls[3].starts_with("UpdateFunctionCode"), "{calls:?}");
}

#[test]
fn a_function_being_changed_is_waited_for_and_a_failed_update_names_the_reason() {
    let busy = FunctionFacts {
        last_update_status: Some("InProgress".to_owned()),
        ..image_function(Architecture::Amd64)
    };
    let fake = FakeLambda::with(image_function(Architecture::Amd64));
    // The first GetFunction (the look-up) and the first poll see an update in progress.
    fake.pending
        .borrow_mut()
        .extend([busy.clone(), busy.clone()]);
    deploy(
        &fake,
        &request(),
        &image(&[(Architecture::Amd64, 'a')]),
        "r",
    )
    .unwrap();
    let calls = fake.calls();
    let first_update = calls
        .iter()
        .position(|call| call.starts_with("UpdateFunctionCode"))
        .unwrap();
    assert_eq!(first_update, 3, "{calls:?}");

    let failed = FunctionFacts {
        last_update_status: Some("Failed".to_owned()),
        last_update_status_reason: Some("image is not for this architecture".to_owned()),
        ..image_function(Architecture::Amd64)
    };
    let fake = FakeLambda::with(image_function(Architecture::Amd64));
    fake.pending
        .borrow_mut()
        .extend([image_function(Architecture::Amd64), failed]);
    let error = deploy(
        &fake,
        &request(),
        &image(&[(Architecture::Amd64, 'a')]),
        "r",
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Deploy);
    assert!(
        error
            .message()
            .contains("image is not for this architecture"),
        "{error}"
    );
}

#[test]
fn an_alias_publishes_the_code_that_was_checked_and_points_at_its_version() {
    let mut function = image_function(Architecture::Amd64);
    function.code_sha256 = Some("abc".to_owned());
    let fake = FakeLambda::with(function);
    let release = DeployRequest {
        publish: true,
        alias: Some("live".to_owned()),
        ..request()
    };
    let report = deploy(&fake, &release, &image(&[(Architecture::Amd64, 'a')]), "r").unwrap();
    assert_eq!(report.version, "7");
    assert_eq!(report.alias.unwrap().version, "7");
    let calls = fake.calls();
    assert_eq!(
        &calls[calls.len() - 2..],
        ["PublishVersion abc", "PointAlias live 7"]
    );
}

#[test]
fn a_function_holding_another_image_afterwards_is_an_error() {
    let package = image(&[(Architecture::Amd64, 'a')]);
    let mut other = image_function(Architecture::Amd64);
    other.image_uri = Some(format!("ecr/fn@{}", digest('c')));
    other.resolved_image_uri = other.image_uri.clone();
    let error = check_deployed(
        "f",
        &package,
        &other,
        Some(&format!("ecr/fn@{}", digest('a'))),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Deploy);
    let mut resolved_elsewhere = other.clone();
    resolved_elsewhere.image_uri = Some(format!("ecr/fn@{}", digest('a')));
    assert!(
        check_deployed(
            "f",
            &package,
            &resolved_elsewhere,
            Some(&format!("ecr/fn@{}", digest('a')))
        )
        .is_err()
    );
    resolved_elsewhere.resolved_image_uri = resolved_elsewhere.image_uri.clone();
    assert!(
        check_deployed(
            "f",
            &package,
            &resolved_elsewhere,
            Some(&format!("ecr/fn@{}", digest('a')))
        )
        .is_ok()
    );
}

#[test]
fn outcomes_follow_state_then_last_update_status() {
    let facts = |state: Option<&str>, update: Option<&str>| FunctionFacts {
        state: state.map(str::to_owned),
        last_update_status: update.map(str::to_owned),
        ..FunctionFacts::default()
    };
    let done = |facts: &FunctionFacts, waiting| matches!(outcome(facts, waiting), Outcome::Done);
    let failed =
        |facts: &FunctionFacts, waiting| matches!(outcome(facts, waiting), Outcome::Failed(_));
    assert!(done(&facts(Some("Active"), None), Waiting::Create));
    assert!(!done(&facts(Some("Pending"), None), Waiting::Create));
    assert!(failed(&facts(Some("Failed"), None), Waiting::Create));
    assert!(!done(&facts(Some("Inactive"), None), Waiting::Create));
    assert!(done(
        &facts(Some("Active"), Some("Successful")),
        Waiting::Update
    ));
    assert!(!done(
        &facts(Some("Active"), Some("InProgress")),
        Waiting::Update
    ));
    assert!(!done(
        &facts(Some("Pending"), Some("Successful")),
        Waiting::Update
    ));
    assert!(failed(
        &facts(Some("Active"), Some("Failed")),
        Waiting::Update
    ));
    assert!(failed(
        &facts(Some("Failed"), Some("Successful")),
        Waiting::Update
    ));
}

#[test]
fn an_alias_alone_publishes_too() {
    let fake = FakeLambda::with(image_function(Architecture::Amd64));
    let alias = DeployRequest {
        alias: Some("live".to_owned()),
        ..request()
    };
    let report = deploy(&fake, &alias, &image(&[(Architecture::Amd64, 'a')]), "r").unwrap();
    assert_eq!(report.version, "7");
    assert!(
        fake.calls()
            .iter()
            .any(|call| call.starts_with("PublishVersion"))
    );
}

#[test]
fn the_short_name_of_an_arn_is_its_function_name() {
    assert_eq!(short_name("fn"), "fn");
    assert_eq!(
        short_name("arn:aws:lambda:us-east-1:123456789012:function:fn"),
        "fn"
    );
    assert_eq!(short_name("123456789012:function:fn"), "fn");
}
