//! `lambda-image build` end to end, offline: the stand-in provided.al2023 base plus real amd64 and
//! arm64 bootstraps become images that real tools (umoci, skopeo) read, in every output format.
//! Also checks the layer and config rules Lambda depends on, and reproducibility.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::*;
use serde_json::{Value, json};

/// Runs `lambda-image build --json` with `args`, asserting success, and returns the report.
fn build(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let output = run(lambda_image()
        .arg("build")
        .arg("--json")
        .args(args)
        .envs(envs.iter().copied()));
    serde_json::from_slice(&output.stdout).expect("--json prints one JSON object")
}

fn build_two_arch_layout(output: &Path, tag: &str, extra: &[&str]) -> Value {
    let mut args: Vec<String> = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("oci:{}:{tag}", output.display()),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    build(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

/// The entries of a gzipped layer blob: (path, mode, uid, gid, uname, mtime, type).
fn layer_entries(blob: &Path) -> Vec<(String, u32, u64, u64, String, u64, char)> {
    let file = fs::File::open(blob).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            (
                String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
                header.mode().unwrap(),
                header.uid().unwrap(),
                header.gid().unwrap(),
                header.username().unwrap().unwrap_or_default().to_owned(),
                header.mtime().unwrap(),
                header.entry_type().as_byte() as char,
            )
        })
        .collect()
}

