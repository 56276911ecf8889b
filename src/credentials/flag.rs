//! The credential given on the command line: `--creds USER:PASSWORD` (or `--username` with
//! `--password-stdin`) for the registries pushed to, `--base-creds` for the base's. It goes
//! only to the hosts it is for; the command decides which when it builds each host's chain.
//!
//! Not here: parsing the flag ([`super::parse_creds`]).

use super::{Credential, CredentialOrigin, CredentialSource, Lookup, Query};
use crate::error::Result;

/// A credential from a flag, for every repository of the host: the first source of a chain,
/// so that nothing else is consulted when it is given.
#[derive(Clone, Debug)]
pub struct FlagCredential {
    credential: Credential,
    /// The flag that gave it (`--creds`, `--base-creds`, …), for messages.
    flag: &'static str,
}

impl FlagCredential {
    pub fn new(credential: Credential, flag: &'static str) -> Self {
        Self { credential, flag }
    }
}

impl CredentialSource for FlagCredential {
    fn lookup(&self, _query: &Query<'_>) -> Result<Lookup> {
        Ok(Lookup {
            found: Some((
                self.credential.clone(),
                CredentialOrigin::CommandLine { flag: self.flag },
            )),
            ..Lookup::default()
        })
    }

    /// What the user gave is never swapped for anything else.
    fn replaceable(&self) -> bool {
        false
    }
}
