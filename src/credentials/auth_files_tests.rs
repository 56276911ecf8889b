//! Unit tests of [`super`] (credentials/auth_files.rs).

use std::ffi::OsString;

use super::super::auth_file::{namespace_key, namespaces, unmatched_in_file};
use crate::credentials::test_fixture::*;

#[test]
fn auths_entry_with_base64_auth() {
    let fixture = Fixture::new();
    let file = auths_file(&fixture, "config.json", &[("127.0.0.1:5000", "alice")]);
    let sources = fixture.sources(&[&file]);
    let (credential, origin) = find(&sources, "127.0.0.1:5000").unwrap().unwrap();
    assert_eq!(credential, basic("alice", PASSWORD));
    assert_eq!(origin, CredentialOrigin::Auths { file: file.clone() });
    assert_eq!(origin.to_string(), format!("auths in {}", file.display()));
    assert_eq!(sources.find("127.0.0.1:5000").unwrap(), Some(credential));
    assert_eq!(found(&sources, "127.0.0.1:5001"), None);
    assert_eq!(found(&sources, "127.0.0.1"), None);
}

#[test]
fn auths_keys_match_hosts_without_regard_to_case() {
    let fixture = Fixture::new();
    let file = auths_file(
        &fixture,
        "config.json",
        &[("Registry.Example:5000", "alice")],
    );
    let sources = fixture.sources(&[&file]);
    assert_eq!(
        found(&sources, "registry.example:5000"),
        Some(basic("alice", PASSWORD))
    );
}

#[test]
fn auth_field_without_padding_and_with_trailing_nuls() {
    let fixture = Fixture::new();
    let unpadded = auth_field("bob:x").trim_end_matches('=').to_owned();
    assert_ne!(
        unpadded,
        auth_field("bob:x"),
        "the test needs padding to strip"
    );
    let file = fixture.file(
        "config.json",
        &serde_json::json!({ "auths": {
            "a.example": { "auth": unpadded },
            "b.example": { "auth": auth_field("carol:pw\0\0") },
        }})
        .to_string(),
    );
    let sources = fixture.sources(&[&file]);
    assert_eq!(found(&sources, "a.example"), Some(basic("bob", "x")));
    assert_eq!(found(&sources, "b.example"), Some(basic("carol", "pw")));
}

#[test]
fn auths_entry_with_username_and_password_fields() {
    let fixture = Fixture::new();
    let file = fixture.file(
        "config.json",
        r#"{"auths": {"registry.example.com": {"username": "dave", "password": "pw:1"}}}"#,
    );
    let sources = fixture.sources(&[&file]);
    assert_eq!(
        found(&sources, "registry.example.com"),
        Some(basic("dave", "pw:1"))
    );
}

#[test]
fn identity_token_wins_over_user_and_password() {
    let fixture = Fixture::new();
    let file = fixture.file(
        "config.json",
        &serde_json::json!({ "auths": {
            "acr.example.io": {
                "auth": auth_field("00000000-0000-0000-0000-000000000000:"),
                "identitytoken": "refresh-token-value",
            },
            "only-token.example": { "identitytoken": "other-token" },
        }})
        .to_string(),
    );
    let sources = fixture.sources(&[&file]);
    assert_eq!(
        found(&sources, "acr.example.io"),
        Some(Credential::IdentityToken("refresh-token-value".to_owned()))
    );
    assert_eq!(
        found(&sources, "only-token.example"),
        Some(Credential::IdentityToken("other-token".to_owned()))
    );
}

#[test]
fn empty_entries_and_empty_files_give_no_credential() {
    let fixture = Fixture::new();
    let file = fixture.file(
            "config.json",
            r#"{"auths": {"empty.example": {}, "nulls.example": {"auth": null, "username": ""}}, "credHelpers": null}"#,
        );
    let empty_file = fixture.file("empty.json", "  \n");
    let sources = fixture.sources(&[&file, &empty_file]);
    assert_eq!(found(&sources, "empty.example"), None);
    assert_eq!(found(&sources, "nulls.example"), None);
    assert_eq!(found(&sources, "other.example"), None);
}

#[test]
fn missing_files_are_skipped() {
    let fixture = Fixture::new();
    let file = auths_file(&fixture, "config.json", &[("r.example", "erin")]);
    let missing = fixture.missing("no-such.json");
    let under_a_file = file.join("containers/auth.json");
    let sources = fixture.sources(&[&missing, &under_a_file, &file]);
    assert_eq!(found(&sources, "r.example"), Some(basic("erin", PASSWORD)));
    assert_eq!(found(&fixture.sources(&[&missing]), "r.example"), None);
}

