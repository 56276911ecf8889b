//! Bootstraps on the user's disk judged as Lambda's kernel and dynamic loader will judge them, by
//! `build`, `zip` and `check --bootstrap` alike: `#!` lines with Windows line endings, `#!`
//! programs found (or not) on the image's `PATH`, binaries linked dynamically against musl, and
//! ELF needs read from the dynamic segment when the section headers are gone.
//!
//! Fixtures are made as users make them: `printf` with `\r\n` (what a Windows checkout gives),
//! `musl-gcc` (musl-tools), `gcc` against a stand-in `libc.so.6`, and section headers removed
//! as `sstrip` removes them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use super::common::scratch;
use crate::support::lambda_image_json;
use crate::support::*;

/// The exit status of `build`, `zip` and `check` for an unusable bootstrap.
const BOOTSTRAP_ERROR: i32 = 3;
/// The exit status of `check IMAGE` when an image finding is an error (Lambda would reject it).
const IMAGE_REJECTED: i32 = 7;

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Writes an executable (0755) file.
fn executable(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join(name);
    fs::write(&file, text).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    file
}

/// Compiles `source` (C) with `compiler` and `flags` into `dir/name`, linking `libraries` after
/// it.
fn compile(
    dir: &Path,
    compiler: &str,
    flags: &[&str],
    source: &str,
    name: &str,
    libraries: &[&str],
) -> PathBuf {
    let source_file = dir.join(format!("{name}.c"));
    fs::write(&source_file, source).unwrap();
    let binary = dir.join(name);
    let output = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(&source_file)
        .args(libraries)
        .output()
        .unwrap_or_else(|error| {
            panic!("{compiler} is needed (bash tests/run.sh installs it): {error}")
        });
    assert!(output.status.success(), "{}", stderr_of(&output));
    binary
}

const HELLO: &str = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n";

/// Every error finding's check name in a `check --json` report's bootstrap findings.
fn bootstrap_errors(report: &Value) -> Vec<String> {
    report["bootstraps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["level"] == "error")
        .map(|finding| finding["check"].as_str().unwrap().to_owned())
        .collect()
}

/// The bootstrap finding of `check` named `check`.
fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["bootstraps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {report}"))
}

/// Runs `lambda-image ARGS`, which must fail as a bootstrap error; returns its stderr.
fn refused(args: &[&str]) -> String {
    let output = run_unchecked(lambda_image().args(args));
    assert_eq!(
        output.status.code(),
        Some(BOOTSTRAP_ERROR),
        "{args:?}: {}",
        stderr_of(&output)
    );
    stderr_of(&output)
}

/// A build of `bootstrap` on `base` into `dir/out-NAME`, which must be refused with nothing
/// written; returns its stderr.
fn refused_build(dir: &Path, bootstrap: &str, base: &str, name: &str) -> String {
    let out = dir.join(format!("out-{name}"));
    let stderr = refused(&[
        "build",
        "--bootstrap",
        bootstrap,
        "--base",
        base,
        "--output",
        &format!("oci:{}", path(&out)),
    ]);
    assert!(!out.exists(), "nothing is written to {}", out.display());
    stderr
}

/// A zip of `bootstrap` for `runtime` into `dir/NAME.zip`, which must be refused with nothing
/// written; returns its stderr.
fn refused_zip(dir: &Path, bootstrap: &str, runtime: &str, name: &str) -> String {
    let zip = dir.join(format!("{name}.zip"));
    let stderr = refused(&[
        "zip",
        "--bootstrap",
        bootstrap,
        "--runtime",
        runtime,
        "-o",
        path(&zip),
    ]);
    assert!(!zip.exists(), "nothing is written to {}", zip.display());
    stderr
}

fn check(args: &[&str]) -> (Output, Value) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    lambda_image_json(&all)
}

// aws-samples/aws-lambda-layer-kubectl#39 and aws/aws-lambda-web-adapter#369: a bootstrap
// checked out on Windows (CRLF) fails on Lambda with "no such file or directory" / "bad
// interpreter", because the kernel looks for `/bin/sh\r`.
#[test]
fn a_script_with_windows_line_endings_is_refused_by_build_zip_and_check() {
    let dir = scratch();
    for (name, text) in [
        ("plain", "#!/bin/sh\r\necho hi\r\n"),
        ("env", "#!/usr/bin/env bash\r\necho hi\r\n"),
        ("argument", "#!/bin/sh -e\r\necho hi\r\n"),
    ] {
        let script = executable(dir.path(), name, text.as_bytes());
        let given = format!("amd64={}", path(&script));
        let stderr_of_build = refused_build(dir.path(), &given, &base_reference(), name);
        let stderr_of_zip = refused_zip(dir.path(), &given, "provided.al2023", name);
        let stderr_of_check = refused(&["check", "--bootstrap", &given]);
        for stderr in [stderr_of_build, stderr_of_zip, stderr_of_check] {
            assert!(stderr.contains("Windows line endings"), "{stderr}");
            assert!(stderr.contains("carriage return (\\r)"), "{stderr}");
            assert!(
                stderr.contains(&format!("dos2unix {}", script.display())),
                "{stderr}"
            );
            assert!(stderr.contains(r"sed -i 's/\r$//'"), "{stderr}");
            // The line is shown as the user sees it, without the invisible \r.
            assert!(!stderr.contains('\r'), "{stderr:?}");
        }
    }
    // Converted (what dos2unix does), the same script is built.
    let script = executable(dir.path(), "converted", b"#!/bin/sh\necho hi\n");
    let out = dir.path().join("out-converted");
    run(lambda_image().args([
        "build",
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base_reference(),
        "--output",
        &format!("oci:{}", path(&out)),
    ]));
}