#[test]
fn two_architectures_into_an_oci_layout_read_by_umoci_and_skopeo() {
    let f = fixtures();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("layout");
    let report =
        build_two_arch_layout(&out, "v1", &["--env", "MODE=prod", "--env", "LANG=C.UTF-8"]);

    // The report names each architecture's manifest and the index, all present in index.json.
    let index_digest = report["index"]["digest"].as_str().unwrap();
    assert_eq!(
        layout_descriptor(&out, "v1").unwrap()["digest"],
        index_digest
    );
    for arch in ARCHES {
        let digest = report_image_digest(&report, arch);
        let entry = layout_descriptor(&out, &format!("v1-{arch}")).unwrap();
        assert_eq!(entry["digest"], digest.as_str());
        assert_eq!(entry["platform"]["architecture"], arch);
    }
    assert_eq!(report["base"]["digest"], f.base_digest.as_str());

    // skopeo reads the index, and copies everything to another layout.
    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:v1", out.display()),
    ]))
    .unwrap();
    assert_eq!(raw["mediaType"], MEDIA_TYPE_INDEX);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let copy = work.path().join("copy");
    skopeo(&[
        "copy",
        "--all",
        &format!("oci:{}:v1", out.display()),
        &format!("oci:{}:v1", copy.display()),
    ]);
    assert!(layout_descriptor(&copy, "v1").is_some());

    for (arch, bootstrap) in [("amd64", &f.bootstrap_amd64), ("arm64", &f.bootstrap_arm64)] {
        let manifest_digest = report_image_digest(&report, arch);
        let manifest = read_blob_json(&out, &manifest_digest);
        assert_eq!(
            manifest["mediaType"], MEDIA_TYPE_MANIFEST,
            "top-level mediaType is always set"
        );
        let layers = manifest["layers"].as_array().unwrap();
        let base_layers = &f.base_layer_digests[arch];
        assert_eq!(layers.len(), base_layers.len() + 1);

        // Base layer blobs are the base's, byte for byte, under the same descriptors.
        for (layer, base_digest) in layers.iter().zip(base_layers) {
            assert_eq!(layer["digest"], base_digest.as_str());
            assert_eq!(
                sha256_file(blob_path(&out, base_digest)),
                sha256_file(blob_path(&f.base_layout, base_digest))
            );
        }

        // Every diff_id is the sha256 of the decompressed layer.
        let config = read_blob_json(&out, manifest["config"]["digest"].as_str().unwrap());
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(diff_ids.len(), layers.len());
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            let blob = blob_path(&out, layer["digest"].as_str().unwrap());
            assert_eq!(
                diff_id.as_str().unwrap(),
                format!("sha256:{}", gunzip_sha256(&blob))
            );
            assert_eq!(
                format!("sha256:{}", sha256_file(&blob)),
                layer["digest"].as_str().unwrap()
            );
        }

        // The config keeps the base (unknown fields too) and sets Cmd; Env is merged in place.
        assert_eq!(config["architecture"], arch);
        assert_eq!(config[BASE_CONFIG_EXTRA_FIELD], base_config_extra_value());
        assert_eq!(config["config"]["Entrypoint"], json!(BASE_ENTRYPOINT));
        assert_eq!(config["config"]["WorkingDir"], BASE_WORKING_DIR);
        assert_eq!(config["config"]["Cmd"], json!(["bootstrap"]));
        let env: Vec<&str> = config["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut expected_env: Vec<&str> = BASE_ENV.to_vec();
        expected_env[0] = "LANG=C.UTF-8";
        expected_env.push("MODE=prod");
        assert_eq!(env, expected_env);
        assert_eq!(config["history"].as_array().unwrap().len(), layers.len());
        assert_eq!(config["created"], "1970-01-01T00:00:00Z");

        // The new layer: parents first, modes fixed, owned by root, mtime 0.
        let new_layer = blob_path(&out, layers.last().unwrap()["digest"].as_str().unwrap());
        assert_eq!(
            layer_entries(&new_layer),
            vec![
                ("var/".into(), 0o755, 0, 0, "root".into(), 0, '5'),
                ("var/runtime/".into(), 0o755, 0, 0, "root".into(), 0, '5'),
                (
                    "var/runtime/bootstrap".into(),
                    0o755,
                    0,
                    0,
                    "root".into(),
                    0,
                    '0'
                ),
            ]
        );

        // umoci unpacks it: the bootstrap is at /var/runtime/bootstrap, mode 0755, unchanged.
        let bundle = work.path().join(format!("bundle-{arch}"));
        umoci_unpack(&format!("{}:v1-{arch}", out.display()), &bundle);
        let unpacked = bundle.join("rootfs/var/runtime/bootstrap");
        assert_eq!(
            fs::metadata(&unpacked).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        assert_eq!(fs::read(&unpacked).unwrap(), fs::read(bootstrap).unwrap());
        assert!(
            bundle.join("rootfs/lambda-entrypoint.sh").is_file(),
            "base layers are unpacked too"
        );
    }

    // The amd64 image runs on this machine: the base's shell runs the unpacked bootstrap.
    let rootfs = work.path().join("bundle-amd64/rootfs");
    let output = run(&mut std::process::Command::new(
        rootfs.join("var/runtime/bootstrap"),
    ));
    assert!(String::from_utf8_lossy(&output.stdout).contains(BOOTSTRAP_OUTPUT));
}

#[test]
fn the_oci_archive_is_the_layout_as_a_tar() {
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("fn.tar");
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("oci-archive:{}:v2", archive.display()),
    ]);
    let report = build(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);

    let raw: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:v2", archive.display()),
    ]))
    .unwrap();
    assert_eq!(raw["mediaType"], MEDIA_TYPE_INDEX);
    let arm: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("oci-archive:{}:v2-arm64", archive.display()),
    ]))
    .unwrap();
    assert_eq!(
        arm["Digest"],
        report_image_digest(&report, "arm64").as_str()
    );
    assert_eq!(arm["Architecture"], "arm64");
    let copy = work.path().join("copy");
    skopeo(&[
        "copy",
        &format!("oci-archive:{}:v2-amd64", archive.display()),
        &format!("oci:{}:x", copy.display()),
    ]);
    assert!(layout_descriptor(&copy, "x").is_some());

    // Same inputs give the same archive bytes, not only the same digests.
    let second = work.path().join("again.tar");
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("oci-archive:{}:v2", second.display()),
    ]);
    build(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert_eq!(sha256_file(&archive), sha256_file(&second));
}

