//! The environment variables Lambda gives a function's bootstrap, made for a local run.
//!
//! Lambda starts the bootstrap with a fixed environment, not the caller's: the function's
//! identity (`AWS_LAMBDA_FUNCTION_NAME`, `…_MEMORY_SIZE`, `…_VERSION`, log group and stream),
//! the Region, `_HANDLER`, `LAMBDA_TASK_ROOT`, `LAMBDA_RUNTIME_DIR`, `TZ`, `LANG`, `PATH`, the
//! execution role's credentials and `AWS_LAMBDA_RUNTIME_API`. Locally the same names get:
//! the Region and credentials from lambda-image's own environment (`AWS_REGION`, else
//! `AWS_DEFAULT_REGION`, else `us-east-1`; `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN` when set), the task root = the working directory and the runtime dir =
//! the bootstrap's directory (in the image: `/var/task`, where the function runs, and
//! `/var/runtime`, where the bootstrap is). Nothing else is passed through. `--env` comes last
//! and may replace any of them except `AWS_LAMBDA_RUNTIME_API`. `AWS_EXECUTION_ENV` is not set:
//! Lambda leaves it unset for OS-only (`provided`) runtimes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::image::config::KeyValue;

/// The function name when `--env AWS_LAMBDA_FUNCTION_NAME=…` gives none (the RIE's default).
pub const DEFAULT_FUNCTION_NAME: &str = "test_function";
/// `PATH` as the provided.al2023 and provided.al2 images set it.
pub const LAMBDA_PATH: &str = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin";
/// The account number in the function ARN (the RIE's).
const ACCOUNT_ID: &str = "012345678912";
/// Lambda's range of function memory, in MB ("128 MB to 10,240 MB, in 1-MB increments", Lambda
/// quotas page).
pub const MEMORY_RANGE_MB: std::ops::RangeInclusive<u32> = 128..=10_240;

const RUNTIME_API_VARIABLE: &str = "AWS_LAMBDA_RUNTIME_API";
const CREDENTIAL_VARIABLES: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];
/// Variables a container image already sets itself (its config, its entrypoint) or that are
/// secrets: left out of what `serve --external` prints.
const NOT_FOR_EXTERNAL_RUNTIMES: [&str; 6] = [
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "PATH",
    "LANG",
    "TZ",
];

/// What the command line says about the function.
#[derive(Clone, Debug)]
pub struct FunctionSettings {
    pub handler: String,
    pub memory_mb: u32,
    /// `LAMBDA_TASK_ROOT`.
    pub task_root: PathBuf,
    /// `LAMBDA_RUNTIME_DIR`.
    pub runtime_dir: PathBuf,
    /// `--env`, applied last.
    pub overrides: Vec<KeyValue>,
}

/// The bootstrap's environment, except `AWS_LAMBDA_RUNTIME_API` (known once the emulator
/// listens).
#[derive(Clone, Debug)]
pub struct LambdaEnvironment {
    variables: Vec<(String, String)>,
    /// `--env`, kept to be applied again over an image's own `Env` ([`Self::for_image`]).
    overrides: Vec<KeyValue>,
}

