//! Image locations as skopeo and the containers tools spell them: `oci:DIR[:TAG]`,
//! `oci-archive:FILE[:TAG]` and `docker-archive:FILE[:NAME[:TAG]|:@INDEX]`.

pub mod registry;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where an image is read from or written to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageLocation {
    /// An OCI image layout directory, optionally a tag in its `index.json`.
    OciLayout {
        directory: PathBuf,
        tag: Option<String>,
    },
    /// An OCI image layout packed in a tar file.
    OciArchive { file: PathBuf, tag: Option<String> },
    /// A `docker save` / `docker load` tar file.
    DockerArchive {
        file: PathBuf,
        selector: Option<DockerArchiveSelector>,
    },
}

/// Which image of a docker-archive is meant, or the name written into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerArchiveSelector {
    /// A `name:tag` as in `RepoTags`.
    Name(String),
    /// `@N`: the N-th entry of `manifest.json` (reading only).
    Index(usize),
}

/// What a local image location is, for messages that refuse another form.
pub const USAGE: &str =
    "use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]";

impl FromStr for ImageLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shown_text = registry::shown(text);
        if let Some(rest) = text.strip_prefix("oci:") {
            let (directory, tag) = split_path_and_tag(rest, text)?;
            Ok(ImageLocation::OciLayout { directory, tag })
        } else if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (file, tag) = split_path_and_tag(rest, text)?;
            Ok(ImageLocation::OciArchive { file, tag })
        } else if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (file, selector) = match rest.split_once(':') {
                None => (rest, None),
                Some((file, selector)) => {
                    (file, Some(parse_docker_archive_selector(selector, text)?))
                }
            };
            if file.is_empty() {
                return Err(format!("`{shown_text}` names no file; {USAGE}"));
            }
            Ok(ImageLocation::DockerArchive {
                file: PathBuf::from(file),
                selector,
            })
        } else if text.starts_with("docker://")
            || (!text.contains(':') || text.contains('/')) && !text.is_empty()
        {
            registry::refuse_url_forms(text)?;
            match text.parse::<registry::RegistryReference>() {
                Ok(reference) => Err(format!(
                    "`{shown_text}` is a registry reference ({reference}); push to a registry with --tag, or write a local image: {USAGE}"
                )),
                Err(error) => Err(format!(
                    "`{shown_text}` is not a valid image reference: {error}"
                )),
            }
        } else {
            // Credentials without a path after the host (`USER:PASS@HOST:PORT`): said as such.
            registry::refuse_url_forms(text)?;
            Err(format!("`{shown_text}` is not an image location; {USAGE}"))
        }
    }
}

/// What a kit location is: `base pull --output` and `base verify` take only these.
pub const KIT_USAGE: &str = "a kit is oci:DIR[:TAG] or oci-archive:FILE[:TAG]";

/// Parses a kit location (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`) for a command that takes
/// nothing else. A docker-archive or a registry reference is refused with a message that names
/// only what such a command takes; `registry_advice` says what to do instead with a registry
/// reference (it differs between writing a kit and checking one).
pub fn parse_kit_location(text: &str, registry_advice: &str) -> Result<ImageLocation, String> {
    let shown_text = registry::shown(text);
    if text.starts_with("docker-archive:") {
        return Err(format!(
            "`{shown_text}` is a docker-archive, which cannot hold a base's manifests; {KIT_USAGE}"
        ));
    }
    if !text.starts_with("oci:") && !text.starts_with("oci-archive:") {
        // A registry reference with credentials or a scheme: said without quoting them.
        registry::refuse_url_forms(text)?;
    }
    if !text.starts_with("oci:")
        && !text.starts_with("oci-archive:")
        && let Ok(reference) = text.parse::<registry::RegistryReference>()
    {
        return Err(format!(
            "`{shown_text}` is a registry reference ({reference}), not a kit: {KIT_USAGE}; {registry_advice}"
        ));
    }
    match text.parse::<ImageLocation>() {
        Ok(location) => Ok(location),
        Err(_) if !text.starts_with("oci:") && !text.starts_with("oci-archive:") => {
            Err(format!("`{shown_text}` is not a kit location; {KIT_USAGE}"))
        }
        // A malformed path or tag: the message says which part; the usage is the kit's.
        Err(error) => Err(error.replace(USAGE, KIT_USAGE)),
    }
}

