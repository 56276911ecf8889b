//! One row of the hostile-input table: a command line (with placeholders), how to prepare its
//! inputs and servers, and what must happen: exit code and message fragments.
//!
//! Placeholders: `{amd64}` `{arm64}` (fixture bootstraps), `{layout}` (fixture base), `{in}`
//! (the case's inputs), `{out}` (output parent and working directory), `{cache}` (the blob
//! cache), `{home}` (HOME; `{home}/.docker` is DOCKER_CONFIG), and any variable the case's
//! `prepare` sets with [`Scene::set`], such as `{reg}` for a fake registry's host.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::fixtures;

/// Which command a case runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verb {
    Build,
    Check,
    Zip,
}

/// Where the expected fragments are looked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// A failure: fragments in stderr, stdout empty.
    Error,
    /// `check` reporting findings (exit 7): fragments in stdout's report, which is allowed.
    Finding,
}

pub struct Case {
    pub name: &'static str,
    pub verb: Verb,
    pub bootstraps: Vec<String>,
    pub base: Option<String>,
    pub output: Option<String>,
    pub extra: Vec<String>,
    pub prepare: fn(&mut Scene),
    pub code: i32,
    pub expect: Expect,
    pub fragments: Vec<String>,
}

/// `build --bootstrap {amd64} --base oci:{layout}:al2023 --output oci:{out}/image:latest`,
/// failing with `code` and `fragment` in stderr.
pub fn build(name: &'static str, code: i32, fragment: impl Into<String>) -> Case {
    Case {
        name,
        verb: Verb::Build,
        bootstraps: vec!["{amd64}".into()],
        base: Some("oci:{layout}:al2023".into()),
        output: Some("oci:{out}/image:latest".into()),
        extra: Vec::new(),
        prepare: |_| {},
        code,
        expect: Expect::Error,
        fragments: vec![fragment.into()],
    }
}

/// `check IMAGE`, failing with `code` and `fragment` in stderr.
pub fn check(name: &'static str, image: &str, code: i32, fragment: impl Into<String>) -> Case {
    Case {
        verb: Verb::Check,
        bootstraps: Vec::new(),
        base: None,
        output: None,
        extra: vec![image.to_owned()],
        ..build(name, code, fragment)
    }
}

/// `check IMAGE` reporting an error finding: exit 7 (`image_rejected`), `fragment` in the report
/// on stdout.
pub fn check_finding(name: &'static str, image: &str, fragment: impl Into<String>) -> Case {
    Case {
        expect: Expect::Finding,
        ..check(name, image, 7, fragment)
    }
}

/// `check --bootstrap PATH --base provided.al2023` (no network: the catalog base).
pub fn check_bootstrap(
    name: &'static str,
    bootstrap: &str,
    code: i32,
    fragment: impl Into<String>,
) -> Case {
    Case {
        verb: Verb::Check,
        bootstraps: vec![bootstrap.to_owned()],
        base: Some("provided.al2023".into()),
        output: None,
        ..build(name, code, fragment)
    }
}

/// `zip --bootstrap PATH -o {out}/function.zip`.
pub fn zip(name: &'static str, bootstrap: &str, code: i32, fragment: impl Into<String>) -> Case {
    Case {
        verb: Verb::Zip,
        bootstraps: vec![bootstrap.to_owned()],
        base: None,
        output: Some("{out}/function.zip".into()),
        ..build(name, code, fragment)
    }
}

impl Case {
    pub fn prepare(mut self, prepare: fn(&mut Scene)) -> Self {
        self.prepare = prepare;
        self
    }

    pub fn bootstraps(mut self, bootstraps: &[&str]) -> Self {
        self.bootstraps = bootstraps.iter().map(|&b| b.to_owned()).collect();
        self
    }

    pub fn base(mut self, base: impl Into<String>) -> Self {
        self.base = Some(base.into());
        self
    }

