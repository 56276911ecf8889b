//! Credential helpers: running `docker-credential-NAME get` for a server, as the `credHelpers`
//! and `credsStore` settings of an auth file name them, reading the answer, and remembering
//! it for the run.
//!
//! Not here: which helper a file names for a registry ([`super::auth_files`]). A helper's
//! answer holds the secret: it is never quoted in a message.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::advice::CredentialFlag;
use super::auth_file::{DOCKER_HUB_AUTH_KEY, is_docker_hub};
use super::{Credential, CredentialOrigin, CredentialSources, HELPER_PREFIX, HelperSetting};
use crate::error::{Error, Result};

/// A helper answering with this user name gives an identity token as its secret.
const TOKEN_USERNAME: &str = "<token>";
/// What a helper prints when it has nothing for the server (docker-credential-helpers'
/// `credentials/error.go`).
const NOT_FOUND_MESSAGE: &str = "credentials not found in native keychain";
/// How much of a failed helper's output is quoted in an error.
const MAX_QUOTED_OUTPUT: usize = 200;

/// The credentials helpers gave, by `(helper program, server URL)`. Debug never shows them;
/// two caches always compare equal (they are not part of what the sources are).
#[derive(Clone, Default)]
pub struct HelperAnswers(Arc<Mutex<BTreeMap<HelperQuestion, Option<Credential>>>>);

/// A helper program and the server URL it is asked about.
type HelperQuestion = (PathBuf, String);

impl fmt::Debug for HelperAnswers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HelperAnswers(<hidden>)")
    }
}

impl PartialEq for HelperAnswers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for HelperAnswers {}

impl CredentialSources {
    /// Runs `docker-credential-HELPER get` for `registry`.
    pub(super) fn ask_helper(
        &self,
        helper: &str,
        file: &Path,
        setting: HelperSetting,
        registry: &str,
        flag: CredentialFlag,
    ) -> Result<Option<Credential>> {
        let flag = flag.in_lookup_hints();
        let origin = CredentialOrigin::Helper {
            helper: helper.to_owned(),
            file: file.to_owned(),
            setting,
        };
        let program = format!("{HELPER_PREFIX}{helper}");
        if helper.contains('/') {
            return Err(Error::registry(format!(
                "{} names an invalid credential helper {helper:?} in {}: helper names cannot contain '/'",
                file.display(),
                setting.key()
            ))
            .hint(format!("fix {} in {}", setting.key(), file.display())));
        }
        let Some(executable) = self.find_helper(&program) else {
            let (named, removal) = match setting {
                HelperSetting::CredHelpers => (
                    format!("in credHelpers for {registry}"),
                    format!("the credHelpers entry for {registry}"),
                ),
                HelperSetting::CredsStore => (
                    format!("as its credsStore (asked for {registry})"),
                    "\"credsStore\"".to_owned(),
                ),
            };
            return Err(Error::registry(format!(
                "credential helper {program} is not installed: {} names it {named}, and no PATH directory has it",
                file.display(),
            ))
            .hint(format!(
                "install {program}, remove {removal} from {} (a config copied from another machine often names a helper only that machine has), or pass {flag}",
                file.display()
            )));
        };
        let server_url = if is_docker_hub(registry) {
            DOCKER_HUB_AUTH_KEY
        } else {
            registry
        };
        let cache_key = (executable.clone(), server_url.to_owned());
        if let Some(answer) = self
            .helper_answers
            .0
            .lock()
            .expect("helper cache")
            .get(&cache_key)
        {
            return Ok(answer.clone());
        }
        let answer =
            self.run_helper_for(&executable, &program, &origin, server_url, registry, flag)?;
        self.helper_answers
            .0
            .lock()
            .expect("helper cache")
            .insert(cache_key, answer.clone());
        Ok(answer)
    }

    /// Runs `executable get` for `server_url` and reads its answer; `program` and `origin`
    /// name it in errors, `registry` the registry asked about.
    fn run_helper_for(
        &self,
        executable: &Path,
        program: &str,
        origin: &CredentialOrigin,
        server_url: &str,
        registry: &str,
        flag: &str,
    ) -> Result<Option<Credential>> {
        let output = run_helper(executable, server_url).map_err(|error| {
            Error::registry(format!(
                "cannot run {} ({origin}): {error}",
                executable.display()
            ))
            .hint(format!(
                "check that {} is an executable program, or pass {flag}",
                executable.display()
            ))
        })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            if stdout.trim() == NOT_FOUND_MESSAGE || stderr.trim() == NOT_FOUND_MESSAGE {
                return Ok(None);
            }
            let said = quotable_line(&stdout)
                .or_else(|| quotable_line(&stderr))
                .map(|line| format!(": {line}"))
                .unwrap_or_default();
            return Err(Error::registry(format!(
                "{origin} failed for {registry} ({}){said}",
                output.status
            ))
            .hint(format!(
                "run `printf '{server_url}' | {program} get` to see the helper's own error (log in again if it has expired), or pass {flag}"
            )));
        }
        // Its output holds the secret: never quote it.
        let answer: HelperAnswer = serde_json::from_str(&stdout).map_err(|_| {
            Error::registry(format!(
                "{origin} answered for {registry} with something other than JSON credentials (not shown)"
            ))
            .hint(format!(
                "check that {program} follows the docker credential helper protocol, or pass {flag}"
            ))
        })?;
        let (username, secret) = (
            answer.username.unwrap_or_default(),
            answer.secret.unwrap_or_default(),
        );
        Ok(match (username.as_str(), secret.is_empty()) {
            // Nothing to authenticate with.
            (_, true) => None,
            (TOKEN_USERNAME, false) => Some(Credential::IdentityToken(secret)),
            ("", false) => None,
            (_, false) => Some(Credential::Basic {
                username,
                password: secret,
            }),
        })
    }

    /// The first executable `program` in the helper directories.
    fn find_helper(&self, program: &str) -> Option<PathBuf> {
        self.helper_dirs
            .iter()
            .map(|dir| dir.join(program))
            .find(|candidate| {
                std::fs::metadata(candidate)
                    .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            })
    }
}

/// `executable get` with `server_url` on stdin (no newline, as docker sends it). Unlike docker,
/// the helper's stderr is captured rather than passed through: its first line goes into the error.
fn run_helper(executable: &Path, server_url: &str) -> io::Result<Output> {
    let mut child = Command::new(executable)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper may exit without reading; that is for its exit status to tell.
        match stdin.write_all(server_url.as_bytes()) {
            Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
            _ => {}
        }
    }
    child.wait_with_output()
}

/// The first non-empty line of a failed helper's output, shortened; None if it looks like JSON,
/// which could carry a secret.
fn quotable_line(output: &str) -> Option<String> {
    let line = output
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())?;
    if line.starts_with('{') || line.starts_with('[') {
        return None;
    }
    let mut quoted: String = line.chars().take(MAX_QUOTED_OUTPUT).collect();
    if quoted.len() < line.len() {
        quoted.push('…');
    }
    Some(quoted)
}

/// What a helper prints for `get`. Go's JSON decoding ignores case, so lower-case names are
/// accepted too.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", alias = "username")]
    username: Option<String>,
    #[serde(rename = "Secret", alias = "secret")]
    secret: Option<String>,
}

#[cfg(test)]
#[path = "helper_tests.rs"]
mod tests;
