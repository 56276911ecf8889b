//! Building without a network, as a user trips over it: a push that mounted the base's layers
//! leaves them out of the cache, and the offline build's hint names the one command that puts
//! them there (followed literally, it makes the offline build work); a failed offline build
//! leaves no cache tree behind; a kit from `base pull --output oci:DIR` is read back without
//! naming a tag, and a layout holding unrelated images is refused with its own tags in the hint;
//! a base mirror (`LAMBDA_IMAGE_BASE_MIRROR`) pulls catalog bases from a registry of the user's
//! and keeps the catalog's glibc facts. Hints use what is known: a wrong tag in a kit names the
//! kit's own images; an ambiguous layout lists each image once; a cache filled through a mirror
//! names the variable's value; a mirror missing content is a base problem with the copy that
//! fixes it; kit commands name only kit locations; short names are checked and may be pinned.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;
use serde_json::Value;

/// The exit code of a base that cannot be had (`error.kind` `base`).
const BASE_EXIT: i32 = 4;
/// The exit code of a bad command line or flag value (`usage`).
const USAGE_EXIT: i32 = 2;
const MIRROR_VARIABLE: &str = "LAMBDA_IMAGE_BASE_MIRROR";

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A registry holding the stand-in base at `repository:al2023` (with its per-architecture tags
/// under the names `tags` gives them).
fn registry_with_base(repository: &str, tags: &[(&str, &str)]) -> TestRegistry {
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("{repository}:{BASE_TAG}"));
    let layout = fixtures().base_layout.display().to_string();
    for (source_tag, tag) in tags {
        registry.skopeo_copy_to(
            &format!("oci:{layout}:{source_tag}"),
            &format!("{repository}:{tag}"),
        );
    }
    registry
}

/// `lambda-image ARGS` isolated from this machine's docker config and cache, like
/// [`Scratch::build`] (which this is for the commands other than `build`).
fn isolated(scratch: &Scratch, args: &[&str]) -> Command {
    let mut command = lambda_image();
    command
        .args(args)
        .env("DOCKER_CONFIG", scratch.path("docker"))
        .env("HOME", scratch.path(""))
        .env_remove("XDG_CACHE_HOME")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove(MIRROR_VARIABLE);
    command
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", stderr_of(output)))
}

/// The `hint:` text of an error on stderr.
fn hint_of(stderr: &str) -> &str {
    let start = stderr
        .find("hint: ")
        .unwrap_or_else(|| panic!("no hint in:\n{stderr}"));
    stderr[start + "hint: ".len()..].trim_end()
}

/// The base layers (both architectures) in the blob cache at `cache`.
fn cached_base_layers(cache: &Path) -> Vec<String> {
    fixtures()
        .base_layer_digests
        .values()
        .flatten()
        .filter(|digest| {
            let hex = digest.strip_prefix("sha256:").unwrap();
            cache.join("blobs/sha256").join(hex).is_file()
        })
        .cloned()
        .collect()
}

/// The real scenario: an online push to the registry the base is in mounts (or skips) the base's
/// layers, so they never reach the cache; `build --offline` then fails, and its hint names
/// `lambda-image base pull REF --cache-dir DIR` once, with the exact base and cache. Run word for
/// word, that command makes the same offline build succeed (with the registry gone).
#[test]
fn a_push_that_mounted_the_base_is_made_offline_by_following_the_hint_literally() {
    let scratch = Scratch::new();
    let registry = registry_with_base("lambda/base", &[]);
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let cache = scratch.cache();
    let both = both_bootstrap_args();
    let both: Vec<&str> = both.iter().map(String::as_str).collect();

    let mut online = scratch.build(&both);
    online.args(["-q", "--base", &base, "--tag", &registry.reference("fn:v1")]);
    run(&mut online);
    assert!(
        registry.count_requests("POST", "mount=") > 0,
        "the push mounted nothing: {:?}",
        registry.requests()
    );
    assert_eq!(
        cached_base_layers(&cache),
        Vec::<String>::new(),
        "the push read base layers"
    );

    let out = scratch.path("offline");
    let offline = |scratch: &Scratch| {
        let mut command = scratch.build(&both);
        command.args(["-q", "--offline", "--base", &base, "--output"]);
        command.arg(format!("oci:{}:v1", out.display()));
        run_unchecked(&mut command)
    };
    let failed = offline(&scratch);
    let stderr = stderr_of(&failed);
    assert_eq!(failed.status.code(), Some(BASE_EXIT), "{stderr}");
    assert!(stderr.contains("is not in the cache"), "{stderr}");
    assert!(!out.exists(), "a failed build wrote its output");
    let hint = hint_of(&stderr);
    let fill = format!(
        "lambda-image base pull {base} --cache-dir {}",
        cache.display()
    );
    assert_eq!(
        hint.matches(&format!("`{fill}`")).count(),
        1,
        "the hint names the command that fills the cache once: {hint}"
    );
    assert_eq!(hint.matches("--cache-dir").count(), 1, "{hint}");
    assert!(
        !hint.contains("run the build once online"),
        "an online build that pushes mounts again: {hint}"
    );

    // Followed literally (with network), then the registry is gone.
    let words: Vec<&str> = fill.split_whitespace().skip(1).collect();
    let pulled = stderr_of(&run(&mut isolated(&scratch, &words)));
    // What it says to run next (on stderr) names the same cache.
    assert!(
        pulled.contains(&format!(
            "lambda-image build --offline --cache-dir {} --base {base}",
            cache.display()
        )),
        "{pulled}"
    );
    drop(registry);
    let built = offline(&scratch);
    assert_eq!(built.status.code(), Some(0), "{}", stderr_of(&built));
    for layer in fixtures().base_layer_digests.values().flatten() {
        assert!(
            blob_path(&out, layer).is_file(),
            "base layer {layer} missing"
        );
    }
}