    /// Pushes to `reference` instead of writing a layout.
    pub fn tag(mut self, reference: &str) -> Self {
        self.output = None;
        self.extra
            .extend(["--tag".to_owned(), reference.to_owned()]);
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.extra.extend(args.iter().map(|&a| a.to_owned()));
        self
    }

    /// Another fragment that must appear.
    pub fn and(mut self, fragment: impl Into<String>) -> Self {
        self.fragments.push(fragment.into());
        self
    }

    /// The command line, placeholders not yet expanded.
    pub fn arguments(&self) -> Vec<String> {
        let mut args = vec![
            match self.verb {
                Verb::Build => "build",
                Verb::Check => "check",
                Verb::Zip => "zip",
            }
            .to_owned(),
        ];
        if self.verb != Verb::Zip {
            args.extend(["--cache-dir".to_owned(), "{cache}".to_owned()]);
        }
        for bootstrap in &self.bootstraps {
            args.extend(["--bootstrap".to_owned(), bootstrap.clone()]);
        }
        if let Some(base) = &self.base {
            args.extend(["--base".to_owned(), base.clone()]);
        }
        if let Some(output) = &self.output {
            args.extend(["--output".to_owned(), output.clone()]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// A check run after the command: `Some(problem)` when it fails.
pub type AfterCheck = Box<dyn Fn() -> Option<String> + Send>;

/// The directories, servers and variables of one case.
pub struct Scene {
    pub input: tempfile::TempDir,
    pub out: tempfile::TempDir,
    pub tmp: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    variables: BTreeMap<String, String>,
    /// Servers and other things that must live until the command has run.
    keep: Vec<Box<dyn Any + Send>>,
    pub after: Vec<AfterCheck>,
    pub extra_env: Vec<(String, String)>,
}

impl Scene {
    pub fn new() -> Scene {
        let dir = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("creating a temporary directory")
        };
        let scene = Scene {
            input: dir("hostile-in-"),
            out: dir("hostile-out-"),
            tmp: dir("hostile-tmp-"),
            cache: dir("hostile-cache-"),
            variables: BTreeMap::new(),
            keep: Vec::new(),
            after: Vec::new(),
            extra_env: Vec::new(),
        };
        std::fs::create_dir_all(scene.home().join(".docker")).unwrap();
        scene
    }

    /// `{in}/NAME`.
    pub fn input(&self, name: &str) -> PathBuf {
        self.input.path().join(name)
    }

    /// HOME of the child: `{in}/home`.
    pub fn home(&self) -> PathBuf {
        self.input("home")
    }

    /// DOCKER_CONFIG's `config.json`.
    pub fn docker_config(&self) -> PathBuf {
        self.home().join(".docker/config.json")
    }

    /// Sets placeholder `{name}`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.variables.insert(name.to_owned(), value.into());
    }

    /// Keeps `thing` (a server) alive until the case is over.
    pub fn keep<T: Any + Send>(&mut self, thing: T) {
        self.keep.push(Box::new(thing));
    }

    /// Puts `{in}/bin` first on the child's PATH (for credential helpers) and returns it.
    pub fn helper_dir(&mut self) -> PathBuf {
        let bin = self.input("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        self.extra_env.push(("PATH".to_owned(), path));
        bin
    }

    pub fn expand(&self, text: &str) -> String {
        let f = fixtures();
        let path = |p: &Path| p.to_str().expect("test paths are UTF-8").to_owned();
        let mut text = text
            .replace("{amd64}", &path(&f.bootstrap_amd64))
            .replace("{arm64}", &path(&f.bootstrap_arm64))
            .replace("{layout}", &path(&f.base_layout))
            .replace("{in}", &path(self.input.path()))
            .replace("{out}", &path(self.out.path()))
            .replace("{cache}", &path(self.cache.path()))
            .replace("{home}", &path(&self.home()));
        for (name, value) in &self.variables {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}
