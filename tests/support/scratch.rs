//! A scratch area for one test that runs `lambda-image build` against registries: an empty
//! docker config directory, its own blob cache, and room for outputs, under
//! `$CARGO_TARGET_TMPDIR`; removed on drop.

use std::path::PathBuf;
use std::process::Command;

use super::lambda_image;

/// See the module docs.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("build-registry-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn cache(&self) -> PathBuf {
        self.path("cache")
    }

    /// `lambda-image build` isolated from the machine: its own cache, an empty docker config,
    /// no auth file; progress lines on (stderr is not a terminal).
    pub fn build(&self, args: &[&str]) -> Command {
        let mut command = lambda_image();
        command
            .arg("build")
            .arg("--cache-dir")
            .arg(self.cache())
            .args(args)
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("HOME", self.dir.path())
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("SSL_CERT_FILE");
        command
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}
