//! Unit tests of [`super`] (credentials/ecr.rs).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

#[test]
fn ecr_hosts_are_recognised_with_their_account_and_region() {
    let cases = [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            Some(("123456789012", "us-east-1")),
        ),
        (
            "123456789012.dkr.ecr.eu-central-1.amazonaws.com:5000",
            Some(("123456789012", "eu-central-1")),
        ),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            Some(("123456789012", "cn-north-1")),
        ),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            Some(("123456789012", "us-gov-west-1")),
        ),
        (
            "123456789012.dkr-ecr.eu-west-1.on.aws",
            Some(("123456789012", "eu-west-1")),
        ),
        ("123456789012.dkr.ecr.eu-west-1.on.aws", None),
        ("public.ecr.aws", None),
        ("12345678901.dkr.ecr.us-east-1.amazonaws.com", None),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
            None,
        ),
        ("123456789012.dkr.ecr.amazonaws.com", None),
        ("evil.123456789012.dkr.ecr.us-east-1.amazonaws.com", None),
        ("registry.example.com", None),
    ];
    for (host, expected) in cases {
        let parsed = EcrRegistry::from_host(host);
        assert_eq!(
            parsed,
            expected.map(|(account, region)| EcrRegistry {
                account: account.to_owned(),
                region: region.to_owned()
            }),
            "{host}"
        );
    }
}

/// Hands out numbered tokens that live `lifetime` from the fake clock's start.
struct CountingService {
    calls: AtomicUsize,
    lifetime: Duration,
    start: SystemTime,
    regions: Mutex<Vec<String>>,
}

impl TokenService for std::sync::Arc<CountingService> {
    fn fetch(&self, _registry: &EcrRegistry, region: &str) -> Result<AuthorizationToken> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.regions.lock().unwrap().push(region.to_owned());
        Ok(AuthorizationToken {
            username: "AWS".to_owned(),
            password: format!("token-{call}"),
            expires_at: self.start + self.lifetime,
        })
    }
}

fn cache_with(
    lifetime: Duration,
    region_override: Option<&str>,
) -> (TokenCache, std::sync::Arc<CountingService>, SystemTime) {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let service = std::sync::Arc::new(CountingService {
        calls: AtomicUsize::new(0),
        lifetime,
        start,
        regions: Mutex::new(Vec::new()),
    });
    let cache = TokenCache::new(
        Box::new(service.clone()),
        region_override.map(str::to_owned),
    );
    (cache, service, start)
}

fn registry() -> EcrRegistry {
    EcrRegistry::from_host("123456789012.dkr.ecr.us-east-1.amazonaws.com").unwrap()
}

#[test]
fn a_token_is_kept_until_shortly_before_it_expires() {
    let twelve_hours = Duration::from_secs(12 * 3600);
    let (cache, service, start) = cache_with(twelve_hours, None);
    let first = cache.token(&registry(), start, false).unwrap();
    let later = start + twelve_hours - REFRESH_MARGIN - Duration::from_secs(1);
    let reused = cache.token(&registry(), later, false).unwrap();
    assert_eq!(first.password, reused.password);
    assert_eq!(service.calls.load(Ordering::SeqCst), 1);

    let near_expiry = start + twelve_hours - REFRESH_MARGIN;
    let renewed = cache.token(&registry(), near_expiry, false).unwrap();
    assert_eq!(renewed.password, "token-2");
    assert_eq!(service.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn an_expired_answer_forces_a_new_token_even_when_the_cached_one_looks_fresh() {
    let (cache, service, start) = cache_with(Duration::from_secs(12 * 3600), None);
    cache.token(&registry(), start, false).unwrap();
    let renewed = cache.token(&registry(), start, true).unwrap();
    assert_eq!(renewed.password, "token-2");
    assert_eq!(service.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_token_arriving_nearly_expired_is_not_reused() {
    let (cache, service, start) = cache_with(Duration::from_secs(60), None);
    cache.token(&registry(), start, false).unwrap();
    cache.token(&registry(), start, false).unwrap();
    assert_eq!(service.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn the_region_is_the_hosts_unless_overridden() {
    let (cache, service, start) = cache_with(Duration::from_secs(3600), None);
    cache.token(&registry(), start, false).unwrap();
    let (overridden, overridden_service, _) =
        cache_with(Duration::from_secs(3600), Some("eu-west-1"));
    overridden.token(&registry(), start, false).unwrap();
    assert_eq!(*service.regions.lock().unwrap(), ["us-east-1"]);
    assert_eq!(*overridden_service.regions.lock().unwrap(), ["eu-west-1"]);
}

#[test]
fn expired_token_answers_are_recognised() {
    assert!(may_be_expired_token_answer(""));
    assert!(may_be_expired_token_answer(
        r#"{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}"#
    ));
    assert!(!may_be_expired_token_answer(
        r#"{"errors":[{"code":"DENIED","message":"not authorized to perform: ecr:PutImage"}]}"#
    ));
}

#[test]
fn ecr_answers_get_hints_that_say_what_to_do() {
    let registry = registry();
    let immutable = hint_for_answer(&registry, "us-east-1", "put manifest fn:v1",
            400,
            &errors(r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag 'v1' already exists in the 'fn' repository and cannot be overwritten because the tag is immutable."}]}"#),
            "/v2/fn/manifests/v1",
        )
        .unwrap();
    assert!(immutable.contains("put-image-tag-mutability --repository-name fn"));
    let missing = hint_for_answer(&registry, "us-east-1", "upload blob sha256:ab to team/fn",
            404,
            &errors(r#"{"errors":[{"code":"NAME_UNKNOWN","message":"The repository with name 'team/fn' does not exist in the registry with id '123456789012'"}]}"#),
            "/v2/team/fn/blobs/uploads/",
        )
        .unwrap();
    assert!(
        missing.contains("aws ecr create-repository --repository-name team/fn --region us-east-1")
    );
    let denied = hint_for_answer(&registry, "us-east-1", "upload blob sha256:ab to fn",
            403,
            &errors(r#"{"errors":[{"code":"DENIED","message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: ecr:InitiateLayerUpload on resource: arn:aws:ecr:us-east-1:123456789012:repository/fn"}]}"#),
            "/v2/fn/blobs/uploads/",
        )
        .unwrap();
    assert!(denied.contains("not allowed ecr:InitiateLayerUpload on the ECR repository fn"));
    let denied_unnamed = hint_for_answer(
        &registry,
        "us-east-1",
        "put manifest fn:v1",
        403,
        &errors(""),
        "/v2/fn/manifests/v1",
    )
    .unwrap();
    assert!(denied_unnamed.contains("not allowed ecr:PutImage"));
    assert!(
        hint_for_answer(
            &registry,
            "us-east-1",
            "put manifest fn:v1",
            500,
            &errors("{}"),
            "/v2/fn/manifests/v1"
        )
        .is_none()
    );
}

/// The `(code, message)` entries of a registry's JSON `errors`, as the registry client reads
/// them.
fn errors(body: &str) -> Vec<(String, String)> {
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let text = |error: &serde_json::Value, key: &str| {
        error
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    value
        .get("errors")
        .and_then(|errors| errors.as_array())
        .into_iter()
        .flatten()
        .map(|error| (text(error, "code"), text(error, "message")))
        .collect()
}