#[test]
fn keys_with_scheme_and_path_match_their_host() {
    let fixture = Fixture::new();
    let file = auths_file(
        &fixture,
        "config.json",
        &[
            ("https://registry.example.com/v1/", "v1"),
            ("http://127.0.0.1:5000", "http"),
            ("https://both.example", "url"),
            ("both.example", "exact"),
            ("quay.io/some-org", "scoped"),
        ],
    );
    let sources = fixture.sources(&[&file]);
    assert_eq!(
        found(&sources, "registry.example.com"),
        Some(basic("v1", PASSWORD))
    );
    assert_eq!(
        found(&sources, "127.0.0.1:5000"),
        Some(basic("http", PASSWORD))
    );
    // An exact key wins over a normalised one.
    assert_eq!(
        found(&sources, "both.example"),
        Some(basic("exact", PASSWORD))
    );
    // A repository-scoped key is not a credential for the whole registry.
    assert_eq!(found(&sources, "quay.io"), None);
}

#[test]
fn what_had_nothing_for_a_repository_is_told() {
    let file = Path::new("/home/u/.docker/config.json");
    let config = parse_auth_file(
            br#"{"auths": {"r.example/team": {}, "r.example/team/sub": {}, "other.example/x": {}, "r.example": {}},
                 "credsStore": "desktop"}"#,
            file,
        )
        .unwrap();
    let notes = unmatched_in_file(&config, file, "r.example", Some("apps/fn"), false);
    assert_eq!(
        notes,
        [
            "docker-credential-desktop (credsStore in /home/u/.docker/config.json) has none for r.example",
            "/home/u/.docker/config.json has auths entries only for r.example/team, r.example/team/sub",
        ]
    );
    // A skipped store is told on its own; a namespace holding the repository is not "other".
    let notes = unmatched_in_file(&config, file, "r.example", Some("team/fn"), true);
    assert_eq!(
        notes,
        ["/home/u/.docker/config.json has auths entries only for r.example/team/sub"]
    );
    let config = parse_auth_file(
        br#"{"credHelpers": {"r.example": "ecr-login"}, "credsStore": "desktop"}"#,
        file,
    )
    .unwrap();
    assert_eq!(
        unmatched_in_file(&config, file, "r.example", None, false),
        [
            "docker-credential-ecr-login (credHelpers in /home/u/.docker/config.json) has none for r.example"
        ]
    );
    assert!(unmatched_in_file(&config, file, "q.example", None, true).is_empty());
}

#[test]
fn namespaces_are_whole_path_components_longest_first() {
    assert_eq!(
        namespaces("a/b/c").collect::<Vec<_>>(),
        ["a/b/c", "a/b", "a"]
    );
    assert_eq!(namespaces("fn").collect::<Vec<_>>(), ["fn"]);
    assert_eq!(namespaces("").count(), 0);
    assert_eq!(namespace_key("quay.io/org"), Some(("quay.io", "org")));
    assert_eq!(
        namespace_key("quay.io/org/sub/"),
        Some(("quay.io", "org/sub"))
    );
    for not_namespace in [
        "quay.io",
        "https://quay.io/org",
        "/org",
        "quay.io/",
        "quay.io//",
    ] {
        assert_eq!(namespace_key(not_namespace), None, "{not_namespace}");
    }
}

#[test]
fn namespace_keys_are_used_inside_their_namespace_longest_first_and_only_there() {
    let fixture = Fixture::new();
    let file = auths_file(
        &fixture,
        "auth.json",
        &[
            ("r.example:5000", "host"),
            ("r.example:5000/team", "team"),
            ("r.example:5000/team/sub", "sub"),
            ("r.example:5000/team/sub/fn", "exact"),
            ("r.example:5000/other", "other"),
            ("elsewhere.example/team", "elsewhere"),
        ],
    );
    let sources = fixture.sources(&[&file]);
    let user = |repository: Option<&str>| {
        let _lock = PROCESS_LOCK.read().unwrap();
        match sources.lookup("r.example:5000", repository).unwrap().found {
            Some((Credential::Basic { username, .. }, _)) => username,
            other => panic!("{repository:?}: {other:?}"),
        }
    };
    assert_eq!(user(Some("team/sub/fn")), "exact");
    assert_eq!(user(Some("team/sub/fn2")), "sub");
    assert_eq!(user(Some("team/sub")), "sub");
    assert_eq!(user(Some("team/x/fn")), "team");
    assert_eq!(user(Some("team")), "team");
    assert_eq!(user(Some("other/fn")), "other");
    // Not a path-component prefix: the host's entry.
    assert_eq!(user(Some("teamwork/fn")), "host");
    assert_eq!(user(Some("fn")), "host");
    assert_eq!(user(None), "host");
    let (_, origin) = find(&sources, "r.example:5000").unwrap().unwrap();
    assert_eq!(origin, CredentialOrigin::Auths { file: file.clone() });
    let lookup = sources.lookup("r.example:5000", Some("team/fn")).unwrap();
    assert_eq!(
        lookup.found.unwrap().1.to_string(),
        format!("auths entry \"r.example:5000/team\" in {}", file.display())
    );

    // Without a host entry, other repositories of the host get nothing.
    let only_namespace = auths_file(&fixture, "ns.json", &[("r.example/team", "team")]);
    let sources = fixture.sources(&[&only_namespace]);
    assert!(
        sources
            .lookup("r.example", Some("other/fn"))
            .unwrap()
            .found
            .is_none()
    );
    assert!(sources.lookup("r.example", None).unwrap().found.is_none());
    assert!(
        sources
            .lookup("r.example:5000", Some("team/fn"))
            .unwrap()
            .found
            .is_none()
    );
    assert!(
        sources
            .lookup("r.example", Some("team/fn"))
            .unwrap()
            .found
            .is_some()
    );
}

