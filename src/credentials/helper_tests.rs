//! Unit tests of [`super`] (credentials/helper.rs).

use crate::credentials::test_fixture::*;

#[test]
fn a_creds_store_that_cannot_be_asked_is_skipped_not_fatal() {
    let fixture = Fixture::new();
    fixture.helper(
        "broken",
        "cat >/dev/null\necho 'keychain is locked' >&2\nexit 3",
    );
    let missing_store = fixture.file(
        "config.json",
        r#"{"credsStore": "desktop", "auths": {"r.example": {"auth": "c3RhbGU6cHc="}}}"#,
    );
    let broken_store = fixture.file("broken.json", r#"{"credsStore": "broken"}"#);
    let later = auths_file(&fixture, "later.json", &[("later.example", "later")]);
    let sources = fixture.sources(&[&missing_store, &broken_store, &later]);
    let lookup = |registry: &str| {
        let _lock = PROCESS_LOCK.read().unwrap();
        sources.lookup(registry, Some("fn")).unwrap()
    };
    let nothing = lookup("r.example");
    // The stale auths entry beside the store is not used.
    assert!(nothing.found.is_none());
    let skipped = nothing.skipped_store.unwrap();
    assert!(
        skipped.message().contains("docker-credential-desktop"),
        "{skipped}"
    );
    assert!(
        skipped
            .message()
            .contains(&missing_store.display().to_string()),
        "{skipped}"
    );
    // A later file still counts, and the first store skipped is the one reported.
    let found = lookup("later.example");
    assert_eq!(found.found.unwrap().0, basic("later", PASSWORD));
    assert!(found.skipped_store.unwrap().message().contains("desktop"));
    // A failing store is skipped as well.
    let sources = fixture.sources(&[&broken_store]);
    let _lock = PROCESS_LOCK.read().unwrap();
    let skipped = sources
        .lookup("r.example", None)
        .unwrap()
        .skipped_store
        .unwrap();
    assert!(
        skipped.message().contains("keychain is locked"),
        "{skipped}"
    );
    // find() keeps its contract: nothing found and a skipped store is an error.
    assert!(sources.find("r.example").is_err());
}

#[test]
fn cred_helpers_failures_stay_errors() {
    let fixture = Fixture::new();
    fixture.helper("broken", "cat >/dev/null\nexit 3");
    let file = fixture.file(
        "config.json",
        r#"{"credHelpers": {"missing.example": "absent", "broken.example": "broken"}}"#,
    );
    let sources = fixture.sources(&[&file]);
    let _lock = PROCESS_LOCK.read().unwrap();
    for registry in ["missing.example", "broken.example"] {
        assert!(sources.lookup(registry, Some("fn")).is_err(), "{registry}");
    }
}

#[test]
fn a_helper_is_run_once_per_host_whatever_the_repositories() {
    let fixture = Fixture::new();
    let runs = fixture.dir.path().join("runs");
    fixture.helper(
        "counted",
        &format!(
            r#"url=$(cat)
echo run >> {}
printf '{{"Username":"u","Secret":"helper-secret"}}'"#,
            runs.display()
        ),
    );
    let file = fixture.file(
        "config.json",
        r#"{"credHelpers": {"a.example": "counted", "b.example": "counted"}}"#,
    );
    let sources = fixture.sources(&[&file]);
    let _lock = PROCESS_LOCK.read().unwrap();
    for repository in [Some("one"), Some("two/x"), None] {
        let found = sources.lookup("a.example", repository).unwrap().found;
        assert_eq!(found.unwrap().0, basic("u", "helper-secret"));
    }
    let copy = sources.clone();
    assert!(
        copy.lookup("a.example", Some("three"))
            .unwrap()
            .found
            .is_some()
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
    // Another host is another question.
    assert!(
        copy.lookup("b.example", Some("one"))
            .unwrap()
            .found
            .is_some()
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 2);
    assert!(!format!("{sources:?}").contains("helper-secret"));
}

#[test]
fn cred_helpers_run_the_helper_with_dockers_server_url() {
    let fixture = Fixture::new();
    fixture.echo_helper("test");
    let file = fixture.file(
        "config.json",
        &serde_json::json!({
            "credHelpers": { "127.0.0.1:5000": "test", "docker.io": "test" },
            "auths": { "127.0.0.1:5000": { "auth": auth_field("from-auths:pw") } },
        })
        .to_string(),
    );
    let sources = fixture.sources(&[&file]);
    let (credential, origin) = find(&sources, "127.0.0.1:5000").unwrap().unwrap();
    assert_eq!(
        credential,
        basic("user-for-127.0.0.1:5000", "helper-secret")
    );
    assert_eq!(
        origin.to_string(),
        format!(
            "credential helper docker-credential-test (credHelpers in {})",
            file.display()
        )
    );
    assert_eq!(
        found(&sources, "docker.io"),
        Some(basic(
            "user-for-https://index.docker.io/v1/",
            "helper-secret"
        ))
    );
}

#[test]
fn helper_token_answer_is_an_identity_token() {
    let fixture = Fixture::new();
    fixture.helper(
        "tok",
        r#"cat >/dev/null
echo '{"ServerURL":"x","Username":"<token>","Secret":"the-token"}'"#,
    );
    let file = fixture.file("config.json", r#"{"credHelpers": {"r.example": "tok"}}"#);
    assert_eq!(
        found(&fixture.sources(&[&file]), "r.example"),
        Some(Credential::IdentityToken("the-token".to_owned()))
    );
}

#[test]
fn helper_not_found_answer_moves_on_to_the_next_file() {
    let fixture = Fixture::new();
    fixture.not_found_helper("none");
    let first = fixture.file(
        "auth.json",
        &serde_json::json!({
            "credHelpers": { "r.example": "none" },
            // Not consulted: credHelpers decides for this file.
            "auths": { "r.example": { "auth": auth_field("same-file:pw") } },
        })
        .to_string(),
    );
    let second = auths_file(&fixture, "config.json", &[("r.example", "next-file")]);
    assert_eq!(found(&fixture.sources(&[&first]), "r.example"), None);
    assert_eq!(
        found(&fixture.sources(&[&first, &second]), "r.example"),
        Some(basic("next-file", PASSWORD))
    );
}

#[test]
fn creds_store_is_used_instead_of_auths() {
    let fixture = Fixture::new();
    fixture.echo_helper("store");
    fixture.not_found_helper("empty-store");
    let with_store = fixture.file(
        "config.json",
        &serde_json::json!({
            "credsStore": "store",
            "credHelpers": { "plain.example": "" },
            "auths": {
                "r.example": { "auth": auth_field("stale:pw") },
                "plain.example": { "auth": auth_field("plain:pw") },
            },
        })
        .to_string(),
    );
    let sources = fixture.sources(&[&with_store]);
    let (credential, origin) = find(&sources, "r.example").unwrap().unwrap();
    assert_eq!(credential, basic("user-for-r.example", "helper-secret"));
    assert_eq!(
        origin,
        CredentialOrigin::Helper {
            helper: "store".to_owned(),
            file: with_store.clone(),
            setting: HelperSetting::CredsStore,
        }
    );
    // An empty credHelpers entry sends docker back to auths.
    assert_eq!(found(&sources, "plain.example"), Some(basic("plain", "pw")));

    let empty_store = fixture.file(
        "empty-store.json",
        &serde_json::json!({
            "credsStore": "empty-store",
            "auths": { "r.example": { "auth": auth_field("stale:pw") } },
        })
        .to_string(),
    );
    assert_eq!(found(&fixture.sources(&[&empty_store]), "r.example"), None);
}

#[test]
fn missing_helper_is_an_error_naming_it_and_the_file() {
    let fixture = Fixture::new();
    let file = fixture.file(
        "config.json",
        r#"{"credHelpers": {"r.example": "absent"}, "credsStore": "desktop"}"#,
    );
    let sources = fixture.sources(&[&file]);
    let error = find_error(&sources, "r.example");
    assert_eq!(error.kind(), ErrorKind::Registry);
    assert_eq!(error.kind().exit_code(), 6);
    assert!(
        error.message().contains("docker-credential-absent"),
        "{error}"
    );
    assert!(error.message().contains("credHelpers"), "{error}");
    assert!(
        error.message().contains(&file.display().to_string()),
        "{error}"
    );
    assert!(error.hint_text().unwrap().contains("--creds"), "{error}");

    let error = find_error(&sources, "other.example");
    assert!(
        error.message().contains("docker-credential-desktop"),
        "{error}"
    );
    assert!(error.hint_text().unwrap().contains("credsStore"), "{error}");

    // A non-executable file of that name is not a helper either.
    let plain = fixture.dir.path().join("bin/docker-credential-absent");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    assert!(
        find_error(&sources, "r.example")
            .message()
            .contains("not installed")
    );
}

#[test]
fn failing_helper_error_quotes_its_first_line_but_no_secret() {
    let fixture = Fixture::new();
    fixture.helper(
        "broken",
        "cat >/dev/null\necho 'keychain is locked' >&2\necho 'second line' >&2\nexit 3",
    );
    fixture.helper(
        "leaky",
        r#"cat >/dev/null
echo '{"Username":"u","Secret":"leaked-secret"}'
exit 1"#,
    );
    fixture.helper(
        "garbage",
        "cat >/dev/null\necho 'user garbage-secret'\nexit 0",
    );
    let file = fixture.file(
            "config.json",
            r#"{"credHelpers": {"broken.example": "broken", "leaky.example": "leaky", "garbage.example": "garbage"}}"#,
        );
    let sources = fixture.sources(&[&file]);

    let error = find_error(&sources, "broken.example");
    assert_eq!(error.kind(), ErrorKind::Registry);
    let text = error.to_string();
    assert!(text.contains("docker-credential-broken"), "{text}");
    assert!(text.contains("keychain is locked"), "{text}");
    assert!(!text.contains("second line"), "{text}");

    let text = find_error(&sources, "leaky.example").to_string();
    assert!(text.contains("docker-credential-leaky"), "{text}");
    assert!(!text.contains("leaked-secret"), "{text}");

    let text = find_error(&sources, "garbage.example").to_string();
    assert!(
        text.contains("not JSON") || text.contains("other than JSON"),
        "{text}"
    );
    assert!(!text.contains("garbage-secret"), "{text}");
}
