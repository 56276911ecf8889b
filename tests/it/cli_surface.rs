//! The command line's surface, run as a user runs it: what `build --json` says it wrote (every
//! tag and digest reference, read back from the real registry, the layout, the oci-archive's
//! `index.json` and the docker-archive's `RepoTags`, for one and two architectures), the progress
//! lines naming each tag, stdout holding only the report, `--version` (the same line for every
//! command), the shell completions (loaded in bash and asked to complete, every flag with a closed
//! set of values to that set), the manual pages (rendered with groff: the footer, EXIT STATUS
//! against the README's table, ENVIRONMENT), which `--skip-checks` names each command takes, and
//! what `check` says of a docker-archive, which has no manifest (of one image, and of two).

use std::path::Path;
use std::process::{Command, Output};

use crate::support::builds::str_refs;
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::scratch::Scratch;
use crate::support::*;
use serde_json::Value;

/// The entries of a JSON array of strings.
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

/// The report's image of `architecture`.
fn image<'a>(report: &'a Value, architecture: &str) -> &'a Value {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["architecture"] == architecture)
        .unwrap_or_else(|| panic!("no {architecture} image in {report}"))
}

/// The digest a registry reference (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`) resolves to there,
/// read with skopeo.
fn registry_digest(registry: &TestRegistry, reference: &str) -> String {
    let prefix = format!("{}/", registry.host());
    let local = reference
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{reference} is not on {prefix}"));
    let raw = registry.skopeo_inspect_raw(local);
    format!("sha256:{}", sha256_hex(raw.as_bytes()))
}

fn assert_usage_error(output: &Output, expected: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(2), "stderr:\n{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "stderr lacks `{text}`:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn build_json_lists_every_reference_written_and_each_lambda_architecture() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let scratch = Scratch::new();
    let host = registry.host();
    let layout = scratch.path("layout");
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base_reference(),
        "--tag".into(),
        format!("{host}/fn:v1"),
        "--tag".into(),
        format!("{host}/fn:v2"),
        "--tag".into(),
        format!("{host}/other/fn:v1"),
        "--output".into(),
        format!("oci:{}:v1", layout.display()),
        "--json".into(),
    ]);
    let output = run(&mut scratch.build(&str_refs(&args)));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stderr = stderr_of(&output);

    let index = report["index"]["digest"].as_str().unwrap().to_owned();
    let oci = |tag: &str| format!("oci:{}:{tag}", layout.display());
    let index_references = vec![
        format!("{host}/fn:v1"),
        format!("{host}/fn:v2"),
        format!("{host}/fn@{index}"),
        format!("{host}/other/fn:v1"),
        format!("{host}/other/fn@{index}"),
        oci("v1"),
    ];
    assert_eq!(strings(&report["index"]["references"]), index_references);
    assert_eq!(report["index"]["reference"], format!("{host}/fn:v1"));
    let mut all = index_references.clone();

    for (architecture, lambda) in [("amd64", "x86_64"), ("arm64", "arm64")] {
        let image = image(&report, architecture);
        let digest = image["digest"].as_str().unwrap();
        assert_eq!(image["lambda_architecture"], lambda, "{image}");
        // What a function's ImageUri takes, as before, even with --output beside the push.
        assert_eq!(image["reference"], format!("{host}/fn@{digest}"));
        let references = vec![
            format!("{host}/fn@{digest}"),
            format!("{host}/fn:v1-{architecture}"),
            format!("{host}/fn:v2-{architecture}"),
            format!("{host}/other/fn@{digest}"),
            format!("{host}/other/fn:v1-{architecture}"),
            oci(&format!("v1-{architecture}")),
        ];
        assert_eq!(strings(&image["references"]), references);
        all.extend(references.iter().cloned());

        // Each listed reference was written, and names this image.
        for reference in references.iter().filter(|r| r.starts_with(&host)) {
            assert_eq!(registry_digest(&registry, reference), digest, "{reference}");
        }
        let tag = format!("v1-{architecture}");
        assert_eq!(
            layout_descriptor(&layout, &tag).unwrap()["digest"],
            digest,
            "{tag}"
        );
        // The progress lines name each per-architecture tag, not only TAG.
        for tagged in [
            format!("{host}/fn:v1-{architecture}"),
            format!("{host}/fn:v2-{architecture}"),
            format!("{host}/other/fn:v1-{architecture}"),
        ] {
            assert!(
                stderr
                    .lines()
                    .any(|line| line == format!("tagged   {tagged}")),
                "no `tagged   {tagged}` line:\n{stderr}"
            );
        }
    }
    for reference in index_references.iter().filter(|r| r.starts_with(&host)) {
        assert_eq!(registry_digest(&registry, reference), index, "{reference}");
    }
    assert_eq!(layout_descriptor(&layout, "v1").unwrap()["digest"], index);
    assert_eq!(strings(&report["references"]), all);
    for tag in ["fn:v1", "fn:v2", "other/fn:v1"] {
        let line = format!("tagged   {host}/{tag}");
        assert!(stderr.lines().any(|l| l == line), "no `{line}`:\n{stderr}");
    }
    // JSON on stdout, nothing else; the advice for people is not given to machines.
    assert!(!stderr.contains("Lambda runs one architecture"), "{stderr}");
}