#[test]
fn namespace_keys_of_docker_hub_and_their_place_among_helpers() {
    let fixture = Fixture::new();
    fixture.echo_helper("store");
    fixture.echo_helper("hosthelper");
    let file = fixture.file(
        "config.json",
        &serde_json::json!({
            "credsStore": "store",
            "credHelpers": {
                "helped.example": "hosthelper",
                // A path in a credHelpers key is never used.
                "store.example/team": "hosthelper",
            },
            "auths": {
                "docker.io/library": { "auth": auth_field("hub-library:pw") },
                "helped.example/team": { "auth": auth_field("ns:pw") },
                "store.example/team": { "auth": auth_field("ns:pw") },
                "store.example/empty": {},
            },
        })
        .to_string(),
    );
    let sources = fixture.sources(&[&file]);
    let user = |registry: &str, repository: &str| {
        let _lock = PROCESS_LOCK.read().unwrap();
        match sources.lookup(registry, Some(repository)).unwrap().found {
            Some((Credential::Basic { username, .. }, _)) => username,
            other => panic!("{registry}/{repository}: {other:?}"),
        }
    };
    assert_eq!(user("docker.io", "library/alpine"), "hub-library");
    assert_eq!(
        user("docker.io", "someone/app"),
        "user-for-https://index.docker.io/v1/"
    );
    // credHelpers for the host decides for the whole host (as containers/image does).
    assert_eq!(user("helped.example", "team/fn"), "user-for-helped.example");
    // A namespace entry is taken before the host's credsStore.
    assert_eq!(user("store.example", "team/fn"), "ns");
    assert_eq!(user("store.example", "other/fn"), "user-for-store.example");
    // An empty namespace entry holds nothing: the lookup goes on.
    assert_eq!(user("store.example", "empty/fn"), "user-for-store.example");
}

#[test]
fn docker_hub_matches_all_its_names() {
    for key in [
        "https://index.docker.io/v1/",
        "index.docker.io",
        "docker.io",
        "registry-1.docker.io",
        "https://registry-1.docker.io",
    ] {
        let fixture = Fixture::new();
        let file = auths_file(&fixture, "config.json", &[(key, "hubuser")]);
        let sources = fixture.sources(&[&file]);
        assert_eq!(
            found(&sources, "docker.io"),
            Some(basic("hubuser", PASSWORD)),
            "key {key}"
        );
        assert_eq!(found(&sources, "quay.io"), None, "key {key}");
    }
    // Docker's own key is preferred.
    let fixture = Fixture::new();
    let file = auths_file(
        &fixture,
        "config.json",
        &[
            ("docker.io", "alias"),
            ("https://index.docker.io/v1/", "canonical"),
        ],
    );
    assert_eq!(
        found(&fixture.sources(&[&file]), "docker.io"),
        Some(basic("canonical", PASSWORD))
    );
}

#[test]
fn earlier_files_win_and_later_ones_fill_in() {
    let fixture = Fixture::new();
    let registry_auth_file = auths_file(&fixture, "auth.json", &[("shared.example", "podman")]);
    let docker_config = auths_file(
        &fixture,
        "config.json",
        &[
            ("shared.example", "docker"),
            ("docker-only.example", "docker"),
        ],
    );
    let sources = fixture.sources(&[&registry_auth_file, &docker_config]);
    let (credential, origin) = find(&sources, "shared.example").unwrap().unwrap();
    assert_eq!(credential, basic("podman", PASSWORD));
    assert_eq!(
        origin,
        CredentialOrigin::Auths {
            file: registry_auth_file
        }
    );
    let (credential, origin) = find(&sources, "docker-only.example").unwrap().unwrap();
    assert_eq!(credential, basic("docker", PASSWORD));
    assert_eq!(
        origin,
        CredentialOrigin::Auths {
            file: docker_config
        }
    );
}

