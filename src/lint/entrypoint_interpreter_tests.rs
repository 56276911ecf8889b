//! Unit tests of `lint::entrypoint` for what the entrypoint's program asks to run: the heads kept
//! of scripts and ELF files, `#!` interpreters, ELF program interpreters and interpreter loops.
//! The image fixtures come from the parent test module.

use super::*;

#[test]
fn heads_keep_the_shebang_line_or_the_elf_headers_only() {
    assert_eq!(head_to_keep(b"#!/bin/sh\necho hi\n"), 10);
    assert_eq!(head_to_keep(b"#!/bin/sh\r\nexit\r\n"), 11);
    let long = [b"#!/".as_slice(), &[b'a'; 500]].concat();
    assert_eq!(head_to_keep(&long), shebang::LINE_LIMIT);
    assert_eq!(head_to_keep(b"PK\x03\x04 not a program"), 0);
    assert_eq!(head_to_keep(b""), 0);
    // A truncated ELF keeps what there is.
    assert_eq!(head_to_keep(b"\x7fELF\x02\x01"), 6);
}

#[test]
fn elf_heads_end_after_the_interpreter_path() {
    let elf = std::fs::read("/bin/sh").expect("this machine has /bin/sh");
    let head = &elf[..HEAD_BYTES.min(elf.len())];
    let keep = head_to_keep(head);
    assert!(keep > 64 && keep < HEAD_BYTES, "{keep}");
    let interpreter = read_interpreter(&head[..keep]).unwrap().unwrap();
    assert!(interpreter.starts_with("/lib"), "{interpreter}");
    // One byte fewer cuts the interpreter path: it cannot be read then.
    assert!(read_interpreter(&head[..keep - 1]).is_err());
}

#[test]
fn scripts_need_a_clean_line_and_an_interpreter_in_the_image() {
    let script = |text: &[u8]| bootstrap(vec![File("var/runtime/bootstrap", 0o755, text.to_vec())]);
    assert!(script(b"#!/bin/sh\n").is_empty());
    assert!(script(b"#!/usr/bin/env sh\n").is_empty());
    assert!(script(b"#! /bin/sh -e\n").is_empty());
    let crlf = script(b"#!/bin/sh\r\n");
    assert_eq!(levels(&crlf), [("bootstrap", Level::Error)]);
    assert_eq!(levels(&script(b"#!\n")), [("bootstrap", Level::Error)]);
    let missing = script(b"#!/usr/bin/python3\n");
    assert_eq!(levels(&missing), [("interpreter", Level::Error)]);
    assert!(
        missing[0]
            .2
            .starts_with("the #! interpreter /usr/bin/python3 of /var/runtime/bootstrap"),
        "{missing:?}"
    );
    let on_path = script(b"#!/usr/bin/env python3\n");
    assert_eq!(levels(&on_path), [("interpreter", Level::Error)]);
    assert!(
        on_path[0]
            .2
            .starts_with("the #! interpreter python3 of /var/runtime/bootstrap"),
        "{on_path:?}"
    );
    // The env form and the path form of a missing interpreter read alike.
    assert!(
        missing[0].2.contains("is not in the image")
            && on_path[0].2.contains("is not in the image")
    );
    // A relative interpreter is taken from the working directory.
    let relative = bootstrap(vec![
        File("var/task/tool", 0o755, static_elf()),
        File("var/runtime/bootstrap", 0o755, b"#!tool\n".to_vec()),
    ]);
    assert!(relative.is_empty(), "{relative:?}");
    // An interpreter that is itself a script is followed too, up to Linux's limit.
    let mut chain = vec![File("var/runtime/bootstrap", 0o755, b"#!/s1\n".to_vec())];
    for level in 1..=MAX_INTERPRETER_DEPTH {
        let name: &'static str = Box::leak(format!("s{level}").into_boxed_str());
        let next = format!("#!/s{}\n", level + 1).into_bytes();
        chain.push(File(name, 0o755, next));
    }
    let looped = bootstrap(chain);
    assert_eq!(
        levels(&looped),
        [("interpreter", Level::Error)],
        "{looped:?}"
    );
    assert!(looped[0].2.contains("ELOOP"), "{looped:?}");
    let nested = bootstrap(vec![
        File("s1", 0o755, b"#!/bin/sh\n".to_vec()),
        File("var/runtime/bootstrap", 0o755, b"#!/s1\n".to_vec()),
    ]);
    assert!(nested.is_empty(), "{nested:?}");
    let wrong = bootstrap(vec![
        File("s1", 0o755, elf(AARCH64, None)),
        File("var/runtime/bootstrap", 0o755, b"#!/s1\n".to_vec()),
    ]);
    assert_eq!(levels(&wrong), [("architecture", Level::Error)]);
    assert!(
        wrong[0]
            .2
            .starts_with("the #! interpreter /s1 of /var/runtime/bootstrap"),
        "{wrong:?}"
    );
    let env_missing = bootstrap(vec![
        File(
            "var/task/main.py",
            0o755,
            b"#!/opt/bin/env python3\n".to_vec(),
        ),
        Link("var/runtime/bootstrap", "/var/task/main.py"),
    ]);
    assert_eq!(levels(&env_missing), [("interpreter", Level::Error)]);
    assert!(env_missing[0].2.contains("/opt/bin/env"), "{env_missing:?}");
}

