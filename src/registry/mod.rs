//! Talking to OCI registries: for now, finding the credentials to use for one.
//!
//! Reference syntax lives in `crate::reference::registry`, not here.

pub mod credentials;
