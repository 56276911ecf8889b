//! `build --layer`: Lambda layer zips unpacked under `/opt` of the new layer, checked with the
//! tools that read images (umoci unpacks the OCI layout; the files are stat'ed as the runtime
//! would see them), for zips made as people make them: `zip -r` (Unix modes, `-y` keeps
//! symlinks), Python's `zipfile.write` (modes from the files), and a zip whose entries carry no
//! Unix attributes at all (`create_system=0`, as Windows tools make them). Then layer versions
//! by ARN through moto's `GetLayerVersionByArn` (`moto_lambda.py`) with the download served by
//! a server the test runs (a presigned-URL-like location, the `MOTO_LAMBDA_LAYER_LOCATION`
//! knob): fetched, verified, cached, used again with no AWS at all and with `--offline`; a
//! corrupted download, a layer of the other architecture and Lambda's refusals are refused
//! with their exit codes and nothing kept.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::scratch::Scratch;
use crate::support::*;

/// The static x86-64 ELF of the fixtures, as an extension.
fn extension_elf() -> PathBuf {
    fixtures().bootstrap_amd64.clone()
}

/// A layer directory as a vendor lays one out: an extension, a helper script, data, a symlink.
fn layer_directory(root: &Path) -> PathBuf {
    let dir = root.join("layer-src");
    fs::create_dir_all(dir.join("extensions")).unwrap();
    fs::create_dir_all(dir.join("agent-lib")).unwrap();
    fs::copy(extension_elf(), dir.join("extensions/agent")).unwrap();
    fs::set_permissions(
        dir.join("extensions/agent"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(dir.join("agent-lib/run.sh"), "#!/bin/sh\nexec true\n").unwrap();
    fs::set_permissions(
        dir.join("agent-lib/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(dir.join("agent-lib/config.json"), "{\"level\": \"info\"}\n").unwrap();
    fs::set_permissions(
        dir.join("agent-lib/config.json"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    symlink("config.json", dir.join("agent-lib/current.json")).unwrap();
    dir
}

/// `cd DIR && zip -qry OUT .`: Unix modes, symlinks kept (`-y`), as the vendors' docs say.
fn zip_r(dir: &Path, out: &Path) -> PathBuf {
    run(Command::new("zip")
        .current_dir(dir)
        .args(["-q", "-r", "-y"])
        .arg(out)
        .arg("."));
    out.to_path_buf()
}

/// Runs a Python script (stdlib only) with `args`.
fn python(script: &str, args: &[&Path]) {
    run(Command::new("python3").arg("-c").arg(script).args(args));
}

/// A zip by `zipfile.write`: each file's own mode in its Unix attributes (no directory entries).
fn python_write_zip(dir: &Path, out: &Path) -> PathBuf {
    python(
        "import os, sys, zipfile\n\
         src, out = sys.argv[1], sys.argv[2]\n\
         with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:\n\
         \x20   for name in ['py/extensions/py-agent', 'py/data/notes.txt']:\n\
         \x20       z.write(os.path.join(src, os.path.basename(name)), name[3:])\n",
        &[dir, out],
    );
    out.to_path_buf()
}

/// A zip made by Python on Windows (`create_system=0`, the MS-DOS/FAT host), whose entries carry
/// no Unix mode even though the high bits of their external attributes are set: `write()` on
/// Windows stores the file's `st_mode` (0o100666, plus the DOS archive bit 0x20), `writestr()`
/// its default 0o600. Neither is a Unix mode (the host is not Unix), so the content decides: an
/// ELF and a `#!` script 0755, data 0644. One entry has no attributes at all.
fn attributeless_zip(elf: &Path, out: &Path) -> PathBuf {
    python(
        "import sys, zipfile\n\
         elf, out = sys.argv[1], sys.argv[2]\n\
         def entry(name, attributes):\n\
         \x20   info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))\n\
         \x20   info.create_system = 0\n\
         \x20   info.external_attr = attributes\n\
         \x20   info.compress_type = zipfile.ZIP_DEFLATED\n\
         \x20   return info\n\
         with zipfile.ZipFile(out, 'w') as z:\n\
         \x20   z.writestr(entry('extensions/win-agent', (0o100666 << 16) | 0x20), open(elf, 'rb').read())\n\
         \x20   z.writestr(entry('win/start.sh', 0o600 << 16), '#!/bin/sh\\necho hi\\n')\n\
         \x20   z.writestr(entry('win/readme.txt', 0), 'data\\n')\n",
        &[elf, out],
    );
    out.to_path_buf()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn build_json(command: &mut Command) -> Value {
    let output = run_unchecked(command);
    assert!(
        output.status.success(),
        "build failed ({}):\n{}",
        output.status,
        stderr_of(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The command failed with `code`, without a panic, its stderr holding each of `expected`.
fn assert_refused(output: &Output, code: i32, expected: &[&str]) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "stderr lacks `{text}`:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Files left in the cache's `tmp/` (none after any build, whatever its end).
fn cache_temporaries(scratch: &Scratch) -> Vec<String> {
    file_names(&scratch.cache().join("tmp"))
}

// Reproduces what these public reports hit when a layer's files lose their modes or links on
// the way into an image: aws-samples/aws-lambda-extensions#38 ("fork/exec
// /opt/extensions/logs_api_http_extension.py: permission denied") and aws/aws-sam-cli#878
// ("symlinks in zip are not retained on the docker image created when using Layers").
#[test]
fn layer_zips_made_every_usual_way_unpack_under_opt_with_modes_links_and_parents() {
    let scratch = Scratch::new();
    let work = scratch.path("work");
    fs::create_dir_all(&work).unwrap();
    let source = layer_directory(&work);
    let zip_r = zip_r(&source, &work.join("zip-r.zip"));
    let py_src = work.join("py-src");
    fs::create_dir_all(&py_src).unwrap();
    fs::copy(extension_elf(), py_src.join("py-agent")).unwrap();
    fs::set_permissions(py_src.join("py-agent"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(py_src.join("notes.txt"), "notes\n").unwrap();
    fs::set_permissions(py_src.join("notes.txt"), fs::Permissions::from_mode(0o664)).unwrap();
    let python_zip = python_write_zip(&py_src, &work.join("python.zip"));
    let windows_zip = attributeless_zip(&extension_elf(), &work.join("windows.zip"));

    let build = |output: &Path| {
        let location = format!("oci:{}:v1", output.display());
        let zips = [&zip_r, &python_zip, &windows_zip].map(|zip| zip.display().to_string());
        build_json(&mut scratch.build(&[
            "--bootstrap",
            &fixtures().bootstrap_amd64.display().to_string(),
            "--base",
            &base_reference(),
            "--layer",
            &zips[0],
            "--layer",
            &zips[1],
            "--layer",
            &format!("amd64={}", zips[2]),
            "--output",
            &location,
            "--json",
        ]))
    };
    let first = work.join("first");
    let report = build(&first);

    // The report lists each layer in order with its source as written and the zip's digests.
    let layers = report["lambda_layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{report}");
    assert_eq!(layers[0]["source"], zip_r.display().to_string());
    assert_eq!(
        layers[2]["source"],
        format!("amd64={}", windows_zip.display())
    );
    assert_eq!(layers[0]["architectures"], serde_json::json!(["amd64"]));
    assert_eq!(
        layers[1]["sha256"],
        format!("sha256:{}", sha256_file(&python_zip))
    );
    assert_eq!(layers[1]["size"], fs::metadata(&python_zip).unwrap().len());
    let raw = hex_decode(&sha256_file(&python_zip));
    assert_eq!(layers[1]["code_sha256"], base64_standard(&raw));

    let bundle = work.join("bundle");
    umoci_unpack(&format!("{}:v1", first.display()), &bundle);
    let opt = bundle.join("rootfs/opt");
    // Every parent directory is in the layer, 0755.
    for directory in ["", "extensions", "agent-lib", "data", "win"] {
        let path = opt.join(directory);
        assert!(path.is_dir(), "{}", path.display());
        assert_eq!(mode(&path), 0o755, "{}", path.display());
    }
    // zip -r: the modes of the files (any x bit → 0755, else 0644) and the symlink as a symlink.
    assert_eq!(mode(&opt.join("extensions/agent")), 0o755);
    assert_eq!(
        fs::read(opt.join("extensions/agent")).unwrap(),
        fs::read(extension_elf()).unwrap()
    );
    assert_eq!(mode(&opt.join("agent-lib/run.sh")), 0o755);
    assert_eq!(mode(&opt.join("agent-lib/config.json")), 0o644);
    assert_eq!(
        fs::read_link(opt.join("agent-lib/current.json")).unwrap(),
        Path::new("config.json")
    );
    // zipfile.write: 0750 → 0755, 0664 → 0644.
    assert_eq!(mode(&opt.join("extensions/py-agent")), 0o755);
    assert_eq!(mode(&opt.join("data/notes.txt")), 0o644);
    // No Unix attributes: an ELF or a #! script → 0755, data → 0644.
    assert_eq!(mode(&opt.join("extensions/win-agent")), 0o755);
    assert_eq!(mode(&opt.join("win/start.sh")), 0o755);
    assert_eq!(mode(&opt.join("win/readme.txt")), 0o644);
    // The bootstrap is still where it was.
    assert_eq!(mode(&bundle.join("rootfs/var/runtime/bootstrap")), 0o755);

    // The same inputs make the same image, byte for byte.
    let second = build(&work.join("second"));
    assert_eq!(
        report_image_digest(&report, "amd64"),
        report_image_digest(&second, "amd64")
    );
    assert!(cache_temporaries(&scratch).is_empty());
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn zips_that_reach_out_of_opt_or_are_not_zips_are_refused_with_nothing_written() {
    let scratch = Scratch::new();
    let work = scratch.path("work");
    fs::create_dir_all(&work).unwrap();
    let climbing = work.join("climbing.zip");
    python(
        "import sys, zipfile\n\
         with zipfile.ZipFile(sys.argv[1], 'w') as z:\n\
         \x20   z.writestr('extensions/ok', 'fine')\n\
         \x20   z.writestr('../../etc/cron.d/evil', 'bad')\n",
        &[&climbing],
    );
    let linking = work.join("linking");
    fs::create_dir_all(linking.join("lib")).unwrap();
    symlink("../../etc/shadow", linking.join("lib/up")).unwrap();
    let linking = zip_r(&linking, &work.join("linking.zip"));
    let not_a_zip = work.join("not-a.zip");
    fs::write(&not_a_zip, "PK but not really\n").unwrap();
    let mut cut = fs::read(zip_r(&layer_directory(&work), &work.join("whole.zip"))).unwrap();
    cut.truncate(cut.len() / 2);
    let cut_zip = work.join("cut.zip");
    fs::write(&cut_zip, cut).unwrap();

    // A zip bomb, as its central directory declares it: one entry of 11 GiB, over Lambda's
    // 10 GB for a whole image (the declared size is refused before anything is inflated).
    let bomb = work.join("bomb.zip");
    python(
        "import sys, zipfile\n\
         with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED, allowZip64=True) as z:\n\
         \x20   z.writestr('data/a.bin', b'0' * 1000)\n\
         \x20   z.filelist[0].file_size = 11 << 30\n",
        &[&bomb],
    );

    let output = work.join("out");
    let attempt = |layer: &str| {
        run_unchecked(&mut scratch.build(&[
            "--bootstrap",
            &fixtures().bootstrap_amd64.display().to_string(),
            "--base",
            &base_reference(),
            "--layer",
            layer,
            "--output",
            &format!("oci:{}:v1", output.display()),
        ]))
    };
    assert_refused(
        &attempt(&bomb.display().to_string()),
        2,
        &["unpacks to 11811160064 bytes or more", "10 GB"],
    );
    let shown = climbing.display().to_string();
    assert_refused(
        &attempt(&shown),
        2,
        &[
            "entry `../../etc/cron.d/evil`",
            &shown,
            "could climb out of /opt",
        ],
    );
    assert_refused(
        &attempt(&linking.display().to_string()),
        2,
        &[
            "symlink `lib/up` -> `../../etc/shadow`",
            "points out of /opt",
        ],
    );
    assert_refused(
        &attempt(&not_a_zip.display().to_string()),
        2,
        &["not a readable zip"],
    );
    assert_refused(&attempt(&cut_zip.display().to_string()), 2, &["zip"]);
    assert_refused(
        &attempt(&work.join("missing.zip").display().to_string()),
        2,
        &["missing.zip", "cannot read"],
    );
    assert_refused(
        &attempt("arn:aws:lambda:us-east-1:123456789012:layer:agent"),
        2,
        &["not a layer version", "layer:agent:1"],
    );
    assert_refused(
        &attempt("arn:aws:lambda:us-east-1:42:layer:agent:1"),
        2,
        &["account `42`"],
    );
    assert!(!output.exists(), "nothing written");
    assert!(cache_temporaries(&scratch).is_empty());
}

#[cfg(feature = "deploy")]
mod by_arn {
    use serde_json::json;

    use super::*;
    use crate::support::ecr::MotoEcr;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use crate::support::lambda::Aws;

    /// A server for layer downloads: `GET /NAME/VERSION.zip` answers the zip registered under that
    /// path; in corrupt mode one byte of it is changed.
    struct LayerDownloads {
        server: http::HttpServer,
        zips: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        corrupt: Arc<AtomicBool>,
        requests: Arc<AtomicUsize>,
        targets: Arc<Mutex<Vec<String>>>,
    }

    impl LayerDownloads {
        fn start() -> LayerDownloads {
            let zips: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
            let corrupt = Arc::new(AtomicBool::new(false));
            let requests = Arc::new(AtomicUsize::new(0));
            let targets: Arc<Mutex<Vec<String>>> = Arc::default();
            let handler = {
                let (zips, corrupt, requests, targets) = (
                    zips.clone(),
                    corrupt.clone(),
                    requests.clone(),
                    targets.clone(),
                );
                Arc::new(move |request: &http::Request| {
                    requests.fetch_add(1, Ordering::SeqCst);
                    targets.lock().unwrap().push(request.target.clone());
                    match zips.lock().unwrap().get(request.path()) {
                        Some(zip) => {
                            let mut body = zip.clone();
                            if corrupt.load(Ordering::SeqCst) {
                                let middle = body.len() / 2;
                                body[middle] ^= 0xff;
                            }
                            http::Reply::Send(http::Response::new(200).with_body(body))
                        }
                        None => http::Reply::Send(http::Response::new(404)),
                    }
                })
            };
            LayerDownloads {
                server: http::HttpServer::start("layer-downloads", handler),
                zips,
                corrupt,
                requests,
                targets,
            }
        }

        fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.server.port())
        }
    }

    /// moto with its layer locations at `downloads`, and a published layer version.
    struct Lambda {
        moto: MotoEcr,
        downloads: LayerDownloads,
        scratch: Scratch,
        work: PathBuf,
    }

    impl Lambda {
        fn start() -> Lambda {
            let downloads = LayerDownloads::start();
            let moto = MotoEcr::start_with(
                None,
                None,
                &[("MOTO_LAMBDA_LAYER_LOCATION", &downloads.url())],
            );
            let scratch = Scratch::new();
            let work = scratch.path("work");
            fs::create_dir_all(&work).unwrap();
            Lambda {
                moto,
                downloads,
                scratch,
                work,
            }
        }

        /// Publishes `zip` as layer `name` (its `CompatibleArchitectures`); the version's ARN.
        fn publish(&self, name: &str, zip: &Path, architectures: &[&str]) -> String {
            let answer = Aws::new(&self.moto).call(
                "lambda",
                "PublishLayerVersion",
                json!({
                    "LayerName": name,
                    "Content": {"ZipFile": {"$file": zip.display().to_string()}},
                    "CompatibleArchitectures": architectures,
                }),
            );
            let version = answer["Version"].as_u64().unwrap();
            self.downloads
                .zips
                .lock()
                .unwrap()
                .insert(format!("/{name}/{version}.zip"), fs::read(zip).unwrap());
            answer["LayerVersionArn"].as_str().unwrap().to_owned()
        }

        /// `build` in `scratch` with the AWS SDK pointed at moto (static keys), `args` added.
        fn build(&self, scratch: &Scratch, args: &[&str]) -> Command {
            let mut command = scratch.build(args);
            command
                .env("AWS_ENDPOINT_URL", self.moto.endpoint())
                .env("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
                .env("AWS_SECRET_ACCESS_KEY", "test-secret")
                .env_remove("AWS_SESSION_TOKEN")
                .env_remove("AWS_PROFILE");
            isolated(&mut command);
            command
        }
    }

    /// No AWS setting of the machine: no config files, no instance metadata.
    fn isolated(command: &mut Command) {
        command
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_ENDPOINT_URL_LAMBDA")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE");
    }

    fn bootstrap_args(architecture: &str) -> Vec<String> {
        let bootstrap = match architecture {
            "amd64" => &fixtures().bootstrap_amd64,
            _ => &fixtures().bootstrap_arm64,
        };
        vec![
            "--bootstrap".into(),
            bootstrap.display().to_string(),
            "--base".into(),
            base_reference(),
        ]
    }

    fn args<'a>(owned: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
        owned
            .iter()
            .map(String::as_str)
            .chain(more.iter().copied())
            .collect()
    }

    // Reproduces the download step of aws-samples/parameters-secrets-lambda-extension-sample#2
    // (a layer's extension for a container image: `get-layer-version-by-arn`, then the zip at
    // Content.Location), done by the build, checked and cached.
    #[test]
    fn an_arn_is_fetched_verified_cached_and_then_needs_no_aws_even_offline() {
        let lambda = Lambda::start();
        let zip = zip_r(
            &layer_directory(&lambda.work),
            &lambda.work.join("agent.zip"),
        );
        let arn = lambda.publish("agent", &zip, &["x86_64"]);
        let out = lambda.work.join("out");
        let location = format!("oci:{}:v1", out.display());
        let base = bootstrap_args("amd64");
        let first = run_unchecked(&mut lambda.build(
            &lambda.scratch,
            &args(&base, &["--layer", &arn, "--output", &location, "--json"]),
        ));
        assert!(first.status.success(), "{}", stderr_of(&first));
        let report: Value = serde_json::from_slice(&first.stdout).unwrap();
        let layer = &report["lambda_layers"][0];
        assert_eq!(layer["source"], arn.as_str());
        assert_eq!(layer["sha256"], format!("sha256:{}", sha256_file(&zip)));
        assert_eq!(
            layer["code_sha256"],
            base64_standard(&hex_decode(&sha256_file(&zip)))
        );
        assert_eq!(layer["compatible_architectures"], json!(["x86_64"]));
        assert_eq!(layer["cached"], false);
        assert_eq!(lambda.downloads.requests.load(Ordering::SeqCst), 1);
        assert!(
            lambda.downloads.targets.lock().unwrap()[0].contains("X-Amz-Signature"),
            "the download went to the location Lambda gave"
        );
        assert!(!stderr_of(&first).contains("test-signature"));
        let bundle = lambda.work.join("bundle");
        umoci_unpack(&format!("{}:v1", out.display()), &bundle);
        assert_eq!(mode(&bundle.join("rootfs/opt/extensions/agent")), 0o755);
        assert_eq!(
            mode(&bundle.join("rootfs/opt/agent-lib/config.json")),
            0o644
        );

        // Lambda and the download server gone, no credentials: the cache has the layer.
        let Lambda {
            moto,
            downloads,
            scratch,
            work,
        } = lambda;
        drop(moto);
        drop(downloads);
        for extra in [&[][..], &["--offline"][..]] {
            let out = work.join(format!("again{}", extra.len()));
            let location = format!("oci:{}:v1", out.display());
            let mut command = scratch.build(&args(
                &base,
                &[&["--layer", &arn, "--output", &location, "--json"], extra].concat(),
            ));
            isolated(&mut command);
            command
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
            let again = build_json(&mut command);
            assert_eq!(again["lambda_layers"][0]["cached"], true, "{extra:?}");
            assert_eq!(
                report_image_digest(&again, "amd64"),
                report_image_digest(&report, "amd64"),
                "{extra:?}"
            );
        }

        // Offline with a cache that never saw it: exit 4, what to do.
        let empty = Scratch::new();
        let mut command = empty.build(&args(&base, &["--layer", &arn, "--offline"]));
        isolated(&mut command);
        let output = run_unchecked(&mut command);
        assert_refused(
            &output,
            4,
            &[
                &arn,
                "--offline",
                "has no usable copy",
                "run this build once with network",
            ],
        );
    }

    #[test]
    fn a_corrupted_download_is_refused_and_nothing_is_kept() {
        let lambda = Lambda::start();
        let zip = zip_r(
            &layer_directory(&lambda.work),
            &lambda.work.join("agent.zip"),
        );
        let arn = lambda.publish("agent", &zip, &[]);
        lambda.downloads.corrupt.store(true, Ordering::SeqCst);
        let base = bootstrap_args("amd64");
        let out = lambda.work.join("out");
        let location = format!("oci:{}:v1", out.display());
        let build_args = args(&base, &["--layer", &arn, "--output", &location]);
        let output = run_unchecked(&mut lambda.build(&lambda.scratch, &build_args));
        assert_refused(&output, 6, &[&arn, "is not layer version", "CodeSha256"]);
        assert!(!stderr_of(&output).contains("test-signature"));
        assert!(!out.exists());
        let cache = lambda.scratch.cache();
        assert!(!cache.join("lambda-layers").exists(), "no record");
        let digest = sha256_file(&zip);
        assert!(
            file_names(&cache.join("blobs/sha256"))
                .iter()
                .all(|name| *name != digest)
        );
        assert!(cache_temporaries(&lambda.scratch).is_empty());

        // Whole again: the same build works, and keeps it.
        lambda.downloads.corrupt.store(false, Ordering::SeqCst);
        let output = run_unchecked(&mut lambda.build(&lambda.scratch, &build_args));
        assert!(output.status.success(), "{}", stderr_of(&output));
        assert!(cache.join(format!("blobs/sha256/{digest}")).is_file());
    }

    // Reproduces DataDog/datadog-lambda-js#250 and awslabs/serverless-plugin-lambda-insights#13
    // ("fork/exec /opt/extensions/...: exec format error" with the x86_64 layer on arm64), which
    // elastic/apm-aws-lambda#141 says CompatibleArchitectures is there to prevent.
    #[test]
    fn a_layer_of_the_other_architecture_is_refused_unless_limited_to_its_image() {
        let lambda = Lambda::start();
        let zip = zip_r(
            &layer_directory(&lambda.work),
            &lambda.work.join("agent.zip"),
        );
        let arn = lambda.publish("agent-x86", &zip, &["x86_64"]);
        let arm = bootstrap_args("arm64");
        let output =
            run_unchecked(&mut lambda.build(&lambda.scratch, &args(&arm, &["--layer", &arn])));
        assert_refused(
            &output,
            3,
            &[
                &arn,
                "is for x86_64",
                "arm64",
                &format!("--layer amd64={arn}"),
            ],
        );
        assert_eq!(
            lambda.downloads.requests.load(Ordering::SeqCst),
            0,
            "refused before the download"
        );

        // Limited to the amd64 image of a two-architecture build, it goes there only.
        let out = lambda.work.join("out");
        let both = both_bootstrap_args();
        let limited = format!("amd64={arn}");
        let report = build_json(&mut lambda.build(
            &lambda.scratch,
            &args(
                &both,
                &[
                    "--base",
                    &base_reference(),
                    "--layer",
                    &limited,
                    "--output",
                    &format!("oci:{}:v1", out.display()),
                    "--json",
                ],
            ),
        ));
        assert_eq!(
            report["lambda_layers"][0]["architectures"],
            json!(["amd64"])
        );
        for (architecture, has) in [("amd64", true), ("arm64", false)] {
            let bundle = lambda.work.join(format!("bundle-{architecture}"));
            umoci_unpack(&format!("{}:v1-{architecture}", out.display()), &bundle);
            assert_eq!(
                bundle.join("rootfs/opt/extensions/agent").exists(),
                has,
                "{architecture}"
            );
        }
    }

    #[test]
    fn lambdas_refusals_say_what_to_do() {
        let lambda = Lambda::start();
        let zip = zip_r(
            &layer_directory(&lambda.work),
            &lambda.work.join("agent.zip"),
        );
        let arn = lambda.publish("agent", &zip, &[]);
        let base = bootstrap_args("amd64");
        let missing = arn.replace(":agent:1", ":agent:9");
        let output =
            run_unchecked(&mut lambda.build(&lambda.scratch, &args(&base, &["--layer", &missing])));
        assert_refused(&output, 4, &[&missing, "does not exist", "check the ARN"]);

        lambda
            .moto
            .set_knobs(&json!({"MOTO_LAMBDA_DENY": "GetLayerVersionByArn=lambda:GetLayerVersion"}));
        let output =
            run_unchecked(&mut lambda.build(&lambda.scratch, &args(&base, &["--layer", &arn])));
        assert_refused(
            &output,
            6,
            &[
                "access denied to lambda:GetLayerVersion",
                "allow lambda:GetLayerVersion",
            ],
        );
        lambda.moto.set_knobs(&json!({}));

        let mut command = lambda.build(&lambda.scratch, &args(&base, &["--layer", &arn]));
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        let output = run_unchecked(&mut command);
        assert_refused(&output, 6, &["no AWS credentials", "AWS_ACCESS_KEY_ID"]);
        assert_eq!(lambda.downloads.requests.load(Ordering::SeqCst), 0);
        assert!(!lambda.scratch.cache().join("lambda-layers").exists());
    }
}
