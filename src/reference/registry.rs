//! Registry references as docker and skopeo write them: `[docker://][HOST[:PORT]/]REPO[:TAG][@DIGEST]`,
//! with Docker Hub's defaults (`docker.io`, `library/`, `latest`).
//!
//! Only parsing and normalising live here; talking to a registry does not.

use std::fmt;
use std::str::FromStr;

use crate::digest::Sha256Digest;

/// Docker Hub, the registry of references that name none.
pub const DOCKER_HUB: &str = "docker.io";
/// The longest repository name the distribution spec lets registries refuse beyond.
const MAX_NAME_LENGTH: usize = 255;

/// A fully qualified registry reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryReference {
    /// `host[:port]`, e.g. `public.ecr.aws` or `127.0.0.1:5000`.
    pub registry: String,
    /// The repository path, e.g. `lambda/provided` or `library/alpine`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<Sha256Digest>,
}

impl FromStr for RegistryReference {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        refuse_url_forms(text)?;
        let shown_text = shown(text);
        let bare = text.strip_prefix("docker://").unwrap_or(text);
        if bare.is_empty() {
            return Err("an empty image reference".into());
        }
        if bare.len() > 4096 {
            return Err("the image reference is over 4096 characters".into());
        }
        let (name_and_tag, digest) = match bare.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest)?)),
            None => (bare, None),
        };
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(colon) => {
                let split = last_slash + colon;
                (&name_and_tag[..split], Some(&name_and_tag[split + 1..]))
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag
            && !super::is_valid_tag(tag)
        {
            return Err(format!(
                "`{tag}` in `{shown_text}` is not a valid tag (letters, digits, `_`, `.`, `-`, at most 128, not starting with `.` or `-`)"
            ));
        }
        let (registry, repository) = split_registry(name);
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        check_repository(&repository, text)?;
        if !is_valid_registry(&registry) {
            return Err(format!(
                "`{registry}` in `{shown_text}` is not a valid registry host[:port]"
            ));
        }
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// What a user may type for a reference copied from a URL or a login: `SCHEME://` and
/// `USER:PASS@` (or `TOKEN@`) before the host. Returns the scheme (with its `://`, `docker://`
/// excluded: it is the containers tools' own transport prefix), and the byte range of the
/// credentials with their `@`.
///
/// An `@` is taken for the end of credentials when a `/` follows it (a digest's never has one);
/// otherwise when what follows it is not digest-like (see [`is_digest_like`]) and either it
/// comes before the first `/` (`USER:PASS@HOST[:PORT]`, `USER:PASS@`) or the first path
/// component before it has a `:` that is no port (`USER:PA/SS@HOST`). A bad digest after a
/// repository (`repo@sha256:zz`) is left to the digest's own message.
fn url_parts(text: &str) -> (Option<&str>, Option<std::ops::Range<usize>>) {
    let scheme_end = text.find("://").filter(|&end| {
        let scheme = &text[..end];
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
    });
    let rest_start = scheme_end.map_or(0, |end| end + 3);
    let scheme = scheme_end
        .map(|end| &text[..end + 3])
        .filter(|scheme| !scheme.eq_ignore_ascii_case("docker://"));
    let rest = &text[rest_start..];
    let with_slash_after = rest
        .match_indices('@')
        .rev()
        .find(|(at, _)| rest[at + 1..].contains('/'));
    let credentials = with_slash_after
        .or_else(|| {
            rest.match_indices('@').rev().find(|&(at, _)| {
                let (left, right) = (&rest[..at], &rest[at + 1..]);
                if is_digest_like(right) {
                    return false;
                }
                match left.split_once('/') {
                    None => true,
                    Some((first, _)) => first
                        .rsplit_once(':')
                        .is_some_and(|(_, port)| !port.bytes().all(|b| b.is_ascii_digit())),
                }
            })
        })
        .map(|(at, _)| rest_start..rest_start + at + 1);
    (scheme, credentials)
}

/// Whether `text` (what follows an `@`) looks like a digest, `ALGORITHM:ENCODED` as the OCI
/// image spec writes it: an algorithm starting with a letter (`[a-z0-9]` parts joined by
/// `+._-`), then either an algorithm named `sha…` without a `.`, or an encoded part of at least
/// 16 characters of `[a-zA-Z0-9=_-]` (no `HOST:PORT` has one: a port is at most 5 digits).
pub fn is_digest_like(text: &str) -> bool {
    let Some((algorithm, encoded)) = text.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.starts_with(|c: char| c.is_ascii_lowercase())
        && algorithm.split(['+', '.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let encoded_ok = encoded.len() >= 16
        && encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    algorithm_ok && ((algorithm.starts_with("sha") && !algorithm.contains('.')) || encoded_ok)
}

/// `text` as messages may quote it: with credentials (see [`redact_credentials`]) masked, else
/// unchanged. Every message that quotes what the user typed goes through this.
pub fn shown(text: &str) -> String {
    redact_credentials(text).unwrap_or_else(|| text.to_owned())
}

/// `text` with the password of `USER:PASS@` (all of a `TOKEN@`) replaced by `***`, for
/// messages; None when it carries no credentials.
pub fn redact_credentials(text: &str) -> Option<String> {
    let (_, credentials) = url_parts(text);
    let range = credentials?;
    let userinfo = &text[range.start..range.end - 1];
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***@"),
        None => "***@".to_owned(),
    };
    Some(format!(
        "{}{shown}{}",
        &text[..range.start],
        &text[range.end..]
    ))
}

/// Refuses the URL forms of a reference: credentials (`USER:PASS@HOST/…`) and a scheme
/// (`https://`, `http://`). The message never quotes the password (it shows the reference as
/// [`redact_credentials`] does) and says where credentials and plain HTTP are given instead.
pub fn refuse_url_forms(text: &str) -> Result<(), String> {
    match url_parts(text) {
        (scheme, Some(_)) => {
            let redacted = redact_credentials(text).unwrap_or_default();
            let mut message = format!(
                "a reference cannot carry credentials (USER:PASS@): `{redacted}`; give them \
                 with --creds/--base-creds, --username/--password-stdin, or a docker login"
            );
            if let Some(scheme) = scheme {
                message.push_str(&format!("; and a reference has no scheme: drop `{scheme}`"));
            }
            Err(message)
        }
        (Some(scheme), None) => {
            let shown_text = shown(text);
            Err(format!(
                "`{shown_text}` starts with `{scheme}`, but docker-style references have no scheme: drop \
             it (HOST[:PORT]/REPOSITORY[:TAG]); a registry served over plain HTTP is named with \
             --insecure-registry HOST (loopback hosts need nothing)"
            ))
        }
        (None, None) => Ok(()),
    }
}

/// Splits off the registry the way docker does: the first component is a host when it has a `.`
/// or a `:`, or is `localhost`; otherwise the reference is on Docker Hub.
fn split_registry(name: &str) -> (String, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first.eq_ignore_ascii_case("localhost") =>
        {
            // Host names are case-insensitive (RFC 4343): one spelling, so that
            // `LOCALHOST:5000` is loopback and matches --insecure-registry, credentials and
            // other references alike.
            let registry = match first.to_ascii_lowercase().as_str() {
                "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
                other => other.to_owned(),
            };
            (registry, rest)
        }
        _ => (DOCKER_HUB.to_owned(), name),
    }
}

/// Path components: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn check_repository(repository: &str, whole: &str) -> Result<(), String> {
    let shown_whole = shown(whole);
    if repository.len() > MAX_NAME_LENGTH {
        return Err(format!(
            "the repository in `{shown_whole}` is over {MAX_NAME_LENGTH} characters"
        ));
    }
    let component_ok = |component: &str| {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        !bytes.is_empty()
            && alnum(bytes[0])
            && alnum(bytes[bytes.len() - 1])
            && component
                .split(['.', '_', '-'])
                .all(|part| part.bytes().all(alnum))
            && !component.contains("..")
            && !component.contains("___")
            && !component.contains("._")
            && !component.contains("_.")
            && !component.contains("-.")
            && !component.contains(".-")
            && !component.contains("-_")
            && !component.contains("_-")
    };
    if repository.split('/').all(component_ok) {
        Ok(())
    } else if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        Err(format!(
            "the repository in `{shown_whole}` has upper-case letters; repository names must be lowercase"
        ))
    } else {
        Err(format!(
            "`{repository}` in `{shown_whole}` is not a valid repository (lowercase letters, digits, and . _ - between them, separated by /)"
        ))
    }
}