/// An offline build that fails because its base is not cached creates nothing in the cache
/// directory: not in a fresh one (it does not come into being), not in an empty one.
#[test]
fn a_failed_offline_build_leaves_no_cache_tree() {
    let scratch = Scratch::new();
    let both = both_bootstrap_args();
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    let fresh = scratch.cache();
    let empty = scratch.path("empty-cache");
    fs::create_dir(&empty).unwrap();
    for cache in [&fresh, &empty] {
        let mut command = lambda_image();
        command
            .args(["build", "-q", "--offline", "--cache-dir"])
            .arg(cache)
            .args(&both)
            .args(["--base", "provided.al2023", "--output"])
            .arg(format!("oci:{}", scratch.path("out").display()))
            .env_remove(MIRROR_VARIABLE);
        let output = run_unchecked(&mut command);
        assert_eq!(
            output.status.code(),
            Some(BASE_EXIT),
            "{}",
            stderr_of(&output)
        );
        if cache == &fresh {
            assert!(!fresh.exists(), "{} was created", fresh.display());
        } else {
            assert_eq!(file_names(&empty), Vec::<String>::new());
        }
    }
    assert!(!scratch.path("out").exists());
}

/// A kit from `base pull --output` (one index plus the manifests it lists, tagged `al2023`,
/// `al2023-amd64`, `al2023-arm64`) is a base without naming a tag, in `build --offline` and in
/// `check`, as an OCI layout and as an oci-archive. A layout that also holds an unrelated image
/// is ambiguous without a tag: a usage error whose hint names each image by the layout's own
/// tags, as the command takes it.
#[test]
fn a_kit_is_read_back_without_a_tag_and_an_ambiguous_layout_names_its_own_tags() {
    let scratch = Scratch::new();
    let registry = registry_with_base("lambda/base", &[]);
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let directory = scratch.path("kit");
    let archive = scratch.path("kit.tar");
    for kit in [
        format!("oci:{}", directory.display()),
        format!("oci-archive:{}", archive.display()),
    ] {
        pull_kit(&scratch, &base, &kit);
    }
    drop(registry);
    let both = both_bootstrap_args();
    let both: Vec<&str> = both.iter().map(String::as_str).collect();

    for (name, kit) in [
        ("dir", format!("oci:{}", directory.display())),
        ("tar", format!("oci-archive:{}", archive.display())),
    ] {
        let mut build = scratch.build(&both);
        build.args(["-q", "--json", "--offline", "--base", &kit, "--output"]);
        build.arg(format!("oci:{}:v1", scratch.path(name).display()));
        let report = json(&run(&mut build));
        assert_eq!(report["base"]["digest"], fixtures().base_digest, "{report}");

        let bootstrap = format!("amd64={}", fixtures().bootstrap_amd64.display());
        let checked = run_unchecked(&mut isolated(
            &scratch,
            &["check", "--json", "--bootstrap", &bootstrap, "--base", &kit],
        ));
        assert_eq!(checked.status.code(), Some(0), "{}", stderr_of(&checked));
    }

    // An unrelated image in the same layout (a build written into it as `mine`).
    let kit = format!("oci:{}", directory.display());
    let mut mine = scratch.build(&both);
    mine.args(["-q", "--base", &format!("{kit}:{BASE_TAG}"), "--output"]);
    mine.arg(format!("{kit}:mine"));
    run(&mut mine);

    let mut build = scratch.build(&both);
    build.args(["-q", "--offline", "--base", &kit, "--output"]);
    build.arg(format!("oci:{}", scratch.path("ambiguous").display()));
    let refused = run_unchecked(&mut build);
    let stderr = stderr_of(&refused);
    assert_eq!(refused.status.code(), Some(USAGE_EXIT), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "holds 2 images and no tag says which one is meant (its images: {BASE_TAG} (its \
             manifests: {BASE_TAG}-amd64, {BASE_TAG}-arm64), mine (its manifests: mine-amd64, \
             mine-arm64))"
        )),
        "{stderr}"
    );
    assert_eq!(
        hint_of(&stderr),
        format!("name one: --base {kit}:{BASE_TAG} or --base {kit}:mine"),
        "{stderr}"
    );
    assert!(!scratch.path("ambiguous").exists());

    let checked = run_unchecked(&mut isolated(&scratch, &["check", &kit]));
    let stderr = stderr_of(&checked);
    assert_eq!(checked.status.code(), Some(USAGE_EXIT), "{stderr}");
    assert_eq!(
        hint_of(&stderr),
        format!("name one: {kit}:{BASE_TAG} or {kit}:mine"),
        "{stderr}"
    );
    // Each command names the image its own way: check --base and build take a flag, base pull
    // and base verify a positional argument.
    let both_bootstrap = format!("amd64={}", fixtures().bootstrap_amd64.display());
    let copy = format!("oci:{}", scratch.path("copy").display());
    for (args, hint) in [
        (
            vec!["check", "--bootstrap", &both_bootstrap, "--base", &kit],
            format!("name one: --base {kit}:{BASE_TAG} or --base {kit}:mine"),
        ),
        (
            vec!["base", "pull", &kit, "--output", &copy],
            format!("name one: {kit}:{BASE_TAG} or {kit}:mine"),
        ),
    ] {
        let refused = run_unchecked(&mut isolated(&scratch, &args));
        let stderr = stderr_of(&refused);
        assert_eq!(
            refused.status.code(),
            Some(USAGE_EXIT),
            "{args:?}: {stderr}"
        );
        assert_eq!(hint_of(&stderr), hint, "{args:?}: {stderr}");
    }
    assert!(!scratch.path("copy").exists());
    // Named, each is fine.
    let checked = run_unchecked(&mut isolated(&scratch, &["check", &format!("{kit}:mine")]));
    assert_eq!(checked.status.code(), Some(0), "{}", stderr_of(&checked));
}

