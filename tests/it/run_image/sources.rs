//! Images made or changed by other tools: a whiteout written by umoci, and copies made by
//! skopeo into a docker-archive and an oci-archive.

use super::*;

#[test]
fn a_file_deleted_in_a_later_layer_by_another_tool_is_gone() {
    // A layer made by umoci that deletes a file of an earlier layer holds a whiteout
    // (`.wh.secret`); unpackers that skip whiteouts let deleted files come back
    // (opencontainers/umoci#224, concourse/registry-image-resource#284).
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let secret = work.path().join("secret");
    std::fs::write(&secret, "deleted later").unwrap();
    let include = format!("{}:/var/task/secret", secret.display());
    let image = build_image(
        work.path(),
        "whiteout",
        &[format!("{}={}", host_architecture(), probe.display())],
        &["--include", &include],
    );
    let layout = layout_of(&image).display().to_string();
    let cache = cache_dir(work.path());
    let (output, report) = invoke_cached(&image, cache.to_str().unwrap());
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        report["response"]["secret"], "ok",
        "there before the deletion"
    );

    let bundle = work.path().join("bundle");
    umoci(&[
        "unpack",
        "--rootless",
        "--image",
        &format!("{layout}:fn"),
        bundle.to_str().unwrap(),
    ]);
    std::fs::remove_file(bundle.join("rootfs/var/task/secret")).unwrap();
    umoci(&[
        "repack",
        "--image",
        &format!("{layout}:deleted"),
        bundle.to_str().unwrap(),
    ]);
    let (output, report) = invoke_cached(&format!("oci:{layout}:deleted"), cache.to_str().unwrap());
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        report["response"]["secret"]
            .as_str()
            .unwrap_or_default()
            .contains("No such file"),
        "the whiteout removed it: {}",
        report["response"]
    );
}

#[test]
fn an_image_copied_by_skopeo_runs_from_a_docker_archive_and_an_oci_archive() {
    // skopeo writes the name of a docker-archive's image fully qualified
    // (`docker.io/my/fn:v1`) where `docker save` writes `my/fn:v1`; either spelling names it.
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let image = probe_image(work.path(), "copied");
    let docker_archive = work.path().join("with space").join("fn.tar");
    std::fs::create_dir_all(docker_archive.parent().unwrap()).unwrap();
    let oci_archive = work.path().join("fn-oci.tar");
    skopeo(&[
        "copy",
        "--quiet",
        &image,
        &format!("docker-archive:{}:my/fn:v1", docker_archive.display()),
    ]);
    skopeo(&[
        "copy",
        "--quiet",
        &image,
        &format!("oci-archive:{}:v1", oci_archive.display()),
    ]);
    let cache = cache_dir(work.path());
    for reference in [
        format!("docker-archive:{}:my/fn:v1", docker_archive.display()),
        format!(
            "docker-archive:{}:docker.io/my/fn:v1",
            docker_archive.display()
        ),
        format!("oci-archive:{}:v1", oci_archive.display()),
    ] {
        let (output, report) = invoke(&[
            "--image",
            &reference,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--event",
            r#"{"copied": true}"#,
        ]);
        assert!(
            output.status.success(),
            "{reference}: {}",
            stderr_of(&output)
        );
        assert_eq!(
            report["response"]["event"],
            json!({"copied": true}),
            "{reference}"
        );
    }
    let (output, _) = invoke(&[
        "--image",
        &format!("docker-archive:{}:my/other:v1", docker_archive.display()),
        "--event",
        "{}",
    ]);
    let stderr = stderr_of(&output);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("docker.io/my/fn:v1"),
        "names what it has: {stderr}"
    );
    assert!(stderr.contains("@N"), "{stderr}");
}
