//! Images and flags `invoke --image` refuses, each with the exit code of the README's table
//! and a message that says what to do.

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
    let layout = image
        .trim_start_matches("oci:")
        .trim_end_matches(":fn")
        .to_owned();
    umoci(&[
        "config",
        "--image",
        &format!("{layout}:fn"),
        "--tag",
        "missing",
        "--config.entrypoint",
        "/no/such/entrypoint",
    ]);
    let (output, report) = invoke(&[
        "--image",
        &format!("oci:{layout}:missing"),
        "--cache-dir",
        cache_flag,
        "--event",
        "{}",
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(9), "{stderr}");
    assert_eq!(report["outcome"], "exited", "{stderr}");
    assert!(stderr.contains("/no/such/entrypoint"), "{stderr}");
    assert!(stderr.contains("Runtime.InvalidEntrypoint"), "{stderr}");
    assert!(
        stderr.contains("hint: the image's entrypoint could not start")
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

#[test]
fn a_working_dir_the_image_lacks_is_an_init_error_named_runtime_invalid_working_dir() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let image = probe_image(work.path(), "one");
    let cache = cache_dir(work.path());
    let layout = image
        .trim_start_matches("oci:")
        .trim_end_matches(":fn")
        .to_owned();
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
        let (output, report) = invoke(&[
            "--image",
            &format!("oci:{layout}:{tag}"),
            "--cache-dir",
            cache.to_str().unwrap(),
            "--event",
            "{}",
        ]);
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
