//! A mirror of the catalog's registry: `LAMBDA_IMAGE_BASE_MIRROR=HOST[:PORT]/PATH` stands for
//! `public.ecr.aws/lambda`, so every base under it is pulled from the mirror, and a mirrored
//! reference still names the catalog entry it mirrors. Parsing the variable's value (one message
//! per malformation), mapping references to and from the mirror, and reading the variable (once
//! per process). Not the catalog's entries themselves (the parent module).

use std::sync::OnceLock;

use super::all;
use crate::error::{Error, Result};
use crate::reference::registry::RegistryReference;

/// The environment variable that names a mirror of [`UPSTREAM`].
pub const MIRROR_VARIABLE: &str = "LAMBDA_IMAGE_BASE_MIRROR";
/// The registry and path prefix every catalog reference is under, which a mirror stands for.
pub const UPSTREAM: &str = "public.ecr.aws/lambda";
const UPSTREAM_REGISTRY: &str = "public.ecr.aws";
const UPSTREAM_PATH: &str = "lambda";

/// The part of `reference`'s repository under `public.ecr.aws/lambda/` (`provided` for
/// `public.ecr.aws/lambda/provided:al2023`); None for any other reference.
pub fn upstream_repository(reference: &RegistryReference) -> Option<&str> {
    (reference.registry == UPSTREAM_REGISTRY)
        .then(|| {
            reference
                .repository
                .strip_prefix(UPSTREAM_PATH)?
                .strip_prefix('/')
        })
        .flatten()
}

/// A mirror of `public.ecr.aws/lambda`: `HOST[:PORT]/PATH`, where HOST is a registry host (it
/// has a `.` or a `:PORT`, or is `localhost`) and PATH one or more repository path components
/// (lowercase letters and digits, with `.`, `_`, `__` or `-` between them, joined by `/`). No
/// credentials, scheme, tag, digest or trailing `/`, each refused with its own message. The host
/// is kept in lower case, as references spell it. `public.ecr.aws/lambda/REPO:TAG` is then pulled as
/// `HOST[:PORT]/PATH/REPO:TAG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseMirror {
    /// `host[:port]`.
    pub registry: String,
    /// The repository prefix, without leading or trailing `/`.
    pub path: String,
}

impl std::str::FromStr for BaseMirror {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "expected HOST[:PORT]/PATH, e.g. registry.example.com/ecr-public/lambda";
        // One message per malformation, most telling first; credentials are never quoted.
        crate::reference::registry::refuse_url_forms(text)
            .map_err(|why| format!("{why}; {FORM}"))?;
        let (host, path) = text.split_once('/').unwrap_or((text, ""));
        if path.trim_end_matches('/').is_empty() {
            return Err(format!(
                "`{text}` names no repository path after the host; {FORM}"
            ));
        }
        if path.ends_with('/') {
            return Err(format!("`{text}` ends with `/`: drop it; {FORM}"));
        }
        if path.split('/').any(str::is_empty) {
            return Err(format!(
                "`{text}` has an empty path component (`//`); {FORM}"
            ));
        }
        if let Some((_, digest)) = path.split_once('@') {
            return Err(format!(
                "`{text}` ends with a digest (`@{digest}`): a mirror is a registry and path, \
                 under which each base keeps its own tag; drop it; {FORM}"
            ));
        }
        if let Some((_, tag)) = path.split_once(':') {
            return Err(format!(
                "`{text}` ends with a tag (`:{tag}`): a mirror is a registry and path, under \
                 which each base keeps its own tag; drop it; {FORM}"
            ));
        }
        let last = path.rsplit('/').next().unwrap_or(path);
        let repositories: Vec<String> = all()
            .iter()
            .filter_map(|base| {
                let reference = base.reference.parse::<RegistryReference>().ok()?;
                upstream_repository(&reference).map(str::to_owned)
            })
            .collect();
        if repositories.iter().any(|repository| repository == last) {
            let prefix = &text[..text.len() - last.len() - 1];
            return Err(format!(
                "`{text}` ends with `{last}`, the repository of a base: the variable stands for \
                 {UPSTREAM}, and each base's repository goes under it: drop `/{last}` and set \
                 it to `{prefix}` ({UPSTREAM}/{last}:TAG is then pulled as \
                 {prefix}/{last}:TAG); {FORM}"
            ));
        }
        let probe: RegistryReference = format!("{text}/provided:al2023")
            .parse()
            .map_err(|error| format!("`{text}`: {error}; {FORM}"))?;
        if !probe.registry.eq_ignore_ascii_case(host)
            || probe.repository != format!("{path}/provided")
        {
            return Err(format!(
                "`{host}` in `{text}` is not a registry host (it needs a `.` or a :PORT, or is localhost); {FORM}"
            ));
        }
        Ok(BaseMirror {
            registry: probe.registry,
            path: path.to_owned(),
        })
    }
}

impl std::fmt::Display for BaseMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