#[test]
fn the_docker_archive_holds_one_tagged_image_per_architecture() {
    let f = fixtures();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("fn-docker.tar");
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("docker-archive:{}:my/fn:v3", archive.display()),
    ]);
    let report = build(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(report["index"].is_null(), "a docker-archive has no index");

    for arch in ARCHES {
        let inspected: Value = serde_json::from_str(&skopeo(&[
            "inspect",
            &format!("docker-archive:{}:my/fn:v3-{arch}", archive.display()),
        ]))
        .unwrap();
        // The reported digest of a docker-archive image is its image ID: the config's digest.
        let config = skopeo(&[
            "inspect",
            "--config",
            "--raw",
            &format!("docker-archive:{}:my/fn:v3-{arch}", archive.display()),
        ]);
        assert_eq!(
            report_image_digest(&report, arch),
            format!("sha256:{}", sha256_hex(config.as_bytes()))
        );
        assert_eq!(inspected["Architecture"], arch);
        assert_eq!(
            inspected["Layers"].as_array().unwrap().len(),
            f.base_layer_digests[arch].len() + 1
        );
        assert!(
            inspected["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "LAMBDA_TASK_ROOT=/var/task")
        );
    }
    // What `docker load` reads: manifest.json with RepoTags, config and layer files.
    let mut tar = tar::Archive::new(fs::File::open(&archive).unwrap());
    let mut manifest = String::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("manifest.json") {
            entry.read_to_string(&mut manifest).unwrap();
        }
    }
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    let tags: Vec<&Value> = manifest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["RepoTags"][0])
        .collect();
    assert_eq!(tags, [&json!("my/fn:v3-amd64"), &json!("my/fn:v3-arm64")]);

    // And it serves as a base in turn: the docker-archive is read back, layers verified.
    let out = work.path().join("rebuilt");
    let rebuilt = build(
        &[
            "--bootstrap",
            f.bootstrap_arm64.to_str().unwrap(),
            "--base",
            &format!("docker-archive:{}:my/fn:v3-arm64", archive.display()),
            "--output",
            &format!("oci:{}", out.display()),
        ],
        &[],
    );
    let manifest = read_blob_json(&out, &report_image_digest(&rebuilt, "arm64"));
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        f.base_layer_digests["arm64"].len() + 2
    );
}

#[test]
fn same_inputs_give_same_digests_anywhere_and_source_date_epoch_changes_them() {
    let work = tempfile::tempdir().unwrap();
    let first = build_two_arch_layout(&work.path().join("a"), "v1", &[]);
    // A different output directory, tag position and working directory change nothing.
    let elsewhere = work.path().join("deeper/dir");
    fs::create_dir_all(&elsewhere).unwrap();
    let mut args = both_bootstrap_args();
    args.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        "oci:out:v1".into(),
    ]);
    let second = serde_json::from_slice::<Value>(
        &run(lambda_image()
            .current_dir(&elsewhere)
            .arg("build")
            .arg("--json")
            .args(&args))
        .stdout,
    )
    .unwrap();
    for arch in ARCHES {
        assert_eq!(
            report_image_digest(&first, arch),
            report_image_digest(&second, arch)
        );
    }
    assert_eq!(first["index"]["digest"], second["index"]["digest"]);

    let mut args = both_bootstrap_args();
    let later_out = work.path().join("later");
    args.extend([
        "--base".into(),
        base_reference(),
        "--output".into(),
        format!("oci:{}:v1", later_out.display()),
    ]);
    let later = build(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    );
    for arch in ARCHES {
        assert_ne!(
            report_image_digest(&first, arch),
            report_image_digest(&later, arch)
        );
        let manifest = read_blob_json(&later_out, &report_image_digest(&later, arch));
        let config = read_blob_json(&later_out, manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        let layer = blob_path(
            &later_out,
            manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
                .as_str()
                .unwrap(),
        );
        assert!(
            layer_entries(&layer)
                .iter()
                .all(|entry| entry.5 == 1_700_000_000)
        );
    }
}

