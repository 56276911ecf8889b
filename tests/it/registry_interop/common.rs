//! Checks the interop tests share: a command's exit code and message, and that no secret shows.

use std::process::Output;

use crate::support::stderr_of;

/// The command's exit code is `code`, and stderr has each of `expected` and no panic; returns
/// stderr.
pub fn assert_exit(output: &Output, code: i32, expected: &[&str]) -> String {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "stderr lacks `{text}`:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// None of `secrets` is on stdout or stderr.
pub fn assert_no_secret(output: &Output, secrets: &[&str]) {
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
    }
}
