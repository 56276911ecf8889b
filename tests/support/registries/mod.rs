//! The servers the tests talk to: the real distribution registry ([`registry`], started by
//! [`registry_setup`]) with its token server ([`token`]); a misbehaving reverse proxy in front of
//! it ([`proxy`], [`proxy_handler`]) that corrupts blobs, redirects, injects failures and breaks
//! bodies off ([`body_faults`]); real forward proxies ([`forward_proxy`]); and ECR, with moto as its API
//! ([`ecr`], `moto_server.py`), and Lambda, IAM and S3 on the same moto ([`lambda`], `moto_lambda.py`,
//! `aws_call.py`). The in-process servers run on the small HTTP/1.1 server of [`http`]
//! (with [`http_cutoff`] for ending connections without an answer); [`tcp_front`] records the
//! first byte of each connection to a registry (TLS or not). Not here: the certificates
//! they serve ([`super::fixtures::certificates`]) and the tools that talk to them
//! ([`super::tools`]).

pub mod body_faults;
pub mod ecr;
pub mod forward_proxy;
pub mod http;
pub mod http_cutoff;
#[cfg(feature = "deploy")]
pub mod lambda;
pub mod proxy;
pub mod proxy_handler;
pub mod registry;
pub mod registry_setup;
pub mod tcp_front;
pub mod token;
