//! The one timestamp of a build: `SOURCE_DATE_EPOCH` when set, else the Unix epoch, so the same
//! inputs always give the same digests. It is the layer's mtime and the config's `created`.

use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildTimestamp {
    pub seconds: u64,
}

impl BuildTimestamp {
    /// Reads `SOURCE_DATE_EPOCH` (seconds since 1970, see reproducible-builds.org).
    pub fn from_environment() -> Result<Self> {
        match std::env::var("SOURCE_DATE_EPOCH") {
            Err(std::env::VarError::NotPresent) => Ok(Self { seconds: 0 }),
            Ok(text) if text.trim().is_empty() => Ok(Self { seconds: 0 }),
            Ok(text) => Self::parse(&text),
            Err(std::env::VarError::NotUnicode(_)) => Err(invalid("(not valid UTF-8)")),
        }
    }

    fn parse(text: &str) -> Result<Self> {
        // Past year 9999 RFC 3339 cannot express the time.
        match text.trim().parse::<u64>() {
            Ok(seconds) if seconds <= 253_402_300_799 => Ok(Self { seconds }),
            _ => Err(invalid(text)),
        }
    }

    /// The time as RFC 3339 in UTC, e.g. `1970-01-01T00:00:00Z`.
    pub fn rfc3339(self) -> String {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.seconds))
            .to_string()
    }
}

fn invalid(text: &str) -> Error {
    Error::usage(format!(
        "SOURCE_DATE_EPOCH={text} is not a number of seconds since 1970"
    ))
    .hint("set it to e.g. $(git log -1 --format=%ct), or unset it")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_rejects() {
        assert_eq!(
            BuildTimestamp { seconds: 0 }.rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            BuildTimestamp::parse("1700000000").unwrap().rfc3339(),
            "2023-11-14T22:13:20Z"
        );
        assert!(BuildTimestamp::parse("-1").is_err());
        assert!(BuildTimestamp::parse("yesterday").is_err());
    }
}