/// Parses a registry host as `--insecure-registry` takes it: `HOST[:PORT]` (a DNS name or IPv4
/// address, or `[IPv6]`, and a port 1-65535), returned in lower case as references spell hosts.
/// A scheme, credentials, a path or anything else is refused with the expected form; the
/// message never quotes credentials.
pub fn parse_registry_host(text: &str) -> Result<String, String> {
    const FORM: &str = "expected HOST[:PORT], e.g. registry.example.com:5000";
    match url_parts(text) {
        (_, Some(_)) => {
            return Err(format!(
                "a registry host cannot carry credentials (USER:PASS@): `{}`; give them with \
                 --creds/--base-creds, --username/--password-stdin, or a docker login; {FORM}",
                shown(text)
            ));
        }
        (Some(scheme), None) => {
            return Err(format!(
                "`{}` starts with `{scheme}`: drop it, a host has no scheme; {FORM}",
                shown(text)
            ));
        }
        (None, None) => {}
    }
    let host = text.to_ascii_lowercase();
    if host.contains('/') {
        return Err(format!(
            "`{}` has a path: only the host (and :PORT) is named; {FORM}",
            shown(text)
        ));
    }
    if is_valid_registry(&host) {
        Ok(host)
    } else {
        Err(format!("`{}` is not a registry host; {FORM}", shown(text)))
    }
}

