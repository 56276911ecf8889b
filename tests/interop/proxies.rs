//! Registry interop: proxies (see tests/registry_interop.rs).
