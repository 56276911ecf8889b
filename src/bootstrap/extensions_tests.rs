//! Unit tests of `bootstrap::extensions`: which entries of `/opt/extensions` are checked, and the
//! finding each kind of broken extension gives. The ELF fixtures are this test binary itself
//! (an x86-64 or aarch64 executable, whichever the host is) and a copy of it with its
//! `e_machine` changed to the other architecture.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::layer::IncludeSpec;

fn host() -> Architecture {
    Architecture::parse(std::env::consts::ARCH).expect("tests run on amd64 or arm64")
}

fn other(architecture: Architecture) -> Architecture {
    match architecture {
        Architecture::Amd64 => Architecture::Arm64,
        Architecture::Arm64 => Architecture::Amd64,
    }
}

/// This test binary, with its ELF machine set to `architecture`'s.
fn elf_for(architecture: Architecture) -> Vec<u8> {
    let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    // e_machine (ELF gABI): EM_X86_64 62, EM_AARCH64 183.
    let machine: u16 = match architecture {
        Architecture::Amd64 => 62,
        Architecture::Arm64 => 183,
    };
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    bytes
}

fn write(directory: &Path, name: &str, bytes: &[u8], mode: u32) {
    let path = directory.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The findings for a layer whose `/opt` holds `opt` (a directory on disk), as `architecture`.
fn check(opt: &Path, architecture: Architecture) -> Vec<Finding> {
    let bootstrap = opt.parent().unwrap().join("bootstrap");
    std::fs::write(&bootstrap, b"x").unwrap();
    let mut contents = LayerContents::with_bootstrap(&bootstrap, 1).unwrap();
    contents
        .include(&IncludeSpec {
            source: opt.to_owned(),
            destination: "/opt".into(),
        })
        .unwrap();
    let base = "oci:/nowhere".parse().unwrap();
    let facts = BaseFacts::without_layers(&base, None);
    check_extensions(&contents, architecture, &facts, None, &[]).unwrap()
}

fn errors(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .filter(|finding| finding.level == Level::Error)
        .map(|finding| finding.message.as_str())
        .collect()
}

#[test]
fn a_good_extension_passes_and_files_below_it_are_not_extensions() {
    let work = tempfile::tempdir().unwrap();
    let opt = work.path().join("opt");
    write(&opt, "extensions/agent", &elf_for(host()), 0o755);
    // Data an extension reads: in a subdirectory (skipped, as Lambda skips directories) or
    // elsewhere under /opt.
    write(&opt, "extensions/agent-config/settings.json", b"{}", 0o644);
    write(&opt, "agent/lib/data.bin", b"\0\x01", 0o644);
    let findings = check(&opt, host());
    assert!(errors(&findings).is_empty(), "{findings:?}");
    assert!(
        findings
            .iter()
            .any(|finding| finding.check == CHECK && finding.message.contains("agent-config")),
        "the directory is said to be skipped: {findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|finding| finding.check == "architecture"
                && finding.message.contains("/opt/extensions/agent")),
        "the bootstrap checks ran on it, naming it by its place in the image: {findings:?}"
    );
}

#[test]
fn an_extension_of_the_other_architecture_is_refused_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let opt = work.path().join("opt");
    write(&opt, "extensions/agent", &elf_for(other(host())), 0o755);
    let findings = check(&opt, host());
    let errors = errors(&findings);
    assert_eq!(errors.len(), 1, "{findings:?}");
    assert!(
        errors[0].contains("extension /opt/extensions/agent"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("exec format error"), "{}", errors[0]);
    assert!(
        errors[0].contains(&format!("the image is {}", host())),
        "{}",
        errors[0]
    );
    // It came from an --include, so the hint is not about --layer.
    let hint = findings[0].hint.as_deref().unwrap_or_default();
    assert!(hint.contains("include the extension's"), "{hint}");
}