/// Splits `PATH[:TAG]` the way the containers tools do: at the first `:`.
fn split_path_and_tag(rest: &str, whole: &str) -> Result<(PathBuf, Option<String>), String> {
    let shown_whole = registry::shown(whole);
    let (path, tag) = match rest.split_once(':') {
        None => (rest, None),
        Some((path, tag)) => (path, Some(tag)),
    };
    if path.is_empty() {
        return Err(format!("`{shown_whole}` names no path; {USAGE}"));
    }
    if let Some(tag) = tag
        && !is_valid_tag(tag)
    {
        return Err(format!(
            "`{}` in `{shown_whole}` is not a valid tag (letters, digits, `_`, `.`, `-`, at most 128, not starting with `.` or `-`)",
            registry::shown(tag)
        ));
    }
    Ok((PathBuf::from(path), tag.map(str::to_owned)))
}

fn parse_docker_archive_selector(
    selector: &str,
    whole: &str,
) -> Result<DockerArchiveSelector, String> {
    let (shown_whole, shown_selector) = (registry::shown(whole), registry::shown(selector));
    if let Some(index) = selector.strip_prefix('@') {
        return index
            .parse()
            .map(DockerArchiveSelector::Index)
            .map_err(|_| {
                format!(
                    "`@{}` in `{shown_whole}` is not an image index such as @0",
                    registry::shown(index)
                )
            });
    }
    let (name, tag) = match selector.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (selector, "latest"),
    };
    let name_ok = !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b':'))
        });
    if !name_ok || !is_valid_tag(tag) {
        return Err(format!(
            "`{shown_selector}` in `{shown_whole}` is not a NAME:TAG (lowercase name, e.g. my-function:latest)"
        ));
    }
    Ok(DockerArchiveSelector::Name(format!("{name}:{tag}")))
}

impl ImageLocation {
    /// The same layout or archive with `tag` named, or with none (a docker-archive is returned
    /// unchanged: it names images by `NAME:TAG`, not by tag).
    pub fn with_tag(&self, tag: Option<&str>) -> ImageLocation {
        match self {
            ImageLocation::OciLayout { directory, .. } => ImageLocation::OciLayout {
                directory: directory.clone(),
                tag: tag.map(str::to_owned),
            },
            ImageLocation::OciArchive { file, .. } => ImageLocation::OciArchive {
                file: file.clone(),
                tag: tag.map(str::to_owned),
            },
            other => other.clone(),
        }
    }
}

