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

use crate::common::{lambda_image_json, scratch};
use crate::support::*;

/// The exit status of `build`, `zip` and `check` for an unusable bootstrap.
const BOOTSTRAP_ERROR: i32 = 3;
/// The exit status of `check` when a finding is an error.
const CHECK_FAILED: i32 = 1;

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
            Some(CHECK_FAILED),
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
    assert_eq!(output.status.code(), Some(CHECK_FAILED), "{interpreter}");
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
    assert_eq!(output.status.code(), Some(CHECK_FAILED), "{interpreter}");
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
        assert_eq!(output.status.code(), Some(CHECK_FAILED), "{report}");
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

// The other fix the hint names: ship musl's loader with the function and link the bootstrap
// against it there. What the package adds beside the bootstrap counts as present.
#[test]
fn a_musl_loader_shipped_beside_the_bootstrap_is_found_there() {
    let dir = scratch();
    let loader = "/var/task/lib/ld-musl-x86_64.so.1";
    let bootstrap = compile(
        dir.path(),
        "musl-gcc",
        &["-O2", &format!("-Wl,--dynamic-linker={loader}")],
        HELLO,
        "musl-shipped",
        &[],
    );
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
    let interpreter = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["check"] == "interpreter")
        .unwrap_or_else(|| panic!("no interpreter finding in {report}"));
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
        assert_eq!(output.status.code(), Some(CHECK_FAILED), "{report}");
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
    assert_eq!(output.status.code(), Some(CHECK_FAILED), "{interpreter}");
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