#[test]
fn an_extension_without_an_execute_bit_is_refused() {
    // aws-samples/aws-lambda-extensions#38: "fork/exec /opt/extensions/...: permission denied".
    let work = tempfile::tempdir().unwrap();
    let opt = work.path().join("opt");
    write(
        &opt,
        "extensions/logs.py",
        b"#!/usr/bin/env python3\n",
        0o644,
    );
    let errors_found = check(&opt, host());
    let errors = errors(&errors_found);
    assert_eq!(errors.len(), 1, "{errors_found:?}");
    assert!(errors[0].contains("no execute bit"), "{}", errors[0]);
    assert!(errors[0].contains("permission denied"), "{}", errors[0]);
}

#[test]
fn a_script_with_a_windows_line_ending_is_refused() {
    // aws-samples/aws-lambda-extensions#54: a CRLF extension script fails with "no such file
    // or directory".
    let work = tempfile::tempdir().unwrap();
    let opt = work.path().join("opt");
    write(
        &opt,
        "extensions/ext.sh",
        b"#!/bin/sh\r\necho hi\r\n",
        0o755,
    );
    let findings = check(&opt, host());
    let errors = errors(&findings);
    assert_eq!(errors.len(), 1, "{findings:?}");
    assert!(
        errors[0].contains("/opt/extensions/ext.sh"),
        "{}",
        errors[0]
    );
}

#[test]
fn data_files_and_byte_order_marks_are_not_programs() {
    let work = tempfile::tempdir().unwrap();
    let opt = work.path().join("opt");
    write(&opt, "extensions/readme.txt", b"hello", 0o755);
    write(&opt, "extensions/bom.sh", b"\xEF\xBB\xBF#!/bin/sh\n", 0o755);
    // Without an execute bit too (a .DS_Store a Mac zip left there): said to be data, not
    // told to chmod +x, which would only lead to the next error.
    write(&opt, "extensions/.DS_Store", b"\0\0\0\x01Bud1", 0o644);
    let findings = check(&opt, host());
    let errors = errors(&findings);
    assert_eq!(errors.len(), 3, "{findings:?}");
    assert!(errors.iter().any(|error| error.contains(".DS_Store")
        && error.contains("neither an ELF executable nor a #! script")));
    assert!(errors.iter().any(|error| error.contains("readme.txt")
        && error.contains("neither an ELF executable nor a #! script")));
    assert!(
        errors
            .iter()
            .any(|error| error.contains("bom.sh") && error.contains("byte order mark"))
    );
}

#[test]
fn links_are_followed_inside_the_layer() {
    let work = tempfile::tempdir().unwrap();
    let opt = work.path().join("opt");
    write(&opt, "agent/bin/agent", &elf_for(other(host())), 0o755);
    std::fs::create_dir_all(opt.join("extensions")).unwrap();
    std::os::unix::fs::symlink("../agent/bin/agent", opt.join("extensions/agent")).unwrap();
    std::os::unix::fs::symlink("/opt/agent/bin/gone", opt.join("extensions/dangling")).unwrap();
    std::os::unix::fs::symlink("/usr/bin/base-agent", opt.join("extensions/base")).unwrap();
    std::os::unix::fs::symlink("loop", opt.join("extensions/loop")).unwrap();
    let findings = check(&opt, host());
    let errors = errors(&findings);
    assert_eq!(errors.len(), 3, "{findings:?}");
    assert!(
        errors.iter().any(|error| error
            .contains("/opt/extensions/agent (a link to /opt/agent/bin/agent)")
            && error.contains("exec format error")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|error| error.contains("dangling") && error.contains("/opt/agent/bin/gone")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|error| error.contains("loop") && error.contains("ELOOP")),
        "{errors:?}"
    );
    // A link into the base's files is not followed here (the layer is all the build reads).
    assert!(
        findings.iter().any(|finding| finding.level == Level::Info
            && finding.message.contains("/usr/bin/base-agent")),
        "{findings:?}"
    );
}

#[test]
fn link_targets_are_normalized_and_cannot_climb_above_the_root() {
    assert_eq!(
        lexical_path("opt/extensions/../bin/x").as_deref(),
        Some("opt/bin/x")
    );
    assert_eq!(lexical_path("/opt/./a//b").as_deref(), Some("opt/a/b"));
    assert_eq!(lexical_path("opt/../../etc"), None);
    assert_eq!(lexical_path("").as_deref(), Some(""));
}