#[test]
fn a_single_architecture_push_lists_its_tag_and_digest_references() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let scratch = Scratch::new();
    let host = registry.host();
    let bootstrap = fixtures().bootstrap_arm64.display().to_string();
    let tag = format!("{host}/single:v1");
    let output = run(&mut scratch.build(&[
        "--bootstrap",
        &bootstrap,
        "--base",
        &base_reference(),
        "--tag",
        &tag,
        "--json",
    ]));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["index"].is_null(), "{report}");
    let image = image(&report, "arm64");
    let digest = image["digest"].as_str().unwrap();
    assert_eq!(image["lambda_architecture"], "arm64");
    let expected = vec![format!("{host}/single@{digest}"), tag.clone()];
    assert_eq!(strings(&image["references"]), expected);
    assert_eq!(strings(&report["references"]), expected);
    assert_eq!(registry_digest(&registry, &tag), digest);
}

/// Every reference the report lists, with the digest it says that reference names: an image's
/// references name its digest, the index's the index digest.
fn listed_references(report: &Value) -> std::collections::BTreeMap<String, String> {
    let mut listed = std::collections::BTreeMap::new();
    let parts = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .chain(report["index"].as_object().map(|_| &report["index"]));
    for part in parts {
        for reference in strings(&part["references"]) {
            let digest = part["digest"].as_str().unwrap().to_owned();
            assert!(
                listed.insert(reference.clone(), digest).is_none(),
                "{reference} listed twice: {report}"
            );
        }
    }
    let mut top = strings(&report["references"]);
    top.sort();
    assert_eq!(top, listed.keys().cloned().collect::<Vec<_>>(), "{report}");
    listed
}