#[test]
fn includes_labels_annotations_and_handler_reach_the_image() {
    let f = fixtures();
    let work = tempfile::tempdir().unwrap();
    let config_dir = work.path().join("conf");
    fs::create_dir_all(config_dir.join("nested")).unwrap();
    fs::write(config_dir.join("nested/settings.json"), "{}").unwrap();
    fs::write(config_dir.join("tool.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        config_dir.join("tool.sh"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let single = work.path().join("extra.txt");
    fs::write(&single, "x").unwrap();
    fs::set_permissions(&single, fs::Permissions::from_mode(0o600)).unwrap();

    let out = work.path().join("out");
    let report = build(
        &[
            "--bootstrap",
            f.bootstrap_amd64.to_str().unwrap(),
            "--base",
            &base_reference(),
            "--handler",
            "my.handler",
            "--include",
            &format!("{}:/var/task/conf", config_dir.display()),
            "--include",
            &format!("{}:/opt/data/", single.display()),
            "--label",
            "team=payments",
            "--annotation",
            "org.opencontainers.image.source=https://example.com/fn",
            "--output",
            &format!("oci:{}:one", out.display()),
        ],
        &[],
    );
    assert!(report["index"].is_null(), "one architecture: no index");
    let digest = report_image_digest(&report, "amd64");
    assert_eq!(
        layout_descriptor(&out, "one").unwrap()["digest"],
        digest.as_str()
    );
    assert_eq!(
        layout_descriptor(&out, "one-amd64").unwrap()["digest"],
        digest.as_str()
    );

    let manifest = read_blob_json(&out, &digest);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.source"],
        "https://example.com/fn"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        f.base_manifests["amd64"].as_str()
    );
    let config = read_blob_json(&out, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["config"]["Cmd"], json!(["my.handler"]));
    assert_eq!(config["config"]["Labels"]["team"], "payments");

    let layer = blob_path(
        &out,
        manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
            .as_str()
            .unwrap(),
    );
    let entries: Vec<(String, u32)> = layer_entries(&layer)
        .into_iter()
        .map(|e| (e.0, e.1))
        .collect();
    assert_eq!(
        entries,
        [
            ("opt/", 0o755),
            ("opt/data/", 0o755),
            ("opt/data/extra.txt", 0o644),
            ("var/", 0o755),
            ("var/runtime/", 0o755),
            ("var/runtime/bootstrap", 0o755),
            ("var/task/", 0o755),
            ("var/task/conf/", 0o755),
            ("var/task/conf/nested/", 0o755),
            ("var/task/conf/nested/settings.json", 0o644),
            ("var/task/conf/tool.sh", 0o755),
        ]
        .map(|(p, m)| (p.to_owned(), m))
    );
}

#[test]
fn a_script_bootstrap_with_a_stated_architecture_is_made_executable() {
    let f = fixtures();
    assert_eq!(
        fs::metadata(&f.script_bootstrap)
            .unwrap()
            .permissions()
            .mode()
            & 0o111,
        0,
        "fixture is 0644"
    );
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let report = build(
        &[
            "--bootstrap",
            &format!("arm64={}", f.script_bootstrap.display()),
            "--base",
            &base_reference(),
            "--output",
            &format!("oci:{}:s", out.display()),
        ],
        &[],
    );
    let bundle = work.path().join("bundle");
    umoci_unpack(&format!("{}:s", out.display()), &bundle);
    let unpacked = bundle.join("rootfs/var/runtime/bootstrap");
    assert_eq!(
        fs::metadata(&unpacked).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let manifest = read_blob_json(&out, &report_image_digest(&report, "arm64"));
    let config = read_blob_json(&out, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["architecture"], "arm64");
}

#[test]
fn docker_format_writes_docker_media_types_and_a_manifest_list() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let report = build_two_arch_layout(&out, "d", &["--format", "docker"]);
    let list = read_blob_json(&out, report["index"]["digest"].as_str().unwrap());
    assert_eq!(
        list["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let manifest = read_blob_json(&out, &report_image_digest(&report, "amd64"));
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
    assert!(
        manifest.get("annotations").is_none(),
        "Docker manifests carry no annotations"
    );
    // skopeo and umoci read only OCI manifests from a layout, so read it back as a base instead:
    // the Docker-format layout serves as the base of a further build, keeping its format.
    let rebuilt_out = work.path().join("rebuilt");
    let rebuilt = build(
        &[
            "--bootstrap",
            fixtures().bootstrap_arm64.to_str().unwrap(),
            "--base",
            &format!("oci:{}:d", out.display()),
            "--output",
            &format!("oci:{}:r", rebuilt_out.display()),
        ],
        &[],
    );
    let rebuilt_manifest = read_blob_json(&rebuilt_out, &report_image_digest(&rebuilt, "arm64"));
    assert_eq!(
        rebuilt_manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        rebuilt_manifest["layers"].as_array().unwrap().len(),
        manifest["layers"].as_array().unwrap().len() + 1
    );
}

#[test]
fn building_into_an_existing_layout_keeps_its_other_images() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("shared");
    let first = build_two_arch_layout(&out, "v1", &[]);
    let second = build_two_arch_layout(&out, "v2", &["--env", "RELEASE=2"]);
    assert_eq!(
        layout_descriptor(&out, "v1").unwrap()["digest"],
        first["index"]["digest"]
    );
    assert_eq!(
        layout_descriptor(&out, "v2").unwrap()["digest"],
        second["index"]["digest"]
    );
    // Re-using a tag moves it, without duplicating the entry.
    let third = build_two_arch_layout(&out, "v1", &["--env", "RELEASE=3"]);
    let index = read_json(out.join("index.json"));
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["annotations"][REF_NAME_ANNOTATION].as_str().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| **n == "v1").count(), 1);
    assert_eq!(
        layout_descriptor(&out, "v1").unwrap()["digest"],
        third["index"]["digest"]
    );
    skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:v2-arm64", out.display()),
    ]);
    assert!(
        no_temporaries(&out),
        "no temporary files are left in the layout"
    );
}

