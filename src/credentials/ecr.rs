//! Amazon ECR: recognising its registry host names, getting their credentials from ECR's
//! `GetAuthorizationToken` through the standard AWS credential chain (the `ecr` cargo feature,
//! default on), keeping each token in memory until shortly before it expires, and turning ECR's
//! error answers into messages that say what to do.
//!
//! A private ECR registry is `<account>.dkr.ecr.<region>.amazonaws.com` (`.amazonaws.com.cn` in
//! China, `dkr.ecr-fips` for FIPS endpoints, `<account>.dkr-ecr.<region>.on.aws` dual-stack). Its `/v2/` asks for HTTP Basic; the password is
//! the token `GetAuthorizationToken` returns (base64 of `AWS:<password>`), valid 12 hours. The
//! call is signed with whatever the AWS SDK's default chain finds: environment variables, the
//! shared config and credentials files with profiles, SSO, web identity (CI OIDC), and
//! container or instance metadata. The endpoint can be overridden as for any SDK (for example
//! `AWS_ENDPOINT_URL_ECR`), which is how the tests point it at moto.
//!
//! The region of the call is the host's, unless `--region` says otherwise: a token is only good
//! for its own region's registries, so `AWS_REGION` (which may name another region the pipeline
//! deploys to) is used only by the credential chain itself (STS for web identity and assumed
//! roles), never in place of the host's region.
//!
//! This module never sees a token in a message: errors name the host, the region and the AWS
//! error code, not the answer's content.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{Credential, Issued, TokenIssuer};
use crate::error::Result;

/// A token is fetched again this long before its `expiresAt`, so a request never carries one
/// that expires on the way.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(10 * 60);

/// What ECR answers when a request carries an expired token (`denied: Your authorization token
/// has expired. Reauthenticate and try again.`), with a 401 or a 403.
const EXPIRED_TOKEN_TEXT: &str = "token has expired";

/// A private ECR registry, from its host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrRegistry {
    /// The 12-digit AWS account id.
    pub account: String,
    /// The region in the host name.
    pub region: String,
}

impl EcrRegistry {
    /// Recognises `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` and the dual-stack
    /// `<account>.dkr-ecr.<region>.on.aws`, with or without a `:port`. Anything else (including
    /// `public.ecr.aws`, which uses bearer tokens anyone may get) is not a private ECR registry.
    pub fn from_host(host: &str) -> Option<EcrRegistry> {
        let name = without_port(host).to_ascii_lowercase();
        let (labels, dual_stack) = match name.strip_suffix(".on.aws") {
            Some(rest) => (rest.split('.').collect::<Vec<_>>(), true),
            None => {
                let rest = name
                    .strip_suffix(".amazonaws.com")
                    .or_else(|| name.strip_suffix(".amazonaws.com.cn"))?;
                (rest.split('.').collect(), false)
            }
        };
        let (account, region) = match (dual_stack, labels.as_slice()) {
            (true, [account, "dkr-ecr", region]) => (*account, *region),
            (false, [account, "dkr", "ecr" | "ecr-fips", region]) => (*account, *region),
            _ => return None,
        };
        let well_formed = is_account_id(account) && is_region_name(region);
        well_formed.then(|| EcrRegistry {
            account: account.to_owned(),
            region: region.to_owned(),
        })
    }
}

