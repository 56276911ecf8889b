//! Registry interop: retries (see tests/registry_interop.rs).
