//! Unit tests of [`super`] (credentials/chain.rs).

use std::sync::Arc;

use crate::credentials::test_fixture::*;

#[test]
fn host_credentials_keep_a_skipped_store_for_an_error_or_a_warning() {
    let fixture = Fixture::new();
    let file = fixture.file("config.json", r#"{"credsStore": "desktop"}"#);
    let host = chain("r.example", None, fixture.sources(&[&file]));
    let found = {
        let _lock = PROCESS_LOCK.read().unwrap();
        host.for_repository(Some("fn")).unwrap()
    };
    assert_eq!(found.credential, None);
    let warning = found.skipped_store_warning().unwrap();
    assert!(warning.starts_with("warning: "), "{warning}");
    assert!(warning.contains("docker-credential-desktop"), "{warning}");
    assert!(warning.contains(&file.display().to_string()), "{warning}");
    assert_eq!(warning.lines().count(), 1, "{warning}");
    let error = found
        .skipped_store_error("registry r.example wants credentials")
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::Registry);
    assert!(
        error
            .message()
            .starts_with("registry r.example wants credentials, and none could be looked up: "),
        "{error}"
    );
    assert!(
        error.message().contains("docker-credential-desktop"),
        "{error}"
    );
    assert!(error.hint_text().unwrap().contains("credsStore"), "{error}");
}

#[test]
fn host_credentials_prefer_the_flag_and_cache_each_repository() {
    let fixture = Fixture::new();
    let file = auths_file(
        &fixture,
        "auth.json",
        &[("r.example", "host"), ("r.example/team", "team")],
    );
    let sources = fixture.sources(&[&file]);
    let from_files = chain("r.example", None, sources.clone());
    let team = from_files.for_repository(Some("team/fn")).unwrap();
    assert_eq!(team.credential, Some(basic("team", PASSWORD)));
    assert!(team.replaceable);
    assert!(
        team.origin
            .as_deref()
            .unwrap()
            .contains("\"r.example/team\"")
    );
    assert!(from_files.cached(Some("other")).is_none());
    std::fs::remove_file(&file).unwrap();
    // Looked up once: the file is gone, the answer stays.
    let again = from_files.for_repository(Some("team/fn")).unwrap();
    assert!(Arc::ptr_eq(&team, &again));
    assert!(from_files.cached(Some("team/fn")).is_some());
    assert_eq!(
        from_files.for_repository(Some("other")).unwrap().credential,
        None
    );

    let flag = chain("r.example", Some((basic("flag", "pw"), "--creds")), sources);
    let found = flag.for_repository(Some("team/fn")).unwrap();
    assert_eq!(found.credential, Some(basic("flag", "pw")));
    assert_eq!(found.origin.as_deref(), Some("from --creds"));
    assert!(!found.replaceable);
    assert!(found.skipped_store_warning().is_none());
    assert!(found.skipped_store_error("x").is_none());
}

/// The chain of `host` as a command builds it: the flag's credential, if given, then the files.
fn chain(
    host: &str,
    flag: Option<(Credential, &'static str)>,
    sources: CredentialSources,
) -> HostCredentials {
    let mut chain: Vec<Box<dyn CredentialSource>> = Vec::new();
    if let Some((credential, flag)) = flag {
        chain.push(Box::new(FlagCredential::new(credential, flag)));
    }
    chain.push(Box::new(sources));
    HostCredentials::new(host, CredentialFlag::Creds, chain)
}