impl BaseMirror {
    /// Where `reference` is pulled from: the mirror's copy when it is under
    /// `public.ecr.aws/lambda/`, else None.
    pub fn mirrored(&self, reference: &RegistryReference) -> Option<RegistryReference> {
        let rest = upstream_repository(reference)?;
        Some(RegistryReference {
            registry: self.registry.clone(),
            repository: format!("{}/{rest}", self.path),
            ..reference.clone()
        })
    }

    /// The `public.ecr.aws/lambda/` reference a mirrored `reference` stands for, else None.
    pub fn upstream(&self, reference: &RegistryReference) -> Option<RegistryReference> {
        let rest = reference
            .repository
            .strip_prefix(self.path.as_str())?
            .strip_prefix('/')?;
        (reference.registry == self.registry).then(|| RegistryReference {
            registry: UPSTREAM_REGISTRY.to_owned(),
            repository: format!("{UPSTREAM_PATH}/{rest}"),
            ..reference.clone()
        })
    }
}

/// The mirror `LAMBDA_IMAGE_BASE_MIRROR` names; None when it is unset or empty. Errors (usage):
/// a value that is not `HOST[:PORT]/PATH`, or not UTF-8; the message names the variable.
pub fn mirror() -> Result<Option<BaseMirror>> {
    mirror_from(mirror_variable())
}

/// The value of [`MIRROR_VARIABLE`], read from the environment the first time it is asked for
/// and kept for the rest of the process (`None`: unset).
fn mirror_variable() -> Option<std::ffi::OsString> {
    static VALUE: OnceLock<Option<std::ffi::OsString>> = OnceLock::new();
    VALUE
        .get_or_init(|| std::env::var_os(MIRROR_VARIABLE))
        .clone()
}

/// [`mirror`] for the variable's `value` (`None`: unset).
fn mirror_from(value: Option<std::ffi::OsString>) -> Result<Option<BaseMirror>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(value) = value.to_str() else {
        return Err(Error::usage(format!("{MIRROR_VARIABLE} is not UTF-8")).hint(mirror_hint()));
    };
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|why| Error::usage(format!("{MIRROR_VARIABLE}: {why}")).hint(mirror_hint()))
}

fn mirror_hint() -> String {
    format!(
        "set {MIRROR_VARIABLE} to the registry and path that mirror {UPSTREAM} (e.g. \
         {MIRROR_VARIABLE}=registry.example.com:5000/ecr-public/lambda), or unset it"
    )
}

/// Where `reference` is pulled from: its mirror when [`MIRROR_VARIABLE`] names one and the
/// reference is under `public.ecr.aws/lambda/`, else itself. A malformed variable counts as
/// unset here; commands refuse it with [`mirror`] before they use a base.
pub fn pulled_from(reference: RegistryReference) -> RegistryReference {
    match mirror().ok().flatten() {
        Some(mirror) => mirror.mirrored(&reference).unwrap_or(reference),
        None => reference,
    }
}

