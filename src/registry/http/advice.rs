//! What to tell the user to do when a registry cannot be reached or refuses something: hints
//! chosen by the role the host plays in the run (the base's registry, a push target, a token
//! service) and by what a registry's answer says (a manifest media type it will not store).
//!
//! Hints about credentials (which flag to give) are [`crate::credentials::advice`].
//!
//! Pure text from facts already known; no I/O. Not here: deciding whether to retry
//! ([`super::retry`]), reading answers ([`super::error`]), or the advice of the issuer of a host's
//! credentials ([`crate::credentials::TokenIssuer::answer_hint`], ECR's).

use crate::credentials::HostRole;
use crate::reference::registry::RegistryReference;

/// The hint for a registry `host` that could not be reached at all (refused, reset, timed out,
/// or with `dns`, a name that did not resolve). Proxies are named because `HTTPS_PROXY` /
/// `NO_PROXY` decide the path to the host. `read` is the reference the run reads from the host
/// (the base): the ways to build without the host name it, and the base mirror variable.
pub fn unreachable_hint(
    role: HostRole,
    host: &str,
    dns: bool,
    read: Option<&RegistryReference>,
) -> String {
    let check = if dns {
        format!("check the spelling of {host} and this machine's DNS settings")
    } else {
        format!(
            "check the host and port of {host}, that the registry is up, and the network and \
             proxy settings (HTTPS_PROXY, NO_PROXY) between here and it"
        )
    };
    match role {
        HostRole::Target => format!("{check}; it is where the image is pushed (--tag)"),
        HostRole::Checked => match read {
            Some(read) => format!(
                "{check}; it holds the image {read} (a copy in an OCI layout, `skopeo copy \
                 docker://{read} oci:DIR:TAG`, is read without it as oci:DIR:TAG)"
            ),
            None => format!("{check}; it holds the image the command names"),
        },
        HostRole::Base => {
            let base = read.map_or_else(|| "BASE".to_owned(), ToString::to_string);
            // The mirror variable stands only for public.ecr.aws/lambda: named for a base
            // from there, not for one from Docker Hub or any other registry.
            let is_upstream =
                read.is_some_and(|read| crate::catalog::upstream_repository(read).is_some());
            let mirror = match crate::catalog::mirror().ok().flatten() {
                Some(mirror) if mirror.registry == host => format!(
                    "; {host} is the mirror {} names ({mirror})",
                    crate::catalog::MIRROR_VARIABLE
                ),
                _ if is_upstream => format!(
                    "; a network that mirrors {} says so with {}=HOST[:PORT]/PATH",
                    crate::catalog::UPSTREAM,
                    crate::catalog::MIRROR_VARIABLE
                ),
                _ => String::new(),
            };
            format!(
                "{check}; it is the base's registry. To build without it: `lambda-image base \
                 pull {base}` where it can be reached fills the cache for `build --offline` \
                 (with the same --cache-dir), and `lambda-image base pull {base} --output \
                 oci:DIR` makes a kit to build from with `--base oci:DIR`{mirror}"
            )
        }
    }
}

/// The hint for an answer with retryable status `status` (408, 429, 5xx) that kept coming
/// for every try: a registry limiting the rate of requests is to be asked again later; one that
/// keeps failing may be down or overloaded.
pub fn still_failing_hint(status: u16) -> String {
    match status {
        429 => "the registry is limiting how often it may be asked (429 Too Many Requests) and \
                still was after the waits it asked for: wait a while and run the command again \
                (a logged-in account often has a higher limit)"
            .to_owned(),
        _ => format!(
            "the registry kept answering {status}: it may be overloaded, restarting or down; run \
             the command again later, and if it persists check the registry's status or logs"
        ),
    }
}

/// The hint for a token service at `realm` that could not be reached, for `registry`, which
/// named it in its `WWW-Authenticate` challenge.
pub fn token_service_hint(registry: &str, realm_host: &str, dns: bool) -> String {
    let check = if dns {
        format!("check this machine's DNS settings for {realm_host}")
    } else {
        format!("check that this machine can reach {realm_host} (firewall, HTTPS_PROXY, NO_PROXY)")
    };
    format!(
        "{realm_host} is the token service of registry {registry} (it sends clients there for \
         tokens): {check}"
    )
}