/// A tag as the distribution spec allows: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageLocation::OciLayout { directory, tag } => {
                write!(f, "oci:{}", directory.display())?;
                tag.iter().try_for_each(|tag| write!(f, ":{tag}"))
            }
            ImageLocation::OciArchive { file, tag } => {
                write!(f, "oci-archive:{}", file.display())?;
                tag.iter().try_for_each(|tag| write!(f, ":{tag}"))
            }
            ImageLocation::DockerArchive { file, selector } => {
                write!(f, "docker-archive:{}", file.display())?;
                match selector {
                    None => Ok(()),
                    Some(DockerArchiveSelector::Name(name)) => write!(f, ":{name}"),
                    Some(DockerArchiveSelector::Index(index)) => write!(f, ":@{index}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is not a local location is told apart: a registry reference (with a `/`, no `:` at
    /// all, or `docker://`) is named as one; anything else with a `:` is an unknown transport.
    #[test]
    fn a_registry_reference_given_as_a_location_is_named_as_one() {
        let said = |text: &str| text.parse::<ImageLocation>().unwrap_err();
        for registry in [
            "registry.example.com/fn:v1",
            "fn",
            "docker://registry.example.com/fn:v1",
            "localhost:5000/fn",
        ] {
            assert!(
                said(registry).contains("is a registry reference"),
                "{registry}"
            );
        }
        for unknown in ["oci-layout:dir", "dir:v1"] {
            assert!(
                said(unknown).contains("is not an image location"),
                "{unknown}"
            );
        }
        assert!(said("").contains("is not an image location"));
    }

    /// A kit command names only kits: each other form gets its own message.
    #[test]
    fn a_kit_location_is_oci_or_oci_archive_and_each_other_form_is_named() {
        let parsed = |text: &str| parse_kit_location(text, "ADVICE");
        assert_eq!(
            parsed("oci:kit:al2023"),
            Ok(ImageLocation::OciLayout {
                directory: "kit".into(),
                tag: Some("al2023".into())
            })
        );
        assert!(matches!(
            parsed("oci-archive:kit.tar"),
            Ok(ImageLocation::OciArchive { tag: None, .. })
        ));
        let refused = |text: &str| parsed(text).unwrap_err();
        assert!(refused("docker-archive:x.tar").contains("is a docker-archive"));
        let registry = refused("registry.example.com/fn:v1");
        assert!(registry.contains("is a registry reference"), "{registry}");
        assert!(registry.ends_with("; ADVICE"), "{registry}");
        assert!(refused("Kit:V1").contains("is not a kit location"));
        // A malformed tag of a kit: which part is wrong, and the kit's usage, not build's.
        let tag = refused("oci:kit:-bad");
        assert!(tag.contains("is not a valid tag"), "{tag}");
        let path = refused("oci-archive:");
        assert!(
            path.contains("names no path") && path.contains(KIT_USAGE),
            "{path}"
        );
    }

    #[test]
    fn a_kit_location_with_credentials_is_refused_without_quoting_the_password() {
        for text in [
            "alice:s3cret@127.0.0.1:5056/fn:v1",
            "https://alice:s3cret@registry.example.com/fn:v1",
        ] {
            let error = parse_kit_location(text, "advice").unwrap_err();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(error.contains("cannot carry credentials"), "{error}");
        }
        let error = parse_kit_location("https://registry.example.com/fn:v1", "advice").unwrap_err();
        assert!(error.contains("no scheme"), "{error}");
    }

    #[test]
    fn parses_the_local_transports() {
        assert_eq!(
            "oci:out:v1".parse::<ImageLocation>().unwrap(),
            ImageLocation::OciLayout {
                directory: "out".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            "oci-archive:/tmp/a.tar".parse::<ImageLocation>().unwrap(),
            ImageLocation::OciArchive {
                file: "/tmp/a.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            "docker-archive:fn.tar:my/fn"
                .parse::<ImageLocation>()
                .unwrap(),
            ImageLocation::DockerArchive {
                file: "fn.tar".into(),
                selector: Some(DockerArchiveSelector::Name("my/fn:latest".into()))
            }
        );
        assert_eq!(
            "docker-archive:fn.tar:@1".parse::<ImageLocation>().unwrap(),
            ImageLocation::DockerArchive {
                file: "fn.tar".into(),
                selector: Some(DockerArchiveSelector::Index(1))
            }
        );
        assert!("oci:".parse::<ImageLocation>().is_err());
        assert!("oci:dir:-bad".parse::<ImageLocation>().is_err());
        assert!(
            "docker-archive:fn.tar:Upper:x"
                .parse::<ImageLocation>()
                .is_err()
        );
        assert!(
            "public.ecr.aws/lambda/provided:al2023"
                .parse::<ImageLocation>()
                .is_err()
        );
        assert!("zip:thing".parse::<ImageLocation>().is_err());
    }
}
