//! Registry interop: credentials (see tests/registry_interop.rs).