/// The glibc finding (level and message) of a `--json` report's `key` list.
fn glibc_finding(report: &Value, key: &str) -> (String, String) {
    let finding = report[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {report}"))
        .iter()
        .find(|finding| finding["check"] == "glibc")
        .unwrap_or_else(|| panic!("no glibc finding in {report}"));
    (
        finding["level"].as_str().unwrap().to_owned(),
        finding["message"].as_str().unwrap().to_owned(),
    )
}

/// `LAMBDA_IMAGE_BASE_MIRROR=HOST:PORT/PATH` stands for `public.ecr.aws/lambda`: `--base
/// provided.al2023` (and the default base) is pulled from `HOST:PORT/PATH/provided:al2023`, and
/// the catalog's glibc applies both to it and to the mirrored reference named directly; unset,
/// the mirrored reference is an unknown base again. `base list` shows where each base is pulled
/// from; `base pull` pulls from the mirror; a malformed value is a usage error naming the
/// variable.
#[test]
fn a_base_mirror_is_pulled_from_and_keeps_the_catalogs_glibc() {
    let scratch = Scratch::new();
    let registry = registry_with_base(
        "mirror/lambda/provided",
        &[
            ("al2023-amd64", "al2023-x86_64"),
            ("al2023-arm64", "al2023-arm64"),
        ],
    );
    let mirror = format!("{}/mirror/lambda", registry.host());
    let mirrored = format!("{mirror}/provided:{BASE_TAG}");
    let dynamic = dynamic_bootstrap(&scratch.path(""));
    let dynamic = format!("amd64={}", dynamic.display());
    let check = |base: &str, mirror: Option<&str>| {
        let mut command = isolated(
            &scratch,
            &["check", "--json", "--bootstrap", &dynamic, "--base", base],
        );
        if let Some(mirror) = mirror {
            command.env(MIRROR_VARIABLE, mirror);
        }
        let output = run_unchecked(&mut command);
        (
            output.status.code(),
            glibc_finding(&json(&output), "bootstraps"),
        )
    };
    // The findings name the base as given; the mirror's name stands for the upstream one.
    let as_upstream = |(level, message): (String, String)| {
        (level, message.replace(&mirror, "public.ecr.aws/lambda"))
    };

    // The catalog's answer, without a mirror.
    let (code, catalog) = check("provided.al2023", None);
    assert_eq!(code, Some(0));
    assert_eq!(catalog.0, "info", "{catalog:?}");
    let (_, catalog_al2) = check("provided.al2", None);
    assert_eq!(catalog_al2.0, "error", "{catalog_al2:?}");
    // The mirrored reference named directly, or by short name: the same finding.
    for base in [
        "provided.al2023",
        mirrored.as_str(),
        &format!("{mirror}/provided:al2023-x86_64"),
    ] {
        let (code, finding) = check(base, Some(&mirror));
        assert_eq!(code, Some(0), "{base}: {finding:?}");
        let (level, message) = as_upstream(finding);
        assert_eq!(level, catalog.0, "{base}");
        assert!(message.contains("has glibc 2.34 (provided.al2023 in the base-image catalog)"));
    }
    let (_, finding) = check("provided.al2023", Some(&mirror));
    assert_eq!(as_upstream(finding), catalog);
    let (_, finding) = check(&mirrored, Some(&mirror));
    assert_eq!(as_upstream(finding), catalog);
    let (_, al2) = check("provided.al2", Some(&mirror));
    assert_eq!(as_upstream(al2), catalog_al2);
    // Without the variable the mirror is just another registry: glibc not known.
    let (_, unknown) = check(&mirrored, None);
    assert_eq!(unknown.0, "warning", "{unknown:?}");
    assert!(unknown.1.contains("is not known"), "{unknown:?}");

    // A build pulls from the mirror, checked against the catalog's glibc.
    let requests_before = registry.count_requests("GET", "/v2/mirror/lambda/provided/manifests/");
    let out = scratch.path("out");
    let mut build = scratch.build(&["--bootstrap", &dynamic, "--json", "-q", "--output"]);
    build
        .arg(format!("oci:{}:v1", out.display()))
        .args(["--base", "provided.al2023"])
        .env(MIRROR_VARIABLE, &mirror);
    let report = json(&run(&mut build));
    assert_eq!(as_upstream(glibc_finding(&report, "checks")), catalog);
    assert_eq!(report["base"]["reference"], mirrored, "{report}");
    assert_eq!(report["base"]["digest"], fixtures().base_digest, "{report}");
    assert!(
        registry.count_requests("GET", "/v2/mirror/lambda/provided/manifests/") > requests_before
    );
    // The annotation names the reference actually pulled.
    let manifest = read_blob_json(&out, report["images"][0]["digest"].as_str().unwrap());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.name"], mirrored,
        "{manifest}"
    );

    // base list shows where each base comes from; base pull takes it from there.
    let mut list = isolated(&scratch, &["base", "list"]);
    list.env(MIRROR_VARIABLE, &mirror);
    let listed = run_stdout(&mut list);
    assert!(
        listed.contains(&format!("pulled from {mirrored}")),
        "{listed}"
    );
    let mut list = isolated(&scratch, &["base", "list", "--json"]);
    list.env(MIRROR_VARIABLE, &mirror);
    let listed = json(&run(&mut list));
    assert_eq!(listed["bases"][0]["pulled_from"], mirrored, "{listed}");
    assert_eq!(
        listed["bases"][0]["reference"],
        "public.ecr.aws/lambda/provided:al2023"
    );
    let kit = format!("oci:{}", scratch.path("kit").display());
    let mut pull = isolated(
        &scratch,
        &["base", "pull", "provided.al2023", "-q", "--output", &kit],
    );
    pull.env(MIRROR_VARIABLE, &mirror);
    let pulled = run(&mut pull);
    assert!(
        stderr_of(&pulled).contains(&mirrored),
        "{}",
        stderr_of(&pulled)
    );

    // A base the mirror lacks: the hint names the mirror's repository and what it must hold.
    let mut build = scratch.build(&[
        "--bootstrap",
        &format!("{}", fixtures().bootstrap_amd64.display()),
    ]);
    build
        .args(["-q", "--base", "provided.al2", "--output"])
        .arg(format!("oci:{}", scratch.path("al2").display()))
        .env(MIRROR_VARIABLE, &mirror);
    let missing = run_unchecked(&mut build);
    let stderr = stderr_of(&missing);
    assert_eq!(missing.status.code(), Some(BASE_EXIT), "{stderr}");
    assert!(
        hint_of(&stderr).contains(&format!(
            "`skopeo list-tags docker://{mirror}/provided` lists its tags; {mirror} is the mirror \
             {MIRROR_VARIABLE} names, which must hold a copy of public.ecr.aws/lambda/provided:al2"
        )),
        "{stderr}"
    );

    // A pinned digest no manifest has: named with `@`, and the hint says what that means, read
    // directly and through the mirror.
    let zeros = format!("sha256:{}", "0".repeat(64));
    let mut build = scratch.build(&[
        "--bootstrap",
        &format!("{}", fixtures().bootstrap_amd64.display()),
    ]);
    build
        .args([
            "-q",
            "--base",
            &format!("provided.al2023@{zeros}"),
            "--output",
        ])
        .arg(format!("oci:{}", scratch.path("pinned").display()))
        .env(MIRROR_VARIABLE, &mirror);
    let direct = isolated(&scratch, &["check", &format!("{mirror}/provided@{zeros}")]);
    for (mut command, tag) in [(build, BASE_TAG), (direct, "TAG")] {
        let missing = run_unchecked(&mut command);
        let stderr = stderr_of(&missing);
        assert_eq!(missing.status.code(), Some(BASE_EXIT), "{stderr}");
        assert!(stderr.contains(&format!("provided@{zeros}")), "{stderr}");
        assert!(!stderr.contains(&format!("provided:{zeros}")), "{stderr}");
        assert!(
            hint_of(&stderr).starts_with(&format!(
                "the registry has no manifest with the digest {zeros} in {mirror}/provided (it \
                 was deleted, or the digest is of another repository): `skopeo inspect \
                 docker://{mirror}/provided:{tag}` shows the current digest"
            )),
            "{stderr}"
        );
    }
    assert!(!scratch.path("pinned").exists());

    // Malformed: a usage error that names the variable, before anything is pulled.
    let never = format!("oci:{}", scratch.path("never").display());
    let commands = [
        vec!["base", "list"],
        vec!["base", "pull", "provided.al2023", "--output", &never],
        vec![
            "check",
            "--bootstrap",
            &dynamic,
            "--base",
            "provided.al2023",
        ],
        // The default base.
        vec!["build", "--bootstrap", &dynamic, "--output", &never],
    ];
    for bad in [
        "https://mirror.example/lambda",
        "mirror.example",
        "mirror/lambda",
    ] {
        for args in &commands {
            let mut command = isolated(&scratch, args);
            command.env(MIRROR_VARIABLE, bad);
            let output = run_unchecked(&mut command);
            let stderr = stderr_of(&output);
            assert_eq!(
                output.status.code(),
                Some(USAGE_EXIT),
                "{bad} {args:?}: {stderr}"
            );
            assert!(
                stderr.starts_with(&format!("lambda-image: error: {MIRROR_VARIABLE}: ")),
                "{stderr}"
            );
        }
    }
    assert!(!scratch.path("never").exists());
}

