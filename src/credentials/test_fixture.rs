//! What the unit tests of the credential sources share: a directory of credential files and
//! helper programs, and short forms of lookups.

use std::sync::RwLock;

use tempfile::TempDir;

pub(super) use std::os::unix::fs::PermissionsExt;
pub(super) use std::path::{Path, PathBuf};

pub(super) use base64::Engine;

pub(super) use super::*;
pub(super) use crate::error::ErrorKind;
pub(super) use crate::error::{Error, Result};

/// Writing an executable while another thread forks can leave the child holding it open for
/// writing, and exec then fails with ETXTBSY. Helpers are written under the write lock and
/// run under the read lock, so no fork happens while a script is open.
pub(super) static PROCESS_LOCK: RwLock<()> = RwLock::new(());

pub(super) const PASSWORD: &str = "s3cret:with:colons";

/// A temporary directory holding credential files and a `bin` directory of helpers.
pub(super) struct Fixture {
    pub(super) dir: TempDir,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        Self { dir }
    }

    pub(super) fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub(super) fn missing(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Installs `docker-credential-NAME` running the shell `body`.
    pub(super) fn helper(&self, name: &str, body: &str) {
        let _lock = PROCESS_LOCK
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let path = self
            .dir
            .path()
            .join("bin")
            .join(format!("{HELPER_PREFIX}{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A helper answering `user-for-SERVERURL` / `helper-secret`, so tests see what it was
    /// asked.
    pub(super) fn echo_helper(&self, name: &str) {
        self.helper(
            name,
            r#"url=$(cat)
printf '{"ServerURL":"%s","Username":"user-for-%s","Secret":"helper-secret"}\n' "$url" "$url""#,
        );
    }

    pub(super) fn not_found_helper(&self, name: &str) {
        self.helper(
            name,
            "cat >/dev/null\necho 'credentials not found in native keychain'\nexit 1",
        );
    }

    pub(super) fn sources(&self, files: &[&Path]) -> CredentialSources {
        CredentialSources {
            auth_files: files.iter().map(|file| file.to_path_buf()).collect(),
            helper_dirs: vec![self.dir.path().join("bin")],
            helper_answers: HelperAnswers::default(),
        }
    }
}

pub(super) fn find(
    sources: &CredentialSources,
    registry: &str,
) -> Result<Option<(Credential, CredentialOrigin)>> {
    let _lock = PROCESS_LOCK
        .read()
        .unwrap_or_else(|poison| poison.into_inner());
    sources.find_with_origin(registry)
}

pub(super) fn found(sources: &CredentialSources, registry: &str) -> Option<Credential> {
    find(sources, registry)
        .unwrap()
        .map(|(credential, _)| credential)
}

pub(super) fn find_error(sources: &CredentialSources, registry: &str) -> Error {
    match find(sources, registry) {
        Ok(found) => panic!("expected an error, found {found:?}"),
        Err(error) => error,
    }
}

pub(super) fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    }
}

pub(super) fn auth_field(user_password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(user_password)
}

pub(super) fn auths_file(fixture: &Fixture, name: &str, entries: &[(&str, &str)]) -> PathBuf {
    let auths: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(key, user)| {
            let auth = auth_field(&format!("{user}:{PASSWORD}"));
            ((*key).to_owned(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    fixture.file(name, &serde_json::json!({ "auths": auths }).to_string())
}
