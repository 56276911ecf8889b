//! HTTP for the distribution protocol: one registry host's client (first contact, HTTPS or plain
//! HTTP, authentication when the registry asks, retries), TLS, proxies, and what failures mean.
//!
//! Not here: the protocol steps (pulling documents, pushing blobs and manifests: [`super::pull`],
//! [`super::push`]) or where credentials come from ([`crate::credentials`]).

//! One concern a file:
//! - `client`: the per-host [`client::Registry`] and sending a request (authenticate on a 401,
//!   retry what is worth retrying);
//! - `ping`: first contact (`GET /v2/`) and the HTTPS / plain HTTP choice (plain HTTP first
//!   where it is allowed); `scheme`: which hosts may use plain HTTP
//!   ([`scheme::allows_plain_http`]), what a plain answer says of TLS, the scheme found per
//!   host, where a registry's API is served;
//! - `auth`: `WWW-Authenticate` challenges, HTTP Basic, bearer tokens from a token service;
//!   `authenticator`: the authentication state of each repository (scope) of a host;
//! - `retry`: which failures are retried and how long to wait;
//! - `proxy`: proxies from the environment; `proxy_failure`: what a failure through one means;
//! - `tls`: trust roots, client certificates, explaining refused certificates;
//! - `error`: reading error answers and transport errors; `failure`: the errors for failed
//!   requests; `advice`: the hints they carry; `location`: where upload sessions live.
//!
//! Files here import nothing from the rest of `registry`.

pub mod advice;
pub mod auth;
pub mod authenticator;
pub mod client;
pub mod error;
pub mod failure;
pub mod location;
pub mod ping;
pub mod proxy;
pub mod proxy_failure;
pub mod retry;
pub mod scheme;
pub mod tls;