#[test]
fn build_json_lists_exactly_the_references_each_output_holds_for_one_and_two_architectures() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let host = registry.host();
    let fixtures = fixtures();
    let amd64 = fixtures.bootstrap_amd64.display().to_string();
    let arm64 = fixtures.bootstrap_arm64.display().to_string();
    for (run_number, bootstraps) in [vec![arm64.clone()], vec![amd64, arm64]]
        .into_iter()
        .enumerate()
    {
        let scratch = Scratch::new();
        let repository = format!("refs{run_number}");
        let layout = scratch.path("layout");
        let oci_archive = scratch.path("oci.tar");
        let docker_archive = scratch.path("docker.tar");
        let outputs = [
            format!("oci:{}:v1", layout.display()),
            format!("oci:{}", scratch.path("untagged").display()),
            format!("oci-archive:{}:v1", oci_archive.display()),
            format!("docker-archive:{}:fn:v1", docker_archive.display()),
        ];
        for (position, output) in outputs.iter().enumerate() {
            let mut args: Vec<String> = Vec::new();
            for bootstrap in &bootstraps {
                args.extend(["--bootstrap".into(), bootstrap.clone()]);
            }
            args.extend([
                "-q".into(),
                "--base".into(),
                base_reference(),
                "--output".into(),
                output.clone(),
                "--json".into(),
            ]);
            // The first build pushes too.
            if position == 0 {
                args.extend(["--tag".into(), format!("{host}/{repository}:v1")]);
            }
            let built = run(&mut scratch.build(&str_refs(&args)));
            let report: Value = serde_json::from_slice(&built.stdout).unwrap();
            let listed = listed_references(&report);

            // What the output holds, each name with the digest it names.
            let (prefix, held): (String, Vec<(String, String)>) =
                match output.split_once(':').unwrap().0 {
                    "oci" => {
                        let directory =
                            output.strip_prefix("oci:").unwrap().trim_end_matches(":v1");
                        let index = read_json(Path::new(directory).join("index.json"));
                        (format!("oci:{directory}:"), ref_names(&index))
                    }
                    "oci-archive" => {
                        let index = run_stdout(
                            Command::new("tar")
                                .arg("xOf")
                                .arg(&oci_archive)
                                .arg("index.json"),
                        );
                        (
                            format!("oci-archive:{}:", oci_archive.display()),
                            ref_names(&serde_json::from_str(&index).unwrap()),
                        )
                    }
                    _ => {
                        let manifest = run_stdout(
                            Command::new("tar")
                                .arg("xOf")
                                .arg(&docker_archive)
                                .arg("manifest.json"),
                        );
                        let manifest: Value = serde_json::from_str(&manifest).unwrap();
                        let mut held = Vec::new();
                        for image in manifest.as_array().unwrap() {
                            let config = image["Config"].as_str().unwrap();
                            let hex = config.rsplit('/').next().unwrap().trim_end_matches(".json");
                            for tag in strings(&image["RepoTags"]) {
                                held.push((tag, format!("sha256:{hex}")));
                            }
                        }
                        (
                            format!("docker-archive:{}:", docker_archive.display()),
                            held,
                        )
                    }
                };
            let mut held: Vec<(String, String)> = held
                .into_iter()
                .map(|(name, digest)| (format!("{prefix}{name}"), digest))
                .collect();
            held.sort();
            let in_output: Vec<(String, String)> = listed
                .iter()
                .filter(|(reference, _)| reference.starts_with(&prefix))
                .map(|(reference, digest)| (reference.clone(), digest.clone()))
                .collect();
            assert_eq!(in_output, held, "{output}: {report}");

            // The registry: every tag pushed, and each digest reference, is listed and names
            // what the registry serves.
            let pushed: Vec<(&String, &String)> = listed
                .iter()
                .filter(|(reference, _)| reference.starts_with(&host))
                .collect();
            if position == 0 {
                let mut tags: Vec<String> = pushed
                    .iter()
                    .filter_map(|(reference, _)| {
                        reference.strip_prefix(&format!("{host}/{repository}:"))
                    })
                    .map(str::to_owned)
                    .collect();
                tags.sort();
                assert_eq!(tags, registry.tags(&repository, None), "{report}");
                let by_digest = pushed.iter().filter(|(r, _)| r.contains('@')).count();
                let expected = bootstraps.len() + usize::from(bootstraps.len() > 1);
                assert_eq!(by_digest, expected, "{report}");
                for (reference, digest) in pushed {
                    assert_eq!(
                        &registry_digest(&registry, reference),
                        digest,
                        "{reference}"
                    );
                }
            } else {
                assert!(pushed.is_empty(), "{report}");
            }
        }
    }
}

/// Each `org.opencontainers.image.ref.name` of a layout's `index.json`, with the digest it names.
fn ref_names(index: &Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|descriptor| {
            let name = descriptor["annotations"][REF_NAME_ANNOTATION].as_str()?;
            Some((name.to_owned(), descriptor["digest"].as_str()?.to_owned()))
        })
        .collect()
}

