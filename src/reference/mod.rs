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

const USAGE: &str = "use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]";

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

/// A base image: a local location, or a registry reference (including a catalog short name such
/// as `provided.al2023`). A reference under `public.ecr.aws/lambda/` is parsed to its mirror's
/// copy when `LAMBDA_IMAGE_BASE_MIRROR` names one (see [`crate::catalog::BaseMirror`]). A
/// malformed value is ignored here: the commands refuse it ([`crate::catalog::mirror`]) before
/// they use a base, with an error naming the variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseReference {
    Local(ImageLocation),
    Registry(registry::RegistryReference),
}

impl FromStr for BaseReference {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shown_text = registry::shown(text);
        if ["oci:", "oci-archive:", "docker-archive:"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
        {
            return text.parse().map(BaseReference::Local);
        }
        registry::refuse_url_forms(text)?;
        let reference = match catalog_name(text)? {
            Some(reference) => reference,
            None => text.parse::<registry::RegistryReference>().map_err(|error| {
                format!("`{shown_text}` is not a valid image reference: {error}; use HOST/REPOSITORY:TAG, a short name (provided.al2023, provided.al2), or {USAGE}")
            })?,
        };
        // A base under public.ecr.aws/lambda is pulled from the mirror, when one is set.
        Ok(BaseReference::Registry(crate::catalog::pulled_from(
            reference,
        )))
    }
}

/// A base written as a catalog short name: `provided.al2023` is the catalog's reference;
/// `provided.al2023@sha256:…` that reference pinned to a digest (the digest decides what is
/// pulled; the catalog's facts still apply). Errors for what only looks like one and would
/// otherwise be taken for a Docker Hub image (`docker.io/library/provided.al3000`): a name the
/// catalog does not have that starts like one of its names (`provided.`), or a short name with a
/// tag (`provided.al2023:al2023`). `None` for anything else, including a Docker Hub reference
/// written with its registry (`docker.io/library/provided.x`).
fn catalog_name(text: &str) -> Result<Option<registry::RegistryReference>, String> {
    let shown_text = registry::shown(text);
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (text, None),
    };
    if let Some(known) = crate::catalog::by_name(name) {
        let mut reference = known.reference.parse::<registry::RegistryReference>()?;
        if let Some(digest) = digest {
            let pinned = format!("{}@{digest}", known.reference)
                .parse::<registry::RegistryReference>()
                .map_err(|error| format!("`{shown_text}`: {error}"))?;
            reference.digest = pinned.digest;
        }
        return Ok(Some(reference));
    }
    let bases = crate::catalog::all();
    let names: Vec<&str> = bases.iter().map(|base| base.name.as_str()).collect();
    let (short, tag) = match name.split_once(':') {
        Some((short, tag)) if !short.contains('/') => (short, Some(tag)),
        _ => (name, None),
    };
    if short.contains('/') {
        return Ok(None);
    }
    if let (Some(known), Some(tag)) = (crate::catalog::by_name(short), tag) {
        return Err(format!(
            "`{shown_text}`: the short name {short} already names a tag ({}), so it takes none; write \
             {short} (or {short}@sha256:DIGEST to pin it), or {}:TAG for another tag of its \
             repository (`{tag}` here)",
            known.reference,
            known.reference.split(':').next().unwrap_or_default()
        ));
    }
    let looks_like_one = names.iter().any(|known| {
        known
            .split_once('.')
            .is_some_and(|(family, _)| short.starts_with(&format!("{family}.")))
    });
    if looks_like_one {
        return Err(format!(
            "`{shown_text}` is not a base in the catalog (its names: {}; `lambda-image base list` shows \
             them); as an image reference it would name docker.io/library/{short}, so write that \
             if it is what you mean",
            names.join(", ")
        ));
    }
    Ok(None)
}