/// A copy of the stand-in base (busybox: `/bin/sh`, `/bin/env`, no bash, no `/usr/bin/env`)
/// whose amd64 config sets `PATH=<path>`, tagged `NAME` alone.
fn base_with_path(dir: &Path, name: &str, path_value: &str) -> String {
    amd64_base_variant(dir, name, None, |config| {
        let env = config["config"]["Env"].as_array_mut().unwrap();
        env.retain(|entry| !entry.as_str().unwrap().starts_with("PATH="));
        env.push(json!(format!("PATH={path_value}")));
    })
}

// aws/aws-lambda-web-adapter#369 (`/bin/bash^M: bad interpreter`) and the many bootstraps
// starting `#!/usr/bin/env bash`: Lambda runs the line through execve, and `env` searches the
// image's PATH. Whether the line names the program or has env find it, a program the base lacks
// is the same error.
#[test]
fn a_missing_script_interpreter_is_the_same_error_whichever_form_the_line_takes() {
    let dir = scratch();
    let base = base_reference();
    let checked = |name: &str, line: &str, base: &str| {
        let script = executable(dir.path(), name, format!("{line}\necho hi\n").as_bytes());
        let given = format!("amd64={}", path(&script));
        let (output, report) = check(&["--bootstrap", &given, "--base", base]);
        (given, output, finding(&report, "interpreter").clone())
    };

    // The stand-in base has no bash, however it is asked for.
    for (name, line) in [
        ("direct", "#!/bin/bash"),
        ("env", "#!/bin/env bash"),
        ("env-s", "#!/bin/env -S bash -e"),
    ] {
        let (given, output, interpreter) = checked(name, line, &base);
        assert_eq!(
            output.status.code(),
            Some(BOOTSTRAP_ERROR),
            "{line}: {interpreter}"
        );
        assert_eq!(interpreter["level"], "error", "{line}: {interpreter}");
        let message = interpreter["message"].as_str().unwrap();
        assert!(message.starts_with("the script interpreter "), "{message}");
        assert!(message.contains("bash"), "{message}");
        assert!(message.contains("is not in the base"), "{message}");
        let stderr = refused_build(dir.path(), &given, &base, name);
        assert!(
            stderr.contains("error: the script interpreter "),
            "{stderr}"
        );
    }
    // env found it on PATH: named where.
    let (_, output, interpreter) = checked("env-sh", "#!/bin/env -S sh -e", &base);
    assert_eq!(output.status.code(), Some(0), "{interpreter}");
    assert_eq!(interpreter["level"], "info", "{interpreter}");
    assert!(
        interpreter["message"]
            .as_str()
            .unwrap()
            .contains("at /bin/sh"),
        "{interpreter}"
    );
    // `env` itself must exist: the stand-in base has /bin/env but no /usr/bin/env.
    let (_, output, interpreter) = checked("usr-bin-env", "#!/usr/bin/env sh", &base);
    assert_eq!(output.status.code(), Some(BOOTSTRAP_ERROR), "{interpreter}");
    assert!(
        interpreter["message"]
            .as_str()
            .unwrap()
            .starts_with("the script interpreter /usr/bin/env "),
        "{interpreter}"
    );

    // The PATH searched is the base config's own: without /bin on it, env finds no sh.
    let narrow = base_with_path(dir.path(), "narrow-path", "/usr/local/bin:/opt/bin");
    let (_, output, interpreter) = checked("env-narrow", "#!/bin/env sh", &narrow);
    assert_eq!(output.status.code(), Some(BOOTSTRAP_ERROR), "{interpreter}");
    assert!(
        interpreter["message"]
            .as_str()
            .unwrap()
            .contains("PATH=/usr/local/bin:/opt/bin"),
        "{interpreter}"
    );
    // The PATH `build --env` gives the image is the one searched.
    let script = executable(dir.path(), "env-build", b"#!/bin/env sh\necho hi\n");
    let stderr = refused(&[
        "build",
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base,
        "--env",
        "PATH=/opt/bin",
        "--output",
        &format!("oci:{}", path(&dir.path().join("out-env-build"))),
    ]);
    assert!(stderr.contains("PATH=/opt/bin"), "{stderr}");
    // ... while a line naming /bin/sh itself does not depend on PATH.
    let (_, output, interpreter) = checked("direct-narrow", "#!/bin/sh", &narrow);
    assert_eq!(output.status.code(), Some(0), "{interpreter}");
}

// eawsy/aws-lambda-go-shim#19 (a function built on Alpine fails on Lambda: musl's loader and
// libc are not there) and gliderlabs/docker-alpine#12 (the mirror image: a binary whose loader
// is missing fails with "not found"). musl-gcc links dynamically by default, with
// PT_INTERP /lib/ld-musl-x86_64.so.1.
#[test]
fn a_bootstrap_linked_dynamically_against_musl_is_refused_on_aws_bases() {
    let dir = scratch();
    let dynamic = compile(dir.path(), "musl-gcc", &["-O2"], HELLO, "musl-dynamic", &[]);
    let dynamic = path(&dynamic);
    let expect_named = |stderr: &str| {
        assert!(
            stderr.contains("the ELF interpreter /lib/ld-musl-x86_64.so.1"),
            "{stderr}"
        );
        assert!(stderr.contains("musl's dynamic loader"), "{stderr}");
        assert!(stderr.contains("musl-gcc -static"), "{stderr}");
        assert!(stderr.contains("x86_64-unknown-linux-musl"), "{stderr}");
        assert!(stderr.contains("ship the loader"), "{stderr}");
    };
    for runtime in ["provided.al2023", "provided.al2"] {
        expect_named(&refused_zip(dir.path(), dynamic, runtime, runtime));
        let (output, report) = check(&["--bootstrap", dynamic, "--base", runtime]);
        assert_eq!(output.status.code(), Some(BOOTSTRAP_ERROR), "{report}");
        assert_eq!(bootstrap_errors(&report), ["interpreter"], "{report}");
        // In a build the check comes before the base is downloaded (no registry here).
        expect_named(&refused_build(dir.path(), dynamic, runtime, runtime));
    }

    // Linked statically, as the hint says, it needs nothing from the base.
    let fixed = compile(
        dir.path(),
        "musl-gcc",
        &["-O2", "-static"],
        HELLO,
        "musl-static",
        &[],
    );
    let zip = dir.path().join("static.zip");
    run(lambda_image().args([
        "zip",
        "--bootstrap",
        path(&fixed),
        "--runtime",
        "provided.al2",
        "-o",
        path(&zip),
    ]));
}