impl LambdaEnvironment {
    /// `host_variable` reads lambda-image's own environment (for the Region and credentials).
    pub fn new(
        settings: &FunctionSettings,
        host_variable: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        if !MEMORY_RANGE_MB.contains(&settings.memory_mb) {
            return Err(Error::usage(format!(
                "--memory {} is outside Lambda's range of {} to {} MB",
                settings.memory_mb,
                MEMORY_RANGE_MB.start(),
                MEMORY_RANGE_MB.end()
            )));
        }
        if settings.handler.trim().is_empty() {
            return Err(Error::usage("--handler must not be empty"));
        }
        if let Some(reserved) = settings
            .overrides
            .iter()
            .find(|kv| kv.key == RUNTIME_API_VARIABLE)
        {
            return Err(Error::usage(format!(
                "--env {}=… cannot be set: lambda-image points it at its own Runtime API",
                reserved.key
            ))
            .hint("to run the bootstrap against another Runtime API, start it yourself with that variable"));
        }
        let function_name = override_of(settings, "AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or(DEFAULT_FUNCTION_NAME)
            .to_owned();
        let region = host_variable("AWS_REGION")
            .or_else(|| host_variable("AWS_DEFAULT_REGION"))
            .filter(|region| !region.is_empty())
            .unwrap_or_else(|| "us-east-1".to_owned());

        let mut environment = Self {
            variables: Vec::new(),
            overrides: settings.overrides.clone(),
        };
        for (key, value) in [
            ("_HANDLER", settings.handler.clone()),
            ("LAMBDA_TASK_ROOT", settings.task_root.display().to_string()),
            (
                "LAMBDA_RUNTIME_DIR",
                settings.runtime_dir.display().to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                settings.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", new_log_stream_name()),
            ("AWS_REGION", region.clone()),
            ("AWS_DEFAULT_REGION", region),
            ("TZ", ":UTC".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("PATH", LAMBDA_PATH.to_owned()),
        ] {
            environment.set(key, value);
        }
        for key in CREDENTIAL_VARIABLES {
            if let Some(value) = host_variable(key) {
                environment.set(key, value);
            }
        }
        for KeyValue { key, value } in &settings.overrides {
            environment.set(key, value.clone());
        }
        Ok(environment)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// `arn:aws:lambda:REGION:012345678912:function:NAME`, as the RIE makes it.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}",
            self.get("AWS_REGION").unwrap_or_default(),
            self.get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default()
        )
    }

    /// The memory size the bootstrap is told, for reports.
    pub fn memory_size(&self) -> &str {
        self.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .unwrap_or_default()
    }

    /// Every variable for a bootstrap talking to the Runtime API at `runtime_api`.
    pub fn with_runtime_api(&self, runtime_api: SocketAddr) -> Vec<(String, String)> {
        let mut variables = self.variables.clone();
        variables.push((RUNTIME_API_VARIABLE.to_owned(), runtime_api.to_string()));
        variables
    }

    /// What a runtime started by someone else (e.g. in a container) needs on top of its
    /// image's own environment. Never credentials.
    pub fn for_external_runtime(&self, runtime_api: SocketAddr) -> Vec<(String, String)> {
        self.with_runtime_api(runtime_api)
            .into_iter()
            .filter(|(key, _)| {
                !NOT_FOR_EXTERNAL_RUNTIMES.contains(&key.as_str())
                    && !CREDENTIAL_VARIABLES.contains(&key.as_str())
            })
            .collect()
    }

    /// The environment of an image's process (`invoke --image`, `serve --image`): the image
    /// config's `Env` (`KEY=VALUE` strings; an entry without `=` is a name with an empty value,
    /// as Docker reads it), then the function's identity, Region, credentials and
    /// `AWS_LAMBDA_RUNTIME_API` over it, then `--env` over everything. What an image sets for
    /// itself (`PATH`, `LANG`, `TZ`, `LAMBDA_TASK_ROOT`, `LAMBDA_RUNTIME_DIR`, and `_HANDLER`,
    /// which the provided bases' `/lambda-entrypoint.sh` exports from its argument) is the
    /// image's, unless `--env` gives it.
    pub fn for_image(
        &self,
        image_env: &[String],
        runtime_api: SocketAddr,
    ) -> Vec<(String, String)> {
        let mut environment = Self {
            variables: Vec::new(),
            overrides: Vec::new(),
        };
        for entry in image_env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            environment.set(key, value.to_owned());
        }
        for (key, value) in self.with_runtime_api(runtime_api) {
            if !NOT_FOR_EXTERNAL_RUNTIMES.contains(&key.as_str()) {
                environment.set(&key, value);
            }
        }
        for KeyValue { key, value } in &self.overrides {
            environment.set(key, value.clone());
        }
        environment.variables
    }

    fn set(&mut self, key: &str, value: String) {
        match self.variables.iter_mut().find(|(name, _)| name == key) {
            Some(slot) => slot.1 = value,
            None => self.variables.push((key.to_owned(), value)),
        }
    }
}

fn override_of<'a>(settings: &'a FunctionSettings, key: &str) -> Option<&'a str> {
    settings
        .overrides
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .map(|kv| kv.value.as_str())
}