fn is_valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || registry.starts_with('[') => {
            (host, Some(port))
        }
        _ => (registry, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    host_ok && port.is_none_or(|port| port.parse::<u16>().is_ok_and(|p| p > 0))
}

fn parse_digest(digest: &str) -> Result<Sha256Digest, String> {
    match digest.split_once(':') {
        Some(("sha256", _)) => digest
            .parse()
            .map_err(|_| format!("`{digest}` after `@` is not a sha256 digest (sha256: and 64 lowercase hex characters)")),
        // Not quoting `whole`: what comes before an `@` may be a password after all.
        Some((algorithm, _)) => Err(format!("the digest after `@` uses algorithm `{algorithm}`; only sha256 is supported")),
        None => Err(format!("`{digest}` after `@` is not a digest such as sha256:<64 hex>")),
    }
}

impl RegistryReference {
    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for RegistryReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RegistryReference {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(
            parse("alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            parse("docker://alpine:3.20").to_string(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(
            parse("index.docker.io/user/app").to_string(),
            "docker.io/user/app:latest"
        );
        assert_eq!(parse("user/app:v1").registry, DOCKER_HUB);
        let ecr = parse("public.ecr.aws/lambda/provided:al2023");
        assert_eq!(
            (ecr.registry.as_str(), ecr.repository.as_str()),
            ("public.ecr.aws", "lambda/provided")
        );
        assert_eq!(ecr.tag.as_deref(), Some("al2023"));
        let local = parse("localhost:5000/a/b/c:t");
        assert_eq!(
            (local.registry.as_str(), local.repository.as_str()),
            ("localhost:5000", "a/b/c")
        );
        let loopback = parse("127.0.0.1:5000/fn");
        assert_eq!(loopback.registry, "127.0.0.1:5000");
        assert_eq!(loopback.tag.as_deref(), Some("latest"));
        assert_eq!(parse("localhost/fn").registry, "localhost");
        assert_eq!(parse("[::1]:5000/fn").registry, "[::1]:5000");
    }

    #[test]
    fn digests_and_tags() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = parse(&format!(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fn@{digest}"
        ));
        assert_eq!(pinned.tag, None);
        assert_eq!(pinned.digest.as_ref().unwrap().to_string(), digest);
        let both = parse(&format!("host.io/fn:v1@{digest}"));
        assert_eq!(both.tag.as_deref(), Some("v1"));
        assert_eq!(both.to_string(), format!("host.io/fn:v1@{digest}"));
    }

