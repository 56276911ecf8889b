//! Images and flags `invoke --image` refuses, each with the exit code of the README's table
//! and a message that says what to do; among them, images whose layers Lambda's unpacker
//! refuses (a hard link, a missing parent directory), made as users make them: a layer packed
//! by GNU tar added to a built image with `umoci raw add-layer`.

use std::fs;

use super::*;

#[test]
fn images_that_cannot_run_are_refused_with_what_to_do() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let image = probe_image(work.path(), "one");
    let cache = cache_dir(work.path());
    let cache_flag = cache.to_str().unwrap();

    // scratch is a base, not an image.
    let (output, _) = invoke(&["--image", "scratch", "--event", "{}"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("--base scratch"),
        "{}",
        stderr_of(&output)
    );

    // An architecture the image does not have.
    let other = if host_architecture() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let (output, _) = invoke(&[
        "--image",
        &image,
        "--arch",
        other,
        "--cache-dir",
        cache_flag,
        "--event",
        "{}",
    ]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains(&format!("no linux/{other} image")),
        "{}",
        stderr_of(&output)
    );

    // No such layout.
    let (output, _) = invoke(&["--image", "oci:/nonexistent/layout:fn", "--event", "{}"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr_of(&output));

    // An entrypoint that is not in the image: the function cannot start (exit 9), and the
    // message says what Lambda reports.
    let layout = layout_of(&image).display().to_string();
    umoci(&[
        "config",
        "--image",
        &format!("{layout}:fn"),
        "--tag",
        "missing",
        "--config.entrypoint",
        "/no/such/entrypoint",
    ]);
    let (output, report) = invoke_cached(&format!("oci:{layout}:missing"), cache_flag);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(9), "{stderr}");
    assert_eq!(report["outcome"], "exited", "{stderr}");
    assert!(stderr.contains("/no/such/entrypoint"), "{stderr}");
    assert!(stderr.contains("Runtime.InvalidEntrypoint"), "{stderr}");
    assert!(
        stderr.contains("hint: a program could not be run")
            && stderr.contains("lambda-image check")
            && stderr.contains("absolute path of an executable")
            && !stderr.contains("keep asking for events"),
        "the hint fits an entrypoint that never ran: {stderr}"
    );

    // --ephemeral-storage outside Lambda's range, and image flags without --image.
    let (output, _) = invoke(&[
        "--image",
        &image,
        "--ephemeral-storage",
        "100",
        "--event",
        "{}",
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let probe = probe_script(work.path());
    let (output, _) = invoke(&[
        "--bootstrap",
        probe.to_str().unwrap(),
        "--arch",
        "arm64",
        "--event",
        "{}",
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--arch is about the image to run"),
        "{stderr}"
    );
}

/// `layout:fn` with the GNU tar layer `tar` added on top by `umoci raw add-layer`, tagged
/// `tag`; returns its `oci:` reference and the added layer's digest.
fn with_layer(layout: &Path, tar: &Path, tag: &str) -> (String, String) {
    umoci(&[
        "raw",
        "add-layer",
        "--image",
        &format!("{}:fn", layout.display()),
        "--tag",
        tag,
        tar.to_str().unwrap(),
    ]);
    let manifest = layout_descriptor(layout, tag).unwrap();
    let manifest = read_blob_json(layout, manifest["digest"].as_str().unwrap());
    let top = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    (format!("oci:{}:{tag}", layout.display()), top)
}

/// `invoke --image IMAGE` with `cache`: it must be refused with exit 7 before anything runs,
/// naming the layer `digest`, Lambda's error and each of `expected`; returns its stderr.
fn assert_refused(image: &str, cache: &Path, digest: &str, expected: &[&str]) -> String {
    let (output, report) = invoke_cached(image, cache.to_str().unwrap());
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert_eq!(report["error"]["kind"], "image_rejected", "{report}");
    assert!(
        stderr.contains(&format!(
            "InvalidImage(ImageLayerFailure: UnsupportedImageLayerDetected - Layer Digest {digest})"
        )),
        "{stderr}"
    );
    for text in expected {
        assert!(stderr.contains(text), "{text}: {stderr}");
    }
    assert!(
        stderr.contains(&format!("`lambda-image check {image}` lists them all")),
        "{stderr}"
    );
    assert!(!stderr.contains("START RequestId"), "nothing ran: {stderr}");
    stderr
}

/// Lambda's unpacker refuses at create time a layer with a hard-link entry
/// (bazel-contrib/rules_oci#777: a layer GNU tar made from a directory where a file was
/// hard-linked) or with an entry whose parent directory is in no layer (bazel-contrib/rules_oci#645:
/// files archived without their directories), with `UnsupportedImageLayerDetected`. Docker runs
/// both; `invoke --image` and `serve --image` refuse them as Lambda does, cached or not, as
/// `check` does.
#[test]
fn layers_lambdas_unpacker_refuses_are_refused_cached_or_not_as_check_refuses_them() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let image = probe_image(work.path(), "probe");
    let layout = layout_of(&image);
    let cache = cache_dir(work.path());

    // A hard link, made by `ln` in the directory GNU tar packs.
    let tar = gnu_tar_layer(work.path(), "linked", |root| {
        let task = root.join("var/task");
        fs::create_dir_all(&task).unwrap();
        fs::write(task.join("data.json"), b"{}").unwrap();
        run(Command::new("ln")
            .arg(task.join("data.json"))
            .arg(task.join("data-copy.json")));
    });
    let (linked, digest) = with_layer(&layout, &tar, "linked");
    // GNU tar makes the second of the two it meets the link; which that is depends on the
    // directory's order.
    let listing = run_stdout(Command::new("tar").arg("-tvf").arg(&tar));
    let link = if listing.contains("./var/task/data-copy.json link to") {
        "/var/task/data-copy.json -> /var/task/data.json"
    } else {
        "/var/task/data.json -> /var/task/data-copy.json"
    };
    let expected = [
        &format!("a hard link ({link})")[..],
        "copied rather than hard-linked",
    ];
    let first = assert_refused(&linked, &cache, &digest, &expected);
    assert!(first.contains("layers unpacked in"), "{first}");
    let cached = assert_refused(&linked, &cache, &digest, &expected);
    assert!(
        cached.contains("layers cached in"),
        "a cached run refuses as the first did: {cached}"
    );

    // A tree left by a version that kept no record is scanned again, never taken as clean.
    let mut records = 0;
    for ownership in ["preserved", "user"] {
        let trees = cache.join("rootfs").join(ownership).join("sha256");
        for name in fs::read_dir(&trees).into_iter().flatten().flatten() {
            if name.file_name().to_string_lossy().ends_with(".json") {
                fs::remove_file(name.path()).unwrap();
                records += 1;
            }
        }
    }
    assert_eq!(records, 1, "one record, beside the one tree");
    assert_refused(&linked, &cache, &digest, &expected);

    // `check` refuses the same layer.
    let checked = run_unchecked(lambda_image().args(["check", &linked]));
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(7), "{stdout}");
    assert!(stdout.contains("error[hard-links]"), "{stdout}");
    assert!(stdout.contains(&digest), "{stdout}");

    // A file archived without its directories: `tar -C ROOT var/task/lib/config.json`, on a
    // base that has no /var/task/lib.
    let root = work.path().join("orphan-root");
    fs::create_dir_all(root.join("var/task/lib")).unwrap();
    fs::write(root.join("var/task/lib/config.json"), b"{}").unwrap();
    let tar = work.path().join("orphan-layer.tar");
    run(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("var/task/lib/config.json"));
    let (orphan, digest) = with_layer(&layout, &tar, "orphan");
    assert_refused(
        &orphan,
        &cache,
        &digest,
        &[
            "an entry whose parent directory is in no layer before it (/var/task/lib/config.json)",
            "an entry for every parent directory",
        ],
    );
    let checked = run_unchecked(lambda_image().args(["check", &orphan]));
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert_eq!(checked.status.code(), Some(7), "{stdout}");
    assert!(stdout.contains("error[missing-parents]"), "{stdout}");

    // `serve --image` refuses it before it serves anything.
    let served = run_unchecked(
        Command::new("timeout")
            .arg("120")
            .arg(env!("CARGO_BIN_EXE_lambda-image"))
            .args(["serve", "--port", "0", "--image", &orphan, "--cache-dir"])
            .arg(&cache)
            .stdin(std::process::Stdio::null()),
    );
    let stderr = stderr_of(&served);
    assert_eq!(served.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("UnsupportedImageLayerDetected"), "{stderr}");

    // The image without the added layer runs.
    let (output, report) = invoke_cached(&image, cache.to_str().unwrap());
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(report["response"]["uid"], 993, "{report}");
}

#[test]
fn a_working_dir_the_image_lacks_is_an_init_error_named_runtime_invalid_working_dir() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let image = probe_image(work.path(), "one");
    let cache = cache_dir(work.path());
    let layout = layout_of(&image).display().to_string();
    // Changed as a user would change it; a relative one is refused as AWS's emulator refuses
    // it, not resolved against `/`.
    for (tag, working_dir, said) in [
        (
            "nowhere",
            "/nonexistent",
            "cannot enter the image's working directory /nonexistent",
        ),
        (
            "relative",
            "var/task",
            "working directory \"var/task\" is not an absolute path",
        ),
    ] {
        umoci(&[
            "config",
            "--image",
            &format!("{layout}:fn"),
            "--tag",
            tag,
            "--config.workingdir",
            working_dir,
        ]);
        let (output, report) =
            invoke_cached(&format!("oci:{layout}:{tag}"), cache.to_str().unwrap());
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(9), "{working_dir}: {stderr}");
        assert_eq!(report["outcome"], "exited", "{stderr}");
        assert_eq!(report["error"]["kind"], "init_error", "{stderr}");
        assert!(
            stderr.contains(said) && stderr.contains("Runtime.InvalidWorkingDir"),
            "the sandbox's line names the directory and Lambda's error: {stderr}"
        );
        assert!(
            stderr.contains("hint: the image's working directory could not be entered")
                && stderr.contains("set WorkingDir in the image's config to a directory")
                && !stderr.contains("InvalidEntrypoint")
                && !stderr.contains("keep asking for events"),
            "the hint fits a working directory, not an entrypoint: {stderr}"
        );
        assert!(
            stderr.contains("error: the image's entrypoint never ran: its working directory"),
            "the error does not say the entrypoint exited: {stderr}"
        );
    }
}
