//! What the fidelity tests share: a scratch directory. (`lambda-image ... --json` run and parsed
//! is `support::lambda_image_json`.)

/// A temporary directory under cargo's target tmpdir, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lambda-fidelity-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}
