//! Files added beside the bootstrap, and the image's metadata.
//!
//! - Included programs (ELF executables, `#!` scripts) that lost their execute bit on the way, as
//!   CI artifacts and zips made on Windows lose it, get a `warning[execute-bit]` in `build` and
//!   `zip` (stderr and `--json`); shared libraries and data files do not.
//! - A `.zip` keeps an absolute link into `/opt` (a layer) or `/tmp` as a zip symlink entry, with
//!   an `info[runtime-link]` note; links to the build machine stay refused.
//! - An arm64 image's config carries the same `variant` as its index descriptor, and manifests
//!   name their base (`org.opencontainers.image.base.name`) beside `base.digest`.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::common::scratch;
use crate::support::builds::str_refs;
use crate::support::lambda_image_json;
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::*;

const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// The findings of a `--json` report with this check name.
fn findings<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {report}"))
        .iter()
        .filter(|finding| finding["check"] == check)
        .collect()
}

/// Compiles C `source` with gcc and `flags` into `output`.
fn gcc(source: &str, flags: &[&str], output: &Path) {
    let file = output.with_extension("c");
    fs::write(&file, source).unwrap();
    run(Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(output)
        .arg(&file));
    fs::remove_file(file).unwrap();
}

/// A build output directory as a CI job downloads it: an ELF helper built with gcc, a `#!`
/// script, a shared library and a config file, all made executable where they should be, packed
/// into a zip the way actions/upload-artifact and Windows zip tools write it (MS-DOS "made by",
/// no Unix modes), and extracted again with Info-ZIP `unzip`, which gives every file 0644.
/// Returns the extracted directory.
fn downloaded_artifact(dir: &Path) -> PathBuf {
    let built = dir.join("built");
    fs::create_dir_all(built.join("bin")).unwrap();
    fs::create_dir_all(built.join("lib")).unwrap();
    gcc(
        "#include <stdio.h>\nint main(void) { puts(\"helper\"); return 0; }\n",
        &["-static", "-O1"],
        &built.join("bin/helper"),
    );
    gcc(
        "int helper_version(void) { return 3; }\n",
        &["-shared", "-fPIC", "-O1"],
        &built.join("lib/libhelper.so"),
    );
    fs::write(built.join("bin/run.sh"), "#!/bin/sh\nexec ./bin/helper\n").unwrap();
    fs::write(built.join("config.json"), "{\"level\":\"debug\"}\n").unwrap();
    for executable in ["bin/helper", "bin/run.sh"] {
        fs::set_permissions(built.join(executable), fs::Permissions::from_mode(0o755)).unwrap();
    }

    let archive = dir.join("artifact.zip");
    let script = r#"
import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(folder, name)
            info = zipfile.ZipInfo(os.path.relpath(path, root), (2024, 1, 1, 0, 0, 0))
            info.create_system = 0  # MS-DOS: no Unix modes, as Windows tools write it
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read())
"#;
    run(Command::new("python3")
        .args(["-c", script])
        .arg(&built)
        .arg(&archive));
    let extracted = dir.join("artifact");
    run(Command::new("unzip")
        .arg("-q")
        .arg(&archive)
        .arg("-d")
        .arg(&extracted));
    for file in ["bin/helper", "bin/run.sh"] {
        let mode = fs::metadata(extracted.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0, "{file} kept an execute bit: {mode:o}");
    }
    extracted
}

