//! Registry set-ups as people really have them, taken from public bug reports of docker,
//! skopeo, containerd, ko, crane, kaniko and Harbor users: TLS certificates made with openssl the
//! way guides say, forward proxies and `NO_PROXY`, credentials keyed by namespace or kept by
//! helpers, token services that grant one scope at a time, retries, and upload sessions that move
//! to another host. Every test runs the real distribution registry; each area is a module.

mod common;
mod credentials;
mod proxies;
mod retries;
mod tls;
