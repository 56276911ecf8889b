//! Unit tests of [`super`] (registry/http/authenticator.rs).

use super::super::client::build_http_client;
use super::super::error::describe_transport_error;
use super::super::scheme::answered_in_plain_http;
use super::super::tls;
use super::*;

#[test]
fn requests_are_keyed_by_the_repository_their_path_names() {
    for (path, repository) in [
        ("/v2/fn/manifests/v1", Some("fn")),
        ("/v2/team/sub/fn/manifests/sha256:ab", Some("team/sub/fn")),
        ("/v2/team/fn/blobs/sha256:ab", Some("team/fn")),
        ("/v2/team/fn/blobs/uploads/", Some("team/fn")),
        ("/v2/team/fn/blobs/uploads/0a1b-2c", Some("team/fn")),
        ("/v2/team/fn/tags/list", Some("team/fn")),
        ("/v2/fn/referrers/sha256:ab", Some("fn")),
        // A repository may have a component named like an endpoint.
        ("/v2/blobs/manifests/v1", Some("blobs")),
        ("/v2/a/blobs/b/manifests/v1", Some("a/blobs/b")),
        ("/v2/", None),
        ("/v2/_catalog", None),
        ("/v2/manifests/v1", None),
        ("/v2/fn/manifests/", None),
        ("/v2//fn/manifests/v1", None),
        ("/v2/fn/blobs/uploads", Some("fn")),
        ("/upload/0a1b", None),
        ("/fn/manifests/v1", None),
    ] {
        assert_eq!(request_repository(path).as_deref(), repository, "{path}");
    }
    let key = |url: &str| AuthKey::of(&reqwest::Url::parse(url).unwrap());
    let mount = key("https://r.example/v2/team/fn/blobs/uploads/?mount=sha256:ab&from=base/al2023");
    assert_eq!(mount.repository.as_deref(), Some("team/fn"));
    assert_eq!(mount.mount_from.as_deref(), Some("base/al2023"));
    assert_eq!(mount.describe(), "team/fn (mounting from base/al2023)");
    // `from` without `mount` is no mount; neither is a mount outside a repository.
    assert_eq!(
        key("https://r.example/v2/fn/blobs/uploads/?from=x").mount_from,
        None
    );
    assert_eq!(
        key("https://r.example/v2/?mount=a&from=x"),
        AuthKey::default()
    );
    assert_eq!(
        key("https://r.example/v2/fn/blobs/uploads/?mount=a").mount_from,
        None
    );
    assert_eq!(key("https://r.example/v2/fn/tags/list").describe(), "fn");
    assert_eq!(AuthKey::default().describe(), "the registry");
}

#[test]
fn loopback_and_named_hosts_may_use_plain_http() {
    let insecure = vec!["registry.internal:5000".to_owned()];
    for host in [
        "127.0.0.1:5000",
        "localhost",
        "localhost:80",
        "[::1]:5000",
        "127.8.9.1",
        "LOCALHOST:5055",
        "LocalHost",
    ] {
        assert!(allows_plain_http(host, &[]), "{host}");
    }
    assert!(allows_plain_http("registry.internal:5000", &insecure));
    // Host names compare without regard to case, both ways.
    assert!(allows_plain_http("Registry.Internal:5000", &insecure));
    let upper = vec!["REGISTRY.internal:5000".to_owned()];
    assert!(allows_plain_http("registry.internal:5000", &upper));
    for host in [
        "registry.internal",
        "public.ecr.aws",
        "10.0.0.1:5000",
        "localhost.evil.com",
    ] {
        assert!(!allows_plain_http(host, &insecure), "{host}");
    }
}

/// A registry that speaks only plain HTTP, asked over HTTPS, is named as such (loopback
/// only here, but the description is the same for any host).
#[test]
fn plain_http_answer_to_https_gets_the_insecure_registry_hint() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let (http, _) = build_http_client("127.0.0.1").unwrap();
    let error = http
        .get(format!("https://127.0.0.1:{port}/v2/"))
        .send()
        .unwrap_err();
    let description = describe_transport_error(&error);
    assert!(answered_in_plain_http(&description), "{description}");
    let explanation = tls::explain("127.0.0.1:1", &description, None, None);
    assert!(
        explanation.hint.contains("--insecure-registry"),
        "{explanation:?}"
    );
}