fn no_temporaries(directory: &Path) -> bool {
    fn walk(directory: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".lambda-image")
            {
                found.push(path.clone());
            }
            if path.is_dir() {
                walk(&path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(directory, &mut found);
    found.is_empty()
}

#[test]
fn text_output_names_each_architecture_and_warns_about_the_index() {
    let f = fixtures();
    let work = tempfile::tempdir().unwrap();
    let output: Output = run(lambda_image().args([
        "build",
        "--bootstrap",
        f.bootstrap_amd64.to_str().unwrap(),
        "--bootstrap",
        f.bootstrap_arm64.to_str().unwrap(),
        "--base",
        &base_reference(),
        "--output",
        &format!("oci:{}:t", work.path().join("o").display()),
    ]));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(
        text.contains("amd64  sha256:") && text.contains("arm64  sha256:"),
        "{text}"
    );
    assert!(text.contains("index  sha256:"), "{text}");
    // The advice is for people, on stderr: stdout is only the report.
    assert!(!text.contains("never the index"), "{text}");
    assert!(stderr_of(&output).contains("never the index"), "{text}");
}

#[test]
fn outputs_are_readable_by_others_like_any_file_the_user_writes() {
    let f = fixtures();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let archive = work.path().join("fn.tar");
    for output in [
        format!("oci:{}:p", layout.display()),
        format!("oci-archive:{}:p", archive.display()),
    ] {
        // Under umask 022 a new file is 0644 and a new directory 0755; temporary files are 0600.
        run(std::process::Command::new("sh")
            .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_lambda-image"))
            .args([
                "build",
                "--bootstrap",
                f.bootstrap_amd64.to_str().unwrap(),
                "--base",
                &base_reference(),
                "--output",
                &output,
            ]));
    }
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&layout), 0o755);
    assert_eq!(mode(&layout.join("index.json")), 0o644);
    assert_eq!(mode(&layout.join("blobs/sha256")), 0o755);
    for blob in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        assert_eq!(mode(&blob.unwrap().path()), 0o644);
    }
    assert_eq!(mode(&archive), 0o644);
}