/// `YYYY/MM/DD/[$LATEST]<32 hex digits>`, the shape of Lambda's log stream names.
fn new_log_stream_name() -> String {
    let date = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let instance = super::invocation::new_request_id().replace('-', "");
    format!("{}/[$LATEST]{instance}", date[..10].replace('-', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(overrides: &[&str]) -> FunctionSettings {
        FunctionSettings {
            handler: "bootstrap".into(),
            memory_mb: 256,
            task_root: "/work".into(),
            runtime_dir: "/work/bin".into(),
            overrides: overrides.iter().map(|kv| kv.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn lambda_variables_with_region_and_credentials_from_the_host() {
        let host = |key: &str| match key {
            "AWS_DEFAULT_REGION" => Some("eu-west-1".to_owned()),
            "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_owned()),
            "HOME" => Some("/root".to_owned()),
            _ => None,
        };
        let environment = LambdaEnvironment::new(&settings(&[]), host).unwrap();
        let address: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let variables = environment.with_runtime_api(address);
        let get = |key: &str| {
            variables
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9001"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some("eu-west-1"));
        assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("AKIDEXAMPLE"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(
            get("AWS_LAMBDA_LOG_GROUP_NAME"),
            Some("/aws/lambda/test_function")
        );
        assert_eq!(get("LAMBDA_RUNTIME_DIR"), Some("/work/bin"));
        assert_eq!(get("HOME"), None, "nothing else comes from the host");
        assert_eq!(get("AWS_EXECUTION_ENV"), None);
        let stream = get("AWS_LAMBDA_LOG_STREAM_NAME").unwrap();
        assert!(
            stream.len() == "2024/01/31/[$LATEST]".len() + 32,
            "{stream}"
        );
        assert_eq!(
            environment.function_arn(),
            "arn:aws:lambda:eu-west-1:012345678912:function:test_function"
        );
        let external = environment.for_external_runtime(address);
        assert!(
            external
                .iter()
                .all(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "_HANDLER")
        );
        assert!(
            external
                .iter()
                .any(|(k, _)| k == "AWS_LAMBDA_FUNCTION_NAME")
        );
    }

    #[test]
    fn an_image_keeps_its_own_path_and_task_root_and_env_flags_win() {
        let host = |key: &str| match key {
            "AWS_REGION" => Some("eu-central-1".to_owned()),
            "AWS_SESSION_TOKEN" => Some("token".to_owned()),
            _ => None,
        };
        let environment = LambdaEnvironment::new(
            &settings(&["LANG=C.UTF-8", "EXTRA=1", "AWS_LAMBDA_FUNCTION_NAME=fn"]),
            host,
        )
        .unwrap();
        let image_env = [
            "PATH=/image/bin".to_owned(),
            "LANG=en_US.UTF-8".to_owned(),
            "LAMBDA_TASK_ROOT=/var/task".to_owned(),
            "AWS_REGION=image-region".to_owned(),
            "EMPTY".to_owned(),
        ];
        let address: SocketAddr = "127.0.0.1:9002".parse().unwrap();
        let variables = environment.for_image(&image_env, address);
        let get = |key: &str| {
            variables
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PATH"), Some("/image/bin"), "the image's own PATH");
        assert_eq!(get("LAMBDA_TASK_ROOT"), Some("/var/task"));
        assert_eq!(get("LAMBDA_RUNTIME_DIR"), None, "not made up for an image");
        assert_eq!(get("_HANDLER"), None, "the image's entrypoint sets it");
        assert_eq!(get("LANG"), Some("C.UTF-8"), "--env wins over the image");
        assert_eq!(get("EXTRA"), Some("1"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(
            get("AWS_REGION"),
            Some("eu-central-1"),
            "Lambda's Region wins"
        );
        assert_eq!(get("AWS_SESSION_TOKEN"), Some("token"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("fn"));
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9002"));
        assert_eq!(
            variables.iter().filter(|(k, _)| k == "LANG").count(),
            1,
            "one value per name"
        );
    }

    #[test]
    fn env_flags_replace_values_but_not_the_runtime_api() {
        let environment = LambdaEnvironment::new(
            &settings(&["AWS_LAMBDA_FUNCTION_NAME=fn", "TZ=:Europe/Paris"]),
            |_| None,
        )
        .unwrap();
        assert_eq!(environment.get("TZ"), Some(":Europe/Paris"));
        assert_eq!(environment.get("AWS_REGION"), Some("us-east-1"));
        assert!(environment.function_arn().ends_with(":function:fn"));
        assert_eq!(
            environment.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            Some("/aws/lambda/fn")
        );
        let refused = LambdaEnvironment::new(&settings(&["AWS_LAMBDA_RUNTIME_API=x:1"]), |_| None);
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("AWS_LAMBDA_RUNTIME_API")
        );
        let mut too_small = settings(&[]);
        too_small.memory_mb = 64;
        assert!(LambdaEnvironment::new(&too_small, |_| None).is_err());
    }
}
