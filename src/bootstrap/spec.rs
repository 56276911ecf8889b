//! Parsing a `--bootstrap` argument: `PATH`, or `ARCH=PATH` to state the architecture.

use std::path::PathBuf;
use std::str::FromStr;

use crate::platform::Architecture;

/// One `--bootstrap` argument, before the file is inspected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapSpec {
    pub architecture: Option<Architecture>,
    pub path: PathBuf,
}

impl FromStr for BootstrapSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err("expected PATH or ARCH=PATH, e.g. ./bootstrap or arm64=./bootstrap".into());
        }
        // `ARCH=PATH` only when the part before `=` names an architecture, so that paths
        // containing `=` still work; an unknown word that is not an existing path is an error.
        if let Some((prefix, path)) = text.split_once('=')
            && !prefix.contains('/')
        {
            if let Some(architecture) = Architecture::parse(prefix) {
                if path.is_empty() {
                    return Err(format!("`{text}` names no file after `{prefix}=`"));
                }
                return Ok(Self {
                    architecture: Some(architecture),
                    path: PathBuf::from(path),
                });
            }
            if !std::path::Path::new(text).exists() {
                return Err(format!(
                    "unknown architecture `{prefix}` in `{text}`; use amd64 (x86_64) or arm64 (aarch64)"
                ));
            }
        }
        Ok(Self {
            architecture: None,
            path: PathBuf::from(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_stated_architecture() {
        let plain: BootstrapSpec = "./bootstrap".parse().unwrap();
        assert_eq!(plain.architecture, None);
        let stated: BootstrapSpec = "aarch64=./bin/bootstrap".parse().unwrap();
        assert_eq!(stated.architecture, Some(Architecture::Arm64));
        assert_eq!(stated.path, PathBuf::from("./bin/bootstrap"));
        assert!("sparc=./bootstrap".parse::<BootstrapSpec>().is_err());
        assert!("arm64=".parse::<BootstrapSpec>().is_err());
        let with_equals: BootstrapSpec = "./a=b/bootstrap".parse().unwrap();
        assert_eq!(with_equals.architecture, None);
    }
}
