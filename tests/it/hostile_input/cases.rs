//! The hostile-input table: references, registry answers (a fake registry sending oversized,
//! malformed or mislabelled documents), redirects and TLS; the rows about local inputs (base
//! layers, bootstraps, credentials) are in `cases_local.rs`. Each row says what it feeds in and
//! what must come out; the harness in `tests/it/hostile_input/mod.rs` checks the rest (no panic,
//! empty stdout, nothing written).

use std::fs;
use std::sync::Arc;

use serde_json::json;

use super::case::{Case, Scene, build, check};
use super::fake_registry::FakeRegistry;
use super::hostile_images::{BadCertificate, BadTlsServer, padded_json};
use crate::support::{self, MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, fixtures};

/// A password no output may show.
pub const SECRET: &str = "hostile-s3cret-pw";

pub fn cases() -> Vec<Case> {
    let mut cases = references();
    cases.extend(registry_answers());
    cases.extend(super::cases_local::base_layers());
    cases.extend(super::cases_local::bootstraps());
    cases.extend(super::cases_local::credentials());
    cases.extend(transport());
    cases
}

fn references() -> Vec<Case> {
    let long_name = "a".repeat(256);
    let long_tag = "t".repeat(129);
    let other_digest = format!("sha256:{}", "0".repeat(64));
    vec![
        build(
            "reference: malformed base",
            2,
            "is not a valid image reference",
        )
        .base("127.0.0.1:5000//base:al2023"),
        check(
            "reference: malformed image to check",
            "host.io/fn:v1:extra",
            2,
            "is not a valid",
        ),
        build(
            "reference: repository name over 255",
            2,
            "is over 255 characters",
        )
        .tag(&format!("127.0.0.1:9/{long_name}:v1")),
        build("reference: tag over 128", 2, "is not a valid tag")
            .tag(&format!("127.0.0.1:9/fn:{long_tag}")),
        build(
            "reference: upper-case repository",
            2,
            "repository names must be lowercase",
        )
        .tag("127.0.0.1:9/Fn:v1"),
        build(
            "reference: digest algorithm sha512",
            2,
            "only sha256 is supported",
        )
        .base(format!("127.0.0.1:9/base@sha512:{}", "a".repeat(128))),
        build(
            "reference: digest of the wrong length",
            2,
            "is not a sha256 digest",
        )
        .base("127.0.0.1:9/base@sha256:abc123"),
        build("reference: a tag with a digest to push to", 2, "digest")
            .tag(&format!("127.0.0.1:9/fn:v1@{other_digest}")),
        build(
            "reference: tag plus a digest the registry's document does not have",
            4,
            "does not match its digest",
        )
        .and(format!("expected {other_digest}"))
        .prepare(|s| {
            let registry = FakeRegistry::serving_base();
            let index = support::read_blob(&fixtures().base_layout, &fixtures().base_digest);
            registry.add_manifest(
                &format!("sha256:{}", "0".repeat(64)),
                MEDIA_TYPE_INDEX,
                index,
            );
            s.set("reg", registry.host());
            s.keep(registry);
        })
        .base(format!("{{reg}}/lambda/base:al2023@{other_digest}")),
    ]
}

/// A fake registry serving the fixture base plus what `add` puts in it, as `{reg}`.
fn fake(scene: &mut Scene, add: impl FnOnce(&FakeRegistry)) {
    let registry = FakeRegistry::serving_base();
    add(&registry);
    scene.set("reg", registry.host());
    scene.keep(registry);
}

