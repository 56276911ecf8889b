//! What the fidelity tests share: a scratch directory, and `lambda-image ... --json` run and parsed.

#![allow(dead_code)]

use std::process::Output;

use serde_json::Value;

use crate::support::{lambda_image, run_unchecked, stderr_of};

/// A temporary directory under cargo's target tmpdir, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lambda-fidelity-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// Runs `lambda-image ARGS` (which must include `--json`) and parses its stdout.
pub fn lambda_image_json(args: &[&str]) -> (Output, Value) {
    let output = run_unchecked(lambda_image().args(args));
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout of {args:?} is not JSON ({error}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr_of(&output)
        )
    });
    (output, report)
}
