//! Unit tests of [`super`] (credentials/auth_files.rs).

use std::sync::RwLock;

use tempfile::TempDir;

use super::*;
use crate::error::ErrorKind;

/// Writing an executable while another thread forks can leave the child holding it open for
/// writing, and exec then fails with ETXTBSY. Helpers are written under the write lock and
/// run under the read lock, so no fork happens while a script is open.
static PROCESS_LOCK: RwLock<()> = RwLock::new(());

const PASSWORD: &str = "s3cret:with:colons";

/// A temporary directory holding credential files and a `bin` directory of helpers.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        Self { dir }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn missing(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Installs `docker-credential-NAME` running the shell `body`.
    fn helper(&self, name: &str, body: &str) {
        let _lock = PROCESS_LOCK
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let path = self
            .dir
            .path()
            .join("bin")
            .join(format!("{HELPER_PREFIX}{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A helper answering `user-for-SERVERURL` / `helper-secret`, so tests see what it was
    /// asked.
    fn echo_helper(&self, name: &str) {
        self.helper(
            name,
            r#"url=$(cat)
printf '{"ServerURL":"%s","Username":"user-for-%s","Secret":"helper-secret"}\n' "$url" "$url""#,
        );
    }

    fn not_found_helper(&self, name: &str) {
        self.helper(
            name,
            "cat >/dev/null\necho 'credentials not found in native keychain'\nexit 1",
        );
    }

    fn sources(&self, files: &[&Path]) -> CredentialSources {
        CredentialSources {
            auth_files: files.iter().map(|file| file.to_path_buf()).collect(),
            helper_dirs: vec![self.dir.path().join("bin")],
            helper_answers: HelperAnswers::default(),
        }
    }
}

fn find(
    sources: &CredentialSources,
    registry: &str,
) -> Result<Option<(Credential, CredentialOrigin)>> {
    let _lock = PROCESS_LOCK
        .read()
        .unwrap_or_else(|poison| poison.into_inner());
    sources.find_with_origin(registry)
}

fn found(sources: &CredentialSources, registry: &str) -> Option<Credential> {
    find(sources, registry)
        .unwrap()
        .map(|(credential, _)| credential)
}

fn find_error(sources: &CredentialSources, registry: &str) -> Error {
    match find(sources, registry) {
        Ok(found) => panic!("expected an error, found {found:?}"),
        Err(error) => error,
    }
}

fn basic(username: &str, password: &str) -> Credential {
    Credential::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    }
}

fn auth_field(user_password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(user_password)
}

fn auths_file(fixture: &Fixture, name: &str, entries: &[(&str, &str)]) -> PathBuf {
    let auths: serde_json::Map<String, serde_json::Value> = entries
        .iter()
        .map(|(key, user)| {
            let auth = auth_field(&format!("{user}:{PASSWORD}"));
            ((*key).to_owned(), serde_json::json!({ "auth": auth }))
        })
        .collect();
    fixture.file(name, &serde_json::json!({ "auths": auths }).to_string())
}

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
fn host_credentials_keep_a_skipped_store_for_an_error_or_a_warning() {
    let fixture = Fixture::new();
    let file = fixture.file("config.json", r#"{"credsStore": "desktop"}"#);
    let host = HostCredentials::new("r.example", None, fixture.sources(&[&file]));
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
    let from_files = HostCredentials::new("r.example", None, sources.clone());
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

    let flag = HostCredentials::new("r.example", Some((basic("flag", "pw"), "--creds")), sources);
    let found = flag.for_repository(Some("team/fn")).unwrap();
    assert_eq!(found.credential, Some(basic("flag", "pw")));
    assert_eq!(found.origin.as_deref(), Some("from --creds"));
    assert!(!found.replaceable);
    assert!(found.skipped_store_warning().is_none());
    assert!(found.skipped_store_error("x").is_none());
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
        let error = parse_creds(bad).unwrap_err();
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