/// A 12-digit AWS account id.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// `host` without a numeric `:port`.
fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`: letters and dashes, then a
/// number.
fn is_region_name(text: &str) -> bool {
    let Some((words, number)) = text.rsplit_once('-') else {
        return false;
    };
    !words.is_empty()
        && words
            .split('-')
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a 401 or 403 answer may be ECR saying the token has expired: its body says so, or
/// it has none (the answer to a `HEAD`, which cannot say).
pub fn may_be_expired_token_answer(body: &str) -> bool {
    body.trim().is_empty() || body.to_ascii_lowercase().contains(EXPIRED_TOKEN_TEXT)
}

/// The hint for an ECR error answer to `operation` (the step names of the registry's push and
/// pull, such as `put manifest fn:v1`) at URL path `path`, when ECR's answer is one
/// a user can act on: an expired token, an immutable tag, a missing repository, or a missing
/// IAM permission. `errors` are the `(code, message)` entries of the answer's JSON `errors`.
/// `region` is where the commands it suggests are to run.
pub fn hint_for_answer(
    registry: &EcrRegistry,
    region: &str,
    operation: &str,
    status: u16,
    errors: &[(String, String)],
    path: &str,
) -> Option<String> {
    let has_code = |wanted: &str| errors.iter().any(|(code, _)| code == wanted);
    let messages = errors
        .iter()
        .map(|(_, message)| message.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let lowered = messages.to_ascii_lowercase();
    let repository = repository_in_path(path).unwrap_or("REPOSITORY");
    if lowered.contains(EXPIRED_TOKEN_TEXT) {
        return Some(format!(
            "ECR tokens last 12 hours: get a new one with `aws ecr get-login-password --region \
             {region}`, or give no credential for this registry and lambda-image gets one with \
             the AWS credentials it finds"
        ));
    }
    if has_code("TAG_INVALID") || lowered.contains("immutable") {
        return Some(format!(
            "tags in the ECR repository {repository} are immutable, and this tag already names \
             another image: push under a new tag (a version or commit id), or allow overwriting \
             with `aws ecr put-image-tag-mutability --repository-name {repository} \
             --image-tag-mutability MUTABLE --region {region}`"
        ));
    }
    if has_code("NAME_UNKNOWN") || lowered.contains("does not exist in the registry") {
        return Some(if is_pull(operation) {
            format!(
                "check the repository name: account {} has no ECR repository {repository} in \
                 {region}",
                registry.account
            )
        } else {
            format!(
                "ECR does not create repositories on push: create it first with `aws ecr \
                 create-repository --repository-name {repository} --region {region}`"
            )
        });
    }
    if status == 403 || has_code("DENIED") {
        let action = named_iam_action(&messages).unwrap_or_else(|| iam_actions_for(operation));
        return Some(format!(
            "the AWS identity is not allowed {action} on the ECR repository {repository}: add it \
             to the identity's IAM policy (and to the repository policy, for another account's \
             repository); a push needs ecr:BatchCheckLayerAvailability, \
             ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, \
             ecr:PutImage and ecr:BatchGetImage"
        ));
    }
    None
}

/// The first `ecr:Action` an access-denied message names (`... is not authorized to perform:
/// ecr:InitiateLayerUpload on resource: ...`).
fn named_iam_action(message: &str) -> Option<String> {
    let start = message.find("ecr:")?;
    let action: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
        .collect();
    (action.len() > "ecr:".len()).then_some(action)
}

/// The IAM actions behind a step, for a denial that names none.
fn iam_actions_for(operation: &str) -> String {
    let actions = if operation.starts_with("get manifest") {
        "ecr:BatchGetImage"
    } else if operation.starts_with("get blob") {
        "ecr:GetDownloadUrlForLayer"
    } else if operation.starts_with("check blob") {
        "ecr:BatchCheckLayerAvailability"
    } else if operation.starts_with("put manifest") {
        "ecr:PutImage"
    } else {
        "ecr:InitiateLayerUpload, ecr:UploadLayerPart and ecr:CompleteLayerUpload"
    };
    actions.to_owned()
}

fn is_pull(operation: &str) -> bool {
    operation.starts_with("get ")
}

/// `fn` from `/v2/fn/manifests/v1` or `/v2/team/fn/blobs/uploads/`.
fn repository_in_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    let end = ["/manifests/", "/blobs/"]
        .iter()
        .filter_map(|marker| rest.rfind(marker))
        .min()?;
    Some(&rest[..end])
}

/// One `GetAuthorizationToken` answer.
#[derive(Clone)]
pub struct AuthorizationToken {
    pub username: String,
    pub password: String,
    pub expires_at: SystemTime,
}

impl AuthorizationToken {
    /// When to stop using the token: [`REFRESH_MARGIN`] before it expires. None for a token
    /// that arrived with less life than that left: it is used for the request that asked, and
    /// then only until a registry says it has expired, since asking again would give no
    /// better one.
    pub fn refresh_at(&self, fetched_at: SystemTime) -> Option<SystemTime> {
        self.expires_at
            .checked_sub(REFRESH_MARGIN)
            .filter(|refresh_at| *refresh_at > fetched_at)
    }