impl fmt::Display for BaseReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaseReference::Local(location) => location.fmt(f),
            BaseReference::Registry(reference) => reference.fmt(f),
        }
    }
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

    /// A docker-archive's NAME:TAG: the last `:` splits off the tag unless a `/` follows it (a
    /// registry port in the name); `@N` is an index.
    #[test]
    fn a_docker_archive_selector_is_name_and_tag_or_an_index() {
        let selector = |text: &str| match text.parse::<ImageLocation>().unwrap() {
            ImageLocation::DockerArchive { selector, .. } => selector,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            selector("docker-archive:a.tar:fn:v1"),
            Some(DockerArchiveSelector::Name("fn:v1".into()))
        );
        assert_eq!(
            selector("docker-archive:a.tar:localhost:5000/fn"),
            Some(DockerArchiveSelector::Name(
                "localhost:5000/fn:latest".into()
            ))
        );
        assert_eq!(
            selector("docker-archive:a.tar:@1"),
            Some(DockerArchiveSelector::Index(1))
        );
        assert_eq!(selector("docker-archive:a.tar"), None);
        assert_eq!(
            BaseReference::from_str("oci:kit:al2023")
                .unwrap()
                .to_string(),
            "oci:kit:al2023"
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
    fn no_message_quotes_credentials_typed_anywhere_in_a_location() {
        let password = "s3cretPW";
        let locations = [
            "SECRETUSR:s3cretPW@127.0.0.1",
            "SECRETUSR:s3cretPW@127.0.0.1:5302",
            "SECRETUSR:s3cretPW@",
            "docker-archive:f.tar:SECRETUSR:s3cretPW@h/x:v1",
            "docker-archive:f.tar:SECRETUSR:s3cretPW@h/X:v1",
            "docker-archive::SECRETUSR:s3cretPW@h/x:v1",
            "oci:d:SECRETUSR:s3cretPW@h/x",
            "oci-archive::SECRETUSR:s3cretPW@h",
            "SECRETUSR:s3cretPW@h/fn:v1",
            "SECRETUSR:s3cretPW@h/Fn:v1",
            "provided.al2023:SECRETUSR:s3cretPW@h",
        ];
        for text in locations {
            let mut errors = vec![
                text.parse::<ImageLocation>().unwrap_err(),
                parse_kit_location(text, "advice").unwrap_err(),
            ];
            errors.extend(text.parse::<BaseReference>().err());
            for error in errors {
                assert!(!error.contains(password), "{text}: {error}");
                assert!(error.contains("***@"), "{text}: {error}");
            }
        }
        // A docker-archive's name: the message says what is wrong, with the password masked.
        let error = "docker-archive:f.tar:SECRETUSR:s3cretPW@h/x:v1"
            .parse::<ImageLocation>()
            .unwrap_err();
        assert!(error.contains("`SECRETUSR:***@h/x:v1` in"), "{error}");
        assert!(error.contains("is not a NAME:TAG"), "{error}");
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

    #[test]
    fn bases_are_local_registry_or_catalog_names() {
        let registry = |text: &str| match text.parse::<BaseReference>().unwrap() {
            BaseReference::Registry(reference) => reference.to_string(),
            other => panic!("{text} parsed as {other:?}"),
        };
        assert_eq!(
            registry("provided.al2023"),
            "public.ecr.aws/lambda/provided:al2023"
        );
        assert_eq!(
            registry("provided.al2"),
            "public.ecr.aws/lambda/provided:al2"
        );
        assert_eq!(
            registry("docker://127.0.0.1:5000/lambda/base:al2023"),
            "127.0.0.1:5000/lambda/base:al2023"
        );
        assert_eq!(registry("alpine"), "docker.io/library/alpine:latest");
    }

    /// A catalog short name pinned to a digest is the catalog's reference pinned; a short name
    /// with a tag, or a name that only looks like a catalog one, is refused rather than taken
    /// for a Docker Hub image; Docker Hub written out is still Docker Hub.
    #[test]
    fn catalog_short_names_are_not_taken_for_docker_hub_images() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let BaseReference::Registry(pinned) = format!("provided.al2023@{digest}")
            .parse::<BaseReference>()
            .unwrap()
        else {
            panic!("a registry base");
        };
        assert_eq!(pinned.registry, "public.ecr.aws");
        assert_eq!(pinned.repository, "lambda/provided");
        assert_eq!(pinned.tag.as_deref(), Some("al2023"));
        assert_eq!(pinned.digest.unwrap().to_string(), digest);
        let unknown = "provided.al3000".parse::<BaseReference>().unwrap_err();
        assert!(unknown.contains("not a base in the catalog"), "{unknown}");
        assert!(
            unknown.contains("provided.al2023, provided.al2"),
            "{unknown}"
        );
        assert!(unknown.contains("lambda-image base list"), "{unknown}");
        let tagged = "provided.al2023:al2023"
            .parse::<BaseReference>()
            .unwrap_err();
        assert!(tagged.contains("already names a tag"), "{tagged}");
        for hub in [
            "docker.io/library/provided.al3000",
            "alpine:3.20",
            "provided",
        ] {
            assert!(
                matches!(hub.parse::<BaseReference>(), Ok(BaseReference::Registry(r)) if r.registry == "docker.io"),
                "{hub}"
            );
        }
        assert!(matches!(
            "oci:dir:al2023".parse::<BaseReference>().unwrap(),
            BaseReference::Local(ImageLocation::OciLayout { .. })
        ));
        assert!("Not/Valid".parse::<BaseReference>().is_err());
    }
}