/// Asserts `report` warns about exactly the helper and the script of [`downloaded_artifact`],
/// each named by its source path and its path where the function sees it, and `stderr` too.
fn assert_execute_bit_warnings(report: &Value, stderr: &str, artifact: &Path, container: &str) {
    let warnings = findings(report, "execute-bit");
    let messages: Vec<&str> = warnings
        .iter()
        .map(|finding| finding["message"].as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{messages:#?}");
    for (file, kind) in [
        ("bin/helper", "an ELF executable"),
        ("bin/run.sh", "a script (`#!/bin/sh`)"),
    ] {
        let source = artifact.join(file).display().to_string();
        let wanted = format!("{source} (at /var/task/app/{file} in the {container}) is {kind}");
        let finding = warnings
            .iter()
            .find(|finding| finding["message"].as_str().unwrap().starts_with(&wanted))
            .unwrap_or_else(|| panic!("no warning starting {wanted:?} in {messages:#?}"));
        assert_eq!(finding["level"], "warning");
        assert!(
            finding["message"]
                .as_str()
                .unwrap()
                .contains("\"permission denied\""),
            "{finding}"
        );
        assert!(
            finding["hint"]
                .as_str()
                .unwrap()
                .contains(&format!("chmod +x {source}")),
            "{finding}"
        );
        assert!(
            stderr.contains(&format!("warning[execute-bit]: {wanted}")),
            "{stderr}"
        );
    }
    for quiet in ["libhelper.so", "config.json"] {
        assert!(
            !messages.iter().any(|message| message.contains(quiet)),
            "{quiet} is not a program Lambda execs: {messages:#?}"
        );
    }
}

// aws/aws-lambda-go#13 and awsdocs/aws-lambda-developer-guide#235: a zip made on Windows holds
// the executable without its mode, and the function fails with "fork/exec ...: permission
// denied"; actions/download-artifact#9: CI artifacts come back without execute bits.
#[test]
fn zip_warns_about_included_programs_that_lost_their_execute_bit() {
    let dir = scratch();
    let artifact = downloaded_artifact(dir.path());
    let output = dir.path().join("function.zip");
    let (ran, report) = lambda_image_json(&[
        "zip",
        "--json",
        "--bootstrap",
        fixtures().bootstrap_amd64.to_str().unwrap(),
        "--include",
        &format!("{}:/var/task/app", artifact.display()),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(ran.status.success(), "{}", stderr_of(&ran));
    assert_execute_bit_warnings(&report, &stderr_of(&ran), &artifact, "package");

    // What the warning is about: the modes in the zip are the ones Lambda will extract.
    let listing = run_stdout(Command::new("zipinfo").arg(&output));
    for file in ["app/bin/helper", "app/bin/run.sh"] {
        let line = listing
            .lines()
            .find(|line| line.ends_with(&format!(" {file}")))
            .unwrap_or_else(|| panic!("{file} not in\n{listing}"));
        assert!(line.starts_with("-rw-r--r--"), "{line}");
    }

    // Once fixed on disk, nothing to say.
    for file in ["bin/helper", "bin/run.sh"] {
        fs::set_permissions(artifact.join(file), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let (ran, report) = lambda_image_json(&[
        "zip",
        "--json",
        "--bootstrap",
        fixtures().bootstrap_amd64.to_str().unwrap(),
        "--include",
        &format!("{}:/var/task/app", artifact.display()),
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(ran.status.success(), "{}", stderr_of(&ran));
    assert!(findings(&report, "execute-bit").is_empty(), "{report}");
    assert!(
        !stderr_of(&ran).contains("execute-bit"),
        "{}",
        stderr_of(&ran)
    );
}

#[test]
fn build_warns_about_included_programs_that_lost_their_execute_bit() {
    let dir = scratch();
    let artifact = downloaded_artifact(dir.path());
    let output = format!("oci:{}:v1", dir.path().join("out").display());
    let (ran, report) = lambda_image_json(&[
        "build",
        "--json",
        "--bootstrap",
        fixtures().bootstrap_amd64.to_str().unwrap(),
        "--base",
        &base_reference(),
        "--include",
        &format!("{}:/var/task/app", artifact.display()),
        "--output",
        &output,
    ]);
    assert!(ran.status.success(), "{}", stderr_of(&ran));
    assert_execute_bit_warnings(&report, &stderr_of(&ran), &artifact, "image");
}

/// Lists a zip's entries with Python's zipfile: `name<TAB>octal Unix mode<TAB>content` per line
/// (content only for links: their target).
fn zip_entries(zip: &Path) -> String {
    let script = r#"
import stat, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        mode = info.external_attr >> 16
        target = z.read(info).decode() if stat.S_ISLNK(mode) else ""
        print(f"{info.filename}\t{mode:o}\t{target}")
"#;
    run_stdout(Command::new("python3").args(["-c", script]).arg(zip))
}

// aws/aws-sam-cli#4364: a function links node_modules to /opt/nodejs/node_modules, a layer's
// directory, and packaging follows the link on the build machine and fails; the link works on
// Lambda, which extracts zip links as links (aws/aws-sam-cli#878, serverless/serverless#3215).
#[test]
fn zip_keeps_links_into_opt_and_tmp_with_a_note() {
    let dir = scratch();
    let app = dir.path().join("app");
    fs::create_dir_all(app.join("lib")).unwrap();
    fs::write(app.join("lib/libx.so.1"), "library").unwrap();
    symlink("libx.so.1", app.join("lib/libx.so")).unwrap();
    symlink("/opt/nodejs/node_modules", app.join("node_modules")).unwrap();
    symlink("/tmp/model-cache", app.join("cache")).unwrap();
    let output = dir.path().join("function.zip");
    let (ran, report) = lambda_image_json(&[
        "zip",
        "--json",
        "--bootstrap",
        fixtures().bootstrap_amd64.to_str().unwrap(),
        "--include",
        &format!("{}:/var/task/", app.display()),
        "-o",
        output.to_str().unwrap(),
    ]);
    let stderr = stderr_of(&ran);
    assert!(ran.status.success(), "{stderr}");

    let notes = findings(&report, "runtime-link");
    assert_eq!(notes.len(), 2, "{report}");
    for (link, target) in [
        ("/var/task/node_modules", "/opt/nodejs/node_modules"),
        ("/var/task/cache", "/tmp/model-cache"),
    ] {
        let wanted = format!("the symbolic link {link} -> {target} leads into");
        let note = notes
            .iter()
            .find(|note| note["message"].as_str().unwrap().starts_with(&wanted))
            .unwrap_or_else(|| panic!("no note {wanted:?} in {report}"));
        assert_eq!(note["level"], "info");
        assert!(
            note["message"]
                .as_str()
                .unwrap()
                .contains("cannot be resolved when the zip is made"),
            "{note}"
        );
        assert!(
            stderr.contains(&format!("info[runtime-link]: {wanted}")),
            "{stderr}"
        );
    }

    // Python's zipfile: each link is a symlink entry (S_IFLNK) whose content is the target.
    let entries = zip_entries(&output);
    for line in [
        "node_modules\t120777\t/opt/nodejs/node_modules",
        "cache\t120777\t/tmp/model-cache",
        "lib/libx.so\t120777\tlibx.so.1",
        "lib/libx.so.1\t100644\t",
    ] {
        assert!(
            entries.lines().any(|entry| entry == line),
            "{line:?} not in\n{entries}"
        );
    }
    // zipinfo (unzip -Z) shows links, and unzip extracts them as links.
    let listing = run_stdout(Command::new("unzip").arg("-Z").arg(&output));
    assert!(
        listing
            .lines()
            .any(|line| line.starts_with("lrwxrwxrwx") && line.ends_with(" node_modules")),
        "{listing}"
    );
    let extracted = dir.path().join("extracted");
    run(Command::new("unzip")
        .arg("-q")
        .arg(&output)
        .arg("-d")
        .arg(&extracted));
    for (link, target) in [
        ("node_modules", "/opt/nodejs/node_modules"),
        ("cache", "/tmp/model-cache"),
        ("lib/libx.so", "libx.so.1"),
    ] {
        assert!(
            fs::symlink_metadata(extracted.join(link))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::read_link(extracted.join(link)).unwrap(),
            Path::new(target)
        );
    }
}

#[test]
fn zip_still_refuses_links_to_the_build_machine() {
    let dir = scratch();
    let cases = [
        // An absolute path on the build machine. (Not the scratch directory: a checkout under
        // /tmp puts it under /tmp, where a link is a runtime link, kept with a note.)
        "/home/developer/.aws/credentials".to_owned(),
        "/usr/lib/x86_64-linux-gnu/libz.so.1".to_owned(),
        "../../etc/passwd".to_owned(),
        // Climbs out of /opt again.
        "/opt/../etc/passwd".to_owned(),
        // /opt reached by a relative path: refused, the message says to write it absolute.
        "../../../opt/x".to_owned(),
    ];
    for target in cases {
        let app = dir.path().join("app");
        let _ = fs::remove_dir_all(&app);
        fs::create_dir_all(&app).unwrap();
        symlink(&target, app.join("link")).unwrap();
        let output = dir.path().join("function.zip");
        let ran = run_unchecked(
            lambda_image()
                .args(["zip", "--bootstrap"])
                .arg(&fixtures().bootstrap_amd64)
                .arg("--include")
                .arg(format!("{}:/var/task/", app.display()))
                .arg("-o")
                .arg(&output),
        );
        let stderr = stderr_of(&ran);
        assert_eq!(ran.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "/var/task/link -> {target} leads outside /var/task"
            )),
            "{target}: {stderr}"
        );
        assert!(stderr.contains("under /opt"), "{stderr}");
        assert!(!output.exists(), "{target}: a zip was written");
    }
}

/// The entry tagged `tag` in a layout's `index.json`, and the manifest and config it names.
fn tagged_image(layout: &Path, tag: &str) -> (Value, Value, Value) {
    let entry = layout_descriptor(layout, tag).unwrap_or_else(|| panic!("no tag {tag}"));
    let manifest = read_blob_json(layout, entry["digest"].as_str().unwrap());
    let config = read_blob_json(layout, manifest["config"]["digest"].as_str().unwrap());
    (entry, manifest, config)
}

/// An arm64 base made with umoci, as users make their own bases: its config has no `variant`.
fn umoci_arm64_base(dir: &Path) -> PathBuf {
    let layout = dir.join("umoci-base");
    let image = format!("{}:base", layout.display());
    umoci(&["init", "--layout", layout.to_str().unwrap()]);
    umoci(&["new", "--image", &image]);
    umoci(&[
        "config",
        "--image",
        &image,
        "--architecture",
        "arm64",
        "--os",
        "linux",
        "--config.entrypoint",
        "/var/runtime/bootstrap",
    ]);
    let (entry, _, config) = tagged_image(&layout, "base");
    assert_eq!(config["architecture"], "arm64", "{config}");
    assert!(config.get("variant").is_none(), "{config}");
    assert!(
        entry
            .get("platform")
            .is_none_or(|p| p.get("variant").is_none())
    );
    layout
}

// docker-library/official-images#16859: the platform in an image index and in the image's
// config must match; an arm64 index entry says `variant: v8`, so the config must say it too.
#[test]
fn an_arm64_config_has_the_variant_its_index_descriptor_has() {
    let dir = scratch();
    let base = umoci_arm64_base(dir.path());
    let out = dir.path().join("out");
    let (ran, _) = lambda_image_json(&[
        "build",
        "--json",
        "--bootstrap",
        fixtures().bootstrap_arm64.to_str().unwrap(),
        "--base",
        &format!("oci:{}:base", base.display()),
        "--output",
        &format!("oci:{}:v1", out.display()),
    ]);
    assert!(ran.status.success(), "{}", stderr_of(&ran));
    let (entry, manifest, config) = tagged_image(&out, "v1");
    assert_eq!(entry["platform"]["architecture"], "arm64", "{entry}");
    assert_eq!(entry["platform"]["variant"], "v8", "{entry}");
    assert_eq!(config["variant"], entry["platform"]["variant"], "{config}");
    // skopeo reads the same config.
    let image = format!("oci:{}:v1", out.display());
    let inspected: Value = serde_json::from_str(&skopeo(&["inspect", "--config", &image])).unwrap();
    assert_eq!(inspected["variant"], "v8", "{inspected}");

    // A base read from a local path has a digest but no registry name to record.
    let annotations = &manifest["annotations"];
    assert!(annotations[BASE_DIGEST].is_string(), "{manifest}");
    assert!(annotations.get(BASE_NAME).is_none(), "{manifest}");
}

#[test]
fn manifests_name_their_base_beside_its_digest() {
    let registry = TestRegistry::start(RegistryOptions::default());
    registry.skopeo_copy_to(&base_reference(), &format!("lambda/base:{BASE_TAG}"));
    let base = registry.reference(&format!("lambda/base:{BASE_TAG}"));
    let dir = scratch();
    let cache = dir.path().join("cache");
    let out = dir.path().join("online");
    let mut args = vec![
        "build".to_owned(),
        "--json".into(),
        "--cache-dir".into(),
        cache.display().to_string(),
        "--base".into(),
        // As a user may write it; recorded fully qualified, without the transport.
        format!("docker://{base}"),
        "--output".into(),
        format!("oci:{}:v1", out.display()),
    ];
    args.extend(both_bootstrap_args());
    let (ran, online) = lambda_image_json(&str_refs(&args));
    assert!(ran.status.success(), "{}", stderr_of(&ran));

    let index = read_blob_json(&out, online["index"]["digest"].as_str().unwrap());
    for architecture in ["amd64", "arm64"] {
        let digest = report_image_digest(&online, architecture);
        let manifest = read_blob_json(&out, &digest);
        assert_eq!(
            manifest["annotations"][BASE_NAME],
            base.as_str(),
            "{manifest}"
        );
        assert_eq!(
            manifest["annotations"][BASE_DIGEST],
            fixtures().base_manifests[architecture].as_str(),
            "{manifest}"
        );
        let config = read_blob_json(&out, manifest["config"]["digest"].as_str().unwrap());
        let descriptor = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["digest"] == digest.as_str())
            .unwrap();
        assert_eq!(
            config.get("variant"),
            descriptor["platform"].get("variant"),
            "{architecture}: {config} vs {descriptor}"
        );
    }

    // A kit of that base records its name, so an offline build from the kit names the same base
    // and comes out the same.
    let kit = dir.path().join("kit");
    run(lambda_image()
        .args(["base", "pull", &base, "-q", "--cache-dir"])
        .arg(&cache)
        .arg("--output")
        .arg(format!("oci:{}", kit.display())));
    let kit_entry = layout_descriptor(&kit, BASE_TAG).unwrap();
    assert_eq!(
        kit_entry["annotations"]["io.containerd.image.name"],
        base.as_str(),
        "{kit_entry}"
    );
    let offline_out = dir.path().join("offline");
    let mut args = vec![
        "build".to_owned(),
        "--json".into(),
        "--offline".into(),
        "--cache-dir".into(),
        dir.path().join("empty-cache").display().to_string(),
        "--base".into(),
        format!("oci:{}:{BASE_TAG}", kit.display()),
        "--output".into(),
        format!("oci:{}:v1", offline_out.display()),
    ];
    args.extend(both_bootstrap_args());
    let (ran, offline) = lambda_image_json(&str_refs(&args));
    assert!(ran.status.success(), "{}", stderr_of(&ran));
    let manifest = read_blob_json(&offline_out, &report_image_digest(&offline, "arm64"));
    assert_eq!(manifest["annotations"][BASE_NAME], base.as_str());
    assert_eq!(offline["index"]["digest"], online["index"]["digest"]);
}