#[test]
fn text_mode_stdout_is_only_the_report_and_the_index_advice_goes_to_stderr() {
    let scratch = Scratch::new();
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("oci:{}:v1", scratch.path("layout").display()),
    ]);
    let output = run(&mut scratch.build(&str_refs(&args)));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let stderr = stderr_of(&output);
    let firsts: Vec<&str> = stdout
        .lines()
        .map(|line| line.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(firsts, ["amd64", "arm64", "index", "base"], "{stdout}");
    assert!(
        stdout.contains("(Lambda --architectures x86_64)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("Lambda runs one architecture per function and rejects indexes"),
        "{stderr}"
    );

    // zip and check: stdout is the report alone too (findings and advice on stderr).
    let zip = scratch.path("function.zip");
    let bootstrap = fixtures().bootstrap_amd64.display().to_string();
    let zipped = run(lambda_image().args([
        "zip",
        "--bootstrap",
        &bootstrap,
        "-o",
        zip.to_str().unwrap(),
    ]));
    let stdout = String::from_utf8(zipped.stdout).unwrap();
    for line in stdout.lines() {
        let label = line.split_whitespace().next().unwrap_or("");
        assert!(
            ["zip", "sha256", "size", "architecture", "deploy", "upload"].contains(&label),
            "not a report line on stdout: {line}\n{stdout}"
        );
    }
    let checked = run(lambda_image().args(["check", "--bootstrap", &bootstrap]));
    let stdout = String::from_utf8(checked.stdout).unwrap();
    assert!(
        stdout.lines().all(|line| line.starts_with("info[")
            || line.starts_with("warning[")
            || line.starts_with("  hint:")),
        "{stdout}"
    );
}

#[test]
fn version_names_the_commit_and_the_features() {
    let output = run(lambda_image().arg("--version"));
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text.trim_end();
    let rest = line
        .strip_prefix(&format!(
            "lambda-image {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{line}"));
    let (commit, features) = rest
        .strip_suffix(')')
        .and_then(|rest| rest.split_once(", features: "))
        .unwrap_or_else(|| panic!("{line}"));
    let expected_features = match (cfg!(feature = "deploy"), cfg!(feature = "ecr")) {
        (true, _) => "deploy,ecr",
        (false, true) => "ecr",
        (false, false) => "none",
    };
    assert_eq!(features, expected_features, "{line}");
    // Built from this checkout: its HEAD; outside a git checkout, unknown.
    let head = run_unchecked(
        Command::new("git")
            .args(["rev-parse", "--show-toplevel", "--short=7", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    let head = String::from_utf8(head.stdout).unwrap();
    let mut head = head.lines();
    let here = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
    match (head.next(), head.next()) {
        (Some(top), Some(head)) if std::fs::canonicalize(top).unwrap() == here => {
            let commit = commit.strip_suffix("-dirty").unwrap_or(commit);
            assert_eq!(commit, head, "{line}");
        }
        _ => assert!(
            commit == "unknown" || std::path::Path::new(".cargo_vcs_info.json").exists(),
            "{line}"
        ),
    }
    // Every command says the same, naming the program (not `lambda-image-build`).
    for command in [&["build"][..], &["base", "pull"], &["zip"], &["check"]] {
        let mut args = command.to_vec();
        args.push("--version");
        let output = run(lambda_image().args(&args));
        assert_eq!(String::from_utf8(output.stdout).unwrap(), text, "{args:?}");
    }
}

#[test]
fn bash_completion_loads_and_completes_commands_flags_and_check_names() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let script = dir.path().join("lambda-image.bash");
    let completions = run(lambda_image().args(["completions", "bash"]));
    std::fs::write(&script, &completions.stdout).unwrap();
    // Loads it, finds the function `complete` registered, and asks it as bash's programmable
    // completion would for each line (the cursor at the end).
    let complete = |line: &str| -> Vec<String> {
        let program = r#"
            source "$1" || exit 1
            function=$(complete -p lambda-image | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
            [ -n "$function" ] || { echo "no completion function registered" >&2; exit 1; }
            read -r -a COMP_WORDS <<< "$2"
            case "$2" in *" ") COMP_WORDS+=("") ;; esac
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMP_LINE="$2"
            COMP_POINT=${#COMP_LINE}
            "$function" lambda-image "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}"
        "#;
        let output = run(Command::new("bash")
            .args(["--norc", "--noprofile", "-c", program, "bash"])
            .arg(&script)
            .arg(line));
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(complete("lambda-image bu"), ["build"]);
    assert_eq!(complete("lambda-image build --no-a"), ["--no-arch-tags"]);
    assert_eq!(complete("lambda-image base pu"), ["pull"]);
    // Every flag with a closed set of values completes to that set (not to file names).
    for (line, expected) in [
        (
            "lambda-image zip --skip-checks ",
            &["architecture", "glibc", "interpreter"][..],
        ),
        (
            "lambda-image build --skip-checks ",
            &["architecture", "glibc", "interpreter", "libraries"],
        ),
        (
            "lambda-image check --skip-checks ",
            &["architecture", "glibc", "interpreter", "libraries"],
        ),
        ("lambda-image base pull --arch ", &["amd64", "arm64"]),
        ("lambda-image build --format ", &["docker", "oci"]),
        (
            "lambda-image zip --runtime ",
            &["provided.al2", "provided.al2023"],
        ),
        (
            "lambda-image completions ",
            &["bash", "elvish", "fish", "powershell", "zsh"],
        ),
    ] {
        // (A positional is offered beside the flags.)
        let mut names: Vec<String> = complete(line)
            .into_iter()
            .filter(|name| !name.starts_with('-'))
            .collect();
        names.sort();
        assert_eq!(names, expected, "{line}");
    }
    // Also where bash runs in POSIX mode (when /bin/sh is bash): a function named after a
    // hyphenated program, `_lambda-image`, is not a valid identifier there and the script would
    // not load (clap-rs/clap#6468).
    let posix = run_unchecked(
        Command::new("bash")
            .args([
                "--posix",
                "--norc",
                "--noprofile",
                "-c",
                "source \"$1\" && complete -p lambda-image",
                "bash",
            ])
            .arg(&script),
    );
    assert!(posix.status.success(), "{}", stderr_of(&posix));

    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let output = run(lambda_image().args(["completions", shell]));
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.contains("lambda-image") && text.contains("no-arch-tags"),
            "{shell}:\n{text}"
        );
    }
    let refused = run_unchecked(lambda_image().args(["completions", "tcsh"]));
    assert_usage_error(&refused, &["tcsh", "bash"]);
}

/// `page` rendered as text by groff (with the man macros), failing on any groff warning.
fn render_man(page: &Path) -> String {
    let output = run(Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(page));
    assert_eq!(
        stderr_of(&output),
        "",
        "groff warns about {}",
        page.display()
    );
    let output = run(Command::new("groff").args(["-man", "-Tutf8"]).arg(page));
    // Overstrike (bold, underline) removed, as `col -b` does, and hyphens made plain.
    let text = String::from_utf8(output.stdout).unwrap();
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain.replace(['\u{2010}', '\u{2212}'], "-")
}

#[test]
fn man_prints_the_page_and_writes_one_page_per_command() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let printed = run(lambda_image().arg("man"));
    let main_page = dir.path().join("printed.1");
    std::fs::write(&main_page, &printed.stdout).unwrap();
    let text = render_man(&main_page);
    assert!(text.contains("lambda-image"), "{text}");
    assert!(text.contains("lambda-image-build(1)"), "{text}");
    // The footer is the program and its version, whole; the date field is empty.
    let version = env!("CARGO_PKG_VERSION");
    let footer = text
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap();
    let fields: Vec<&str> = footer.split_whitespace().collect();
    assert_eq!(
        fields,
        ["lambda-image", version, "lambda-image(1)"],
        "{footer}"
    );
    // EXIT STATUS: every row of the README's table, code and kind; then ENVIRONMENT.
    let exit_status = text
        .split("\nEXIT STATUS\n")
        .nth(1)
        .expect("an EXIT STATUS section")
        .split("\nENVIRONMENT\n")
        .collect::<Vec<_>>();
    assert_eq!(exit_status.len(), 2, "{text}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let rows: Vec<(String, String)> = readme
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
            let code: u8 = cells.next()?.parse().ok()?;
            let kind = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((code.to_string(), kind.to_owned()))
        })
        .collect();
    // 1 to 11, then interrupted by SIGINT (130) and by SIGTERM (143).
    assert_eq!(rows.len(), 13, "{rows:?}");
    for (code, kind) in &rows {
        let entry = format!("{code} ({kind})");
        assert!(
            exit_status[0].lines().any(|line| line.trim() == entry),
            "no `{entry}` in EXIT STATUS:\n{}",
            exit_status[0]
        );
    }
    for variable in [
        "LAMBDA_IMAGE_BASE_MIRROR",
        "SOURCE_DATE_EPOCH",
        "XDG_CACHE_HOME",
        "DOCKER_CONFIG",
        "REGISTRY_AUTH_FILE",
        "HTTPS_PROXY",
        "NO_PROXY",
        "SSL_CERT_FILE",
        "AWS_ACCESS_KEY_ID",
    ] {
        assert!(
            exit_status[1].contains(variable),
            "{variable}:\n{}",
            exit_status[1]
        );
    }

    let pages = dir.path().join("pages");
    std::fs::create_dir(&pages).unwrap();
    let written = run(lambda_image().args(["man", "--dir", pages.to_str().unwrap()]));
    let mut names = file_names(&pages);
    names.sort();
    let mut expected: Vec<String> = [
        "lambda-image",
        "lambda-image-build",
        "lambda-image-base",
        "lambda-image-base-list",
        "lambda-image-base-pull",
        "lambda-image-base-verify",
        "lambda-image-check",
        "lambda-image-zip",
        "lambda-image-deploy",
        "lambda-image-invoke",
        "lambda-image-serve",
        "lambda-image-completions",
        "lambda-image-man",
    ]
    .iter()
    .map(|name| format!("{name}.1"))
    .collect();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(
        String::from_utf8(written.stdout).unwrap().lines().count(),
        expected.len()
    );
    assert_eq!(
        std::fs::read(pages.join("lambda-image.1")).unwrap(),
        printed.stdout
    );

    let build = render_man(&pages.join("lambda-image-build.1"));
    for flag in [
        "--bootstrap",
        "--base",
        "--tag",
        "--output",
        "--no-arch-tags",
        "--skip-checks",
        "--json",
    ] {
        assert!(
            build.contains(flag),
            "the build page lacks {flag}:\n{build}"
        );
    }
    assert!(build.contains("lambda-image build"), "{build}");
    // man(1) itself reads it.
    let man = run(Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(pages.join("lambda-image-base-pull.1"))
        .env("MANWIDTH", "100"));
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(text.contains("--output"), "{text}");

    let missing = run_unchecked(lambda_image().args([
        "man",
        "--dir",
        dir.path().join("absent").to_str().unwrap(),
    ]));
    assert_eq!(missing.status.code(), Some(5), "{}", stderr_of(&missing));
}

#[test]
fn each_command_takes_the_check_names_it_runs_and_refuses_others() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let bootstrap = fixtures().bootstrap_amd64.display().to_string();
    let layout = format!("oci:{}:v1", dir.path().join("layout").display());
    let zip = dir.path().join("f.zip").display().to_string();
    let base = base_reference();
    let commands: [Vec<&str>; 3] = [
        vec![
            "build",
            "--bootstrap",
            &bootstrap,
            "--base",
            &base,
            "--output",
            &layout,
        ],
        vec!["zip", "--bootstrap", &bootstrap, "-o", &zip],
        vec!["check", "--bootstrap", &bootstrap, "--base", &base],
    ];
    let all = ["architecture", "glibc", "interpreter", "libraries"];
    for command in &commands {
        // build and check --bootstrap run every check (libraries when the base's files are
        // here); zip all but libraries: its runtime's files are never on this machine.
        let runs: &[&str] = if command[0] == "zip" { &all[..3] } else { &all };
        for name in runs {
            let mut args = command.clone();
            args.extend(["--skip-checks", name, "--json"]);
            let output = run(lambda_image().args(&args));
            let report: Value = serde_json::from_slice(&output.stdout).unwrap();
            let checks = if command[0] == "check" {
                &report["bootstraps"]
            } else {
                &report["checks"]
            };
            let skipped: Vec<&Value> = checks
                .as_array()
                .unwrap()
                .iter()
                .filter(|finding| finding["level"] == "skipped")
                .collect();
            // A static bootstrap needs no libraries: that check has nothing to skip.
            if *name != "libraries" {
                assert_eq!(skipped.len(), 1, "{command:?} {name}: {checks}");
                assert_eq!(skipped[0]["check"], *name);
            }
            let _ = std::fs::remove_dir_all(dir.path().join("layout"));
        }
        // A name the command does not run is a usage error listing the ones it does, in
        // --help too.
        for refused_name in ["entrypoint", "libraries"]
            .into_iter()
            .filter(|name| !runs.contains(name))
        {
            let mut args = command.clone();
            args.extend(["--skip-checks", refused_name]);
            let refused = run_unchecked(lambda_image().args(&args));
            let possible = format!("[possible values: {}]", runs.join(", "));
            assert_usage_error(&refused, &[refused_name, &possible]);
        }
        let help = run(lambda_image().args([command[0], "--help"]));
        let help = String::from_utf8(help.stdout).unwrap();
        assert!(
            help.contains(&format!("[possible values: {}]", runs.join(", "))),
            "{help}"
        );
    }

    // With a dynamically linked bootstrap and a local base, build and check --bootstrap run
    // the libraries check (so skipping it is reported); zip never does.
    let dynamic_built = dynamic_bootstrap(dir.path());
    let dynamic_built = dynamic_built.display().to_string();
    let libraries = |report: &Value, key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["check"] == "libraries")
            .map(|finding| finding["level"].as_str().unwrap().to_owned())
            .collect()
    };
    for (command, key) in [("build", "checks"), ("check", "bootstraps")] {
        let mut args = vec![command, "--bootstrap", &dynamic_built, "--base", &base];
        if command == "build" {
            args.extend(["-q", "--output", &layout]);
        }
        // The stand-in base has no dynamic loader: that check is skipped here too.
        args.extend(["--skip-checks", "libraries,interpreter", "--json"]);
        let (output, report) = lambda_image_json(&args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        assert_eq!(libraries(&report, key), ["skipped"], "{report}");
        let _ = std::fs::remove_dir_all(dir.path().join("layout"));
    }
    let (output, report) =
        lambda_image_json(&["zip", "--bootstrap", &dynamic_built, "-o", &zip, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert!(libraries(&report, "checks").is_empty(), "{report}");

    // zip runs the interpreter check (a dynamically linked bootstrap's program interpreter
    // against the runtime's): its finding is there, or reported skipped.
    let dynamic = dir.path().join("bootstrap");
    std::fs::copy("/bin/true", &dynamic).unwrap();
    let dynamic = dynamic.display().to_string();
    for (skip, level) in [(false, "info"), (true, "skipped")] {
        let mut args = vec!["zip", "--bootstrap", &dynamic, "-o", &zip, "--json"];
        if skip {
            args.extend(["--skip-checks", "interpreter"]);
        }
        let (output, report) = lambda_image_json(&args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        let interpreter: Vec<&Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|finding| finding["check"] == "interpreter")
            .collect();
        assert_eq!(interpreter.len(), 1, "{report}");
        assert_eq!(interpreter[0]["level"], level, "{report}");
    }

    // check IMAGE alone runs no bootstrap check.
    build_layout(&bootstrap, &layout);
    let refused = run_unchecked(lambda_image().args(["check", &layout, "--skip-checks", "glibc"]));
    assert_usage_error(&refused, &["--skip-checks glibc", "--bootstrap"]);
    // invoke and serve have no skippable check (a bootstrap for another architecture is always
    // refused), so no such flag.
    for command in ["invoke", "serve"] {
        let refused = run_unchecked(lambda_image().args([
            command,
            "--bootstrap",
            &bootstrap,
            "--skip-checks",
            "glibc",
        ]));
        assert_usage_error(&refused, &["--skip-checks"]);
    }
}

fn build_layout(bootstrap: &str, layout: &str) {
    run(lambda_image().args([
        "build",
        "-q",
        "--bootstrap",
        bootstrap,
        "--base",
        &base_reference(),
        "--output",
        layout,
    ]));
}

#[test]
fn check_of_a_docker_archive_shows_no_manifest_media_type() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let archive = dir.path().join("docker.tar");
    let layout = fixtures().base_layout.display().to_string();
    skopeo(&[
        "copy",
        &format!("oci:{layout}:{BASE_TAG_AMD64}"),
        &format!("docker-archive:{}:fn:v1", archive.display()),
    ]);
    let reference = format!("docker-archive:{}", archive.display());
    let (_, report) = lambda_image_json(&["check", "--json", &reference]);
    let checked = &report["image"]["images"][0];
    assert_eq!(checked["architecture"], "amd64");
    assert!(checked["media_type"].is_null(), "{checked}");
    assert!(checked["digest"].is_null(), "{checked}");
    let manifest = report["image"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["check"] == "manifest")
        .unwrap();
    let message = manifest["message"].as_str().unwrap();
    assert!(message.contains("no manifest"), "{message}");
    assert!(!message.contains("application/vnd"), "{message}");

    let text = run_unchecked(lambda_image().args(["check", &reference]));
    let stdout = String::from_utf8(text.stdout).unwrap();
    assert!(!stdout.contains("application/vnd.oci"), "{stdout}");
    assert!(stdout.contains("docker-archive (no manifest)"), "{stdout}");

    // An OCI source still shows the media type it has.
    let (_, report) =
        lambda_image_json(&["check", "--json", &format!("oci:{layout}:{BASE_TAG_AMD64}")]);
    assert_eq!(
        report["image"]["images"][0]["media_type"],
        MEDIA_TYPE_MANIFEST
    );
}

#[test]
fn check_of_a_two_image_docker_archive_names_each_image_by_its_own_id() {
    let scratch = Scratch::new();
    let archive = scratch.path("da.tar");
    let mut args = both_bootstrap_args();
    args.extend([
        "-q".into(),
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("docker-archive:{}:fn:v1", archive.display()),
    ]);
    run(&mut scratch.build(&str_refs(&args)));
    // Each image's ID, as the archive's manifest.json names its config.
    let manifest = run_stdout(
        Command::new("tar")
            .arg("xOf")
            .arg(&archive)
            .arg("manifest.json"),
    );
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let id_of = |tag: &str| {
        let image = manifest
            .as_array()
            .unwrap()
            .iter()
            .find(|image| strings(&image["RepoTags"]).contains(&tag.to_owned()))
            .unwrap_or_else(|| panic!("no {tag} in {manifest}"));
        let config = image["Config"].as_str().unwrap();
        format!(
            "sha256:{}",
            config.rsplit('/').next().unwrap().trim_end_matches(".json")
        )
    };
    let reference = format!("docker-archive:{}", archive.display());
    let (output, report) = lambda_image_json(&["check", "--json", &reference]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let checked = &report["image"];
    // No one digest names two images without an index.
    assert!(checked["digest"].is_null(), "{checked}");
    assert_eq!(checked["index"], false, "{checked}");
    let text = run(lambda_image().args(["check", &reference]));
    let text = String::from_utf8(text.stdout).unwrap();
    let header = text.lines().next().unwrap();
    assert!(!header.contains("sha256:"), "{header}");
    assert!(header.contains("2 images"), "{header}");
    for architecture in ARCHES {
        let id = id_of(&format!("fn:v1-{architecture}"));
        let image = image(checked, architecture);
        assert_eq!(image["image_id"], id, "{image}");
        assert!(image["digest"].is_null(), "{image}");
        let line = text
            .lines()
            .find(|line| line.starts_with(architecture))
            .unwrap_or_else(|| panic!("no {architecture} line:\n{text}"));
        assert!(line.contains(&format!("{id} (image ID)")), "{line}");
    }
    assert_ne!(id_of("fn:v1-amd64"), id_of("fn:v1-arm64"));

    // One image of it, selected: the reference names that image, so its ID is the digest.
    let (_, one) = lambda_image_json(&["check", "--json", &format!("{reference}:fn:v1-arm64")]);
    assert_eq!(one["image"]["digest"], id_of("fn:v1-arm64"), "{one}");
}

#[test]
fn a_mirror_naming_a_base_repository_and_a_malformed_insecure_registry_are_usage_errors() {
    // The repository itself rather than the prefix public.ecr.aws/lambda stands for.
    for json in [false, true] {
        let mut args = vec!["base", "list"];
        if json {
            args.push("--json");
        }
        let output = run_unchecked(lambda_image().args(&args).env(
            "LAMBDA_IMAGE_BASE_MIRROR",
            "127.0.0.1:5301/ecr-public/lambda/provided",
        ));
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("drop `/provided`"), "{stderr}");
        assert!(
            stderr.contains("`127.0.0.1:5301/ecr-public/lambda`"),
            "{stderr}"
        );
        assert!(!String::from_utf8_lossy(&output.stdout).contains("provided/provided"));
    }
    // --insecure-registry is HOST[:PORT], on every command that takes it.
    for bad in ["not a host!!", "https://h.example", "h.example/path"] {
        for args in [
            &["build", "--bootstrap", "b", "-o", "oci:x"][..],
            &["check", "x:v1"],
            &["base", "pull", "provided.al2023"],
        ] {
            let output =
                run_unchecked(lambda_image().args(args).args(["--insecure-registry", bad]));
            let stderr = stderr_of(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?} {bad}: {stderr}");
            assert!(stderr.contains("expected HOST[:PORT]"), "{stderr}");
        }
    }
}