    pub fn credential(&self) -> Credential {
        Credential::Basic {
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }
}

/// Where tokens come from; the AWS SDK in the tool, a function in unit tests.
pub trait TokenService: Send + Sync {
    fn fetch(&self, registry: &EcrRegistry, region: &str) -> Result<AuthorizationToken>;
}

/// A fetched token and when it was fetched.
struct CachedToken {
    token: AuthorizationToken,
    refresh_at: Option<SystemTime>,
}

/// ECR tokens of one run, kept in memory only (never written anywhere), per account and
/// region, so every registry connection of the run shares one until it nears expiry.
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
    service: Box<dyn TokenService>,
    /// `--region`: the region of the token call instead of the host's.
    region_override: Option<String>,
}

impl TokenCache {
    pub fn new(service: Box<dyn TokenService>, region_override: Option<String>) -> TokenCache {
        TokenCache {
            tokens: Mutex::new(HashMap::new()),
            service,
            region_override,
        }
    }

    /// The region the token for `registry` is asked in.
    pub fn region_for(&self, registry: &EcrRegistry) -> String {
        self.region_override
            .clone()
            .unwrap_or_else(|| registry.region.clone())
    }

    /// A token for `registry`: the cached one while it is fresh at `now` (and `force_new` is
    /// false), else a new one from the service.
    pub fn token(
        &self,
        registry: &EcrRegistry,
        now: SystemTime,
        force_new: bool,
    ) -> Result<AuthorizationToken> {
        let region = self.region_for(registry);
        let key = (registry.account.clone(), region.clone());
        let mut tokens = self.tokens.lock().expect("ECR token cache lock");
        if !force_new
            && let Some(cached) = tokens.get(&key)
            && cached.refresh_at.is_some_and(|refresh_at| now < refresh_at)
        {
            return Ok(cached.token.clone());
        }
        let token = self.service.fetch(registry, &region)?;
        let refresh_at = token.refresh_at(now);
        tokens.insert(
            key,
            CachedToken {
                token: token.clone(),
                refresh_at,
            },
        );
        Ok(token)
    }
}

impl TokenCache {
    /// The token cache of one run, talking to ECR through the AWS SDK; `region_override` is
    /// `--region`. The command creates it and gives it to every ECR host's [`EcrSource`].
    pub fn for_run(region_override: Option<String>) -> TokenCache {
        TokenCache::new(Box::new(SdkTokenService), region_override)
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::for_run(None)
    }
}

/// One ECR host's credential source: tokens from the run's [`TokenCache`].
pub struct EcrSource {
    registry: EcrRegistry,
    tokens: Arc<TokenCache>,
}

impl EcrSource {
    /// The source of `host`, if it is a private ECR registry ([`EcrRegistry::from_host`]).
    pub fn for_host(host: &str, tokens: &Arc<TokenCache>) -> Option<EcrSource> {
        Some(EcrSource {
            registry: EcrRegistry::from_host(host)?,
            tokens: Arc::clone(tokens),
        })
    }
}

impl TokenIssuer for EcrSource {
    fn issue(&self, now: SystemTime, force_new: bool) -> Result<Issued> {
        let token = self.tokens.token(&self.registry, now, force_new)?;
        Ok(Issued {
            refresh_at: token.refresh_at(now),
            username: token.username,
            password: token.password,
        })
    }

    /// ECR answers an expired token with a 401 or a 403 ([`may_be_expired_token_answer`]).
    fn may_be_expired(&self, status: u16, body: &str) -> bool {
        matches!(status, 401 | 403) && may_be_expired_token_answer(body)
    }

    fn origin(&self) -> String {
        format!(
            "ECR GetAuthorizationToken in {} with the AWS credential chain",
            self.tokens.region_for(&self.registry)
        )
    }

    fn replacement_warning(&self, host: &str, origin: &str) -> String {
        format!(
            "warning: ECR refused the credential for {host} ({origin}) as it refuses an \
             expired token; using a new token from ECR GetAuthorizationToken instead"
        )
    }

    fn answer_hint(
        &self,
        operation: &str,
        status: u16,
        errors: &[(String, String)],
        path: &str,
    ) -> Option<String> {
        hint_for_answer(
            &self.registry,
            &self.tokens.region_for(&self.registry),
            operation,
            status,
            errors,
            path,
        )
    }
}

/// `GetAuthorizationToken` through the official AWS SDK.
pub struct SdkTokenService;

#[cfg(feature = "ecr")]
impl TokenService for SdkTokenService {
    fn fetch(&self, registry: &EcrRegistry, region: &str) -> Result<AuthorizationToken> {
        sdk::get_authorization_token(registry, region)
    }
}

