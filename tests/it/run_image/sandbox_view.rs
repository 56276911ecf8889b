//! What a function sees from inside the sandbox, through the probe runtime: as root and through
//! a user namespace, with a shared cache and with its own.

use super::*;

#[test]
fn a_probe_sees_what_lambda_enforces_as_root_and_through_a_user_namespace() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let image = probe_image(work.path(), "probe");
    let cache = cache_dir(work.path());
    let cache_flag = cache.to_str().unwrap();

    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache_flag,
        "--ephemeral-storage",
        "600",
        "--event",
        r#"{"probe": 1}"#,
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(report["outcome"], "response");
    let answer = &report["response"];
    assert_lambda_like(answer, 600, "as root");
    assert_eq!(answer["event"], json!({"probe": 1}));
    assert!(
        stderr_of(&output).contains("unpacked"),
        "{}",
        stderr_of(&output)
    );

    // The second run finds the tree in the cache. aws/aws-sam-cli#6570: /tmp is as large as
    // the ephemeral storage, so a function that writes more fails here as on Lambda.
    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache_flag,
        // Writing 600 MB takes a while on a loaded machine.
        "--timeout",
        "60",
        "--event",
        r#"{"fill": 1}"#,
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("cached"),
        "{}",
        stderr_of(&output)
    );
    let answer = &report["response"];
    assert_lambda_like(answer, 512, "as root, default storage");
    assert!(
        answer["fill"]
            .as_str()
            .unwrap_or_default()
            .contains("No space left on device"),
        "600 MB do not fit in 512 MB of /tmp: {answer}"
    );

    if !can_run_as_nobody() {
        eprintln!("skipped the user-namespace half: setpriv cannot run a command as nobody here");
        return;
    }
    let home = work.path().join("nobody-home");
    let (output, report) = invoke_as_nobody(
        &[
            "--image",
            &image,
            "--cache-dir",
            cache_flag,
            "--event",
            "{}",
        ],
        &home,
    );
    let stderr = stderr_of(&output);
    if stderr.contains("user namespace") && !output.status.success() {
        eprintln!("skipped the user-namespace half: {stderr}");
        return;
    }
    assert!(output.status.success(), "{stderr}");
    assert_lambda_like(&report["response"], 512, "as nobody, in a user namespace");
    // Found by trying it: the cache shared with root holds root's trees, and nobody cannot
    // write beside them; the tree is then unpacked for the run alone, with a warning.
    assert!(stderr.contains("temporary directory"), "{stderr}");

    // nobody's own (default) cache.
    std::fs::create_dir_all(&home).unwrap();
    run(Command::new("chown").arg("65534:65534").arg(&home));
    let (output, report) = invoke_as_nobody(&["--image", &image, "--event", "{}"], &home);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_lambda_like(&report["response"], 512, "as nobody, its own cache");
    assert!(home.join(".cache/lambda-image/rootfs").is_dir(), "{stderr}");
    let (output, _) = invoke_as_nobody(&["--image", &image, "--event", "{}"], &home);
    assert!(
        stderr_of(&output).contains("cached"),
        "{}",
        stderr_of(&output)
    );
}