/// `base pull BASE --output KIT` from the stand-in registry into `kit` (a cache of its own).
fn pull_kit(scratch: &Scratch, base: &str, kit: &str) {
    let cache = scratch.path("pull-cache");
    run(&mut isolated(
        scratch,
        &[
            "base",
            "pull",
            base,
            "-q",
            "--output",
            kit,
            "--cache-dir",
            text(&cache),
        ],
    ));
}

/// Rewrites a layout's `index.json` through `edit` (its `manifests` array).
fn edit_layout_index(layout: &Path, edit: impl FnOnce(&mut Vec<Value>)) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(index["manifests"].as_array_mut().unwrap());
    fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

fn ref_name(entry: &Value) -> Option<&str> {
    entry["annotations"]["org.opencontainers.image.ref.name"].as_str()
}

/// A tag a layout lacks is a base error (4) whose hint names what is there, as the command
/// takes it: the kit's one image by its tag, or with no tag at all; a missing kit file names
/// the command that makes it at the user's own path. A layout without its `oci-layout` file
/// is not a layout (as skopeo says too), for `base verify` and as a base alike.
#[test]
fn a_wrong_tag_or_a_missing_layout_file_is_answered_with_what_the_layout_has() {
    let scratch = Scratch::new();
    let registry = registry_with_base("lambda/base", &[]);
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let directory = scratch.path("kit1");
    let archive = scratch.path("kit1.tar");
    let dir_kit = format!("oci:{}", directory.display());
    let tar_kit = format!("oci-archive:{}", archive.display());
    pull_kit(&scratch, &base, &dir_kit);
    pull_kit(&scratch, &base, &tar_kit);
    drop(registry);
    let both = both_bootstrap_args();
    let both: Vec<&str> = both.iter().map(String::as_str).collect();

    for kit in [&dir_kit, &tar_kit] {
        let mut build = scratch.build(&both);
        build
            .args([
                "-q",
                "--offline",
                "--base",
                &format!("{kit}:latest"),
                "--output",
            ])
            .arg(format!("oci:{}", scratch.path("wt").display()));
        let refused = run_unchecked(&mut build);
        let stderr = stderr_of(&refused);
        assert_eq!(refused.status.code(), Some(BASE_EXIT), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "has no image tagged `latest`; its tags: {BASE_TAG}, {BASE_TAG}-amd64, {BASE_TAG}-arm64"
            )),
            "{stderr}"
        );
        assert_eq!(
            hint_of(&stderr),
            format!(
                "it holds one image: --base {kit}:{BASE_TAG}, or leave the tag out (--base {kit})"
            )
        );
        assert!(!scratch.path("wt").exists());
    }
    let checked = run_unchecked(&mut isolated(
        &scratch,
        &["check", &format!("{dir_kit}:nope")],
    ));
    let stderr = stderr_of(&checked);
    assert_eq!(checked.status.code(), Some(BASE_EXIT), "{stderr}");
    assert_eq!(
        hint_of(&stderr),
        format!("it holds one image: {dir_kit}:{BASE_TAG}, or leave the tag out ({dir_kit})")
    );
    let verified = run_unchecked(&mut isolated(
        &scratch,
        &["base", "verify", &format!("{tar_kit}:nope")],
    ));
    assert_eq!(verified.status.code(), Some(BASE_EXIT));
    assert!(
        hint_of(&stderr_of(&verified))
            .starts_with(&format!("it holds one image: {tar_kit}:{BASE_TAG}")),
        "{}",
        stderr_of(&verified)
    );

    // A kit file that is not there: the command that makes it, at the path given.
    let absent = format!("oci-archive:{}", scratch.path("absent.tar").display());
    let mut build = scratch.build(&both);
    build
        .args([
            "-q",
            "--offline",
            "--base",
            &format!("{absent}:latest"),
            "--output",
        ])
        .arg(format!("oci:{}", scratch.path("wt").display()));
    let missing = run_unchecked(&mut build);
    let stderr = stderr_of(&missing);
    assert_eq!(missing.status.code(), Some(BASE_EXIT), "{stderr}");
    assert!(
        hint_of(&stderr).contains(&format!("base pull provided.al2023 --output {absent}`")),
        "{stderr}"
    );

    // No oci-layout file: refused by skopeo, by base verify and as a base.
    let damaged = scratch.path("dmg4");
    run(Command::new("cp").arg("-r").arg(&directory).arg(&damaged));
    fs::remove_file(damaged.join("oci-layout")).unwrap();
    let damaged_kit = format!("oci:{}", damaged.display());
    let skopeo = run_unchecked(Command::new("skopeo").args(["inspect", &damaged_kit]));
    assert!(
        !skopeo.status.success(),
        "skopeo read a layout without oci-layout"
    );
    for args in [
        vec!["base", "verify", text(&damaged)],
        vec!["base", "verify", "--json", &damaged_kit],
        vec!["check", &damaged_kit],
    ] {
        let refused = run_unchecked(&mut isolated(&scratch, &args));
        let stderr = stderr_of(&refused);
        assert_eq!(refused.status.code(), Some(BASE_EXIT), "{args:?}: {stderr}");
        assert!(
            stderr.contains("no `oci-layout` file"),
            "{args:?}: {stderr}"
        );
    }
    let mut build = scratch.build(&both);
    build
        .args(["-q", "--offline", "--base", &damaged_kit, "--output"])
        .arg(format!("oci:{}", scratch.path("wt").display()));
    let refused = run_unchecked(&mut build);
    assert_eq!(
        refused.status.code(),
        Some(BASE_EXIT),
        "{}",
        stderr_of(&refused)
    );
    assert!(stderr_of(&refused).contains("no `oci-layout` file"));
    assert!(!scratch.path("wt").exists());
}

