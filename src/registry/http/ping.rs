//! First contact with a registry: `GET /v2/`, and with it the choice of HTTPS or plain HTTP
//! and the host's challenge.
//!
//! A host that must use HTTPS is pinged over HTTPS. A host that may use plain HTTP (loopback,
//! `--insecure-registry`) is pinged in plain HTTP first, since that is what such hosts usually
//! speak: trying TLS first cost a TCP connection and a handshake answered with an HTTP page
//! (moby/moby#28091, distribution/distribution#1929: "server gave HTTP response to HTTPS
//! client"), and a host that drops packets to its HTTPS port made every run wait for a timeout
//! (GoogleContainerTools/kaniko#1933, google/go-containerregistry#1002). The plain `GET /v2/`
//! carries no credential. HTTPS is used instead when the plain answer says the port speaks TLS
//! ([`super::scheme::PlainAnswer`]: Go's, nginx's or Apache's `400` page, a redirect to
//! `https://`, a connection closed or an answer that is not HTTP), and is tried when the
//! HTTPS port is another one (no port given: 80 and 443) and port 80 has no registry; an HTTPS
//! registry named with `--insecure-registry` keeps working (moby/buildkit#4300). A host that
//! speaks TLS and fails it is an error, never a silent fall-back to plain HTTP. The scheme found
//! is remembered per host for the process ([`super::scheme::known_scheme`]): a second session
//! to the same host does not probe again.
//!
//! Not here: which hosts may use plain HTTP, and reading the plain answer ([`super::scheme`]).

use reqwest::StatusCode;
use reqwest::blocking::Response;

use super::auth::read_challenge;
use super::client::{Registry, SMALL_REQUEST_TIMEOUT};
use super::error::{after_tries, describe_transport_error, is_tls_error};
use super::retry::{Tried, send_with_retries, still_failing};
use super::scheme::{
    PlainAnswer, Scheme, answered_in_plain_http, https_port_differs, known_scheme,
};
use crate::error::{Error, Result};

impl Registry {
    /// `GET /v2/` at `scheme://API_HOST`, the API version check that also returns the auth
    /// challenge. Retryable statuses (429, 5xx …) are retried; transport failures only with
    /// `retry_transport` (not when a scheme is only being tried).
    fn ping(&mut self, scheme: Scheme, api_host: &str, retry_transport: bool) -> Tried {
        self.base_url = format!("{}://{api_host}", scheme.name());
        let url = self.url("/v2/");
        send_with_retries(
            self.http.get(&url).timeout(SMALL_REQUEST_TIMEOUT),
            retry_transport,
        )
    }

    /// Pings the registry at `API_HOST` (`api_host`) in the scheme it speaks: HTTPS, or, when
    /// `plain_http_allowed`, plain HTTP unless the host speaks TLS (see the module docs); keeps
    /// the challenge of a 401. Errors: no answer, a TLS failure of a host that speaks TLS, a
    /// 404 (no registry API there), or another unexpected status.
    pub(super) fn first_contact(&mut self, plain_http_allowed: bool, api_host: &str) -> Result<()> {
        let (ping, tries) = if plain_http_allowed {
            // One probe per host at a time: a session opened meanwhile waits for its answer,
            // then uses the scheme found.
            let known = known_scheme(api_host);
            let mut known = known
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (scheme, answered) = match *known {
                Some(scheme) => (scheme, None),
                None => self.probe_scheme(api_host)?,
            };
            let (ping, tries) = match answered {
                Some(answered) => answered,
                None => self.ping_with_retries(scheme, api_host)?,
            };
            self.base_url = format!("{}://{api_host}", scheme.name());
            *known = Some(scheme);
            (ping, tries)
        } else {
            self.ping_with_retries(Scheme::Https, api_host)?
        };
        self.read_ping(ping, tries)
    }

    /// [`Registry::ping`] retrying transport failures too; the answer and the number of tries.
    fn ping_with_retries(&mut self, scheme: Scheme, api_host: &str) -> Result<(Response, u32)> {
        match self.ping(scheme, api_host, true) {
            Tried {
                outcome: Ok(response),
                tries,
            } => Ok((response, tries)),
            Tried {
                outcome: Err(error),
                tries,
            } => Err(after_tries(self.transport_error("connect", &error), tries)),
        }
    }

    /// Which scheme a host that may use plain HTTP speaks: one plain `GET /v2/` (no
    /// credential), then HTTPS when that answer says the host speaks TLS or may ([`PlainAnswer`]).
    /// Returns the scheme, and the ping's answer when one of these requests can serve as it.
    /// Errors: the host speaks TLS and TLS failed.
    fn probe_scheme(&mut self, api_host: &str) -> Result<(Scheme, Option<(Response, u32)>)> {
        let Tried {
            outcome: plain,
            tries,
        } = self.ping(Scheme::Http, api_host, false);
        match PlainAnswer::read(plain.as_ref(), https_port_differs(api_host)) {
            PlainAnswer::Plain => Ok((Scheme::Http, plain.ok().map(|answer| (answer, tries)))),
            PlainAnswer::Tls => Ok((Scheme::Https, None)),
            PlainAnswer::Unsure => match self.ping(Scheme::Https, api_host, false) {
                Tried {
                    outcome: Ok(answer),
                    tries,
                } => Ok((Scheme::Https, Some((answer, tries)))),
                Tried {
                    outcome: Err(error),
                    ..
                } if is_tls_error(&error)
                    && !answered_in_plain_http(&describe_transport_error(&error)) =>
                {
                    // The host speaks TLS, and TLS failed: that is the error to report, never
                    // a silent fall-back to plain HTTP.
                    Err(self.transport_error("connect", &error))
                }
                // No TLS there: plain HTTP stands, with its answer, or its failure reported
                // by the ping with retries.
                Tried {
                    outcome: Err(_), ..
                } => Ok((Scheme::Http, plain.ok().map(|answer| (answer, tries)))),
            },
        }
    }

    /// What the ping's answer means: a 401 keeps the host's challenge, 2xx is fine.
    fn read_ping(&mut self, ping: Response, tries: u32) -> Result<()> {
        match ping.status() {
            // Credentials are looked up when a repository is first used, for that repository.
            StatusCode::UNAUTHORIZED => {
                self.auth.set_host_challenge(read_challenge(&ping));
            }
            StatusCode::NOT_FOUND => {
                return Err(Error::registry(format!(
                    "{} does not serve the registry API: GET {}/v2/ answered 404",
                    self.host, self.base_url
                ))
                .hint("check the registry host and port in the reference"));
            }
            status if status.is_success() => {}
            status => {
                return Err(still_failing(
                    self.status_error("connect", ping),
                    status,
                    tries,
                ));
            }
        }
        Ok(())
    }
}
