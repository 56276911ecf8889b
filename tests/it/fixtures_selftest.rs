//! Self-tests of the shared test fixtures in `tests/support/`: they check with real tools
//! (skopeo, umoci, busybox) that the stand-in for `public.ecr.aws/lambda/provided:al2023`
//! is a valid, deterministic OCI image layout shaped like the real base image, and that the
//! bootstrap fixtures are what the other tests expect.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use serde_json::{Value, json};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("selftest-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("creating a temporary directory")
}

fn layout_str() -> &'static str {
    fixtures()
        .base_layout
        .to_str()
        .expect("fixture path must be UTF-8")
}

/// Unpacks the per-architecture base manifest with umoci; returns the rootfs path.
fn unpack_base(arch: &str, dir: &Path) -> PathBuf {
    let bundle = dir.join(format!("bundle-{arch}"));
    umoci_unpack(&format!("{}:{BASE_TAG}-{arch}", layout_str()), &bundle);
    bundle.join("rootfs")
}

#[test]
fn skopeo_inspect_raw_returns_the_image_index() {
    let f = fixtures();
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:{BASE_TAG}", layout_str()),
    ]);
    assert_eq!(
        format!(
            "sha256:{}",
            sha256_hex(raw.trim_end_matches('\n').as_bytes())
        ),
        f.base_digest,
        "skopeo's raw manifest is not the index blob"
    );
    let index: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], MEDIA_TYPE_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    assert_eq!(
        manifests[0]["platform"],
        json!({"architecture": "amd64", "os": "linux"})
    );
    assert_eq!(
        manifests[1]["platform"],
        json!({"architecture": "arm64", "os": "linux", "variant": "v8"})
    );
    for (descriptor, arch) in manifests.iter().zip(ARCHES) {
        assert_eq!(descriptor["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(descriptor["digest"], f.base_manifests[arch].as_str());
        let blob = read_blob(&f.base_layout, &f.base_manifests[arch]);
        assert_eq!(descriptor["size"], blob.len());
    }
}

#[test]
fn skopeo_picks_each_platform_from_the_index() {
    for arch in ARCHES {
        let out = skopeo(&[
            "inspect",
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            &format!("oci:{}:{BASE_TAG}", layout_str()),
        ]);
        let inspect: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(inspect["Architecture"], arch, "{out}");
        assert_eq!(inspect["Os"], "linux", "{out}");
        // skopeo reports the digest of the reference, i.e. of the index.
        assert_eq!(inspect["Digest"], fixtures().base_digest.as_str(), "{out}");
        assert_eq!(
            inspect["Layers"],
            json!(fixtures().base_layer_digests[arch]),
            "{out}"
        );
        assert_eq!(inspect["Env"], json!(BASE_ENV), "{out}");
    }
}

#[test]
fn layout_index_tags_the_index_and_each_manifest() {
    let f = fixtures();
    assert_eq!(
        read_json(f.base_layout.join("oci-layout")),
        json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = layout_descriptor(&f.base_layout, BASE_TAG).expect("al2023 tag");
    assert_eq!(index["mediaType"], MEDIA_TYPE_INDEX);
    assert_eq!(index["digest"], f.base_digest.as_str());
    for (tag, arch) in [(BASE_TAG_AMD64, "amd64"), (BASE_TAG_ARM64, "arm64")] {
        let d = layout_descriptor(&f.base_layout, tag).expect("per-arch tag");
        assert_eq!(d["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(d["digest"], f.base_manifests[arch].as_str());
    }
}

#[test]
fn manifests_and_configs_look_like_the_real_base_image() {
    let f = fixtures();
    for arch in ARCHES {
        let manifest = read_blob_json(&f.base_layout, &f.base_manifests[arch]);
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(manifest["config"]["mediaType"], MEDIA_TYPE_CONFIG);
        assert_eq!(manifest["config"]["digest"], f.base_configs[arch].as_str());
        let layers = manifest["layers"].as_array().unwrap();
        let digests: Vec<&str> = layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap())
            .collect();
        assert_eq!(digests, f.base_layer_digests[arch]);

        let config = read_blob_json(&f.base_layout, &f.base_configs[arch]);
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["os"], "linux");
        assert_eq!(
            config["config"],
            json!({
                "Env": BASE_ENV,
                "Entrypoint": ["/lambda-entrypoint.sh"],
                "WorkingDir": "/var/task",
            })
        );
        assert!(config["config"].get("Cmd").is_none());
        assert_eq!(config[BASE_CONFIG_EXTRA_FIELD], base_config_extra_value());
        assert_eq!(config["rootfs"]["type"], "layers");
        assert_eq!(config["history"].as_array().unwrap().len(), layers.len());

        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(diff_ids.len(), layers.len());
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            assert_eq!(layer["mediaType"], MEDIA_TYPE_LAYER_GZIP);
            let digest = layer["digest"].as_str().unwrap();
            let path = blob_path(&f.base_layout, digest);
            assert_eq!(format!("sha256:{}", sha256_file(&path)), digest);
            assert_eq!(layer["size"], fs::metadata(&path).unwrap().len());
            assert_eq!(
                diff_id.as_str().unwrap(),
                format!("sha256:{}", gunzip_sha256(&path)),
                "diff_id of {digest} ({arch})"
            );
        }
    }
    // The padding layers differ per architecture and do not compress.
    let padding: Vec<&String> = ARCHES
        .iter()
        .map(|a| &f.base_layer_digests[*a][1])
        .collect();
    assert_ne!(padding[0], padding[1]);
    let size = fs::metadata(blob_path(&f.base_layout, padding[0]))
        .unwrap()
        .len();
    assert!(
        size > PADDING_SIZE as u64,
        "padding layer is only {size} bytes"
    );
}

#[test]
fn layer_tars_are_deterministic_ustar_with_all_parents() {
    let f = fixtures();
    for arch in ARCHES {
        let mut all_paths = Vec::new();
        for digest in &f.base_layer_digests[arch] {
            let gz = read_blob(&f.base_layout, digest);
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
            let mut paths = Vec::new();
            for entry in archive.entries().unwrap() {
                let entry = entry.unwrap();
                let header = entry.header();
                assert!(header.as_ustar().is_some(), "not a ustar header");
                assert_eq!(header.mtime().unwrap(), 0);
                assert_eq!(header.uid().unwrap(), 0);
                assert_eq!(header.gid().unwrap(), 0);
                assert_eq!(header.username().unwrap(), Some("root"));
                assert_eq!(header.groupname().unwrap(), Some("root"));
                let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
                if header.entry_type().is_dir() {
                    assert!(path.ends_with('/'), "{path}");
                }
                paths.push(path.trim_end_matches('/').to_string());
            }
            let mut sorted = paths.clone();
            sorted.sort();
            assert_eq!(paths, sorted, "entries of {digest} are not sorted");
            all_paths.extend(paths);
        }
        let set: BTreeSet<&str> = all_paths.iter().map(String::as_str).collect();
        for path in &all_paths {
            let mut parent = Path::new(path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                assert!(
                    set.contains(p.to_str().unwrap()),
                    "{path}: no entry for {p:?}"
                );
                parent = p.parent();
            }
        }
        for expected in [
            "bin/busybox",
            "bin/sh",
            "tmp",
            "usr/local/bin",
            "var/task",
            "var/runtime",
            PADDING_PATH,
            "lambda-entrypoint.sh",
        ] {
            assert!(set.contains(expected), "{arch}: missing {expected}");
        }
    }
}

#[test]
fn umoci_unpacks_each_architecture() {
    let dir = tempdir();
    let f = fixtures();
    for arch in ARCHES {
        let rootfs = unpack_base(arch, dir.path());

        let entrypoint = rootfs.join("lambda-entrypoint.sh");
        let meta = fs::metadata(&entrypoint).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
        assert_eq!(fs::read_to_string(&entrypoint).unwrap(), ENTRYPOINT_SCRIPT);

        let busybox = rootfs.join("bin/busybox");
        assert_eq!(
            fs::metadata(&busybox).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        let expected = match arch {
            "amd64" => &f.busybox_amd64,
            _ => &f.busybox_arm64,
        };
        assert_eq!(sha256_file(&busybox), sha256_file(expected));
        for link in ["sh", "cat", "echo", "env", "ls"] {
            let target = fs::read_link(rootfs.join("bin").join(link)).unwrap();
            assert_eq!(target, Path::new("busybox"), "bin/{link}");
        }
        let tmp_mode = fs::symlink_metadata(rootfs.join("tmp"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(tmp_mode & 0o7777, 0o1777);
        for d in ["usr/local/bin", "var/task", "var/runtime"] {
            assert!(rootfs.join(d).is_dir(), "{d}");
        }
        assert_eq!(
            fs::metadata(rootfs.join(PADDING_PATH)).unwrap().len(),
            PADDING_SIZE as u64
        );

        // umoci turns the image config into an OCI runtime config.
        let runtime = read_json(rootfs.parent().unwrap().join("config.json"));
        assert_eq!(runtime["process"]["args"], json!(["/lambda-entrypoint.sh"]));
        assert_eq!(runtime["process"]["cwd"], "/var/task");
        let env = runtime["process"]["env"].as_array().unwrap();
        for var in BASE_ENV {
            assert!(env.iter().any(|e| e == var), "{arch}: {var} not in {env:?}");
        }
    }
}

#[test]
fn entrypoint_requires_exactly_one_argument() {
    let dir = tempdir();
    let rootfs = unpack_base("amd64", dir.path());
    let output = run_unchecked(
        Command::new(rootfs.join("bin/busybox"))
            .arg("sh")
            .arg(rootfs.join("lambda-entrypoint.sh"))
            .env_remove("AWS_LAMBDA_RUNTIME_API"),
    );
    assert_eq!(
        output.status.code(),
        Some(ENTRYPOINT_USAGE_EXIT_CODE),
        "{output:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "entrypoint requires the handler name to be the first argument\n"
    );

    // With one argument it execs the runtime, which does not exist outside a container.
    let output = run_unchecked(
        Command::new(rootfs.join("bin/busybox"))
            .arg("sh")
            .arg(rootfs.join("lambda-entrypoint.sh"))
            .arg("handler")
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
    );
    assert_eq!(output.status.code(), Some(127), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("/var/runtime/bootstrap"),
        "{output:?}"
    );
}

#[test]
fn generating_twice_gives_identical_digests() {
    // fixtures() is the first generation, this is the second, in another directory.
    let dir = tempdir();
    let again = generate_base_layout(&dir.path().join("again"));
    let f = fixtures();
    assert_ne!(again.layout, f.base_layout);
    assert_eq!(again.index_digest, f.base_digest);
    assert_eq!(again.manifests, f.base_manifests);
    assert_eq!(again.configs, f.base_configs);
    assert_eq!(again.layer_digests, f.base_layer_digests);
    assert_eq!(
        fs::read(again.layout.join("index.json")).unwrap(),
        fs::read(f.base_layout.join("index.json")).unwrap()
    );
    let list = |layout: &Path| -> BTreeSet<String> {
        fs::read_dir(layout.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    assert_eq!(list(&again.layout), list(&f.base_layout));
    // 1 index + 2 × (manifest + config + 3 layers), but the entrypoint layer is shared.
    assert_eq!(list(&again.layout).len(), 1 + 2 * 5 - 1);
}

#[test]
fn bootstrap_fixtures() {
    let f = fixtures();
    let out = run_stdout(&mut Command::new(&f.bootstrap_amd64));
    assert_eq!(out, format!("{BOOTSTRAP_OUTPUT}\n"));

    for (path, machine) in [(&f.bootstrap_amd64, 62u16), (&f.bootstrap_arm64, 183)] {
        let mut header = [0u8; 20];
        fs::File::open(path)
            .unwrap()
            .read_exact(&mut header)
            .unwrap();
        assert_eq!(&header[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([header[18], header[19]]), machine);
        assert_eq!(
            fs::metadata(path).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    let script = fs::read_to_string(&f.script_bootstrap).unwrap();
    assert!(script.starts_with("#!/bin/sh\n"));
    assert_eq!(
        fs::metadata(&f.script_bootstrap)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
}

#[test]
fn digest_helpers_agree() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let f = fixtures();
    let digest = &f.base_layer_digests["amd64"][2];
    let bytes = read_blob(&f.base_layout, digest);
    assert_eq!(format!("sha256:{}", sha256_hex(&bytes)), *digest);
    assert_eq!(pseudo_random_bytes(1, 16), pseudo_random_bytes(1, 16));
    assert_ne!(pseudo_random_bytes(1, 16), pseudo_random_bytes(2, 16));
}