    #[test]
    fn credentials_and_schemes_are_refused_without_the_password() {
        for (text, shown) in [
            (
                "alice:s3cret@127.0.0.1:5056/x:y",
                "`alice:***@127.0.0.1:5056/x:y`",
            ),
            (
                "https://alice:s3cret@127.0.0.1:5056/mirror/lambda/provided:al2023",
                "`https://alice:***@127.0.0.1:5056/mirror/lambda/provided:al2023`",
            ),
            ("docker://s3cret@host.io/fn", "`docker://***@host.io/fn`"),
            ("alice:p@s3cret@host.io/fn", "`alice:***@host.io/fn`"),
            // Credentials with nothing after the host, or nothing at all, are no digest.
            ("alice:s3cret@127.0.0.1", "`alice:***@127.0.0.1`"),
            ("alice:s3cret@127.0.0.1:5302", "`alice:***@127.0.0.1:5302`"),
            ("alice:s3cret@", "`alice:***@`"),
            ("s3cret@localhost", "`***@localhost`"),
            ("alice:pa/s3cret@host.io", "`alice:***@host.io`"),
            (
                "https://alice:s3cret@host.io",
                "`https://alice:***@host.io`",
            ),
            ("alice:s3cret@host.io/fn@zz", "`alice:***@host.io/fn@zz`"),
        ] {
            let error = text.parse::<RegistryReference>().unwrap_err();
            assert!(!error.contains("s3cret"), "{error}");
            assert!(error.contains(shown), "{error}");
            assert!(error.contains("cannot carry credentials"), "{error}");
            assert!(error.contains("--creds"), "{error}");
            assert!(!error.contains("digest"), "{error}");
        }
        let https = "https://host.io/fn:v1"
            .parse::<RegistryReference>()
            .unwrap_err();
        assert!(https.contains("drop it"), "{https}");
        assert!(https.contains("--insecure-registry"), "{https}");
        let http = "HTTP://127.0.0.1:5000/fn"
            .parse::<RegistryReference>()
            .unwrap_err();
        assert!(http.contains("`HTTP://`"), "{http}");
        // A bad digest after a repository keeps its digest message.
        for (text, expected) in [
            ("host.io/fn@sha256:zz", "is not a sha256 digest"),
            ("fn@sha256:zz", "is not a sha256 digest"),
            ("127.0.0.1:5302/fn@zz", "is not a digest"),
            (
                "host.io/fn@md5:d41d8cd98f00b204e9800998ecf8427e",
                "only sha256 is supported",
            ),
        ] {
            let error = text.parse::<RegistryReference>().unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(!error.contains("credentials"), "{text}: {error}");
        }
        assert_eq!(redact_credentials("host.io/fn@sha256:abc"), None);
        assert_eq!(shown("host.io/fn@sha256:abc"), "host.io/fn@sha256:abc");
        assert_eq!(shown("u:s3cret@h/x:v1"), "u:***@h/x:v1");
    }

    #[test]
    fn an_insecure_registry_is_a_host_and_port_in_lower_case() {
        assert_eq!(
            parse_registry_host("H.Example:5000").unwrap(),
            "h.example:5000"
        );
        assert_eq!(parse_registry_host("localhost").unwrap(), "localhost");
        assert_eq!(parse_registry_host("[::1]:5000").unwrap(), "[::1]:5000");
        for (bad, expected) in [
            ("https://alice:s3cret@h", "cannot carry credentials"),
            ("alice:s3cret@h:5000", "cannot carry credentials"),
            ("https://h.example", "drop it"),
            ("h.example/path", "has a path"),
            ("not a host!!", "is not a registry host"),
            ("h.example:99999", "is not a registry host"),
            ("", "is not a registry host"),
        ] {
            let error = parse_registry_host(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
            assert!(error.contains("HOST[:PORT]"), "{bad}: {error}");
            assert!(!error.contains("s3cret"), "{bad}: {error}");
        }
    }

    #[test]
    fn host_names_are_lowercased() {
        let upper = parse("LOCALHOST:5055/fn:v1");
        assert_eq!(upper.registry, "localhost:5055");
        assert_eq!(
            parse("Registry.Example.COM/fn").registry,
            "registry.example.com"
        );
        assert_eq!(parse("LocalHost/fn").registry, "localhost");
        assert_eq!(parse("Index.Docker.IO/user/app").registry, DOCKER_HUB);
        // The repository stays case-sensitive: upper case there is refused.
        assert!("host.io/Fn".parse::<RegistryReference>().is_err());
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "",
            "docker://",
            "Upper/case",
            "host.io/Repo:tag",
            "host.io/fn:-tag",
            "host.io/fn:",
            "host.io/fn@sha256:abc",
            "host.io/fn@md5:d41d8cd98f00b204e9800998ecf8427e",
            "host.io//fn",
            "host.io/fn/",
            "host.io:99999/fn",
            "-host.io/fn",
            "host.io/a..b",
            "host.io/-a",
        ] {
            assert!(
                bad.parse::<RegistryReference>().is_err(),
                "{bad:?} should be refused"
            );
        }
        assert!(
            format!("host.io/{}", "a".repeat(300))
                .parse::<RegistryReference>()
                .is_err()
        );
        assert!(
            format!("host.io/fn:{}", "t".repeat(129))
                .parse::<RegistryReference>()
                .is_err()
        );
    }
}
