//! `check IMAGE` reports an error only for what surely fails on Lambda: what the entrypoint and
//! `/var/runtime/bootstrap` name is followed as `execve` follows it inside the image (symbolic
//! links, the config's PATH, `#!` interpreters, an ELF's program interpreter), and an index checked
//! by tag warns with the per-architecture references to deploy.
//!
//! The images are made the way users make them: the stand-in base unpacked with `umoci unpack`,
//! files and `ln -s` links added to its root filesystem, repacked with `umoci repack`; or a layer
//! packed by GNU tar from a directory and appended with `umoci raw add-layer`; the configs are set
//! with `umoci config`. Programs are compiled here (gcc, musl-gcc, strip).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::common::scratch;
use crate::support::lambda_image_json;
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{
    BASE_TAG_AMD64, base_reference, both_bootstrap_args, fixtures, gnu_tar_layer, run, skopeo,
    umoci, umoci_unpack,
};

/// `check IMAGE`'s exit status when an image finding is an error (`image_rejected`).
const CHECK_FAILED: i32 = 7;

/// The stand-in base's amd64 image plus one layer made by umoci: the base unpacked, `prepare`
/// run on its root filesystem, repacked; then `umoci config CONFIG...`. Returns `oci:LAYOUT:fn`.
fn umoci_image(dir: &Path, name: &str, prepare: impl FnOnce(&Path), config: &[&str]) -> String {
    let layout = copy_base(dir, name);
    let bundle = dir.join(format!("{name}-bundle"));
    umoci_unpack(&format!("{}:{BASE_TAG_AMD64}", layout.display()), &bundle);
    prepare(&bundle.join("rootfs"));
    let image = format!("{}:fn", layout.display());
    umoci(&["repack", "--image", &image, bundle.to_str().unwrap()]);
    configure(&image, config)
}

/// The stand-in base's amd64 image plus one layer packed by GNU tar from a directory that
/// `prepare` fills, appended with `umoci raw add-layer`; then `umoci config CONFIG...`.
fn gnu_tar_image(dir: &Path, name: &str, prepare: impl FnOnce(&Path), config: &[&str]) -> String {
    let layout = copy_base(dir, name);
    let tar = gnu_tar_layer(dir, name, prepare);
    let image = format!("{}:fn", layout.display());
    umoci(&[
        "raw",
        "add-layer",
        "--image",
        &format!("{}:{BASE_TAG_AMD64}", layout.display()),
        "--tag",
        "fn",
        tar.to_str().unwrap(),
    ]);
    configure(&image, config)
}

fn copy_base(dir: &Path, name: &str) -> PathBuf {
    let layout = dir.join(name);
    run(Command::new("cp")
        .arg("-r")
        .arg(&fixtures().base_layout)
        .arg(&layout));
    layout
}

fn configure(image: &str, config: &[&str]) -> String {
    if !config.is_empty() {
        let mut args = vec!["config", "--image", image];
        args.extend(config);
        umoci(&args);
    }
    format!("oci:{image}")
}

/// Writes an executable file (mode 0755), creating its directory.
fn put(root: &Path, path: &str, bytes: &[u8]) {
    let file = root.join(path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, bytes).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
}

/// `ln -s TARGET PATH` inside `root`, creating the link's directory.
fn link(root: &Path, path: &str, target: &str) {
    let file = root.join(path);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    symlink(target, file).unwrap();
}

fn amd64_elf() -> Vec<u8> {
    fs::read(&fixtures().bootstrap_amd64).unwrap()
}

fn arm64_elf() -> Vec<u8> {
    fs::read(&fixtures().bootstrap_arm64).unwrap()
}

/// `check --json IMAGE ARGS`: its exit status and report.
fn check(image: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", "--json", "-q", image];
    all.extend(args);
    let (output, report) = lambda_image_json(&all);
    (output.status.code().unwrap(), report)
}