fn registry_answers() -> Vec<Case> {
    vec![
        build(
            "registry: manifest over 4 MiB",
            4,
            "over the 4194304-byte limit",
        )
        .prepare(|s| {
            fake(s, |r| {
                r.add_manifest("huge", MEDIA_TYPE_MANIFEST, padded_json((4 << 20) + 1))
            })
        })
        .base("{reg}/lambda/base:huge"),
        build(
            "registry: config over 8 MiB",
            4,
            "over the 8388608-byte limit",
        )
        .prepare(|s| {
            fake(s, |r| {
                let mut manifest = FakeRegistry::fixture_manifest("amd64");
                manifest["config"] =
                    r.add_json_blob(MEDIA_TYPE_CONFIG, &padded_json((8 << 20) + 1));
                r.add_manifest_json("big-config", &manifest);
            })
        })
        .base("{reg}/lambda/base:big-config"),
        build(
            "registry: config larger than its descriptor says",
            4,
            "config",
        )
        .prepare(|s| {
            fake(s, |r| {
                let mut manifest = FakeRegistry::fixture_manifest("amd64");
                let descriptor = manifest["config"].clone();
                let mut config = FakeRegistry::fixture_blob(descriptor["digest"].as_str().unwrap());
                config.extend(vec![b' '; 9 << 20]);
                r.add_blob(descriptor["digest"].as_str().unwrap(), config);
                manifest["annotations"] = json!({"hostile": "config grows"});
                r.add_manifest_json("growing-config", &manifest);
            })
        })
        .base("{reg}/lambda/base:growing-config"),
        build("registry: manifest is not JSON", 4, "malformed")
            .prepare(|s| {
                fake(s, |r| {
                    r.add_manifest(
                        "garbage",
                        MEDIA_TYPE_MANIFEST,
                        b"{\"schemaVersion\": 2, oops".to_vec(),
                    )
                })
            })
            .base("{reg}/lambda/base:garbage"),
        build("registry: config is not JSON", 4, "config")
            .prepare(|s| {
                fake(s, |r| {
                    let mut manifest = FakeRegistry::fixture_manifest("amd64");
                    manifest["config"] = r.add_json_blob(MEDIA_TYPE_CONFIG, b"\xff\xfe not json");
                    r.add_manifest_json("bad-config", &manifest);
                })
            })
            .base("{reg}/lambda/base:bad-config"),
        build(
            "registry: unknown top-level media type",
            4,
            "application/vnd.example.unknown+json",
        )
        .and("not an image or an index")
        .prepare(|s| {
            fake(s, |r| {
                r.add_manifest(
                    "unknown",
                    "application/vnd.example.unknown+json",
                    br#"{"schemaVersion":2,"mediaType":"application/vnd.example.unknown+json"}"#
                        .to_vec(),
                )
            })
        })
        .base("{reg}/lambda/base:unknown"),
        build(
            "registry: unknown layer media type",
            4,
            "application/vnd.example.layer",
        )
        .prepare(|s| {
            fake(s, |r| {
                let mut manifest = FakeRegistry::fixture_manifest("amd64");
                manifest["layers"][0]["mediaType"] = json!("application/vnd.example.layer");
                r.add_manifest_json("odd-layer", &manifest);
            })
        })
        .base("{reg}/lambda/base:odd-layer"),
        build(
            "registry: index with no matching platform",
            4,
            "has no image for linux/amd64",
        )
        .and("linux/s390x")
        .prepare(|s| {
            fake(s, |r| {
                let index = json!({
                    "schemaVersion": 2,
                    "mediaType": MEDIA_TYPE_INDEX,
                    "manifests": [{
                        "mediaType": MEDIA_TYPE_MANIFEST,
                        "digest": fixtures().base_manifests["amd64"],
                        "size": 1,
                        "platform": {"architecture": "s390x", "os": "linux"},
                    }],
                });
                r.add_manifest(
                    "s390x-only",
                    MEDIA_TYPE_INDEX,
                    support::to_json_bytes(&index),
                );
            })
        })
        .base("{reg}/lambda/base:s390x-only"),
    ]
}

fn transport() -> Vec<Case> {
    vec![
        // The success path (Authorization never follows) is
        // build_registry.rs::registry_blob_redirect_to_another_host_gets_no_authorization.
        build(
            "redirect: blob GET sent to another host that serves wrong bytes",
            4,
            "does not match",
        )
        .prepare(|s| {
            let storage = Arc::new(FakeRegistry::empty());
            for entry in fs::read_dir(fixtures().base_layout.join("blobs/sha256")).unwrap() {
                let entry = entry.unwrap();
                let digest = format!("sha256:{}", entry.file_name().to_string_lossy());
                let flipped = fs::read(entry.path()).unwrap().iter().map(|b| !b).collect();
                storage.add_blob(&digest, flipped);
            }
            let storage_port = storage.host().rsplit_once(':').unwrap().1.to_owned();
            let registry = FakeRegistry::serving_base();
            registry.challenge("Basic realm=\"fake\"");
            registry.redirect_blobs_to(&format!("http://localhost:{storage_port}"));
            s.set("reg", registry.host());
            s.keep(registry);
            let seen = Arc::clone(&storage);
            s.after.push(Box::new(move || {
                let requests = seen.seen();
                if requests.is_empty() {
                    Some("the redirect target got no request".to_owned())
                } else {
                    requests
                        .iter()
                        .find(|r| r.authorization.is_some())
                        .map(|r| {
                            format!(
                                "Authorization followed the redirect to {} {}",
                                r.method, r.path
                            )
                        })
                }
            }));
            s.keep(storage);
        })
        .base("{reg}/lambda/base:al2023")
        .args(&["--base-creds", &format!("user:{SECRET}")]),
        build(
            "plain HTTP: token service on a non-loopback http:// URL",
            6,
            "is not HTTPS; refusing to send them",
        )
        .and("--insecure-registry")
        .prepare(|s| {
            let registry = FakeRegistry::empty();
            registry.challenge("Bearer realm=\"http://auth.invalid/token\",service=\"fake\"");
            s.set("reg", registry.host());
            s.keep(registry);
        })
        .tag("{reg}/fn:v1")
        .args(&["--creds", &format!("user:{SECRET}")]),
        build(
            "plain HTTP: non-loopback registry name that resolves nowhere",
            6,
            "registry registry.invalid:5000",
        )
        .and("https://registry.invalid:5000/v2/")
        .tag("registry.invalid:5000/fn:v1"),
        check(
            "TLS: certificate for another host name",
            "{tls}/lambda/base:al2023",
            6,
            "TLS",
        )
        .and("certificate not valid for name")
        .and("hint: the registry's certificate does not name")
        .prepare(|s| {
            let server = BadTlsServer::start(&s.input("tls"), BadCertificate::WrongName);
            s.set("tls", server.host());
            s.extra_env.push((
                "SSL_CERT_FILE".into(),
                server.ca_cert().display().to_string(),
            ));
            s.keep(server);
        }),
        check(
            "TLS: expired certificate",
            "{tls}/lambda/base:al2023",
            6,
            "TLS",
        )
        .and("Expired")
        .and("hint: the registry's certificate has expired")
        .prepare(|s| {
            let server = BadTlsServer::start(&s.input("tls"), BadCertificate::Expired);
            s.set("tls", server.host());
            s.extra_env.push((
                "SSL_CERT_FILE".into(),
                server.ca_cert().display().to_string(),
            ));
            s.keep(server);
        }),
    ]
}
