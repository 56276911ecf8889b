//! Registry authentication: reading `WWW-Authenticate` challenges, and turning a credential (or
//! none) into the `Authorization` header a registry wants: HTTP Basic, or a bearer token from the
//! challenge's token service, asked for exactly the repository scopes this run needs.
//!
//! Where credentials come from is [`crate::credentials`]; when to authenticate (first contact, a
//! later 401) and with which scopes is [`super::authenticator`]. Nothing here ever puts a secret
//! in an error message.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use reqwest::blocking::{Client, Response};
use reqwest::header::WWW_AUTHENTICATE;
use serde::Deserialize;

use super::advice::token_service_hint;
use super::error::{
    after_tries, describe_transport_error, error_detail, is_dns_error, is_tls_error,
};
use super::location::authority;
use super::tls::Rejections;
use crate::credentials::Credential;
use crate::error::{Error, Result};

/// The client id sent with OAuth2 refresh-token requests.
const CLIENT_ID: &str = "lambda-image";
/// The largest token answer read.
const TOKEN_LIMIT: u64 = 1 << 20;
/// How much of a token service's refusal is read, for its message.
const ERROR_TEXT_LIMIT: u64 = 64 * 1024;
/// How long a token request may take.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry says the failed request needed, if it said.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`. Parameter values
    /// may be quoted and then contain commas (`scope="repository:fn:pull,push"`).
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header
            .split_once(char::is_whitespace)
            .unwrap_or((header, ""));
        let parameters = parse_parameters(rest);
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: parameters.get("realm")?.clone(),
                service: parameters.get("service").cloned(),
                scope: parameters.get("scope").cloned(),
            })
        } else {
            None
        }
    }
}

/// `key=value, key="quoted, value"` pairs; keys lowercased.
fn parse_parameters(text: &str) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    _ => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        parameters.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    parameters
}

/// The `Authorization` value for HTTP Basic.
pub fn basic_header(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// The registry a token is asked for: its host, named in errors, and the flag that gives
/// credentials for it, named in hints.
#[derive(Clone, Copy, Debug)]
pub struct TokenAsker<'a> {
    pub registry: &'a str,
    pub credential_flag: crate::credentials::CredentialFlag,
}

/// Asks the token service named by a bearer challenge for a token covering `scopes`, and returns
/// the `Authorization` value. `asker` names the registry in errors, and the flag hints tell the
/// user to give its credentials with.
pub fn fetch_token(
    http: &Client,
    asker: TokenAsker<'_>,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credential: Option<&Credential>,
    tls_rejections: &Rejections,
) -> Result<String> {
    let TokenAsker {
        registry,
        credential_flag,
    } = asker;
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = service {
        query.push(("service", service));
    }
    for scope in scopes {
        query.push(("scope", scope));
    }
    let request = match credential {
        Some(Credential::IdentityToken(token)) => {
            // The OAuth2 refresh-token grant docker uses for identity tokens.
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("refresh_token", token.as_str()),
            ];
            if let Some(service) = service {
                form.push(("service", service));
            }
            let joined = scopes.join(" ");
            form.push(("scope", &joined));
            http.post(realm).form(&form)
        }
        Some(Credential::Basic { username, password }) => http
            .get(realm)
            .query(&query)
            .header("Authorization", basic_header(username, password)),
        None => {
            query.push(("client_id", CLIENT_ID));
            http.get(realm).query(&query)
        }
    };
    let failed = |why: String| {
        Error::registry(format!(
            "registry {registry}: cannot get a token from {realm}: {why}"
        ))
    };
    // Retried like any registry request (429 with Retry-After, 5xx, refused connections).
    let tried = super::retry::send_with_retries(request.timeout(TOKEN_TIMEOUT), true);
    let response = tried.outcome.map_err(|error| {
        super::proxy_failure::transport_failure(registry, "get a token", realm, &error)
            .map(|error| after_tries(error, tried.tries))
            .unwrap_or_else(|| {
                token_service_unreachable(registry, realm, &error, tried.tries, tls_rejections)
            })
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        // What the token service said (e.g. "invalid username or password"), as registries
        // say it: a JSON `errors` list, or short text. It never holds the secret sent.
        let mut body = String::new();
        let _ = std::io::Read::read_to_string(
            &mut std::io::Read::take(response, ERROR_TEXT_LIMIT),
            &mut body,
        );
        let detail = error_detail(&body);
        return Err(if credential.is_some() {
            Error::registry(format!(
                "registry {registry}: the token service {realm} refused the credentials \
                 ({status}){detail}"
            ))
            .hint(crate::credentials::advice::refused_hint(
                credential_flag,
                registry,
            ))
        } else {
            Error::registry(format!(
                "registry {registry}: the token service {realm} wants credentials ({status}){detail}"
            ))
            .hint(crate::credentials::advice::login_hint(credential_flag, registry))
        });
    }
    if !status.is_success() {
        let error = after_tries(failed(format!("{status}")), tried.tries);
        return Err(match super::retry::is_retryable_status(status) {
            true => error.hint(token_service_hint(registry, &realm_authority(realm), false)),
            false => error,
        });
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(response, TOKEN_LIMIT), &mut bytes)
        .map_err(|error| failed(error.to_string()))?;
    let body: TokenResponse = serde_json::from_slice(&bytes)
        .map_err(|error| failed(format!("the answer is not a token: {error}")))?;
    let token = body
        .token
        .or(body.access_token)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| failed("the answer holds no token".to_owned()))?;
    Ok(format!("Bearer {token}"))
}

/// `host[:port]` of a token service's realm URL (the realm itself if it is not a URL).
fn realm_authority(realm: &str) -> String {
    reqwest::Url::parse(realm).map_or_else(|_| realm.to_owned(), |url| authority(&url))
}

/// The error for a token service that did not answer (after `tries` tries). A TLS failure is
/// explained as for the registry itself ([`super::tls::explain`]), from what the verifier
/// refused (`tls_rejections`): a token service on another host with its own certificate.
fn token_service_unreachable(
    registry: &str,
    realm: &str,
    error: &reqwest::Error,
    tries: u32,
    tls_rejections: &Rejections,
) -> Error {
    let description = describe_transport_error(error);
    let realm_host = realm_authority(realm);
    if is_tls_error(error) {
        let explanation = super::tls::explain(
            &realm_host,
            &description,
            tls_rejections.take().as_ref(),
            None,
        );
        return Error::registry(format!(
            "registry {registry}: cannot get a token from its token service {realm}: TLS: {}",
            explanation.said(&description)
        ))
        .hint(format!(
            "{}; {realm_host} is the token service of registry {registry}",
            explanation.hint
        ));
    }
    let dns = is_dns_error(error);
    let what = if dns {
        "its name could not be resolved (DNS)"
    } else {
        "it could not be reached"
    };
    let error = Error::registry(format!(
        "registry {registry}: cannot get a token from its token service {realm}: {what}: \
         {description}"
    ))
    .hint(token_service_hint(registry, &realm_host, dns));
    after_tries(error, tries)
}

/// The challenge of a 401 answer.
pub(super) fn read_challenge(response: &Response) -> Option<Challenge> {
    response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(Challenge::parse)
        // Prefer a bearer challenge when a registry offers both.
        .max_by_key(|challenge| matches!(challenge, Challenge::Bearer { .. }))
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
