//! Registry interop: tls (see tests/registry_interop.rs).