/// A layout holding several images lists each image once, with all its tags together (a
/// manifest its index lists under its own tags, one manifest under two tags), and counts the
/// untagged ones; a usage error (2): the command line must name one.
#[test]
fn an_ambiguous_layout_lists_each_image_once_and_counts_the_untagged() {
    let scratch = Scratch::new();
    let registry = registry_with_base("lambda/base", &[]);
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let directory = scratch.path("kit");
    let kit = format!("oci:{}", directory.display());
    pull_kit(&scratch, &base, &kit);
    drop(registry);
    let arm64 = fixtures().bootstrap_arm64.display().to_string();
    let amd64 = fixtures().bootstrap_amd64.display().to_string();
    // `mine` (= `mine-arm64`, one manifest), and `other`, whose tags are then removed.
    for (bootstrap, tag) in [(&arm64, "mine"), (&amd64, "other")] {
        let mut build = scratch.build(&["--bootstrap", bootstrap, "-q", "--offline"]);
        build.args([
            "--base",
            &format!("{kit}:{BASE_TAG}"),
            "--output",
            &format!("{kit}:{tag}"),
        ]);
        run(&mut build);
    }
    edit_layout_index(&directory, |entries| {
        // `v2` names the kit's arm64 manifest too.
        let mut alias = entries
            .iter()
            .find(|entry| ref_name(entry) == Some(&format!("{BASE_TAG}-arm64")))
            .unwrap()
            .clone();
        alias["annotations"]["org.opencontainers.image.ref.name"] = "v2".into();
        entries.push(alias);
        for entry in entries.iter_mut() {
            if ref_name(entry).is_some_and(|tag| tag.starts_with("other")) {
                entry.as_object_mut().unwrap().remove("annotations");
            }
        }
    });
    let checked = run_unchecked(&mut isolated(&scratch, &["check", "--json", &kit]));
    let report = json(&checked);
    assert_eq!(checked.status.code(), Some(USAGE_EXIT), "{report}");
    assert_eq!(report["error"]["kind"], "usage", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(&format!(
            "holds 3 images and no tag says which one is meant (its images: {BASE_TAG} (its \
             manifests: {BASE_TAG}-amd64, {BASE_TAG}-arm64 = v2), mine (= mine-arm64); and 1 \
             untagged image)"
        )),
        "{message}"
    );
    let hint = report["error"]["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&format!("name one: {kit}:{BASE_TAG} or {kit}:mine; ")),
        "{hint}"
    );
    assert!(hint.contains("untagged image cannot be named"), "{hint}");
}

