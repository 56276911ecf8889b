//! Lambda for the tests: the same moto server as ECR ([`MotoEcr`], `moto_server.py`) answers
//! Lambda, IAM and S3 too, patched to behave as AWS does where `deploy` depends on it and with
//! knobs for slow, failing and refused calls (`moto_lambda.py`'s docstring lists them; set them
//! with [`MotoEcr::start_with`] or [`MotoEcr::set_knobs`]).
//!
//! * [`deploy_command`]: the binary under test, in the private mount namespace of
//!   [`ecr_command`] (ECR host names reach the local registry), with every AWS endpoint
//!   (`AWS_ENDPOINT_URL`) at moto and `AWS_REGION` set.
//! * [`Aws`]: set-up and checks through boto3 from moto's virtualenv (`aws_call.py`, a
//!   one-shot process per batch of calls, answers as JSON): create the IAM role moto's
//!   CreateFunction insists on, create functions directly, read them back.
//! * [`lambda_operations`]: the Lambda operations moto was asked for, in order (its call log).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::ecr::{ACCOUNT, MotoEcr, ecr_command, venv_python};

/// The region the tests deploy to unless they say otherwise.
pub const REGION: &str = "us-east-1";
/// The name of the execution role [`Aws::create_role`] makes.
pub const ROLE_NAME: &str = "lambda-image-test-role";

/// `arn:aws:iam::ACCOUNT:role/ROLE_NAME`.
pub fn role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}")
}

/// `lambda-image deploy ARGS...` (or any other subcommand when `args` starts with one) as
/// [`ecr_command`] runs it, with `AWS_ENDPOINT_URL` at moto for every service and
/// `AWS_REGION` = [`REGION`]. `host_names` are mapped to 127.0.0.1.
pub fn deploy_command(moto: &MotoEcr, home: &Path, host_names: &[&str], args: &[&str]) -> Command {
    let mut command = ecr_command(
        Path::new(env!("CARGO_BIN_EXE_lambda-image")),
        host_names,
        home,
        Some(moto),
    );
    command
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", REGION)
        .args(args);
    command
}

/// The Lambda operations moto served so far (`CreateFunction`, `GetFunction`, ...), in order.
pub fn lambda_operations(moto: &MotoEcr) -> Vec<String> {
    moto.requests()
        .iter()
        .filter(|request| request["service"] == "lambda")
        .map(|request| request["operation"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// AWS calls through boto3 against `moto`, in `region`.
pub struct Aws<'a> {
    moto: &'a MotoEcr,
    region: String,
}

impl<'a> Aws<'a> {
    pub fn new(moto: &'a MotoEcr) -> Self {
        Self::in_region(moto, REGION)
    }

    pub fn in_region(moto: &'a MotoEcr, region: &str) -> Self {
        Aws {
            moto,
            region: region.to_owned(),
        }
    }

    /// Makes `calls` (`{"service", "operation", "params"}` each) in order; each answer is
    /// `Ok(answer)` or `Err({"code", "message", "status"})`.
    pub fn calls(&self, calls: &[Value]) -> Vec<Result<Value, Value>> {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/registries/aws_call.py");
        let mut child = Command::new(venv_python())
            .arg(&script)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", "AKIASETUPSETUPSETUP0")
            .env("AWS_SECRET_ACCESS_KEY", "setup-secret")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", script.display()));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(Value::from(calls.to_vec()).to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "aws_call.py failed on {calls:?}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        answers
            .into_iter()
            .map(|answer| match answer.get("ok") {
                Some(ok) => Ok(ok.clone()),
                None => Err(answer["error"].clone()),
            })
            .collect()
    }

    /// One call; its error (`{"code", "message", "status"}`) or answer.
    pub fn try_call(&self, service: &str, operation: &str, params: Value) -> Result<Value, Value> {
        let call = json!({"service": service, "operation": operation, "params": params});
        self.calls(&[call]).remove(0)
    }

    /// One call, which must succeed; its answer.
    pub fn call(&self, service: &str, operation: &str, params: Value) -> Value {
        self.try_call(service, operation, params.clone())
            .unwrap_or_else(|error| panic!("{service} {operation} {params}: {error}"))
    }

    /// Creates the execution role [`role_arn`] (moto's CreateFunction wants it to exist).
    pub fn create_role(&self) -> String {
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }],
        });
        let answer = self.try_call(
            "iam",
            "CreateRole",
            json!({"RoleName": ROLE_NAME, "AssumeRolePolicyDocument": trust.to_string()}),
        );
        match answer {
            Ok(_) => {}
            Err(error) if error["code"] == "EntityAlreadyExists" => {}
            Err(error) => panic!("CreateRole: {error}"),
        }
        role_arn()
    }

    /// Creates an Image function `name` of `architecture` (`x86_64`, `arm64`) whose image is
    /// `image_uri` (moto does not look at it), directly, as if made by other tools.
    pub fn create_image_function(&self, name: &str, image_uri: &str, architecture: &str) -> Value {
        self.create_role();
        self.call(
            "lambda",
            "CreateFunction",
            json!({
                "FunctionName": name,
                "Role": role_arn(),
                "PackageType": "Image",
                "Code": {"ImageUri": image_uri},
                "Architectures": [architecture],
            }),
        )
    }

    /// Creates a Zip function `name` of `architecture` from the package at `zip`, runtime
    /// provided.al2023, handler bootstrap.
    pub fn create_zip_function(&self, name: &str, zip: &Path, architecture: &str) -> Value {
        self.create_role();
        self.call(
            "lambda",
            "CreateFunction",
            json!({
                "FunctionName": name,
                "Role": role_arn(),
                "PackageType": "Zip",
                "Runtime": "provided.al2023",
                "Handler": "bootstrap",
                "Code": {"ZipFile": {"$file": zip.display().to_string()}},
                "Architectures": [architecture],
            }),
        )
    }

    /// `GetFunction` of `name` (`{"Configuration", "Code", ...}`).
    pub fn get_function(&self, name: &str) -> Value {
        self.call("lambda", "GetFunction", json!({"FunctionName": name}))
    }

    /// `GetFunction` of `name`, expected to fail: its error.
    pub fn get_function_error(&self, name: &str) -> Value {
        self.try_call("lambda", "GetFunction", json!({"FunctionName": name}))
            .expect_err("the function should not exist")
    }

    /// The published versions of `name` (`ListVersionsByFunction` without `$LATEST`).
    pub fn published_versions(&self, name: &str) -> Vec<Value> {
        let answer = self.call(
            "lambda",
            "ListVersionsByFunction",
            json!({"FunctionName": name}),
        );
        answer["Versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|version| version["Version"] != "$LATEST")
            .cloned()
            .collect()
    }

    /// `GetAlias` of `name`'s alias `alias`.
    pub fn get_alias(&self, name: &str, alias: &str) -> Value {
        self.call(
            "lambda",
            "GetAlias",
            json!({"FunctionName": name, "Name": alias}),
        )
    }

    /// Creates the S3 bucket `bucket` in this region.
    pub fn create_bucket(&self, bucket: &str) {
        let mut params = json!({"Bucket": bucket});
        if self.region != "us-east-1" {
            params["CreateBucketConfiguration"] = json!({"LocationConstraint": self.region});
        }
        self.call("s3", "CreateBucket", params);
    }

    /// `HeadObject` of `bucket`/`key`: its answer, or None when it is not there.
    pub fn head_object(&self, bucket: &str, key: &str) -> Option<Value> {
        self.try_call("s3", "HeadObject", json!({"Bucket": bucket, "Key": key}))
            .ok()
    }
}