#[cfg(not(feature = "ecr"))]
impl TokenService for SdkTokenService {
    fn fetch(&self, registry: &EcrRegistry, _region: &str) -> Result<AuthorizationToken> {
        Err(crate::error::Error::registry(format!(
            "ECR registry of account {} needs credentials, and this lambda-image was built \
             without the `ecr` feature that gets them from AWS",
            registry.account
        ))
        .hint(
            "give --creds AWS:$(aws ecr get-login-password --region REGION), or log in with \
             `aws ecr get-login-password | docker login --username AWS --password-stdin HOST`",
        ))
    }
}

#[cfg(feature = "ecr")]
mod sdk {
    //! The one AWS SDK call, run on a small single-threaded tokio runtime of its own (the
    //! rest of the tool is synchronous).

    use std::time::SystemTime;

    use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    use base64::Engine;

    use super::{AuthorizationToken, EcrRegistry};
    use crate::credentials::aws_sdk;
    use crate::error::{Error, ErrorKind, Result};

    pub fn get_authorization_token(
        registry: &EcrRegistry,
        region: &str,
    ) -> Result<AuthorizationToken> {
        let runtime = aws_sdk::runtime(ErrorKind::Registry)?;
        let config = aws_sdk::config(&runtime, region);
        let answer = runtime.block_on(
            aws_sdk_ecr::Client::new(&config)
                .get_authorization_token()
                .send(),
        );
        let output = answer.map_err(|error| describe_failure(registry, region, error))?;
        let data = output
            .authorization_data()
            .first()
            .ok_or_else(|| malformed(registry, region, "no authorizationData"))?;
        let encoded = data
            .authorization_token()
            .ok_or_else(|| malformed(registry, region, "no authorizationToken"))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| malformed(registry, region, "an authorizationToken not in base64"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| malformed(registry, region, "an authorizationToken without ':'"))?;
        let expires_at = data
            .expires_at()
            .and_then(|time| SystemTime::try_from(*time).ok())
            .ok_or_else(|| malformed(registry, region, "no expiresAt"))?;
        Ok(AuthorizationToken {
            username: username.to_owned(),
            password: password.to_owned(),
            expires_at,
        })
    }

    fn malformed(registry: &EcrRegistry, region: &str, what: &str) -> Error {
        Error::registry(format!(
            "cannot get ECR credentials for account {} in {region}: GetAuthorizationToken \
             answered with {what}",
            registry.account
        ))
        .hint(
            "ECR itself never answers so: check what AWS_ENDPOINT_URL_ECR (or a proxy) points \
             the ECR API at",
        )
    }

    fn describe_failure<E, R>(registry: &EcrRegistry, region: &str, error: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let code = error.code().map(str::to_owned);
        let context = DisplayErrorContext(&error).to_string();
        let head = format!(
            "cannot get ECR credentials for account {} in {region}: GetAuthorizationToken failed",
            registry.account
        );
        match code.as_deref() {
            Some("AccessDeniedException") | Some("AccessDenied") => Error::registry(format!(
                "{head}: access denied ({})",
                error.message().unwrap_or("no message")
            ))
            .hint(
                "the AWS identity needs the IAM action ecr:GetAuthorizationToken (on resource \
                 \"*\"), e.g. through the AmazonEC2ContainerRegistryPowerUser policy",
            ),
            Some(code) if aws_sdk::refused_credentials(code) => Error::registry(format!(
                "{head}: AWS refused the credentials ({code}: {})",
                error.message().unwrap_or("no message")
            ))
            .hint(aws_sdk::REFUSED_HINT),
            Some(code) => Error::registry(format!(
                "{head}: {code}: {}",
                error.message().unwrap_or("no message")
            )),
            None if aws_sdk::no_credentials(&context) => {
                Error::registry(format!("{head}: no AWS credentials were found")).hint(format!(
                    "{}; or pass --creds AWS:$(aws ecr get-login-password --region REGION)",
                    aws_sdk::CREDENTIAL_CHAIN
                ))
            }
            None => Error::registry(format!(
                "{head}: {}",
                crate::error::describe_error_chain(&error)
            ))
            .hint(
                "check the network path to the ECR API (api.ecr.REGION.amazonaws.com), or \
                 AWS_ENDPOINT_URL_ECR if set",
            ),
        }
    }
}

#[cfg(test)]
#[path = "ecr_tests.rs"]
mod tests;
