//! Fuzzes the parser of a registry's `WWW-Authenticate` challenge (`Basic realm=...`,
//! `Bearer realm=...,service=...,scope=...`).
#![no_main]

use lambda_image::registry::http::auth::Challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &str| {
    let _ = Challenge::parse(header);
});