/// The exit-code table in the README says where an ambiguous local image is: usage (2).
#[test]
fn the_readme_puts_an_ambiguous_local_image_in_the_usage_row() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let usage_row = readme
        .lines()
        .find(|line| line.starts_with("| 2 |"))
        .expect("the exit-code table has a row for 2");
    assert!(
        usage_row.contains("several images"),
        "the usage row does not mention a layout of several images: {usage_row}"
    );
}

/// The registry's manifests of a repository, and the per-architecture manifest and a layer of
/// the stand-in base, as the mirror holds them.
fn delete_from_registry(registry: &TestRegistry, repository: &str, kind: &str, digest: &str) {
    let output = run(Command::new("curl").args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "DELETE",
        &format!("{}/v2/{repository}/{kind}/{digest}", registry.url()),
    ]));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "202");
}

/// A cache filled through a mirror, read offline with the variable unset: the error names the
/// record the cache does hold and the variable's value that uses it; set so, the build works.
/// A mirror that lacks a layer or a manifest of the base is a base problem (4, kind base), with
/// the copy that fixes it; a base registry that is no mirror, the image damaged there.
#[test]
fn a_mirror_filled_cache_and_an_incomplete_mirror_are_named_for_what_they_are() {
    let scratch = Scratch::new();
    let registry = registry_with_base("mirror/lambda/provided", &[]);
    let mirror = format!("{}/mirror/lambda", registry.host());
    let mirrored = format!("{mirror}/provided:{BASE_TAG}");
    let cache = scratch.cache();
    let mut pull = isolated(
        &scratch,
        &[
            "base",
            "pull",
            "provided.al2023",
            "-q",
            "--cache-dir",
            text(&cache),
        ],
    );
    pull.env(MIRROR_VARIABLE, &mirror);
    run(&mut pull);

    let amd64 = format!("amd64={}", fixtures().bootstrap_amd64.display());
    let offline = |mirror_value: Option<&str>| {
        let mut build = scratch.build(&["--bootstrap", &amd64, "-q", "--json", "--offline"]);
        build
            .args(["--base", "provided.al2023", "--output"])
            .arg(format!("oci:{}", scratch.path("offline").display()))
            .env_remove(MIRROR_VARIABLE);
        if let Some(value) = mirror_value {
            build.env(MIRROR_VARIABLE, value);
        }
        run_unchecked(&mut build)
    };
    let refused = offline(None);
    let report = json(&refused);
    assert_eq!(refused.status.code(), Some(BASE_EXIT), "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("the cache holds one for {mirrored}")),
        "{message}"
    );
    let hint = report["error"]["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&format!(
            "it was pulled through a mirror: set {MIRROR_VARIABLE}={mirror} as when it was pulled"
        )),
        "{hint}"
    );
    assert!(!scratch.path("offline").exists());
    // Followed: offline, from the cache alone.
    let layer = fixtures().base_layer_digests["amd64"][0].clone();
    let arm64_manifest = fixtures().base_manifests["arm64"].clone();
    let built = offline(Some(&mirror));
    assert_eq!(built.status.code(), Some(0), "{}", stderr_of(&built));

    // One layer gone from the mirror: base, not registry; the hint copies the base again.
    delete_from_registry(&registry, "mirror/lambda/provided", "blobs", &layer);
    let online = |base: &str, bootstrap: &str, mirror_value: Option<&str>, out: &str| {
        // A cache of its own: the base's layers are read from the registry.
        let mut build = isolated(
            &scratch,
            &["build", "--bootstrap", bootstrap, "-q", "--json"],
        );
        build
            .args(["--cache-dir", text(&scratch.path(&format!("{out}-cache")))])
            .args(["--base", base, "--output"])
            .arg(format!("oci:{}", scratch.path(out).display()))
            .env_remove(MIRROR_VARIABLE);
        if let Some(value) = mirror_value {
            build.env(MIRROR_VARIABLE, value);
        }
        let output = run_unchecked(&mut build);
        assert!(!scratch.path(out).exists(), "{out} was written");
        (output.status.code(), json(&output))
    };
    let (code, report) = online("provided.al2023", &amd64, Some(&mirror), "layer");
    assert_eq!(code, Some(BASE_EXIT), "{report}");
    assert_eq!(report["error"]["kind"], "base", "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&layer) && message.contains("404"),
        "{message}"
    );
    assert_eq!(
        report["error"]["hint"].as_str().unwrap(),
        format!(
            "the mirror's copy is incomplete ({mirror} is the mirror {MIRROR_VARIABLE} names): \
             copy the base into it again, e.g. `skopeo copy --all \
             docker://public.ecr.aws/lambda/provided:al2023 docker://{mirrored}`"
        )
    );
    // The same registry named directly: no mirror, the image is damaged there.
    let (code, report) = online(&mirrored, &amd64, None, "direct");
    assert_eq!(code, Some(BASE_EXIT), "{report}");
    let hint = report["error"]["hint"].as_str().unwrap();
    assert!(
        hint.starts_with(&format!("the base is damaged in {mirror}/provided")),
        "{hint}"
    );
    // A manifest the index lists, gone: also the base's.
    delete_from_registry(
        &registry,
        "mirror/lambda/provided",
        "manifests",
        &arm64_manifest,
    );
    let arm64 = format!("arm64={}", fixtures().bootstrap_arm64.display());
    let (code, report) = online("provided.al2023", &arm64, Some(&mirror), "manifest");
    assert_eq!(code, Some(BASE_EXIT), "{report}");
    assert_eq!(report["error"]["kind"], "base", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&arm64_manifest),
        "{report}"
    );
    assert!(
        report["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("skopeo copy --all"),
        "{report}"
    );
}

