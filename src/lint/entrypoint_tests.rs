//! Unit tests of `lint::entrypoint`: following `Entrypoint[0]`/`Cmd[0]` through an image's
//! file tree the way `execve` does, and the findings each broken case gives.

use super::*;
use crate::bootstrap::elf::read_interpreter;
use crate::bootstrap::shebang;
use crate::lint::executable::{HEAD_BYTES, MAX_INTERPRETER_DEPTH, head_to_keep};
use object::elf::PT_INTERP;

/// A minimal ELF64 executable header for `machine` (62: x86-64, 183: aarch64), with one
/// program header: `PT_INTERP` naming `interpreter`, or a `PT_LOAD` for a static one.
fn elf(machine: u16, interpreter: Option<&str>) -> Vec<u8> {
    let mut bytes = vec![0u8; 64 + 56];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2; // 64-bit
    bytes[5] = 1; // little-endian
    bytes[6] = 1; // EV_CURRENT
    bytes[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    bytes[20..24].copy_from_slice(&1u32.to_le_bytes());
    bytes[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    bytes[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    bytes[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    bytes[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    let header = &mut bytes[64..];
    match interpreter {
        Some(path) => {
            header[..4].copy_from_slice(&PT_INTERP.0.to_le_bytes());
            header[8..16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
            let size = path.len() as u64 + 1;
            header[32..40].copy_from_slice(&size.to_le_bytes()); // p_filesz
            header[40..48].copy_from_slice(&size.to_le_bytes()); // p_memsz
            bytes.extend_from_slice(path.as_bytes());
            bytes.push(0);
        }
        None => header[..4].copy_from_slice(&object::elf::PT_LOAD.0.to_le_bytes()),
    }
    bytes
}

const X86_64: u16 = 62;
const AARCH64: u16 = 183;

enum Item<'a> {
    Dir(&'a str),
    File(&'a str, u32, Vec<u8>),
    Link(&'a str, &'a str),
}
use Item::{Dir, File, Link};

fn static_elf() -> Vec<u8> {
    elf(X86_64, None)
}

/// A tree from one layer of `items`, every parent directory of `/bin`, `/usr/...` included.
fn tree(items: Vec<Item>) -> Filesystem {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        match item {
            Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
            File(path, mode, bytes) => {
                header.set_mode(mode);
                header.set_size(bytes.len() as u64);
                builder
                    .append_data(&mut header, path, bytes.as_slice())
                    .unwrap();
            }
            Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    let bytes = builder.into_inner().unwrap();
    let mut filesystem = Filesystem::default();
    filesystem
        .apply_layer_capturing(
            bytes.as_slice(),
            crate::image::filesystem::LayerCompression::None,
            &crate::image::filesystem::Capture {
                read: &|_, mode| (mode & 0o111 != 0).then_some(HEAD_BYTES),
                keep: &head_to_keep,
            },
        )
        .unwrap();
    filesystem
}

/// The usual directories, `/bin/sh` (a static ELF) and `/usr/bin/env` (a link to it).
fn base() -> Vec<Item<'static>> {
    vec![
        Dir("bin"),
        Dir("usr"),
        Dir("usr/bin"),
        Dir("usr/local"),
        Dir("usr/local/bin"),
        Dir("var"),
        Dir("var/runtime"),
        Dir("var/task"),
        Dir("lib"),
        File("bin/busybox", 0o755, static_elf()),
        Link("bin/sh", "busybox"),
        Link("usr/bin/env", "/bin/busybox"),
        File(
            "lambda-entrypoint.sh",
            0o755,
            b"#!/bin/sh\nexec /var/runtime/bootstrap\n".to_vec(),
        ),
    ]
}

fn config(entrypoint: &[&str], cmd: &[&str], path: Option<&str>) -> Value {
    let mut env = vec!["LANG=C".to_owned()];
    if let Some(path) = path {
        env.push(format!("PATH={path}"));
    }
    serde_json::json!({
        "architecture": "amd64",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": env, "WorkingDir": "/var/task"},
    })
}

const AWS_PATH: &str = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin";

/// `(check, level, message)` of every finding but infos.
fn lint(extra: Vec<Item>, config: Value) -> Vec<(&'static str, Level, String)> {
    let mut items = base();
    items.extend(extra);
    let filesystem = tree(items);
    check(
        &Command::from_config(&config),
        &filesystem,
        Architecture::Amd64,
        &config,
    )
    .into_iter()
    .filter(|finding| finding.level != Level::Info)
    .map(|finding| (finding.check, finding.level, finding.message))
    .collect()
}

fn levels(findings: &[(&'static str, Level, String)]) -> Vec<(&'static str, Level)> {
    findings
        .iter()
        .map(|(check, level, _)| (*check, *level))
        .collect()
}

fn bootstrap(items: Vec<Item>) -> Vec<(&'static str, Level, String)> {
    lint(
        items,
        config(&["/lambda-entrypoint.sh"], &["bootstrap"], Some(AWS_PATH)),
    )
}

#[test]
fn the_provided_base_layout_passes() {
    let found = bootstrap(vec![File("var/runtime/bootstrap", 0o755, static_elf())]);
    assert!(found.is_empty(), "{found:?}");
    let found = bootstrap(vec![
        File("var/task/main", 0o755, static_elf()),
        Link("var/runtime/bootstrap", "../task/main"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn lambda_entrypoint_takes_one_argument() {
    for cmd in [&[][..], &["a", "b"][..]] {
        let found = lint(
            vec![File("var/runtime/bootstrap", 0o755, static_elf())],
            config(&["/lambda-entrypoint.sh"], cmd, Some(AWS_PATH)),
        );
        assert_eq!(levels(&found), [("entrypoint", Level::Error)], "{cmd:?}");
        assert!(
            found[0].2.contains(&format!("give it {}", cmd.len())),
            "{found:?}"
        );
    }
    let nothing = lint(vec![], config(&[], &[], None));
    assert_eq!(levels(&nothing), [("entrypoint", Level::Error)]);
}

#[test]
fn bootstrap_links_are_followed_and_broken_ones_named() {
    let dangling = bootstrap(vec![Link("var/runtime/bootstrap", "/var/task/gone")]);
    assert_eq!(levels(&dangling), [("bootstrap", Level::Error)]);
    assert!(
        dangling[0].2.contains("/var/task/gone is not in the image"),
        "{dangling:?}"
    );
    let looped = bootstrap(vec![
        Link("var/runtime/bootstrap", "b"),
        Link("var/runtime/b", "bootstrap"),
    ]);
    assert_eq!(levels(&looped), [("bootstrap", Level::Error)]);
    assert!(looped[0].2.contains("loop"), "{looped:?}");
    // A file where a directory should be.
    let through_file = bootstrap(vec![
        File("var/task/main", 0o755, static_elf()),
        Link("var/runtime/bootstrap", "/var/task/main/bootstrap"),
    ]);
    assert_eq!(levels(&through_file), [("bootstrap", Level::Error)]);
    assert!(
        through_file[0]
            .2
            .contains("/var/task/main is not a directory"),
        "{through_file:?}"
    );
    let missing = bootstrap(vec![]);
    assert_eq!(levels(&missing), [("bootstrap", Level::Error)]);
    assert_eq!(
        missing[0].2,
        "/var/runtime/bootstrap is not in the image; Lambda could not start it"
    );
    let directory = bootstrap(vec![Dir("var/runtime/bootstrap")]);
    assert!(directory[0].2.contains("is a directory"), "{directory:?}");
}

#[test]
fn modes_must_let_others_read_and_execute() {
    let private = bootstrap(vec![File("var/runtime/bootstrap", 0o700, static_elf())]);
    assert_eq!(levels(&private), [("bootstrap", Level::Error)]);
    assert!(private[0].2.contains("non-root"), "{private:?}");
    // An ELF others may execute runs unread; a script must be read by its interpreter.
    let unreadable = bootstrap(vec![File("var/runtime/bootstrap", 0o711, static_elf())]);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    let script = bootstrap(vec![File(
        "var/runtime/bootstrap",
        0o711,
        b"#!/bin/sh\n".to_vec(),
    )]);
    assert_eq!(levels(&script), [("bootstrap", Level::Error)]);
    assert!(
        script[0].2.contains("cannot read and execute it"),
        "{script:?}"
    );
    let group_only = bootstrap(vec![File("var/runtime/bootstrap", 0o750, static_elf())]);
    assert!(
        group_only[0].2.contains("cannot execute it"),
        "{group_only:?}"
    );
    let plain = bootstrap(vec![File("var/runtime/bootstrap", 0o644, static_elf())]);
    assert_eq!(levels(&plain), [("bootstrap", Level::Error)]);
    assert!(
        plain[0].2.contains("not executable (mode 644)"),
        "{plain:?}"
    );
    for mode in [0o755, 0o555, 0o705] {
        let fine = bootstrap(vec![File("var/runtime/bootstrap", mode, static_elf())]);
        assert!(fine.is_empty(), "{mode:o}: {fine:?}");
    }
    let data = bootstrap(vec![File(
        "var/runtime/bootstrap",
        0o755,
        b"PK\x03\x04".to_vec(),
    )]);
    assert!(
        data[0]
            .2
            .contains("neither an ELF executable nor a #! script"),
        "{data:?}"
    );
}

#[test]
fn entrypoints_by_link_or_name_warn_and_are_followed() {
    let python = |path| config(&["python3", "-m", "awslambdaric"], &["app.handler"], path);
    let on_path = lint(
        vec![File("usr/local/bin/python3", 0o755, static_elf())],
        python(Some(AWS_PATH)),
    );
    assert_eq!(levels(&on_path), [("entrypoint", Level::Warning)]);
    assert!(
        on_path[0].2.contains("at /usr/local/bin/python3"),
        "{on_path:?}"
    );
    // Without PATH in the config, Lambda's default PATH is searched.
    let default = lint(
        vec![File("usr/local/bin/python3", 0o755, static_elf())],
        python(None),
    );
    assert_eq!(levels(&default), [("entrypoint", Level::Warning)]);
    assert!(
        default[0].2.contains("Lambda's default PATH"),
        "{default:?}"
    );
    let elsewhere = lint(
        vec![
            Dir("var/lang"),
            Dir("var/lang/bin"),
            File("var/lang/bin/python3", 0o755, static_elf()),
        ],
        python(None),
    );
    assert_eq!(levels(&elsewhere), [("entrypoint", Level::Error)]);
    assert!(
        elsewhere[0]
            .2
            .contains("no directory of Lambda's default PATH"),
        "{elsewhere:?}"
    );
    // Found on PATH as a link: one warning, the link only noted.
    let linked_on_path = lint(
        vec![
            File("usr/local/bin/python3.12", 0o755, static_elf()),
            Link("usr/local/bin/python3", "python3.12"),
        ],
        python(Some(AWS_PATH)),
    );
    assert_eq!(levels(&linked_on_path), [("entrypoint", Level::Warning)]);
    // A directory named like the program is not a program.
    let directory = lint(vec![Dir("usr/local/bin/python3")], python(Some(AWS_PATH)));
    assert_eq!(levels(&directory), [("entrypoint", Level::Error)]);

    let relative = lint(
        vec![
            Dir("var/task/bin"),
            File("var/task/bin/run", 0o755, static_elf()),
        ],
        config(&["bin/run"], &[], Some(AWS_PATH)),
    );
    assert_eq!(levels(&relative), [("entrypoint", Level::Warning)]);
    assert!(relative[0].2.contains("/var/task/bin/run"), "{relative:?}");
    let relative_missing = lint(vec![], config(&["bin/run"], &[], Some(AWS_PATH)));
    assert_eq!(levels(&relative_missing), [("entrypoint", Level::Error)]);
    assert!(
        relative_missing[0]
            .2
            .contains("the working directory /var/task has no such file")
    );

    let linked = lint(
        vec![
            File("usr/local/bin/python3.12", 0o755, static_elf()),
            Link("usr/local/bin/python", "python3.12"),
        ],
        config(
            &["/usr/local/bin/python", "-m", "awslambdaric"],
            &[],
            Some(AWS_PATH),
        ),
    );
    assert_eq!(levels(&linked), [("entrypoint", Level::Warning)]);
    assert!(
        linked[0]
            .2
            .contains("/usr/local/bin/python3.12, is checked"),
        "{linked:?}"
    );
    let wrong = lint(
        vec![
            File("usr/local/bin/python3.12", 0o755, elf(AARCH64, None)),
            Link("usr/local/bin/python", "python3.12"),
        ],
        config(&["/usr/local/bin/python"], &[], Some(AWS_PATH)),
    );
    assert_eq!(
        levels(&wrong),
        [
            ("entrypoint", Level::Warning),
            ("architecture", Level::Error)
        ]
    );
}

#[test]
fn a_path_whose_parents_fail_says_which() {
    let at = |entrypoint: &str, items: Vec<Item<'static>>| {
        let found = lint(items, config(&[entrypoint], &[], Some(AWS_PATH)));
        assert_eq!(levels(&found), [("entrypoint", Level::Error)], "{found:?}");
        found[0].2.clone()
    };
    assert_eq!(
        at("/opt/app/run", vec![]),
        "/opt/app/run is not in the image: there is no /opt; Lambda could not start it"
    );
    assert!(
        at(
            "/var/task/main/run",
            vec![File("var/task/main", 0o755, static_elf())]
        )
        .contains(": /var/task/main is not a directory"),
    );
    assert!(at("/var/app/run", vec![Link("var/app", "app")]).contains("loop"));
}

/// Infos too, as `(check, level)`.
fn all_levels(items: Vec<Item>) -> Vec<(&'static str, Level)> {
    let mut all = base();
    all.extend(items);
    let config = config(&["/lambda-entrypoint.sh"], &["bootstrap"], Some(AWS_PATH));
    check(
        &Command::from_config(&config),
        &tree(all),
        Architecture::Amd64,
        &config,
    )
    .into_iter()
    .map(|finding| (finding.check, finding.level))
    .collect()
}

#[test]
fn the_architecture_pass_is_said_for_the_program_itself_only() {
    // /lambda-entrypoint.sh's /bin/sh is an ELF too, but only the bootstrap's pass is said.
    assert_eq!(
        all_levels(vec![File("var/runtime/bootstrap", 0o755, static_elf())]),
        [("architecture", Level::Info)]
    );
    assert_eq!(
        all_levels(vec![
            File("var/task/main", 0o755, static_elf()),
            Link("var/runtime/bootstrap", "/var/task/main"),
        ]),
        [("bootstrap", Level::Info), ("architecture", Level::Info)]
    );
}

#[path = "entrypoint_interpreter_tests.rs"]
mod interpreters;

/// `(check, level, message)` of the extensions rule's findings but infos.
fn extensions(extra: Vec<Item>) -> Vec<(&'static str, Level, String)> {
    let mut items = base();
    items.extend([Dir("opt"), Dir("opt/extensions")]);
    items.extend(extra);
    let config = config(&["/lambda-entrypoint.sh"], &["bootstrap"], Some(AWS_PATH));
    crate::lint::extensions::check(&tree(items), Architecture::Amd64, &config)
        .into_iter()
        .filter(|finding| finding.level != Level::Info)
        .map(|finding| (finding.check, finding.level, finding.message))
        .collect()
}

#[test]
fn extensions_are_held_to_the_entrypoint_rules_and_directories_skipped() {
    // Good ones: a static ELF, a script whose interpreter the image has, a link to an ELF, and
    // a directory of data (skipped, as Lambda skips directories).
    let good = extensions(vec![
        File("opt/extensions/agent", 0o755, static_elf()),
        File(
            "opt/extensions/hook.sh",
            0o755,
            b"#!/bin/sh\nexit 0\n".to_vec(),
        ),
        Dir("opt/agent"),
        File("opt/agent/run", 0o755, static_elf()),
        Link("opt/extensions/linked", "../agent/run"),
        Dir("opt/extensions/agent-data"),
        File("opt/extensions/agent-data/conf", 0o644, b"x".to_vec()),
    ]);
    assert!(good.is_empty(), "{good:?}");

    // aws-samples/aws-lambda-extensions#38 (mode), #54 (CRLF), and an arm64 build in an amd64
    // image, a dangling link, a link to a directory.
    let bad = extensions(vec![
        File(
            "opt/extensions/logs.py",
            0o644,
            b"#!/usr/bin/env python3\n".to_vec(),
        ),
        File(
            "opt/extensions/crlf",
            0o755,
            b"#!/bin/sh\r\necho\r\n".to_vec(),
        ),
        File("opt/extensions/arm", 0o755, elf(AARCH64, None)),
        Link("opt/extensions/gone", "/opt/nothing"),
        Dir("opt/lib"),
        Link("opt/extensions/dir", "/opt/lib"),
    ]);
    let named = |name: &str| {
        bad.iter()
            .filter(|(_, level, message)| *level == Level::Error && message.contains(name))
            .count()
    };
    assert_eq!(
        named("/opt/extensions/logs.py is not executable"),
        1,
        "{bad:?}"
    );
    assert_eq!(named("/opt/extensions/crlf"), 1, "{bad:?}");
    assert_eq!(
        named("the extension /opt/extensions/arm is an ELF executable for arm64"),
        1,
        "{bad:?}"
    );
    assert_eq!(named("/opt/extensions/gone"), 1, "{bad:?}");
    assert_eq!(named("/opt/extensions/dir"), 1, "{bad:?}");
    assert!(
        bad.iter()
            .all(|(check, _, _)| ["extension", "architecture", "interpreter"].contains(check)),
        "{bad:?}"
    );

    // No /opt/extensions at all: nothing to say.
    let config = config(&["/lambda-entrypoint.sh"], &["bootstrap"], Some(AWS_PATH));
    assert!(crate::lint::extensions::check(&tree(base()), Architecture::Amd64, &config).is_empty());
}