/// The hint for an answer refusing a manifest of `media_type`, if the answer says the type is
/// what was refused: 415 Unsupported Media Type, or 400 with `MANIFEST_INVALID` or
/// `UNSUPPORTED` (distribution's error codes, as registries that store only one family of
/// manifests answer) or a body that speaks of the media type. `body` is the answer's text.
/// The hint suggests the other `--format` (OCI types → `docker`, Docker types → `oci`).
pub fn refused_media_type_hint(status: u16, body: &str, media_type: &str) -> Option<String> {
    let (family, other) = if media_type.starts_with("application/vnd.oci.") {
        ("OCI", "docker")
    } else if media_type.starts_with("application/vnd.docker.") {
        ("Docker", "oci")
    } else {
        return None;
    };
    let lower = body.to_ascii_lowercase();
    let speaks_of_type = ["manifest_invalid", "unsupported", "media type", "mediatype"]
        .iter()
        .any(|word| lower.contains(word));
    let refused = match status {
        415 => true,
        400 => speaks_of_type,
        _ => false,
    };
    refused.then(|| {
        format!(
            "the registry may not accept {family} manifests ({media_type}); build with \
             --format {other} to push the same image with {} media types",
            if other == "docker" { "Docker" } else { "OCI" }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

    #[test]
    fn hints_for_a_status_that_kept_coming_tell_rate_limits_from_failures() {
        let limited = still_failing_hint(429);
        assert!(limited.contains("wait a while"), "{limited}");
        for status in [408, 500, 502, 503, 504] {
            let failing = still_failing_hint(status);
            assert!(
                failing.contains(&format!("kept answering {status}")),
                "{failing}"
            );
            assert!(!failing.contains("429"), "{failing}");
        }
    }

    #[test]
    fn unreachable_hints_fit_the_role() {
        let target = unreachable_hint(HostRole::Target, "r.example:5000", false, None);
        assert!(
            target.contains("host and port of r.example:5000"),
            "{target}"
        );
        assert!(target.contains("HTTPS_PROXY"), "{target}");
        assert!(target.contains("pushed"), "{target}");
        assert!(!target.contains("oci:DIR"), "{target}");
        // The sentence names the image (it once ended at "the image named").
        let checked = unreachable_hint(
            HostRole::Checked,
            "r.example:5000",
            false,
            Some(&"r.example:5000/fn:v1".parse().unwrap()),
        );
        assert!(
            checked.contains("it holds the image r.example:5000/fn:v1 (")
                && checked.contains("skopeo copy docker://r.example:5000/fn:v1 oci:DIR:TAG"),
            "{checked}"
        );
        assert!(!checked.contains("--offline"), "{checked}");
        let unnamed = unreachable_hint(HostRole::Checked, "r.example:5000", false, None);
        assert!(
            unnamed.ends_with("it holds the image the command names"),
            "{unnamed}"
        );
        let base = unreachable_hint(
            HostRole::Base,
            "r.example:5000",
            false,
            Some(&"r.example:5000/lambda/base:al2023".parse().unwrap()),
        );
        for expected in [
            "`lambda-image base pull r.example:5000/lambda/base:al2023` where",
            "`lambda-image base pull r.example:5000/lambda/base:al2023 --output oci:DIR`",
            "--offline",
            "`--base oci:DIR`",
        ] {
            assert!(base.contains(expected), "{base} lacks {expected}");
        }
        assert!(
            !base.contains("pull BASE") && !base.contains(":TAG"),
            "{base}"
        );
        // The mirror variable is for public.ecr.aws/lambda bases only.
        assert!(!base.contains("LAMBDA_IMAGE_BASE_MIRROR"), "{base}");
        let upstream = unreachable_hint(
            HostRole::Base,
            "public.ecr.aws",
            true,
            Some(&"public.ecr.aws/lambda/provided:al2023".parse().unwrap()),
        );
        assert!(
            upstream.contains("LAMBDA_IMAGE_BASE_MIRROR=HOST[:PORT]/PATH"),
            "{upstream}"
        );
        let hub = unreachable_hint(
            HostRole::Base,
            "docker.io",
            true,
            Some(&"docker.io/library/alpine:latest".parse().unwrap()),
        );
        assert!(!hub.contains("LAMBDA_IMAGE_BASE_MIRROR"), "{hub}");
        let dns = unreachable_hint(HostRole::Target, "r.example", true, None);
        assert!(dns.contains("spelling of r.example"), "{dns}");
        assert!(!dns.contains("host and port"), "{dns}");
    }

    #[test]
    fn token_service_hint_names_its_host_and_registry() {
        let hint = token_service_hint("r.example", "auth.example:443", false);
        assert!(hint.contains("auth.example:443 is the token service of registry r.example"));
        assert!(hint.contains("reach auth.example:443"), "{hint}");
        let hint = token_service_hint("r.example", "auth.example", true);
        assert!(hint.contains("DNS settings for auth.example"), "{hint}");
    }

    #[test]
    fn refused_oci_types_suggest_docker_and_the_reverse() {
        let invalid = r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#;
        for media_type in [OCI_MANIFEST, OCI_INDEX] {
            let hint = refused_media_type_hint(400, invalid, media_type).unwrap();
            assert!(hint.contains("--format docker"), "{hint}");
            assert!(hint.contains(media_type), "{hint}");
            assert!(hint.contains("OCI manifests"), "{hint}");
        }
        for media_type in [DOCKER_MANIFEST, DOCKER_LIST] {
            let hint = refused_media_type_hint(415, "", media_type).unwrap();
            assert!(hint.contains("--format oci"), "{hint}");
            assert!(hint.contains("with OCI media types"), "{hint}");
            assert!(hint.contains("Docker manifests"), "{hint}");
        }
    }

    #[test]
    fn only_answers_about_the_type_are_taken_for_a_refused_type() {
        for body in [
            r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#,
            "Unsupported Media Type",
            "manifest media type not allowed",
            "invalid mediaType",
        ] {
            assert!(
                refused_media_type_hint(400, body, OCI_INDEX).is_some(),
                "{body}"
            );
        }
        let unknown_blob =
            r#"{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#;
        assert_eq!(refused_media_type_hint(400, unknown_blob, OCI_INDEX), None);
        assert_eq!(refused_media_type_hint(400, "", OCI_INDEX), None);
        let invalid = r#"{"errors":[{"code":"MANIFEST_INVALID"}]}"#;
        for status in [401, 404, 413, 414, 416, 500] {
            assert_eq!(
                refused_media_type_hint(status, invalid, OCI_INDEX),
                None,
                "{status}"
            );
        }
        assert_eq!(
            refused_media_type_hint(415, invalid, "application/json"),
            None
        );
    }
}
