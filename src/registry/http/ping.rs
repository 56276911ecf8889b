//! First contact with a registry: `GET /v2/`, and with it the choice of HTTPS or plain HTTP
//! (only for a loopback or `--insecure-registry` host that does not speak TLS; a host that
//! speaks TLS and fails it is an error, never a silent fall-back) and the host's challenge.
//!
//! Not here: which hosts may use plain HTTP ([`super::scheme`]).

use reqwest::StatusCode;

use super::auth::read_challenge;
use super::client::{Registry, SMALL_REQUEST_TIMEOUT};
use super::error::{after_tries, is_tls_error};
use super::retry::{Tried, send_with_retries, still_failing};
use super::scheme::is_https_only_answer;
use crate::error::{Error, Result};

impl Registry {
    /// `GET /v2/`, the API version check that also returns the auth challenge. Retryable
    /// statuses (429, 5xx …) are retried; transport failures only with `retry_transport` (not
    /// when HTTPS is only being tried on a loopback host that may speak plain HTTP).
    fn ping(&self, retry_transport: bool) -> Tried {
        let url = self.url("/v2/");
        send_with_retries(
            self.http.get(&url).timeout(SMALL_REQUEST_TIMEOUT),
            retry_transport,
        )
    }

    /// Pings the registry at `https://API_HOST` (`api_host`), falling back to plain HTTP when
    /// `plain_http_allowed` and HTTPS got no answer; keeps the challenge of a 401. Errors: no
    /// answer, a 404 (no registry API there), or another unexpected status.
    pub(super) fn first_contact(&mut self, plain_http_allowed: bool, api_host: &str) -> Result<()> {
        let registry = self;
        let (ping, tries) = if plain_http_allowed {
            match registry.ping(false) {
                Tried {
                    outcome: Ok(response),
                    tries,
                } => (response, tries),
                Tried {
                    outcome: Err(https_error),
                    ..
                } => {
                    registry.base_url = format!("http://{api_host}");
                    match registry.ping(true) {
                        Tried {
                            outcome: Ok(response),
                            tries,
                        } if !is_https_only_answer(&response) => (response, tries),
                        // The host speaks TLS, and TLS failed: that is the error to report,
                        // never a silent fall-back to plain HTTP.
                        Tried { outcome: Ok(_), .. } => {
                            return Err(registry.transport_error("connect", &https_error));
                        }
                        Tried {
                            outcome: Err(_), ..
                        } if is_tls_error(&https_error) => {
                            return Err(registry.transport_error("connect", &https_error));
                        }
                        Tried {
                            outcome: Err(http_error),
                            tries,
                        } => {
                            return Err(after_tries(
                                registry.transport_error("connect", &http_error),
                                tries,
                            ));
                        }
                    }
                }
            }
        } else {
            match registry.ping(true) {
                Tried {
                    outcome: Ok(response),
                    tries,
                } => (response, tries),
                Tried {
                    outcome: Err(error),
                    tries,
                } => {
                    return Err(after_tries(
                        registry.transport_error("connect", &error),
                        tries,
                    ));
                }
            }
        };
        match ping.status() {
            // Credentials are looked up when a repository is first used, for that repository.
            StatusCode::UNAUTHORIZED => {
                registry.auth.set_host_challenge(read_challenge(&ping));
            }
            StatusCode::NOT_FOUND => {
                return Err(Error::registry(format!(
                    "{} does not serve the registry API: GET {}/v2/ answered 404",
                    registry.host, registry.base_url
                ))
                .hint("check the registry host and port in the reference"));
            }
            status if status.is_success() => {}
            status => {
                return Err(still_failing(
                    registry.status_error("connect", ping),
                    status,
                    tries,
                ));
            }
        }
        Ok(())
    }
}
