//! A local Lambda: the Runtime API a bootstrap talks to, plus the Runtime Interface Emulator's
//! invoke endpoint, on a loopback port, with no Docker and no AWS.
//!
//! `runtime_api` is the API's state machine; `execution_environment` runs one invocation at a
//! time against it (starting, timing and killing the bootstrap, whose process is `process` and
//! whose environment variables are `variables`); `invoke_endpoint` is the RIE's
//! `POST /2015-03-31/functions/function/invocations`; `http` is the server under both;
//! `invocation` the values they pass around. The `invoke` and `serve` commands use it.

pub mod execution_environment;
pub mod host_architecture;
pub mod http;
pub mod invocation;
pub mod invoke_endpoint;
pub mod log;
pub mod process;
pub mod runtime_api;
pub mod signals;
pub mod variables;