/// The image findings of `level`, as `check: message (hint)`.
fn findings(report: &Value, level: &str) -> Vec<String> {
    report["image"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["level"] == level)
        .map(|finding| {
            format!(
                "{}: {} ({})",
                finding["check"].as_str().unwrap(),
                finding["message"].as_str().unwrap(),
                finding["hint"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The check names of the findings of `level`.
fn checks(report: &Value, level: &str) -> Vec<String> {
    findings(report, level)
        .iter()
        .map(|finding| finding.split(':').next().unwrap().to_owned())
        .collect()
}

/// One image and what `check` must say about it.
struct Case {
    name: &'static str,
    image: String,
    errors: &'static [&'static str],
    warnings: &'static [&'static str],
    /// Must appear in the error (or, without errors, the warning) findings.
    says: &'static [&'static str],
}

fn expect(cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let (code, report) = check(&case.image, &[]);
        let errors = checks(&report, "error");
        let warnings = checks(&report, "warning");
        let expected_code = if case.errors.is_empty() {
            0
        } else {
            CHECK_FAILED
        };
        let text = if case.errors.is_empty() {
            findings(&report, "warning").join("\n")
        } else {
            findings(&report, "error").join("\n")
        };
        let missing: Vec<_> = case
            .says
            .iter()
            .filter(|fragment| !text.contains(*fragment))
            .collect();
        if code != expected_code
            || errors != case.errors
            || warnings != case.warnings
            || !missing.is_empty()
        {
            failures.push(format!(
                "{}: exit {code} (want {expected_code}), errors {errors:?} (want {:?}), warnings {warnings:?} \
                 (want {:?}), missing {missing:?}\n{report:#}",
                case.name, case.errors, case.warnings
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `/var/runtime/bootstrap` as a link, absolute or relative, through a linked parent directory or
/// a chain, is checked at the file it names, as execve follows it. Before, any link was "neither
/// an ELF executable nor a #! script": only files named `bootstrap` had their first bytes read.
/// Dangling links and loops stay errors (alertlogic/rebar3_erllambda#26 replaced a symlinked
/// bootstrap with a wrapper script after a failure on provided.al2023).
#[test]
fn a_symlinked_bootstrap_is_checked_at_the_file_it_names() {
    let dir = scratch();
    let d = dir.path();
    let cmd = ["--config.cmd=bootstrap"];
    let image = |name, prepare: &dyn Fn(&Path)| umoci_image(d, name, prepare, &cmd);
    let cases = [
        Case {
            name: "absolute link",
            image: image("absolute", &|root| {
                put(root, "var/task/my-function", &amd64_elf());
                link(root, "var/runtime/bootstrap", "/var/task/my-function");
            }),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "relative link",
            image: image("relative", &|root| {
                put(root, "var/task/main", &amd64_elf());
                link(root, "var/runtime/bootstrap", "../task/main");
            }),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "linked parent directory",
            image: image("parent", &|root| {
                fs::remove_dir_all(root.join("var/runtime")).unwrap();
                put(root, "opt/rt/bootstrap", &amd64_elf());
                link(root, "var/runtime", "/opt/rt");
            }),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "chain of links",
            image: image("chain", &|root| {
                put(root, "var/task/releases/v2/main", &amd64_elf());
                link(root, "var/task/current", "releases/v2");
                link(root, "var/runtime/bootstrap", "/var/task/current/main");
            }),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "link to an arm64 ELF",
            image: image("arm64", &|root| {
                put(root, "var/task/my-function", &arm64_elf());
                link(root, "var/runtime/bootstrap", "/var/task/my-function");
            }),
            errors: &["architecture"],
            warnings: &[],
            says: &["aarch64"],
        },
        Case {
            name: "dangling link",
            image: image("dangling", &|root| {
                link(root, "var/runtime/bootstrap", "/var/task/my-function");
            }),
            errors: &["bootstrap"],
            warnings: &[],
            says: &["/var/task/my-function is not in the image"],
        },
        Case {
            name: "link loop",
            image: image("loop", &|root| {
                link(root, "var/runtime/bootstrap", "bootstrap2");
                link(root, "var/runtime/bootstrap2", "bootstrap");
            }),
            errors: &["bootstrap"],
            warnings: &[],
            says: &["loop"],
        },
        Case {
            name: "link to a file that is not executable",
            image: image("mode", &|root| {
                put(root, "var/task/my-function", &amd64_elf());
                fs::set_permissions(
                    root.join("var/task/my-function"),
                    fs::Permissions::from_mode(0o644),
                )
                .unwrap();
                link(root, "var/runtime/bootstrap", "/var/task/my-function");
            }),
            errors: &["bootstrap"],
            warnings: &[],
            says: &["not executable"],
        },
    ];
    expect(&cases);

    // The ELF behind the link was read: its architecture was compared with the config's.
    let (_, report) = check(&cases[0].image, &[]);
    let infos = findings(&report, "info").join("\n");
    assert!(
        infos.contains("architecture: /var/runtime/bootstrap is an ELF executable for x86-64")
            && infos.contains("symbolic link (to /var/task/my-function)"),
        "{infos}"
    );
}

/// An entrypoint that is a link, or a bare name found on the config's PATH, runs on Lambda:
/// AWS's Dockerfiles for its runtime interface clients use `/usr/local/bin/python` and
/// `/usr/local/bin/npx`, both links (aws/aws-lambda-python-runtime-interface-client and
/// aws/aws-lambda-nodejs-runtime-interface-client READMEs), and `ENTRYPOINT ["npx", ...]` is a
/// bare name (aws/aws-lambda-runtime-interface-emulator#44). So they warn, and are checked at what
/// they name; a name on no PATH directory or a dangling link fails (aws/aws-lambda-ruby-runtime-
/// interface-client#13: an entrypoint path that was not in the image, `Runtime.InvalidEntrypoint`).
#[test]
fn an_entrypoint_link_or_a_name_on_path_warns_and_is_checked_where_it_leads() {
    let dir = scratch();
    let d = dir.path();
    let python = [
        "--clear=config.entrypoint",
        "--config.entrypoint=/usr/local/bin/python",
        "--config.entrypoint=-m",
        "--config.entrypoint=awslambdaric",
        "--config.cmd=app.handler",
    ];
    let python3 = [
        "--clear=config.entrypoint",
        "--config.entrypoint=python3",
        "--config.entrypoint=-m",
        "--config.entrypoint=awslambdaric",
        "--config.cmd=app.handler",
    ];
    let npx = [
        "--clear=config.entrypoint",
        "--config.entrypoint=/usr/local/bin/npx",
        "--config.entrypoint=aws-lambda-ric",
        "--config.cmd=app.handler",
    ];
    // A static ELF stands in for the interpreters; `env` is busybox's, as on many images.
    let cases = [
        Case {
            name: "entrypoint link (python -> python3.12)",
            image: gnu_tar_image(
                d,
                "python-link",
                |root| {
                    put(root, "usr/local/bin/python3.12", &amd64_elf());
                    link(root, "usr/local/bin/python", "python3.12");
                },
                &python,
            ),
            errors: &[],
            warnings: &["entrypoint"],
            says: &[
                "/usr/local/bin/python is a symbolic link (to python3.12)",
                "/usr/local/bin/python3.12",
            ],
        },
        Case {
            name: "bare name on PATH",
            image: gnu_tar_image(
                d,
                "python3-path",
                |root| put(root, "var/lang/bin/python3", &amd64_elf()),
                &python3,
            ),
            errors: &[],
            warnings: &["entrypoint"],
            says: &["`python3` is not an absolute path", "/var/lang/bin/python3"],
        },
        Case {
            name: "npx: a link to a #!/usr/bin/env node script",
            image: gnu_tar_image(
                d,
                "npx",
                |root| {
                    put(
                        root,
                        "usr/local/lib/node_modules/npm/bin/npx-cli.js",
                        b"#!/usr/bin/env node\nrequire('../lib/cli.js')(process)\n",
                    );
                    link(
                        root,
                        "usr/local/bin/npx",
                        "../lib/node_modules/npm/bin/npx-cli.js",
                    );
                    put(root, "usr/local/bin/node", &amd64_elf());
                    link(root, "usr/bin/env", "/bin/busybox");
                },
                &npx,
            ),
            errors: &[],
            warnings: &["entrypoint"],
            says: &["symbolic link"],
        },
        Case {
            name: "bare name on no PATH directory",
            image: gnu_tar_image(
                d,
                "python3-missing",
                |root| put(root, "opt/python3", &amd64_elf()),
                &python3,
            ),
            errors: &["entrypoint"],
            warnings: &[],
            says: &[
                "`python3` is not an absolute path",
                "/var/lang/bin:/usr/local/bin",
            ],
        },
        Case {
            name: "entrypoint link to nothing",
            image: gnu_tar_image(
                d,
                "python-dangling",
                |root| link(root, "usr/local/bin/python", "python3.12"),
                &python,
            ),
            errors: &["entrypoint"],
            warnings: &[],
            says: &["/usr/local/bin/python3.12 is not in the image"],
        },
        Case {
            name: "bare name on PATH, for the wrong architecture",
            image: gnu_tar_image(
                d,
                "python3-arm64",
                |root| put(root, "usr/local/bin/python3", &arm64_elf()),
                &python3,
            ),
            errors: &["architecture"],
            warnings: &["entrypoint"],
            says: &["aarch64"],
        },
        Case {
            name: "npx whose env finds no node",
            image: gnu_tar_image(
                d,
                "npx-no-node",
                |root| {
                    put(
                        root,
                        "usr/local/lib/node_modules/npm/bin/npx-cli.js",
                        b"#!/usr/bin/env node\n",
                    );
                    link(
                        root,
                        "usr/local/bin/npx",
                        "../lib/node_modules/npm/bin/npx-cli.js",
                    );
                    link(root, "usr/bin/env", "/bin/busybox");
                },
                &npx,
            ),
            errors: &["interpreter"],
            warnings: &["entrypoint"],
            says: &["the #! interpreter node of /usr/local/bin/npx"],
        },
    ];
    expect(&cases);
}

/// A `#!` line is read as Linux's binfmt_script reads it: a Windows line ending makes the
/// interpreter `/bin/sh\r` (aws-samples/aws-lambda-layer-kubectl#39: "fork/exec
/// /var/task/bootstrap: no such file or directory" until dos2unix), and the interpreter, or NAME of
/// `#!/usr/bin/env NAME` on the config's PATH, must be in the image, reported the same way.
/// Before, a script's line was not looked into: all of these passed.
#[test]
fn scripts_in_the_image_are_read_as_the_kernel_reads_them() {
    let dir = scratch();
    let d = dir.path();
    let bootstrap = |name: &'static str, script: &'static [u8]| {
        gnu_tar_image(
            d,
            name,
            |root| {
                put(root, "var/runtime/bootstrap", script);
                link(root, "usr/bin/env", "/bin/busybox");
            },
            &["--config.cmd=bootstrap"],
        )
    };
    let cases = [
        Case {
            name: "control: #!/bin/sh",
            image: bootstrap("sh", b"#!/bin/sh\nexec /var/task/main\n"),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "control: #!/usr/bin/env sh, sh on PATH",
            image: bootstrap("env-sh", b"#!/usr/bin/env sh\nexec /var/task/main\n"),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "bootstrap saved with CRLF",
            image: bootstrap("crlf", b"#!/bin/sh\r\nexec /var/task/main\r\n"),
            errors: &["bootstrap"],
            warnings: &[],
            says: &["carriage return", "dos2unix"],
        },
        Case {
            name: "#!/usr/bin/env bash with CRLF",
            image: bootstrap(
                "env-crlf",
                b"#!/usr/bin/env bash\r\nexec /var/task/main\r\n",
            ),
            errors: &["bootstrap"],
            warnings: &[],
            says: &["carriage return"],
        },
        Case {
            name: "#!/usr/bin/python3, not in the image",
            image: bootstrap("python3-path", b"#!/usr/bin/python3\nprint('hi')\n"),
            errors: &["interpreter"],
            warnings: &[],
            says: &[
                "the #! interpreter /usr/bin/python3 of /var/runtime/bootstrap",
                "not in the image",
            ],
        },
        Case {
            name: "#!/usr/bin/env python3, on no PATH directory",
            image: bootstrap("python3-env", b"#!/usr/bin/env python3\nprint('hi')\n"),
            errors: &["interpreter"],
            warnings: &[],
            says: &[
                "the #! interpreter python3 of /var/runtime/bootstrap",
                "not in the image",
                "/var/lang/bin:",
            ],
        },
        Case {
            name: "entrypoint script saved with CRLF",
            image: gnu_tar_image(
                d,
                "entrypoint-crlf",
                |root| {
                    put(
                        root,
                        "var/task/run.sh",
                        b"#!/bin/sh\r\nexec /var/task/main \"$@\"\r\n",
                    )
                },
                &[
                    "--clear=config.entrypoint",
                    "--config.entrypoint=/var/task/run.sh",
                ],
            ),
            errors: &["entrypoint"],
            warnings: &[],
            says: &["/var/task/run.sh has Windows line endings"],
        },
        Case {
            name: "#! interpreter for the wrong architecture",
            image: gnu_tar_image(
                d,
                "interpreter-arm64",
                |root| {
                    put(root, "opt/bin/tool", &arm64_elf());
                    put(root, "var/runtime/bootstrap", b"#!/opt/bin/tool\n");
                },
                &["--config.cmd=bootstrap"],
            ),
            errors: &["architecture"],
            warnings: &[],
            says: &["the #! interpreter /opt/bin/tool of /var/runtime/bootstrap"],
        },
    ];
    expect(&cases);
}

/// A C program compiled here, dynamically linked unless `flags` say otherwise.
fn compile(dir: &Path, compiler: &str, name: &str, flags: &[&str]) -> Vec<u8> {
    let source = dir.join("hello.c");
    fs::write(
        &source,
        "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
    )
    .unwrap();
    let binary = dir.join(name);
    run(Command::new(compiler)
        .args(flags)
        .arg("-O2")
        .arg("-o")
        .arg(&binary)
        .arg(&source));
    fs::read(binary).unwrap()
}

/// A dynamically linked bootstrap needs its program interpreter (PT_INTERP) in the image, or the
/// kernel fails the exec with "No such file or directory": one built on Alpine (musl) cannot start
/// on a glibc base (awslabs/cfn-ecr-aws-soci-index-builder#3: an Alpine-built Go binary, "fork/exec
/// /var/task/main: no such file or directory"; aws/aws-lambda-rust-runtime#361). Read from the
/// program headers, so a stripped binary is judged the same. Before, `check` passed them all.
#[test]
fn a_dynamically_linked_bootstrap_needs_its_loader_in_the_image() {
    let dir = scratch();
    let d = dir.path();
    let musl = compile(d, "musl-gcc", "hello-musl", &[]);
    let glibc = compile(d, "gcc", "hello-glibc", &[]);
    let stripped = d.join("hello-musl-stripped");
    fs::write(&stripped, &musl).unwrap();
    run(Command::new("strip").arg("--strip-all").arg(&stripped));
    let stripped = fs::read(&stripped).unwrap();
    let loader = fs::read("/lib64/ld-linux-x86-64.so.2").unwrap();

    let loader = &loader;
    let image = |name: &'static str, bootstrap: Vec<u8>, with_loader: bool| {
        umoci_image(
            d,
            name,
            move |root| {
                put(root, "var/runtime/bootstrap", &bootstrap);
                if with_loader {
                    // As on Amazon Linux: /lib64 is a link to usr/lib64.
                    put(root, "usr/lib64/ld-linux-x86-64.so.2", loader);
                    link(root, "lib64", "usr/lib64");
                }
            },
            &["--config.cmd=bootstrap"],
        )
    };
    let cases = [
        Case {
            name: "musl-gcc, dynamic",
            image: image("musl", musl, false),
            errors: &["interpreter"],
            warnings: &[],
            says: &[
                "/lib/ld-musl-x86_64.so.1 is not in the image",
                "musl",
                "statically",
            ],
        },
        Case {
            name: "musl-gcc, dynamic, stripped",
            image: image("musl-stripped", stripped, false),
            errors: &["interpreter"],
            warnings: &[],
            says: &["/lib/ld-musl-x86_64.so.1"],
        },
        Case {
            name: "gcc, dynamic, no glibc loader in the image",
            image: image("glibc-missing", glibc.clone(), false),
            errors: &["interpreter"],
            warnings: &[],
            says: &["/lib64/ld-linux-x86-64.so.2 is not in the image"],
        },
        Case {
            name: "control: gcc, dynamic, the loader at /lib64 through a link",
            image: image("glibc", glibc, true),
            errors: &[],
            warnings: &[],
            says: &[],
        },
    ];
    expect(&cases);
}

/// `build --tag REPO:v1` for two architectures writes an index; `check REPO:v1` is what CI runs
/// next. By tag the index warns (exit 0) and names each architecture's `REPO@sha256:...` to
/// deploy; given as an ImageUri (by its digest, or with --image-uri) it fails, as Lambda rejects it
/// (boto/boto3#3255; docker/buildx#1533: provenance indexes broke Lambda deploys).
#[test]
fn an_index_warns_by_tag_and_fails_as_an_image_uri() {
    let registry = TestRegistry::start(RegistryOptions::default());
    let dir = scratch();
    let tag = registry.reference("fn:v1");
    let cache = format!("--cache-dir={}", dir.path().join("cache").display());
    let mut args = vec![
        "build".to_owned(),
        "-q".to_owned(),
        "--base".to_owned(),
        base_reference(),
        "--tag".to_owned(),
        tag.clone(),
        cache.clone(),
    ];
    args.extend(both_bootstrap_args());
    run(crate::support::lambda_image().args(&args));

    let (code, report) = check(&tag, &[&cache]);
    assert_eq!(code, 0, "an index by tag only warns: {report:#}");
    assert_eq!(checks(&report, "warning"), ["index"], "{report:#}");
    assert!(checks(&report, "error").is_empty(), "{report:#}");
    let index_digest = report["image"]["digest"].as_str().unwrap().to_owned();
    let images = report["image"]["images"].as_array().unwrap();
    assert_eq!(
        images.len(),
        2,
        "both architectures are checked: {report:#}"
    );
    let warning = findings(&report, "warning").join("\n");
    let mut deploys = Vec::new();
    for image in images {
        let architecture = image["architecture"].as_str().unwrap();
        let deploy = image["deploy"].as_str().unwrap().to_owned();
        let digest = image["digest"].as_str().unwrap();
        assert_eq!(
            deploy,
            format!("{}/fn@{digest}", registry.host()),
            "{report:#}"
        );
        assert!(
            warning.contains(&format!("{architecture}: {deploy}")),
            "{warning}"
        );
        // What it names is a single-architecture manifest, which Lambda accepts.
        let raw: Value = serde_json::from_str(&skopeo(&[
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{deploy}"),
        ]))
        .unwrap();
        assert_eq!(
            raw["mediaType"], "application/vnd.oci.image.manifest.v1+json",
            "{deploy}: {raw}"
        );
        deploys.push(deploy);
    }
    let text = String::from_utf8(
        run(crate::support::lambda_image().args(["check", "-q", &cache, &tag])).stdout,
    )
    .unwrap();
    assert!(
        text.contains("warning[index]") && deploys.iter().all(|d| text.contains(d.as_str())),
        "{text}"
    );

    // The index by digest is what one would paste as ImageUri: an error.
    let by_digest = format!("{}/fn@{index_digest}", registry.host());
    let (code, report) = check(&by_digest, &[&cache]);
    assert_eq!(code, CHECK_FAILED, "{report:#}");
    assert_eq!(checks(&report, "error"), ["index"], "{report:#}");
    let (code, report) = check(&tag, &[&cache, "--image-uri"]);
    assert_eq!(code, CHECK_FAILED, "{report:#}");
    assert_eq!(checks(&report, "error"), ["index"], "{report:#}");

    // One architecture's manifest is what to deploy: no index finding, and it passes.
    for deploy in &deploys {
        let (code, report) = check(deploy, &[&cache, "--image-uri"]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(report["image"]["index"], false);
        assert!(
            checks(&report, "warning").is_empty() && checks(&report, "error").is_empty(),
            "{report:#}"
        );
    }
}

/// `#!` lines in an image get the verdict `build` and `check --bootstrap` give them (one
/// decision, in `bootstrap::shebang`): env's `-S` options are read and the command after them
/// looked up (koalaman/shellcheck#2143: readers that stop at `-S`), a command from the
/// environment is not checked, lines Linux and env cannot run are errors, `-e -x` as one
/// argument a warning (koalaman/shellcheck#805). A #! interpreter for the wrong architecture
/// comes with the base, and the hint says so; a relative entrypoint is named where the
/// WorkingDir puts it.
#[test]
fn env_lines_and_interpreter_arguments_in_an_image_are_read_as_linux_and_env_read_them() {
    let dir = scratch();
    let d = dir.path();
    let bootstrap = |name: &'static str, script: &'static [u8]| {
        gnu_tar_image(
            d,
            name,
            |root| {
                put(root, "var/runtime/bootstrap", script);
                link(root, "usr/bin/env", "/bin/busybox");
            },
            &["--config.cmd=bootstrap"],
        )
    };
    let cases = [
        Case {
            name: "env -S -i python3, python3 on no PATH directory",
            image: bootstrap("s-i-python3", b"#!/usr/bin/env -S -i python3\nprint(1)\n"),
            errors: &["interpreter"],
            warnings: &[],
            says: &["the #! interpreter python3 of /var/runtime/bootstrap"],
        },
        Case {
            name: "env -S VAR=1 sh: sh found",
            image: bootstrap("s-var-sh", b"#!/usr/bin/env -S VAR=1 sh\necho hi\n"),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "env -S ${X} sh: not known before start",
            image: bootstrap("s-expand", b"#!/usr/bin/env -S ${X} sh\necho hi\n"),
            errors: &[],
            warnings: &[],
            says: &[],
        },
        Case {
            name: "env VAR=1 sh without -S: env runs the script again",
            image: bootstrap("var-sh", b"#!/usr/bin/env VAR=1 sh\necho hi\n"),
            errors: &["interpreter"],
            warnings: &[],
            says: &["endless exec loop", "#!/usr/bin/env -S VAR=1 sh"],
        },
        Case {
            name: "env -i sh without -S",
            image: bootstrap("i-sh", b"#!/usr/bin/env -i sh\necho hi\n"),
            errors: &["interpreter"],
            warnings: &[],
            says: &["invalid option -- ' '", "#!/usr/bin/env -S -i sh"],
        },
        Case {
            name: "#!/bin/sh -e -x",
            image: bootstrap("e-x", b"#!/bin/sh -e -x\necho hi\n"),
            errors: &[],
            warnings: &["interpreter"],
            says: &["`-e -x`", "set -ex"],
        },
        Case {
            name: "#!/bin/sh/",
            image: bootstrap("slash", b"#!/bin/sh/\necho hi\n"),
            errors: &["interpreter"],
            warnings: &[],
            says: &["Not a directory"],
        },
        Case {
            name: "#!/bin/sh -e with CRLF",
            image: bootstrap("crlf-e", b"#!/bin/sh -e\r\necho hi\r\n"),
            errors: &["bootstrap"],
            warnings: &[],
            says: &["runs /bin/sh with the argument `-e\\r`"],
        },
        Case {
            name: "#! interpreter for the wrong architecture: the base's",
            image: gnu_tar_image(
                d,
                "interpreter-arm64-hint",
                |root| {
                    put(root, "opt/bin/tool", &arm64_elf());
                    put(root, "var/runtime/bootstrap", b"#!/opt/bin/tool\n");
                },
                &["--config.cmd=bootstrap"],
            ),
            errors: &["architecture"],
            warnings: &[],
            says: &["build on a base image for amd64"],
        },
    ];
    expect(&cases);

    // `./myrt` in WorkingDir /var/task: named /var/task/myrt, and the hint is about WorkingDir.
    let image = gnu_tar_image(
        d,
        "dot-entrypoint",
        |root| put(root, "var/task/myrt", &amd64_elf()),
        &[
            "--clear=config.entrypoint",
            "--config.entrypoint=./myrt",
            "--config.workingdir=/var/task",
        ],
    );
    let (code, report) = check(&image, &[]);
    let warnings = findings(&report, "warning").join("\n");
    assert_eq!(code, 0, "{report:#}");
    assert!(warnings.contains("[\"/var/task/myrt\", ...]"), "{warnings}");
    assert!(warnings.contains("WorkingDir"), "{warnings}");
    assert!(!warnings.contains("/./"), "{warnings}");
    assert!(!warnings.contains("PATH"), "{warnings}");
}