/// A hello program built by musl-gcc to use musl's loader from the package,
/// `/var/task/lib/ld-musl-x86_64.so.1`: returns that loader path and the program.
fn musl_shipped_bootstrap(dir: &Path) -> (&'static str, PathBuf) {
    let loader = "/var/task/lib/ld-musl-x86_64.so.1";
    let bootstrap = compile(
        dir,
        "musl-gcc",
        &["-O2", &format!("-Wl,--dynamic-linker={loader}")],
        HELLO,
        "musl-shipped",
        &[],
    );
    (loader, bootstrap)
}

// The other fix the hint names: ship musl's loader with the function and link the bootstrap
// against it there. What the package adds beside the bootstrap counts as present.
#[test]
fn a_musl_loader_shipped_beside_the_bootstrap_is_found_there() {
    let dir = scratch();
    let (loader, bootstrap) = musl_shipped_bootstrap(dir.path());
    let bootstrap = path(&bootstrap);
    let stderr = refused_zip(dir.path(), bootstrap, "provided.al2023", "without-loader");
    assert!(
        stderr.contains(&format!("the ELF interpreter {loader}")),
        "{stderr}"
    );

    // musl's libc.so is its loader (Debian's musl package installs it at this path).
    let shipped = format!("/usr/lib/x86_64-linux-musl/libc.so:{loader}");
    let zip = dir.path().join("with-loader.zip");
    let (zipped, report) = lambda_image_json(&[
        "zip",
        "--json",
        "--bootstrap",
        bootstrap,
        "--include",
        &shipped,
        "-o",
        path(&zip),
    ]);
    assert_eq!(zipped.status.code(), Some(0), "{}", stderr_of(&zipped));
    let interpreter = check_finding(&report, "interpreter");
    assert_eq!(interpreter["level"], "info", "{interpreter}");
}