/// `base pull` from a kit keeps the kit's tag (not `latest`), and its report's `output` names
/// the tag written; the advice goes to stderr (also with -q), stdout holds only the report.
/// `base pull --output` and `base verify` name only the kit locations they take.
#[test]
fn base_pull_from_a_kit_keeps_its_tag_and_kit_commands_name_only_kits() {
    let scratch = Scratch::new();
    let registry = registry_with_base("lambda/base", &[]);
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let kit = format!("oci:{}", scratch.path("kit1").display());
    pull_kit(&scratch, &base, &kit);

    let copy = scratch.path("kcopy");
    let copied = format!("oci:{}", copy.display());
    let report = json(&run(&mut isolated(
        &scratch,
        &["base", "pull", &kit, "--output", &copied, "--json"],
    )));
    assert_eq!(report["output"], format!("{copied}:{BASE_TAG}"), "{report}");
    assert_eq!(report["index"]["reference"], format!("{copied}:{BASE_TAG}"));
    assert_eq!(
        report["images"][0]["reference"],
        format!("{copied}:{BASE_TAG}-amd64")
    );
    let tags: Vec<String> = read_json(copy.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| ref_name(entry).map(str::to_owned))
        .collect();
    assert_eq!(
        tags,
        [
            BASE_TAG.to_owned(),
            format!("{BASE_TAG}-amd64"),
            format!("{BASE_TAG}-arm64")
        ]
    );
    // Named by a tag: that tag.
    let single = format!("oci:{}", scratch.path("single").display());
    let report = json(&run(&mut isolated(
        &scratch,
        &[
            "base",
            "pull",
            &format!("{kit}:{BASE_TAG}-arm64"),
            "--arch",
            "arm64",
            "--output",
            &single,
            "--json",
        ],
    )));
    assert_eq!(
        report["output"],
        format!("{single}:{BASE_TAG}-arm64"),
        "{report}"
    );
    // A tag that already ends in the one architecture kept is not given it twice.
    assert_eq!(
        report["images"][0]["references"],
        serde_json::json!([format!("{single}:{BASE_TAG}-arm64")]),
        "{report}"
    );
    let tags: Vec<String> = read_json(scratch.path("single").join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| ref_name(entry).map(str::to_owned))
        .collect();
    assert_eq!(tags, [format!("{BASE_TAG}-arm64")]);

    // Text mode, -q: the report on stdout, the advice on stderr.
    for args in [
        vec!["base", "pull", &base, "-q", "--output"],
        vec!["base", "pull", &base, "-q"],
    ] {
        let mut command = isolated(&scratch, &args);
        if args.len() == 5 {
            command.arg(format!("oci:{}", scratch.path("text").display()));
        }
        let pulled = run(&mut command);
        let stdout = String::from_utf8_lossy(&pulled.stdout);
        for line in stdout.lines() {
            assert!(
                ["amd64 ", "arm64 ", "index "]
                    .iter()
                    .any(|start| line.starts_with(start)),
                "not a report line on stdout: {line}"
            );
        }
        assert!(
            stderr_of(&pulled).contains("lambda-image build --offline"),
            "{}",
            stderr_of(&pulled)
        );
    }

    // Each command names only what it takes.
    let reference = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    for (args, takes_docker_archive) in [
        (vec!["base", "verify", &reference, "--json"], false),
        (
            vec!["base", "pull", "--json", "--output", &reference],
            false,
        ),
        (
            vec![
                "base",
                "pull",
                "--json",
                "--output",
                "docker-archive:kit.tar",
            ],
            false,
        ),
    ] {
        let refused = run_unchecked(&mut isolated(&scratch, &args));
        let report = json(&refused);
        assert_eq!(refused.status.code(), Some(USAGE_EXIT), "{report}");
        let message = report["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("a kit is oci:DIR[:TAG] or oci-archive:FILE[:TAG]"),
            "{message}"
        );
        assert!(!message.contains("--tag"), "{message}");
        assert_eq!(
            message.contains("docker-archive:FILE"),
            takes_docker_archive,
            "{message}"
        );
    }
}