#[test]
fn malformed_files_are_errors_that_do_not_show_the_content() {
    let fixture = Fixture::new();
    for (name, contents) in [
        (
            "syntax.json",
            r#"{"auths": {"r.example": {"auth": "c2VjcmV0"} "#,
        ),
        ("shape.json", r#"{"auths": "supersecret-value"}"#),
        (
            "field.json",
            r#"{"auths": {"r.example": {"password": ["supersecret-value"]}}}"#,
        ),
    ] {
        let file = fixture.file(name, contents);
        let error = find_error(&fixture.sources(&[&file]), "unrelated.example");
        assert_eq!(error.kind(), ErrorKind::Registry, "{name}");
        let text = error.to_string();
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(!text.contains("supersecret"), "{text}");
    }
    // A directory where a file should be cannot be read.
    let directory = fixture.dir.path().join("bin");
    let error = find_error(&fixture.sources(&[&directory]), "r.example");
    assert!(error.message().contains("cannot read"), "{error}");
}

#[test]
fn malformed_auth_field_is_an_error_naming_the_entry() {
    let fixture = Fixture::new();
    let file = fixture.file(
        "config.json",
        &serde_json::json!({ "auths": {
            "bad64.example": { "auth": "not base64 supersecret!" },
            "nocolon.example": { "auth": auth_field("supersecret") },
            "nouser.example": { "auth": auth_field(":supersecret") },
        }})
        .to_string(),
    );
    let sources = fixture.sources(&[&file]);
    for registry in ["bad64.example", "nocolon.example", "nouser.example"] {
        let text = find_error(&sources, registry).to_string();
        assert!(text.contains(registry), "{text}");
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(!text.contains("supersecret"), "{text}");
    }
}

#[test]
fn parse_creds_splits_at_the_first_colon() {
    assert_eq!(parse_creds("alice:pa:ss"), Ok(basic("alice", "pa:ss")));
    assert_eq!(parse_creds("AWS:x"), Ok(basic("AWS", "x")));
    for bad in ["supersecret", ":supersecret", "alice:", ""] {
        let error = parse_creds(bad).unwrap_err().to_string();
        assert!(error.contains("USER:PASSWORD"), "{error}");
        assert!(!error.contains("supersecret"), "{error}");
        assert!(!error.contains("alice"), "{error}");
    }
}

#[test]
fn debug_and_display_hide_the_secret() {
    let credentials = [
        basic("alice", "supersecret"),
        Credential::IdentityToken("supersecret".to_owned()),
    ];
    for credential in credentials {
        for text in [
            format!("{credential:?}"),
            format!("{credential:#?}"),
            credential.to_string(),
        ] {
            assert!(!text.contains("supersecret"), "{text}");
            assert!(text.contains("hidden"), "{text}");
        }
    }
    assert!(format!("{:?}", basic("alice", "x")).contains("alice"));
}

#[test]
fn sources_from_the_environment_in_order() {
    let variables = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    };
    let sources = CredentialSources::from_variables(
        variables(&[
            ("REGISTRY_AUTH_FILE", "/ci/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("HOME", "/home/me"),
            ("DOCKER_CONFIG", "/etc/docker-config"),
            ("PATH", "/usr/local/bin::relative:/usr/bin"),
        ]),
        Some(1000),
    );
    assert_eq!(
        sources.auth_files,
        [
            "/ci/auth.json",
            "/run/user/1000/containers/auth.json",
            "/home/me/.config/containers/auth.json",
            "/etc/docker-config/config.json",
        ]
        .map(PathBuf::from)
    );
    assert_eq!(
        sources.helper_dirs,
        ["/usr/local/bin", "/usr/bin"].map(PathBuf::from)
    );

    let sources = CredentialSources::from_variables(
        variables(&[
            ("REGISTRY_AUTH_FILE", ""),
            ("HOME", "/root"),
            ("XDG_CONFIG_HOME", "/cfg"),
        ]),
        Some(0),
    );
    assert_eq!(
        sources.auth_files,
        [
            "/run/containers/0/auth.json",
            "/cfg/containers/auth.json",
            "/root/.docker/config.json",
        ]
        .map(PathBuf::from)
    );
    assert!(sources.helper_dirs.is_empty());

    // The same file named twice is read once.
    let sources = CredentialSources::from_variables(
        variables(&[
            ("REGISTRY_AUTH_FILE", "/root/.docker/config.json"),
            ("HOME", "/root"),
        ]),
        None,
    );
    assert_eq!(
        sources.auth_files,
        [
            "/root/.docker/config.json",
            "/root/.config/containers/auth.json",
        ]
        .map(PathBuf::from)
    );
}