#[test]
fn a_dynamic_elf_needs_its_program_interpreter() {
    let musl = bootstrap(vec![File(
        "var/runtime/bootstrap",
        0o755,
        elf(X86_64, Some("/lib/ld-musl-x86_64.so.1")),
    )]);
    assert_eq!(levels(&musl), [("interpreter", Level::Error)]);
    assert!(
        musl[0].2.contains("/lib/ld-musl-x86_64.so.1") && musl[0].2.contains("musl"),
        "{musl:?}"
    );
    let glibc = bootstrap(vec![File(
        "var/runtime/bootstrap",
        0o755,
        elf(X86_64, Some("/lib64/ld-linux-x86-64.so.2")),
    )]);
    assert_eq!(levels(&glibc), [("interpreter", Level::Error)]);
    assert!(!glibc[0].2.contains("musl"), "{glibc:?}");
    let present = bootstrap(vec![
        Dir("usr/lib64"),
        File("usr/lib64/ld-linux-x86-64.so.2", 0o755, static_elf()),
        Link("lib64", "usr/lib64"),
        File(
            "var/runtime/bootstrap",
            0o755,
            elf(X86_64, Some("/lib64/ld-linux-x86-64.so.2")),
        ),
    ]);
    assert!(present.is_empty(), "{present:?}");
    // A directory at the loader's path is no loader.
    let directory = bootstrap(vec![
        Dir("lib64"),
        Dir("lib64/ld-linux-x86-64.so.2"),
        File(
            "var/runtime/bootstrap",
            0o755,
            elf(X86_64, Some("/lib64/ld-linux-x86-64.so.2")),
        ),
    ]);
    assert_eq!(levels(&directory), [("interpreter", Level::Error)]);
}

#[test]
fn program_headers_out_of_reach_are_a_warning() {
    let mut far = elf(X86_64, Some("/lib64/ld-linux-x86-64.so.2"));
    far[32..40].copy_from_slice(&(HEAD_BYTES as u64).to_le_bytes());
    assert!(read_interpreter(far.as_slice()).is_err());
    let found = bootstrap(vec![File("var/runtime/bootstrap", 0o755, far)]);
    assert_eq!(levels(&found), [("interpreter", Level::Warning)]);
    assert_eq!(read_interpreter(static_elf().as_slice()), Ok(None));
    assert_eq!(
        read_interpreter(elf(X86_64, Some("/lib/ld.so")).as_slice()),
        Ok(Some("/lib/ld.so".to_owned()))
    );
}

#[test]
fn elf_heads_keep_every_program_header() {
    let mut three = elf(X86_64, None);
    three[56..58].copy_from_slice(&3u16.to_le_bytes());
    three.resize(HEAD_BYTES, 0);
    assert_eq!(head_to_keep(&three), 64 + 3 * 56);
}

#[test]
fn interpreters_that_run_themselves_end_in_eloop() {
    // env that is itself a script run by env, and a command on PATH that runs itself.
    for items in [
        vec![
            Dir("opt"),
            Dir("opt/env"),
            File("opt/env/env", 0o755, b"#!/opt/env/env sh\n".to_vec()),
            File(
                "var/runtime/bootstrap",
                0o755,
                b"#!/opt/env/env sh\n".to_vec(),
            ),
        ],
        vec![
            Dir("opt"),
            Dir("opt/bin"),
            File("opt/bin/again", 0o755, b"#!/usr/bin/env again\n".to_vec()),
            File(
                "var/runtime/bootstrap",
                0o755,
                b"#!/usr/bin/env again\n".to_vec(),
            ),
        ],
    ] {
        let found = bootstrap(items);
        assert_eq!(levels(&found), [("interpreter", Level::Error)], "{found:?}");
        assert!(found[0].2.contains("ELOOP"), "{found:?}");
    }
}
