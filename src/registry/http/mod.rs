//! HTTP for the distribution protocol: one registry host's client (first contact, HTTPS or plain
//! HTTP, authentication when the registry asks, retries), TLS, proxies, and what failures mean.
//!
//! Not here: the protocol steps (pulling documents, pushing blobs and manifests: [`super::pull`],
//! [`super::push`]) or where credentials come from ([`crate::credentials`]).

pub mod advice;
pub mod auth;
mod authenticator;
pub mod client;
pub mod error;
mod failure;
pub mod location;
mod ping;
pub mod proxy;
pub mod proxy_failure;
pub mod retry;
pub mod scheme;
pub mod tls;