/// When `reference` is in the mirror [`MIRROR_VARIABLE`] names: the `public.ecr.aws/lambda/`
/// reference it stands for, and the mirror (for messages). A malformed variable counts as unset.
pub fn mirrored_upstream(reference: &RegistryReference) -> Option<(RegistryReference, BaseMirror)> {
    let mirror = mirror().ok().flatten()?;
    Some((mirror.upstream(reference)?, mirror))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::for_reference_with;

    #[test]
    fn the_variable_unset_or_empty_is_no_mirror_and_a_bad_value_is_a_usage_error_naming_it() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        assert_eq!(mirror_from(None).unwrap(), None);
        assert_eq!(mirror_from(Some(OsString::new())).unwrap(), None);
        assert_eq!(
            mirror_from(Some("registry.example.com/lambda".into())).unwrap(),
            Some("registry.example.com/lambda".parse().unwrap())
        );
        for bad in [
            OsString::from("https://registry.example.com/lambda"),
            OsString::from_vec(vec![b'r', 0xff, b'/', b'x']),
        ] {
            let error = mirror_from(Some(bad)).unwrap_err();
            assert_eq!(error.kind(), crate::error::ErrorKind::Usage);
            assert!(
                error.message().starts_with(MIRROR_VARIABLE),
                "{}",
                error.message()
            );
            let hint = error.hint_text().unwrap();
            assert!(hint.contains(&format!("{MIRROR_VARIABLE}=")), "{hint}");
        }
        // A host the reference grammar rewrites (Docker Hub's other names) is not the mirror's.
        assert!("index.docker.io/lambda".parse::<BaseMirror>().is_err());
    }

    #[test]
    fn a_mirror_is_host_and_path_and_keeps_the_catalog_entry() {
        let mirror: BaseMirror = "127.0.0.1:5000/ecr-public/lambda".parse().unwrap();
        assert_eq!(mirror.registry, "127.0.0.1:5000");
        assert_eq!(mirror.path, "ecr-public/lambda");
        assert_eq!(mirror.to_string(), "127.0.0.1:5000/ecr-public/lambda");
        let reference = |text: &str| text.parse::<RegistryReference>().unwrap();
        let upstream = reference("public.ecr.aws/lambda/provided:al2023-arm64");
        let mirrored = mirror.mirrored(&upstream).unwrap();
        assert_eq!(
            mirrored.to_string(),
            "127.0.0.1:5000/ecr-public/lambda/provided:al2023-arm64"
        );
        assert_eq!(mirror.upstream(&mirrored), Some(upstream));
        // Only what is under public.ecr.aws/lambda/ is mirrored, and only the mirror's own
        // references stand for it.
        assert_eq!(
            mirror.mirrored(&reference("public.ecr.aws/other/x:1")),
            None
        );
        assert_eq!(
            mirror.mirrored(&reference("127.0.0.1:5000/lambda/x:1")),
            None
        );
        assert_eq!(
            mirror.upstream(&reference("127.0.0.1:5000/ecr-public/lambdax/provided:al2")),
            None
        );
        let glibc = |text: &str, mirror: Option<&BaseMirror>| {
            for_reference_with(&reference(text), mirror).and_then(|base| base.glibc)
        };
        let at_mirror = "127.0.0.1:5000/ecr-public/lambda/provided:al2";
        assert_eq!(glibc(at_mirror, Some(&mirror)).as_deref(), Some("2.26"));
        assert_eq!(glibc(at_mirror, None), None);
        assert_eq!(
            glibc("public.ecr.aws/lambda/provided:al2023", Some(&mirror)).as_deref(),
            Some("2.34")
        );
        for good in [
            "localhost/lambda",
            "mirror.example.com/a/b/c",
            "10.0.0.1:443/x",
        ] {
            assert!(good.parse::<BaseMirror>().is_ok(), "{good}");
        }
        for bad in [
            "mirror.example.com",
            "mirror.example.com/",
            "mirror.example.com/lambda/",
            "https://mirror.example.com/lambda",
            "mirror.example.com/lambda:al2023",
            "mirror.example.com/lambda@sha256:00",
            "mirror/lambda",
            "mirror.example.com/Lambda",
            "mirror.example.com//lambda",
            "",
        ] {
            assert!(bad.parse::<BaseMirror>().is_err(), "{bad}");
        }
    }

    #[test]
    fn each_malformed_mirror_gets_its_own_message() {
        let why = |text: &str| text.parse::<BaseMirror>().unwrap_err();
        // A trailing / is one message, whatever comes before it.
        for trailing in [
            "127.0.0.1:5055/mirror/lambda/",
            "mirror.example.com/lambda//",
        ] {
            let message = why(trailing);
            assert!(message.contains("ends with `/`: drop it"), "{message}");
            assert!(!message.contains("valid repository"), "{message}");
        }
        // No path at all, with or without the `/`, is one message.
        for pathless in ["127.0.0.1:5055/", "127.0.0.1:5055", "mirror.example.com//"] {
            let message = why(pathless);
            assert!(message.contains("names no repository path"), "{message}");
        }
        assert!(why("mirror.example.com//lambda").contains("empty path component"));
        assert!(why("mirror.example.com/lambda:al2023").contains("a tag (`:al2023`)"));
        assert!(why("mirror.example.com/lambda@sha256:00").contains("a digest (`@sha256:00`)"));
        assert!(why("https://mirror.example.com/lambda").contains("drop it"));
        assert!(why("https://mirror.example.com/lambda").contains("`https://`"));
        assert!(why("mirror/lambda").contains("is not a registry host"));
        let credentials = why("alice:s3cret@127.0.0.1:5056/mirror/lambda");
        assert!(
            credentials.contains("cannot carry credentials"),
            "{credentials}"
        );
        assert!(!credentials.contains("s3cret"), "{credentials}");
        assert!(why("mirror.example.com/Lambda").contains("upper-case"));
        // Credentials without a path: refused as credentials, never quoted.
        for bare in ["SECRETUSR:s3cretPW@127.0.0.1:5301", "SECRETUSR:s3cretPW@"] {
            let message = why(bare);
            assert!(message.contains("cannot carry credentials"), "{message}");
            assert!(message.contains("SECRETUSR:***@"), "{message}");
            assert!(!message.contains("s3cretPW"), "{message}");
        }
        // The repository itself rather than the prefix it is under.
        let repository = why("127.0.0.1:5301/ecr-public/lambda/provided");
        assert!(
            repository.contains("drop `/provided`") && repository.contains(UPSTREAM),
            "{repository}"
        );
        assert!(
            "127.0.0.1:5301/ecr-public/lambda"
                .parse::<BaseMirror>()
                .is_ok()
        );
    }

    #[test]
    fn a_mirror_host_is_case_insensitive() {
        let mirror: BaseMirror = "LOCALHOST:5055/mirror/lambda".parse().unwrap();
        assert_eq!(mirror.registry, "localhost:5055");
        let upstream: RegistryReference = "public.ecr.aws/lambda/provided:al2".parse().unwrap();
        assert_eq!(
            mirror.mirrored(&upstream).unwrap().to_string(),
            "localhost:5055/mirror/lambda/provided:al2"
        );
    }
}