/// A mistyped catalog name, or one with a tag, is refused before any registry is asked (it
/// would otherwise be a Docker Hub image); a catalog name pinned to a digest is the catalog's
/// reference pinned, pulled through the mirror with the catalog's glibc.
#[test]
fn catalog_short_names_are_checked_and_may_be_pinned() {
    let scratch = Scratch::new();
    let out = format!("oci:{}", scratch.path("never").display());
    let amd64 = format!("amd64={}", fixtures().bootstrap_amd64.display());
    for args in [
        vec!["base", "pull", "provided.al3000", "--json"],
        vec![
            "build",
            "--json",
            "--bootstrap",
            &amd64,
            "--base",
            "provided.al3000",
            "--output",
            &out,
        ],
        vec![
            "build",
            "--json",
            "--bootstrap",
            &amd64,
            "--base",
            "provided.al2023:al2023",
            "--output",
            &out,
        ],
    ] {
        let refused = run_unchecked(&mut isolated(&scratch, &args));
        let report = json(&refused);
        assert_eq!(
            refused.status.code(),
            Some(USAGE_EXIT),
            "{args:?}: {report}"
        );
        let message = report["error"]["message"].as_str().unwrap();
        assert!(!message.contains("docker.io:"), "{message}");
        assert!(!message.contains(MIRROR_VARIABLE), "{message}");
        assert!(
            message.contains("lambda-image base list") || message.contains("already names a tag"),
            "{message}"
        );
    }
    assert!(!scratch.path("never").exists());

    let registry = registry_with_base("mirror/lambda/provided", &[]);
    let mirror = format!("{}/mirror/lambda", registry.host());
    let dynamic = dynamic_bootstrap(&scratch.path(""));
    let pinned = format!("provided.al2023@{}", fixtures().base_digest);
    let mut build = isolated(
        &scratch,
        &[
            "build",
            "--json",
            "-q",
            "--bootstrap",
            &format!("amd64={}", dynamic.display()),
            "--base",
            &pinned,
            "--output",
            &format!("oci:{}", scratch.path("pinned").display()),
        ],
    );
    build.env(MIRROR_VARIABLE, &mirror);
    let report = json(&run(&mut build));
    assert_eq!(
        report["base"]["reference"],
        format!("{mirror}/provided:{BASE_TAG}@{}", fixtures().base_digest),
        "{report}"
    );
    let (level, message) = glibc_finding(&report, "checks");
    assert_eq!(level, "info", "{message}");
    assert!(
        message.contains("provided.al2023 in the base-image catalog"),
        "{message}"
    );
}