/// Removes the section header table as `sstrip` does: `llvm-objcopy --strip-sections` when it is
/// installed, else the header fields that locate the table (e_shoff, e_shnum, e_shstrndx) are
/// zeroed, which leaves a file the kernel and loader run exactly as before. Either way the
/// result has no section headers (asserted).
fn strip_section_headers(input: &Path, output: &Path) {
    let stripped = Command::new("llvm-objcopy")
        .arg("--strip-sections")
        .arg(input)
        .arg(output)
        .status()
        .is_ok_and(|status| status.success());
    if !stripped {
        let mut bytes = fs::read(input).unwrap();
        bytes[0x28..0x30].fill(0); // e_shoff
        bytes[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
        fs::write(output, bytes).unwrap();
    }
    let bytes = fs::read(output).unwrap();
    assert_eq!(
        &bytes[0x3c..0x3e],
        &[0, 0],
        "e_shnum of {}",
        output.display()
    );
    let readelf = run_unchecked(Command::new("readelf").arg("-S").arg(output));
    assert!(
        String::from_utf8_lossy(&readelf.stdout).contains("no sections"),
        "{}",
        String::from_utf8_lossy(&readelf.stdout)
    );
}

/// A program that needs `strlcpy@GLIBC_2.38` (glibc added strlcpy in 2.38), and the same program
/// with its section headers removed. Debian 12's glibc is 2.36, so it links against a stand-in
/// `libc.so.6` built with a version script defining GLIBC_2.2.5 (puts), GLIBC_2.34
/// (__libc_start_main) and GLIBC_2.38 (strlcpy), as glibc 2.38's own libc.so.6 defines them.
fn needs_glibc_2_38(dir: &Path) -> (PathBuf, PathBuf) {
    let stub = dir.join("stub");
    fs::create_dir_all(&stub).unwrap();
    fs::write(
        stub.join("libc.map"),
        "GLIBC_2.2.5 { global: puts; local: *; };\n\
         GLIBC_2.34 { global: __libc_start_main; } GLIBC_2.2.5;\n\
         GLIBC_2.38 { global: strlcpy; } GLIBC_2.34;\n",
    )
    .unwrap();
    let map = format!("-Wl,--version-script={}", path(&stub.join("libc.map")));
    let libc = compile(
        &stub,
        "gcc",
        &["-shared", "-fPIC", "-Wl,-soname,libc.so.6", &map],
        "int puts(const char *s) { (void)s; return 0; }\n\
         int __libc_start_main(void) { return 0; }\n\
         unsigned long strlcpy(char *d, const char *s, unsigned long n) { (void)d; (void)s; return n; }\n",
        "libc.so.6",
        &[],
    );
    let program = compile(
        dir,
        "gcc",
        &["-O2"],
        "#include <stdio.h>\n\
         unsigned long strlcpy(char *d, const char *s, unsigned long n);\n\
         int main(void) { char b[8]; strlcpy(b, \"hi\", sizeof b); puts(b); return 0; }\n",
        "needs-2.38",
        &[path(&libc)],
    );
    let stripped = dir.join("needs-2.38-sstripped");
    strip_section_headers(&program, &stripped);
    (program, stripped)
}

// amazonlinux/amazon-linux-2023#958 (a binary built on a newer distribution needs GLIBC_2.38,
// which provided.al2023 does not have); ran-j/PS2Recomp#35 and radareorg/radare2#20864 (tools that
// read needs from section headers see nothing once they are stripped).
#[test]
fn a_section_stripped_binary_needing_glibc_2_38_is_refused_like_the_unstripped_one() {
    let dir = scratch();
    let (program, stripped) = needs_glibc_2_38(dir.path());
    for (name, binary) in [("unstripped", &program), ("stripped", &stripped)] {
        let binary = path(binary);
        let needs = "needs GLIBC_2.38 (symbol strlcpy@GLIBC_2.38)";
        let stderr = refused_build(dir.path(), binary, "provided.al2023", name);
        assert!(stderr.contains(needs), "{name}: {stderr}");
        assert!(stderr.contains("has glibc 2.34"), "{name}: {stderr}");
        let stderr = refused_zip(dir.path(), binary, "provided.al2", name);
        assert!(stderr.contains(needs), "{name}: {stderr}");
        assert!(stderr.contains("has glibc 2.26"), "{name}: {stderr}");
        let (output, report) = check(&["--bootstrap", binary, "--base", "provided.al2023"]);
        assert_eq!(output.status.code(), Some(BOOTSTRAP_ERROR), "{report}");
        assert_eq!(bootstrap_errors(&report), ["glibc"], "{name}: {report}");
        let described = finding(&report, "architecture")["message"]
            .as_str()
            .unwrap();
        assert!(described.contains("NEEDED libc.so.6"), "{described}");
    }
}

/// Turns the `PT_DYNAMIC` program header of an ELF-64 file into `PT_NULL`, as a packer that
/// rebuilds the dynamic segment at run time leaves it.
fn drop_dynamic_segment(file: &Path) {
    let mut bytes = fs::read(file).unwrap();
    let start = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let size = usize::from(u16::from_le_bytes(bytes[0x36..0x38].try_into().unwrap()));
    let count = usize::from(u16::from_le_bytes(bytes[0x38..0x3a].try_into().unwrap()));
    let dynamic = (0..count)
        .map(|index| start + index * size)
        .find(|&header| bytes[header..header + 4] == 2u32.to_le_bytes()) // PT_DYNAMIC
        .expect("a dynamic segment");
    bytes[dynamic..dynamic + 4].fill(0); // PT_NULL
    fs::write(file, bytes).unwrap();
}

// When the needs truly cannot be read, that is said: a warning, never "needs nothing".
#[test]
fn a_dynamic_bootstrap_whose_needs_cannot_be_read_gets_a_warning() {
    let dir = scratch();
    let (_, stripped) = needs_glibc_2_38(dir.path());
    drop_dynamic_segment(&stripped);
    let (output, report) = check(&["--bootstrap", path(&stripped), "--base", "provided.al2023"]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let glibc = finding(&report, "glibc");
    assert_eq!(glibc["level"], "warning", "{glibc}");
    let message = glibc["message"].as_str().unwrap();
    assert!(message.contains("cannot be read"), "{message}");
    assert!(
        message.contains("no dynamic segment (PT_DYNAMIC)"),
        "{message}"
    );
    assert!(message.contains("were not checked"), "{message}");
    assert!(!message.contains("asks for no"), "{message}");
}

/// Sets the permission bits of `file`.
fn chmod(file: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(file, fs::Permissions::from_mode(mode)).unwrap();
}

/// A copy of the stand-in base's amd64 image with one more layer, packed by GNU tar (modes as
/// on disk) from a directory that `prepare` fills; tagged `NAME`, returned as `oci:DIR:NAME`.
fn base_with_layer(dir: &Path, name: &str, prepare: impl FnOnce(&Path)) -> String {
    let tar = gnu_tar_layer(dir, name, prepare);
    amd64_base_variant(dir, name, Some((&fs::read(&tar).unwrap(), false)), |_| {})
}

// aws-samples/aws-lambda-layer-awscli#38 and aws/aws-sam-cli#1846: files that lost their execute
// bit on the way (CI artifacts, Windows) fail on Lambda with "permission denied". A dynamic
// loader or a #! interpreter is exec'd by the kernel and needs the bit as much as the bootstrap.
#[test]
fn a_loader_or_interpreter_without_an_execute_bit_is_refused() {
    let dir = scratch();
    let (loader, bootstrap) = musl_shipped_bootstrap(dir.path());
    let lib = dir.path().join("lib");
    fs::create_dir_all(&lib).unwrap();
    let shipped = lib.join("ld-musl-x86_64.so.1");
    fs::copy("/usr/lib/x86_64-linux-musl/libc.so", &shipped).unwrap();
    chmod(&shipped, 0o644);
    let include = format!("{}/:/var/task/lib/", path(&lib));
    let zip = dir.path().join("z.zip");
    let zip_args = [
        "zip",
        "--bootstrap",
        path(&bootstrap),
        "--include",
        &include,
        "-o",
        path(&zip),
    ];
    let expect_named = |stderr: &str| {
        assert!(
            stderr.contains(&format!("the ELF interpreter {loader} of")),
            "{stderr}"
        );
        assert!(stderr.contains("Permission denied"), "{stderr}");
        assert!(
            stderr.contains(&format!("chmod +x {}", shipped.display())),
            "{stderr}"
        );
    };
    expect_named(&refused(&zip_args));
    assert!(!zip.exists());
    let out = dir.path().join("out-loader");
    let build_args = [
        "build",
        "--bootstrap",
        path(&bootstrap),
        "--include",
        &include,
        "--base",
        &base_reference(),
        "--output",
        &format!("oci:{}", path(&out)),
    ];
    expect_named(&refused(&build_args));
    assert!(!out.exists());
    // With its execute bit back, both pass.
    chmod(&shipped, 0o755);
    run(lambda_image().args(zip_args));
    run(lambda_image().args(build_args));

    // A #! interpreter found on PATH (the stand-in base has env at /bin/env and PATH holds
    // /usr/local/bin), added with --include as a 0644 copy of bash.
    let script = executable(dir.path(), "run.sh", b"#!/bin/env bash\necho hi\n");
    let bash = dir.path().join("bash644");
    fs::copy("/bin/bash", &bash).unwrap();
    chmod(&bash, 0o644);
    let out = dir.path().join("out-bash");
    let given = format!("amd64={}", path(&script));
    let include = format!("{}:/usr/local/bin/bash", path(&bash));
    let build_args = [
        "build",
        "--bootstrap",
        &given,
        "--include",
        &include,
        "--base",
        &base_reference(),
        "--output",
        &format!("oci:{}", path(&out)),
    ];
    let stderr = refused(&build_args);
    assert!(stderr.contains("at /usr/local/bin/bash"), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod +x {}", bash.display())),
        "{stderr}"
    );
    assert!(!out.exists());
    chmod(&bash, 0o755);
    run(lambda_image().args(build_args));

    // The base's own loader, 0644 in a local base: a glibc program checked against it.
    let program = compile(dir.path(), "gcc", &["-O2"], HELLO, "glibc-hello", &[]);
    for (mode, name) in [(0o644, "loader-644"), (0o755, "loader-755")] {
        let base = base_with_layer(dir.path(), name, |root| {
            let lib64 = root.join("lib64");
            fs::create_dir_all(&lib64).unwrap();
            let copy = lib64.join("ld-linux-x86-64.so.2");
            fs::copy("/lib64/ld-linux-x86-64.so.2", &copy).unwrap();
            chmod(&copy, mode);
        });
        let (output, report) = check(&["--bootstrap", path(&program), "--base", &base]);
        let interpreter = finding(&report, "interpreter");
        if mode == 0o644 {
            assert_eq!(output.status.code(), Some(BOOTSTRAP_ERROR), "{report}");
            assert_eq!(interpreter["level"], "error", "{interpreter}");
            let message = interpreter["message"].as_str().unwrap();
            assert!(message.contains("with mode 644"), "{message}");
            assert!(message.contains("Permission denied"), "{message}");
            let hint = interpreter["hint"].as_str().unwrap();
            assert!(
                hint.contains("chmod +x /lib64/ld-linux-x86-64.so.2"),
                "{hint}"
            );
            let stderr = refused_build(dir.path(), path(&program), &base, name);
            assert!(stderr.contains("Permission denied"), "{stderr}");
        } else {
            assert_eq!(interpreter["level"], "info", "{interpreter}");
        }
    }
}

// A download or copy cut short keeps its headers: the kernel maps segments past the end of the
// file and the program crashes at start-up (SIGBUS/SIGSEGV), which Lambda reports as
// Runtime.ExitError. Static and dynamic binaries alike.
#[test]
fn a_truncated_elf_is_refused_as_truncated() {
    let dir = scratch();
    let dynamic = compile(dir.path(), "gcc", &["-O2"], HELLO, "dynamic", &[]);
    let fixed = compile(
        dir.path(),
        "musl-gcc",
        &["-O2", "-static"],
        HELLO,
        "static",
        &[],
    );
    for (binary, keep) in [(&dynamic, 3000), (&fixed, 9000)] {
        let whole = fs::metadata(binary).unwrap().len();
        assert!(whole > keep, "{} is {whole} bytes", binary.display());
        let name = format!("{}-cut", binary.file_name().unwrap().to_str().unwrap());
        let cut = dir.path().join(&name);
        let head = run(Command::new("head")
            .args(["-c", &keep.to_string()])
            .arg(binary));
        fs::write(&cut, head.stdout).unwrap();
        chmod(&cut, 0o755);
        let expect = |stderr: &str| {
            assert!(
                stderr.contains("is truncated: its program headers say"),
                "{stderr}"
            );
            assert!(stderr.contains(&format!("the file has {keep}")), "{stderr}");
            assert!(stderr.contains("again whole"), "{stderr}");
        };
        expect(&refused_build(
            dir.path(),
            path(&cut),
            &base_reference(),
            &name,
        ));
        expect(&refused_zip(
            dir.path(),
            path(&cut),
            "provided.al2023",
            &name,
        ));
        expect(&refused(&["check", "--bootstrap", path(&cut)]));
    }
}

// Nandaka/PixivUtil2#473 and quick-lint/quick-lint-js#205: a UTF-8 byte order mark before #!
// hides the #! from the kernel (it looks at the first two bytes only): exec format error.
#[test]
fn a_byte_order_mark_before_the_shebang_is_named() {
    let dir = scratch();
    for (name, text) in [
        ("bom-sh", &b"\xef\xbb\xbf#!/bin/sh\necho hi\n"[..]),
        (
            "bom-env",
            &b"\xef\xbb\xbf#!/usr/bin/env bash\r\necho hi\r\n"[..],
        ),
    ] {
        let script = executable(dir.path(), name, text);
        let given = format!("amd64={}", path(&script));
        for stderr in [
            refused_build(dir.path(), &given, &base_reference(), name),
            refused_zip(dir.path(), &given, "provided.al2023", name),
            refused(&["check", "--bootstrap", &given]),
        ] {
            assert!(stderr.contains("UTF-8 byte order mark"), "{stderr}");
            assert!(stderr.contains("exec format error"), "{stderr}");
            assert!(
                stderr.contains(&format!(
                    r"sed -i '1s/^\xEF\xBB\xBF//' {}",
                    script.display()
                )),
                "{stderr}"
            );
            assert!(stderr.contains("UTF-8 without BOM"), "{stderr}");
            assert!(!stderr.contains("CGO_ENABLED"), "{stderr}");
        }
    }

    // The same file already in an image, where the base's entrypoint runs it.
    let image = base_with_layer(dir.path(), "bom-image", |root| {
        let runtime = root.join("var/runtime");
        fs::create_dir_all(&runtime).unwrap();
        executable(&runtime, "bootstrap", b"\xef\xbb\xbf#!/bin/sh\necho hi\n");
    });
    let (output, report) = lambda_image_json(&["check", "--json", &image]);
    assert_eq!(output.status.code(), Some(IMAGE_REJECTED), "{report}");
    let text = report.to_string();
    assert!(text.contains("UTF-8 byte order mark"), "{report}");
    assert!(text.contains(r"1s/^\\xEF\\xBB\\xBF//"), "{report}");
}

// aws-samples/aws-lambda-layer-kubectl#39: a script saved on Windows. With a clean first line
// the kernel starts sh, which then stumbles on every `\r`.
#[test]
fn windows_line_endings_after_a_clean_shebang_line_are_a_warning() {
    let dir = scratch();
    let script = executable(
        dir.path(),
        "mixed.sh",
        b"#!/bin/sh\nset -e\necho hi\r\necho there\r\n",
    );
    let given = format!("amd64={}", path(&script));
    let expect = |finding: &Value| {
        assert_eq!(finding["level"], "warning", "{finding}");
        let message = finding["message"].as_str().unwrap();
        assert!(message.contains("on 2 lines"), "{message}");
        assert!(message.contains("first on line 3"), "{message}");
        let hint = finding["hint"].as_str().unwrap();
        assert!(
            hint.contains(&format!("dos2unix {}", script.display())),
            "{hint}"
        );
    };
    let (output, report) = check(&["--bootstrap", &given, "--base", &base_reference()]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    expect(finding(&report, "line-endings"));

    let zip = dir.path().join("mixed.zip");
    let (zipped, report) =
        lambda_image_json(&["zip", "--json", "--bootstrap", &given, "-o", path(&zip)]);
    assert_eq!(zipped.status.code(), Some(0), "{}", stderr_of(&zipped));
    let checks = report["checks"].as_array().unwrap();
    expect(
        checks
            .iter()
            .find(|finding| finding["check"] == "line-endings")
            .unwrap_or_else(|| panic!("{report}")),
    );

    let out = dir.path().join("out-mixed");
    let built = run(lambda_image().args([
        "build",
        "--bootstrap",
        &given,
        "--base",
        &base_reference(),
        "--output",
        &format!("oci:{}", path(&out)),
    ]));
    assert!(
        stderr_of(&built).contains("first on line 3"),
        "{}",
        stderr_of(&built)
    );

    // An included executable script whose #! line ends in \r: a warning naming it.
    let tool = executable(dir.path(), "tool.sh", b"#!/bin/sh\r\necho tool\r\n");
    let plain = executable(dir.path(), "plain", b"#!/bin/sh\necho hi\n");
    let zip = dir.path().join("tool.zip");
    let (zipped, report) = lambda_image_json(&[
        "zip",
        "--json",
        "--bootstrap",
        &format!("amd64={}", path(&plain)),
        "--include",
        &format!("{}:/var/task/tool.sh", path(&tool)),
        "-o",
        path(&zip),
    ]);
    assert_eq!(zipped.status.code(), Some(0), "{}", stderr_of(&zipped));
    let warning = check_finding(&report, "line-endings");
    assert_eq!(warning["level"], "warning", "{warning}");
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains(path(&tool)), "{message}");
    assert!(message.contains("carriage return"), "{message}");
}

// A script checked against a catalog base: its files are not downloaded, so the interpreter
// cannot be looked for; that is said, with the way to check it.
#[test]
fn a_script_checked_against_a_catalog_base_says_its_interpreter_was_not_checked() {
    let dir = scratch();
    let script = executable(dir.path(), "run.sh", b"#!/usr/bin/env python3\nprint(1)\n");
    let given = format!("amd64={}", path(&script));
    let expect = |finding: &Value| {
        assert_eq!(finding["level"], "info", "{finding}");
        let message = finding["message"].as_str().unwrap();
        assert!(message.contains("python3"), "{message}");
        assert!(message.contains("was not checked"), "{message}");
        let hint = finding["hint"].as_str().unwrap();
        assert!(hint.contains("--base oci:DIR"), "{hint}");
    };
    for base in ["provided.al2023", "provided.al2"] {
        let (output, report) = check(&["--bootstrap", &given, "--base", base]);
        assert_eq!(output.status.code(), Some(0), "{report}");
        expect(finding(&report, "interpreter"));
    }
    let zip = dir.path().join("run.zip");
    let (zipped, report) =
        lambda_image_json(&["zip", "--json", "--bootstrap", &given, "-o", path(&zip)]);
    assert_eq!(zipped.status.code(), Some(0), "{}", stderr_of(&zipped));
    expect(check_finding(&report, "interpreter"));
}

const USES_ZLIB: &str = "#include <stdio.h>\n#include <zlib.h>\n\
                         int main(void) { puts(zlibVersion()); return 0; }\n";

/// The stand-in base plus glibc's loader and libc.so.6 in /lib64 (as Amazon Linux has them),
/// and `more` files copied in as `(source, path in the image)`.
fn glibc_base(dir: &Path, name: &str, more: &[(&str, &str)]) -> String {
    base_with_layer(dir, name, |root| {
        let files = [
            ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
            ("/lib/x86_64-linux-gnu/libc.so.6", "lib64/libc.so.6"),
        ];
        for (source, inside) in files.iter().chain(more) {
            let copy = root.join(inside);
            fs::create_dir_all(copy.parent().unwrap()).unwrap();
            fs::copy(source, &copy).unwrap();
            chmod(&copy, 0o755);
        }
    })
}

/// The finding named `check` among a build or zip report's `checks`.
fn check_finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {report}"))
}

// aws-samples/aws-lambda-layer-kubectl#37 and awslabs/aws-media-replay-engine#13: a program
// linked against a library the Lambda base lacks fails at start-up with "error while loading
// shared libraries: ...: cannot open shared object file". The loader's search is followed:
// DT_RUNPATH with $ORIGIN, the image's LD_LIBRARY_PATH, the default directories.
#[test]
fn a_needed_library_the_base_lacks_is_a_warning() {
    let dir = scratch();
    let zlib = "/usr/lib/x86_64-linux-gnu/libz.so.1";
    let program = compile(
        dir.path(),
        "gcc",
        &["-O2"],
        USES_ZLIB,
        "uses-zlib",
        &["-lz"],
    );
    let program = path(&program);
    let without = glibc_base(dir.path(), "without-zlib", &[]);
    let (output, report) = check(&["--bootstrap", program, "--base", &without]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let libraries = finding(&report, "libraries");
    assert_eq!(libraries["level"], "warning", "{libraries}");
    let message = libraries["message"].as_str().unwrap();
    assert!(
        message.contains("needs libz.so.1, which is not"),
        "{message}"
    );
    assert!(!message.contains("libc.so.6"), "{message}");
    // The base config's LD_LIBRARY_PATH, then the default and multiarch directories.
    assert!(
        message.contains("LD_LIBRARY_PATH (/var/lang/lib:/lib64:"),
        "{message}"
    );
    assert!(message.contains("/usr/lib/x86_64-linux-gnu"), "{message}");
    assert!(
        message.contains("cannot open shared object file"),
        "{message}"
    );

    // In the base's /usr/lib64: found.
    let with = glibc_base(dir.path(), "with-zlib", &[(zlib, "usr/lib64/libz.so.1")]);
    let (output, report) = check(&["--bootstrap", program, "--base", &with]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let libraries = finding(&report, "libraries");
    assert_eq!(libraries["level"], "info", "{libraries}");
    assert!(
        libraries["message"]
            .as_str()
            .unwrap()
            .contains("libz.so.1 at /usr/lib64/libz.so.1"),
        "{libraries}"
    );

    // Shipped with the function: in /var/task/lib (on the base's LD_LIBRARY_PATH) it is found;
    // in /var/deps only through the binary's DT_RUNPATH $ORIGIN/../deps.
    let build = |name: &str, binary: &str, include: &str| {
        let out = dir.path().join(format!("out-{name}"));
        let (built, report) = lambda_image_json(&[
            "build",
            "--json",
            "--bootstrap",
            binary,
            "--include",
            include,
            "--base",
            &without,
            "--output",
            &format!("oci:{}", path(&out)),
        ]);
        assert_eq!(built.status.code(), Some(0), "{}", stderr_of(&built));
        check_finding(&report, "libraries").clone()
    };
    let libraries = build(
        "task-lib",
        program,
        &format!("{zlib}:/var/task/lib/libz.so.1"),
    );
    assert_eq!(libraries["level"], "info", "{libraries}");
    let deps = format!("{zlib}:/var/deps/libz.so.1");
    let libraries = build("deps", program, &deps);
    assert_eq!(libraries["level"], "warning", "{libraries}");
    let with_runpath = compile(
        dir.path(),
        "gcc",
        &["-O2", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../deps"],
        USES_ZLIB,
        "runpath",
        &["-lz"],
    );
    let libraries = build("runpath", path(&with_runpath), &deps);
    assert_eq!(libraries["level"], "info", "{libraries}");
    assert!(
        libraries["message"]
            .as_str()
            .unwrap()
            .contains("libz.so.1 at /var/deps/libz.so.1"),
        "{libraries}"
    );

    // A catalog base's files are not known: not checked.
    let (_, report) = check(&["--bootstrap", program, "--base", "provided.al2023"]);
    assert!(
        report["bootstraps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|finding| finding["check"] != "libraries"),
        "{report}"
    );
}

// #! and env semantics

/// Runs `script` on this machine (its `#!` line read by this kernel and GNU env) with a time
/// limit: true when it ran its body (printed `ran`), false when it failed or looped until the
/// limit.
fn runs_here(script: &Path) -> bool {
    let output = run_unchecked(Command::new("timeout").arg("3").arg(script));
    output.status.success() && String::from_utf8_lossy(&output.stdout) == "ran\n"
}

// koalaman/shellcheck#2143 and #2105 and kevva/shebang-command#8: tools that read `#!` lines
// stop at `env -S`; GNU env (src/env.c) reads options, assignments and `--` inside the -S string
// and runs the first other word. Without -S, Linux (fs/binfmt_script.c) passes the rest of the
// line as ONE argument, which env refuses (`-i sh`), takes as one assignment (`VAR=1 sh`, then
// it runs the script itself again, forever), or looks up as one name (`sh -e`). Each line is run
// here, by this machine's kernel and GNU env, and `check --bootstrap` must agree with the run.
#[test]
fn env_lines_get_the_verdict_the_real_env_gives_them() {
    let dir = scratch();
    let base = base_reference();
    // The stand-in base has /bin/env and /bin/sh (and no bash).
    let lines = [
        "#!/bin/env -S -i sh",
        "#!/bin/env -S VAR=1 sh",
        "#!/bin/env -vS sh",
        "#!/bin/env -S -u HOME sh",
        "#!/bin/env -S -- sh",
        "#!/bin/env -S ${LAMBDA_IMAGE_TEST_UNSET} sh",
        "#!/bin/env -i sh",
        "#!/bin/env -- sh",
        "#!/bin/env VAR=1 sh",
        "#!/bin/env",
        "#!/bin/env -S",
        "#!/bin/env -i",
        "#!/bin/env sh -e",
        "#!/bin/env -0",
        "#!/bin/env -S 'sh",
    ];
    let mut disagree = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let script = executable(
            dir.path(),
            &format!("script-{index}"),
            format!("{line}\necho ran\n").as_bytes(),
        );
        let runs = runs_here(&script);
        let (output, report) = check(&[
            "--bootstrap",
            &format!("amd64={}", path(&script)),
            "--base",
            &base,
        ]);
        let interpreter = finding(&report, "interpreter");
        let passes = output.status.code() == Some(0) && interpreter["level"] != "error";
        if runs != passes {
            disagree.push(format!(
                "{line}: runs here {runs}, check passes {passes}: {interpreter}"
            ));
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));

    // What the error says: why, and the line to write.
    let script = executable(dir.path(), "assignment", b"#!/bin/env VAR=1 sh\necho ran\n");
    let given = format!("amd64={}", path(&script));
    let (_, report) = check(&["--bootstrap", &given, "--base", &base]);
    let interpreter = finding(&report, "interpreter");
    let message = interpreter["message"].as_str().unwrap();
    assert!(message.contains("endless exec loop"), "{interpreter}");
    assert!(
        interpreter["hint"]
            .as_str()
            .unwrap()
            .contains("#!/bin/env -S VAR=1 sh"),
        "{interpreter}"
    );
    // A command from the environment is not known here: an info, not a missing interpreter.
    let script = executable(dir.path(), "from-env", b"#!/bin/env -S ${X} sh\necho ran\n");
    let (output, report) = check(&[
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base,
    ]);
    let interpreter = finding(&report, "interpreter");
    assert_eq!(output.status.code(), Some(0), "{interpreter}");
    assert_eq!(interpreter["level"], "info", "{interpreter}");
    assert!(
        interpreter["message"]
            .as_str()
            .unwrap()
            .contains("not checked"),
        "{interpreter}"
    );
    // build and zip refuse the same line with the same words (zip knows no base files: the
    // line fails whatever the base holds).
    let stderr = refused_build(dir.path(), &given, &base, "assignment");
    assert!(stderr.contains(message), "{stderr}");
    let stderr = refused_zip(dir.path(), &given, "provided.al2023", "assignment");
    assert!(stderr.contains(message), "{stderr}");
}

// koalaman/shellcheck#805 and #833: `#!/bin/bash -e -x` gives bash ONE argument, `-e -x`, on
// Linux. dash and bash refuse it (run here); the check warns and names the fix.
#[test]
fn an_interpreter_argument_that_looks_like_several_options_is_a_warning() {
    let dir = scratch();
    let base = base_reference();
    let script = executable(dir.path(), "e-x", b"#!/bin/sh -e -x\necho ran\n");
    assert!(
        !runs_here(&script),
        "this machine's sh runs `#!/bin/sh -e -x`"
    );
    let (output, report) = check(&[
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base,
    ]);
    let interpreter = finding(&report, "interpreter");
    assert_eq!(output.status.code(), Some(0), "{interpreter}");
    assert_eq!(interpreter["level"], "warning", "{interpreter}");
    assert!(
        interpreter["message"].as_str().unwrap().contains("`-e -x`"),
        "{interpreter}"
    );
    let hint = interpreter["hint"].as_str().unwrap();
    assert!(hint.contains("#!/usr/bin/env -S /bin/sh -e -x"), "{hint}");
    assert!(hint.contains("set -ex"), "{hint}");

    // One option is fine.
    let script = executable(dir.path(), "e", b"#!/bin/sh -e\necho ran\n");
    assert!(runs_here(&script));
    let (_, report) = check(&[
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base,
    ]);
    assert_eq!(finding(&report, "interpreter")["level"], "info");
}

// An interpreter path ending in `/` fails with ENOTDIR (run here); a carriage return after an
// argument reaches the interpreter inside its argument, and the message says so.
#[test]
fn a_trailing_slash_and_a_carriage_return_in_the_argument_are_named() {
    let dir = scratch();
    let base = base_reference();
    let script = executable(dir.path(), "slash", b"#!/bin/sh/\necho ran\n");
    assert!(!runs_here(&script));
    let (output, report) = check(&[
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base,
    ]);
    let interpreter = finding(&report, "interpreter");
    assert_eq!(output.status.code(), Some(BOOTSTRAP_ERROR), "{interpreter}");
    assert!(
        interpreter["message"]
            .as_str()
            .unwrap()
            .contains("Not a directory"),
        "{interpreter}"
    );

    let script = executable(dir.path(), "crlf-e", b"#!/bin/sh -e\r\necho ran\r\n");
    assert!(!runs_here(&script));
    let stderr = refused(&[
        "check",
        "--bootstrap",
        &format!("amd64={}", path(&script)),
        "--base",
        &base,
    ]);
    assert!(
        stderr.contains("runs /bin/sh with the argument `-e\\r`"),
        "{stderr}"
    );
    assert!(!stderr.contains("whose name ends in"), "{stderr}");
}
