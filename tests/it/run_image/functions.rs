//! Real functions in images: the `lambda_runtime` echo function from a layout and from a
//! registry, a dynamically linked bootstrap on the image's own glibc and libraries, and an
//! arm64 image under qemu.

use super::*;

#[test]
fn the_echo_function_answers_invoke_image_from_a_layout_and_serve_image_from_a_registry() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the echo function is built for x86_64 hosts' images here");
        return;
    }
    let work = workdir();
    let echo = echo_function().display().to_string();
    let image = build_image(
        work.path(),
        "echo",
        std::slice::from_ref(&echo),
        &["--env", "ECHO_EXTRA=from-build"],
    );
    let cache = cache_dir(work.path());

    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--env",
        "AWS_LAMBDA_FUNCTION_NAME=image_fn",
        "--event",
        r#"{"from": "the layout"}"#,
    ]);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let answer = &report["response"];
    assert_eq!(answer["echo"], json!({"from": "the layout"}));
    assert_eq!(answer["function"], "image_fn");
    assert_eq!(answer["handler"], "bootstrap");
    assert_eq!(
        answer["environment"]["ECHO_EXTRA"], "from-build",
        "the image's Env"
    );
    assert_eq!(answer["environment"]["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(
        answer["environment"]["PATH"],
        BASE_ENV[2].trim_start_matches("PATH="),
        "the image's PATH"
    );
    assert!(
        stderr.contains("START RequestId"),
        "the emulator's log lines: {stderr}"
    );
    assert!(stderr.contains("REPORT RequestId"), "{stderr}");

    // The same function, pushed to the distribution registry and served from there.
    let registry = TestRegistry::start(RegistryOptions::default());
    let target = registry.reference("fn:v1");
    run(lambda_image().args([
        "build",
        "--quiet",
        "--base",
        &base_reference(),
        "--bootstrap",
        &echo,
        "--tag",
        &target,
    ]));
    let cache_flag = cache.to_str().unwrap().to_owned();
    let serve = Serve::start(&[
        "--image",
        &target,
        "--cache-dir",
        &cache_flag,
        "--timeout",
        "10",
    ]);
    let first = curl_post(&serve.invocations_url(), r#"{"from": "the registry"}"#);
    assert_eq!(first.status, 200, "{}", serve.stderr());
    let first = first.json();
    assert_eq!(first["echo"], json!({"from": "the registry"}));
    let second = curl_post(&serve.invocations_url(), r#"{"again": true}"#).json();
    assert_eq!(second["pid"], first["pid"], "warm between invocations");
    assert_eq!(second["invocation"], 2);
    assert!(serve.stop().success());

    // And the other way round: invoke from the registry, serve from the layout.
    let (output, report) = invoke(&[
        "--image",
        &target,
        "--cache-dir",
        &cache_flag,
        "--event",
        r#"{"invoked": "from the registry"}"#,
    ]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        report["response"]["echo"],
        json!({"invoked": "from the registry"})
    );
    let serve = Serve::start(&["--image", &image, "--cache-dir", &cache_flag]);
    let answer = curl_post(&serve.invocations_url(), r#"{"served": "from the layout"}"#);
    assert_eq!(answer.status, 200, "{}", serve.stderr());
    assert_eq!(answer.json()["echo"], json!({"served": "from the layout"}));
    assert!(serve.stop().success());
}

#[test]
fn a_dynamic_bootstrap_runs_on_the_images_glibc_and_a_library_only_the_image_has() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !cfg!(target_arch = "x86_64") {
        eprintln!("skipped: the glibc files included are the x86_64 host's");
        return;
    }
    let work = workdir();
    // libgreet.so exists only in the image (/var/task/lib, on the base's LD_LIBRARY_PATH); the
    // bootstrap is linked against it and glibc, and then execs the probe runtime with busybox.
    let library_source = work.path().join("greet.c");
    std::fs::write(
        &library_source,
        "const char *greeting(void) { return \"greetings from the image\"; }\n",
    )
    .unwrap();
    let library = work.path().join("libgreet.so");
    run(Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&library_source));
    let source = work.path().join("bootstrap.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\n#include <unistd.h>\nconst char *greeting(void);\n\
         int main(void) {\n  fprintf(stderr, \"%s\\n\", greeting());\n  fflush(stderr);\n  \
         execl(\"/bin/sh\", \"sh\", \"/var/task/probe.sh\", (char *)0);\n  perror(\"execl\");\n  return 1;\n}\n",
    )
    .unwrap();
    let bootstrap = work.path().join("bootstrap");
    run(Command::new("gcc")
        .arg("-o")
        .arg(&bootstrap)
        .arg(&source)
        .arg(format!("-L{}", work.path().display()))
        .arg("-lgreet"));
    let probe = probe_script(work.path());
    let includes = [
        format!("{}:/var/task/lib/libgreet.so", library.display()),
        format!("{}:/var/task/probe.sh", probe.display()),
        "/lib/x86_64-linux-gnu/libc.so.6:/lib64/libc.so.6".to_owned(),
        "/lib64/ld-linux-x86-64.so.2:/lib64/ld-linux-x86-64.so.2".to_owned(),
    ];
    let mut extra: Vec<&str> = Vec::new();
    for include in &includes {
        extra.extend(["--include", include]);
    }
    let image = build_image(
        work.path(),
        "dynamic",
        &[bootstrap.display().to_string()],
        &extra,
    );
    let cache = cache_dir(work.path());
    let (output, report) = invoke(&[
        "--image",
        &image,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--event",
        r#"{"dynamic": true}"#,
    ]);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("greetings from the image"), "{stderr}");
    assert_eq!(report["response"]["event"], json!({"dynamic": true}));
    assert_eq!(report["response"]["uid"], 993);
}

#[test]
fn the_arm64_image_of_an_index_runs_under_qemu() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    if let Err(reason) = qemu_aarch64_binfmt() {
        eprintln!("skipped: cannot run arm64 code here: {reason}");
        return;
    }
    let work = workdir();
    let probe = probe_script(work.path());
    let image = build_image(
        work.path(),
        "both",
        &[
            format!("amd64={}", probe.display()),
            format!("arm64={}", probe.display()),
        ],
        &[],
    );
    let cache = cache_dir(work.path());
    let (output, report) = invoke(&[
        "--image",
        &image,
        "--arch",
        "arm64",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--timeout",
        "30",
        "--event",
        r#"{"arch": "arm64"}"#,
    ]);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(report["response"]["event"], json!({"arch": "arm64"}));
    assert_eq!(report["response"]["uid"], 993);
    assert!(stderr.contains("(arm64)"), "{stderr}");
}
