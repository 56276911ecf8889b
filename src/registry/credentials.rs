//! Placeholder until the credentials module lands: explicit credentials only.
#![allow(dead_code)]

use std::fmt;

/// A secret for one registry. Its Debug and Display never show the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic { username: String, password: String },
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(redacted)")
    }
}

pub fn parse_creds(text: &str) -> Result<Credential, String> {
    match text.split_once(':') {
        Some((user, password)) if !user.is_empty() => Ok(Credential::Basic {
            username: user.to_owned(),
            password: password.to_owned(),
        }),
        _ => Err("expected USER:PASS".into()),
    }
}

pub struct CredentialSources;

impl CredentialSources {
    pub fn from_environment() -> Self {
        CredentialSources
    }
    pub fn find(&self, _registry: &str) -> crate::error::Result<Option<Credential>> {
        Ok(None)
    }
}
