//! Build script: the text `lambda-image --version` prints after the program name, given to the
//! crate as `LAMBDA_IMAGE_VERSION`, e.g. `0.1.0 (commit 04a357c, features: deploy,ecr)`.
//!
//! The commit is the git `HEAD` of the checkout being built, with `-dirty` when tracked files
//! differ from it (untracked files are ignored, as `git describe --dirty` ignores them). Built
//! from a crates.io package, it is the commit `cargo package` recorded in `.cargo_vcs_info.json`;
//! with neither (a plain source tarball, or no `git` program), `unknown`. A git repository that
//! merely contains the sources (say, a vendored copy) is not asked: its top level must be this
//! package's directory.
//!
//! Rebuilds: the script reruns only when `HEAD`, its reflog, the branch it points to,
//! `packed-refs` or the index change, or a file of the package that goes into the binary does (which may make the tree
//! dirty); nothing else makes `cargo build` run it again. `git status` runs without optional locks,
//! so it never rewrites the index and so never triggers its own rerun.
//!
//! Features: the enabled optional features, comma-separated (`deploy,ecr`), or `none`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for input in ["build.rs", "Cargo.toml", "Cargo.lock", "src", "base-images"] {
        println!("cargo:rerun-if-changed={input}");
    }
    let commit = git_commit(&manifest_dir)
        .or_else(|| packaged_commit(&manifest_dir))
        .unwrap_or_else(|| "unknown".to_owned());
    let mut features = Vec::new();
    if std::env::var_os("CARGO_FEATURE_DEPLOY").is_some() {
        features.push("deploy");
    }
    if std::env::var_os("CARGO_FEATURE_ECR").is_some() {
        features.push("ecr");
    }
    let features = if features.is_empty() {
        "none".to_owned()
    } else {
        features.join(",")
    };
    let version = std::env::var("CARGO_PKG_VERSION").expect("set by cargo");
    println!(
        "cargo:rustc-env=LAMBDA_IMAGE_VERSION={version} (commit {commit}, features: {features})"
    );
}

/// `HEAD`'s short commit (with `-dirty`), when the package directory is a git checkout's top
/// level; also prints the rerun-if-changed lines for the git files that decide it.
fn git_commit(manifest_dir: &Path) -> Option<String> {
    let top = git(manifest_dir, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(Path::new(&top), manifest_dir) {
        return None;
    }
    // `--git-path` finds each file where it is, in a linked worktree too (HEAD, its reflog and
    // the index in the worktree's git directory, refs and packed-refs in the common one). Only
    // files that exist are watched: cargo reruns a script on every build while a watched path is
    // missing. The reflog `logs/HEAD` is appended to by every commit, checkout and reset, so a
    // commit to a branch whose ref is only in packed-refs (no loose file to watch) is seen too.
    let mut watched = vec!["HEAD", "logs/HEAD", "packed-refs", "index"]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(manifest_dir, &["rev-parse", "--git-path", &name]) {
            let path = manifest_dir.join(path);
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let commit = git(manifest_dir, &["rev-parse", "--short=7", "HEAD"])?;
    let status = git(
        manifest_dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    );
    Some(match status {
        Some(changes) if !changes.is_empty() => format!("{commit}-dirty"),
        _ => commit,
    })
}

/// The commit `cargo package` recorded in `.cargo_vcs_info.json` (`{"git":{"sha1":"...",
/// "dirty":true}}`), shortened to 7 digits.
fn packaged_commit(manifest_dir: &Path) -> Option<String> {
    let path = manifest_dir.join(".cargo_vcs_info.json");
    if path.is_file() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let text = std::fs::read_to_string(path).ok()?;
    // Written by cargo in one fixed shape; read without a JSON parser, to keep the build
    // script free of dependencies.
    let after = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let sha1 = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let short = sha1
        .get(..7)
        .filter(|s| s.bytes().all(|b| b.is_ascii_hexdigit()))?;
    let dirty = text
        .split_whitespace()
        .collect::<String>()
        .contains("\"dirty\":true");
    Some(if dirty {
        format!("{short}-dirty")
    } else {
        short.to_owned()
    })
}

/// Runs `git ARGS` in `dir`; its trimmed stdout when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_owned())
}
