//! `--base` (and `check --image`) values: a local image location, a registry reference, or a
//! catalog short name such as `provided.al2023`. Resolving short names and mirrors needs the
//! catalog, so this sits above [`crate::reference`], which parses locations and references only.

use std::fmt;
use std::str::FromStr;

use crate::reference::registry::{self, RegistryReference};
use crate::reference::{ImageLocation, USAGE};

/// A base image: a local location, or a registry reference (including a catalog short name such
/// as `provided.al2023`). A reference under `public.ecr.aws/lambda/` is parsed to its mirror's
/// copy when `LAMBDA_IMAGE_BASE_MIRROR` names one (see [`super::BaseMirror`]). A
/// malformed value is ignored here: the commands refuse it ([`super::mirror`]) before
/// they use a base, with an error naming the variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseReference {
    /// An OCI layout, an oci-archive or a docker-archive.
    Local(ImageLocation),
    /// A registry reference: as written, a short name's catalog reference, or its mirror's copy.
    Registry(RegistryReference),
    /// The built-in `scratch` base: no registry, no layers; the tool makes its configs
    /// ([`crate::scratch_base`]).
    Scratch,
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
        if let Some(scratch) = scratch(text)? {
            return Ok(scratch);
        }
        let reference = match catalog_name(text)? {
            Some(reference) => reference,
            None => text.parse::<RegistryReference>().map_err(|error| {
                format!("`{shown_text}` is not a valid image reference: {error}; use HOST/REPOSITORY:TAG, a short name (provided.al2023, provided.al2, scratch), or {USAGE}")
            })?,
        };
        // A base under public.ecr.aws/lambda is pulled from the mirror, when one is set.
        // Docker's `FROM scratch` names no image: Docker Hub reserves the name and has nothing
        // to pull under it. Whoever writes it means an empty base: the built-in one.
        if reference.registry == registry::DOCKER_HUB && reference.repository == "library/scratch" {
            return Err(format!(
                "`{shown_text}`: Docker Hub has no image named scratch (Docker reserves the name for \
                 FROM scratch, an empty base); for an image with no base layers use the built-in \
                 --base scratch"
            ));
        }
        Ok(BaseReference::Registry(super::pulled_from(reference)))
    }
}

/// `scratch`, the built-in base; an error for `scratch:TAG` or `scratch@sha256:…` (there is
/// nothing to tag or pin: it is made by the tool). `None` for anything else (including
/// `docker.io/library/scratch`, a Docker Hub reference).
fn scratch(text: &str) -> Result<Option<BaseReference>, String> {
    let name = text.split([':', '@']).next().unwrap_or_default();
    match (name == super::SCRATCH, text == super::SCRATCH) {
        (true, true) => Ok(Some(BaseReference::Scratch)),
        (true, false) => Err(format!(
            "`{}`: scratch is built into lambda-image (no registry, no layers), so it takes no \
             tag or digest; write --base scratch (what it holds changes only with the version of \
             lambda-image)",
            registry::shown(text)
        )),
        (false, _) => Ok(None),
    }
}

/// A base written as a catalog short name: `provided.al2023` is the catalog's reference;
/// `provided.al2023@sha256:…` that reference pinned to a digest (the digest decides what is
/// pulled; the catalog's facts still apply). Errors for what only looks like one and would
/// otherwise be taken for a Docker Hub image (`docker.io/library/provided.al3000`): a name the
/// catalog does not have that starts like one of its names (`provided.`), or a short name with a
/// tag (`provided.al2023:al2023`). `None` for anything else, including a Docker Hub reference
/// written with its registry (`docker.io/library/provided.x`).
fn catalog_name(text: &str) -> Result<Option<RegistryReference>, String> {
    let shown_text = registry::shown(text);
    let (name, digest) = match text.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (text, None),
    };
    if let Some(known) = super::by_name(name) {
        let mut reference = known.reference.parse::<RegistryReference>()?;
        if let Some(digest) = digest {
            let pinned = format!("{}@{digest}", known.reference)
                .parse::<RegistryReference>()
                .map_err(|error| format!("`{shown_text}`: {error}"))?;
            reference.digest = pinned.digest;
        }
        return Ok(Some(reference));
    }
    let bases = super::all();
    let names: Vec<&str> = bases.iter().map(|base| base.name.as_str()).collect();
    let (short, tag) = match name.split_once(':') {
        Some((short, tag)) if !short.contains('/') => (short, Some(tag)),
        _ => (name, None),
    };
    if short.contains('/') {
        return Ok(None);
    }
    if let (Some(known), Some(tag)) = (super::by_name(short), tag) {
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
            BaseReference::Scratch => f.write_str(super::SCRATCH),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{DockerArchiveSelector, parse_kit_location};

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

    /// `scratch` is the built-in base; tagged or pinned it is refused (nothing to pin), and
    /// Docker Hub's `scratch` written out stays a registry reference.
    #[test]
    fn scratch_is_built_in_and_takes_no_tag_or_digest() {
        assert_eq!(
            "scratch".parse::<BaseReference>(),
            Ok(BaseReference::Scratch)
        );
        assert_eq!(BaseReference::Scratch.to_string(), "scratch");
        let digest = format!("sha256:{}", "a".repeat(64));
        for refused in [
            "scratch:latest".to_owned(),
            format!("scratch@{digest}"),
            format!("scratch:v1@{digest}"),
        ] {
            let error = refused.parse::<BaseReference>().unwrap_err();
            assert!(error.contains("built into lambda-image"), "{error}");
            assert!(error.contains("--base scratch"), "{error}");
        }
        // Docker's reserved name, written as a registry reference: pointed to the built-in.
        for docker in [
            "docker.io/library/scratch",
            "library/scratch:latest",
            "docker://scratch",
        ] {
            let error = docker.parse::<BaseReference>().unwrap_err();
            assert!(
                error.contains("Docker Hub has no image named scratch"),
                "{error}"
            );
            assert!(error.contains("--base scratch"), "{error}");
        }
        assert!(matches!(
            "docker.io/someone/scratch".parse::<BaseReference>(),
            Ok(BaseReference::Registry(reference)) if reference.registry == "docker.io"
        ));
        assert!(matches!(
            "scratchpad".parse::<BaseReference>(),
            Ok(BaseReference::Registry(_))
        ));
        assert!(matches!(
            "oci:scratch".parse::<BaseReference>(),
            Ok(BaseReference::Local(_))
        ));
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
