//! The errors for failed requests to a registry, worded for the user: an answer with an
//! unexpected status (with what the issuer of the host's credentials, a TLS front end or the
//! refused media type says about it), and a request that got no answer (TLS, DNS, proxies,
//! an unreachable host).
//!
//! Not here: reading answers and transport errors ([`super::error`]).

use reqwest::StatusCode;
use reqwest::blocking::Response;

use super::advice::{refused_media_type_hint, unreachable_hint};
use super::client::Registry;
use super::error::{
    Answer, describe_transport_error, error_detail, is_dns_error, is_tls_error, registry_errors,
};
use super::location::authority;
use super::proxy_failure;
use super::scheme::{answered_in_plain_http, api_host, host_without_port};
use super::tls;
use crate::credentials::advice::login_hint;
use crate::error::Error;

impl Registry {
    /// The error for a 401 from a host other than the registry's (an upload service behind a
    /// front end), which is never sent the registry's credentials.
    pub(super) fn foreign_host_wants_credentials(
        &self,
        operation: &str,
        url: &reqwest::Url,
    ) -> Error {
        let other = authority(url);
        Error::registry(format!(
            "registry {}: {operation} failed: {other}, where the registry sent the request, \
             asks for credentials; they are sent only to {} itself",
            self.host, self.host
        ))
        .hint(format!(
            "if {other} is this registry under another name, have the registry name itself \
             as {} in its Location headers (distribution: http.host; behind a reverse proxy, \
             pass on the Host and X-Forwarded-Proto headers); an upload service on another \
             host must accept its upload URLs without the registry's credentials",
            self.host
        ))
    }

    /// The error for a response with an unexpected status.
    pub fn status_error(&self, operation: &str, response: Response) -> Error {
        if let Some(error) = proxy_failure::status_failure(&self.host, operation, &response) {
            return error;
        }
        self.answer_error(operation, &Answer::read(response))
    }

    /// The error for a refused manifest `PUT` of `media_type`: when the answer says the type is
    /// what was refused, the error names it and the hint the other `--format`
    /// ([`super::advice::refused_media_type_hint`]).
    pub fn manifest_error(&self, operation: &str, response: Response, media_type: &str) -> Error {
        let answer = Answer::read(response);
        let error = self.answer_error(operation, &answer);
        match refused_media_type_hint(answer.status.as_u16(), &answer.body, media_type) {
            Some(hint) => error
                .with_message_suffix(&format!(" (manifest media type {media_type})"))
                .hint(hint),
            None => error,
        }
    }

    /// The error for an answer with an unexpected status, with the hint of the host's credential
    /// issuer (ECR's says what to do), of a TLS front end, or about credentials.
    pub(super) fn answer_error(&self, operation: &str, answer: &Answer) -> Error {
        let status = answer.status;
        let detail = error_detail(&answer.body);
        let error = Error::registry(format!(
            "registry {}: {operation} failed: {status}{detail}",
            self.host
        ));
        if let Some(issuer) = self.auth.credentials.issuer()
            && let Some(hint) = issuer.answer_hint(
                operation,
                status.as_u16(),
                &registry_errors(&answer.body),
                &answer.path,
            )
        {
            return error.hint(hint);
        }
        if let Some(explanation) = tls::explain_answer(
            &self.host,
            status.as_u16(),
            &answer.body,
            self.client_certificate.as_deref(),
        ) {
            // The answer is a TLS front end's HTML page: its cause, not its markup.
            let cause = explanation
                .cause
                .map_or_else(String::new, |cause| format!(": {cause}"));
            return Error::registry(format!(
                "registry {}: {operation} failed: {status}{cause}",
                self.host
            ))
            .hint(explanation.hint);
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => error.hint(format!(
                "check that the credentials may pull and push these repositories; {}",
                login_hint(self.auth.credentials.flag(), &self.host)
            )),
            // The distribution registry sets no limit of its own; a proxy in front of it does.
            StatusCode::PAYLOAD_TOO_LARGE => error.hint(
                "the registry, or a reverse proxy in front of it, limits the size of a request \
                 body: raise that limit (nginx: client_max_body_size 0; Harbor and GitLab set it \
                 in their own settings)",
            ),
            _ => error,
        }
    }

    /// The error for a request that got no answer.
    pub fn transport_error(&self, operation: &str, error: &reqwest::Error) -> Error {
        if let Some(error) =
            proxy_failure::transport_failure(&self.host, operation, &self.base_url, error)
        {
            return error;
        }
        let description = describe_transport_error(error);
        if is_tls_error(error) || answered_in_plain_http(&description) {
            let rejection = self.tls_rejections.take();
            let explanation = tls::explain(
                &self.host,
                &description,
                rejection.as_ref(),
                self.client_certificate.as_deref(),
            );
            // Docker's --insecure-registry also skips certificate checks; this one does not.
            let named_insecure = self
                .auth
                .insecure_registries
                .iter()
                .any(|insecure| insecure.eq_ignore_ascii_case(&self.host));
            let hint = if named_insecure {
                format!(
                    "{} (--insecure-registry lets {} be spoken to in plain HTTP; it does not \
                     turn off the certificate check of a registry that speaks TLS)",
                    explanation.hint, self.host
                )
            } else {
                explanation.hint.clone()
            };
            Error::registry(format!(
                "registry {}: {operation} failed: TLS: {}",
                self.host,
                explanation.said(&description)
            ))
            .hint(hint)
        } else if is_dns_error(error) {
            let name = error
                .url()
                .and_then(|url| url.host_str().map(str::to_owned))
                .unwrap_or_else(|| host_without_port(api_host(&self.host)).to_owned());
            Error::registry(format!(
                "registry {}: {operation} failed: the name {name} could not be resolved \
                 (DNS): {description}",
                self.host
            ))
            .hint(unreachable_hint(
                self.role,
                &self.host,
                true,
                self.read.as_ref(),
            ))
        } else {
            Error::registry(format!(
                "registry {}: {operation} failed: {description}",
                self.host
            ))
            .hint(unreachable_hint(
                self.role,
                &self.host,
                false,
                self.read.as_ref(),
            ))
        }
    }
}
