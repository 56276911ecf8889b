//! Unit tests of `image::filesystem`: the file tree layers make (whiteouts, links, modes) and
//! the entries Lambda's layer unpacker rejects.

use super::*;

enum Item<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
}

fn layer(items: &[Item]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        let (path, data): (&str, &[u8]) = match item {
            Item::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                (path, &[])
            }
            Item::File(path, data) => {
                header.set_mode(0o755);
                (path, data)
            }
            Item::Symlink(path, target) | Item::HardLink(path, target) => {
                header.set_entry_type(if matches!(item, Item::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.set_link_name(target).unwrap();
                (path, &[])
            }
        };
        header.set_size(data.len() as u64);
        // Written raw: `set_path` refuses the `..` this test needs.
        header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn capture_nothing(_: &str) -> Option<usize> {
    None
}

#[test]
fn finds_hard_links_missing_parents_and_follows_symlinks() {
    let mut filesystem = Filesystem::default();
    let base = layer(&[
        Item::Dir("usr"),
        Item::Dir("usr/lib64"),
        Item::File("usr/lib64/ld-linux-x86-64.so.2", b"\x7fELF"),
        Item::Symlink("lib64", "usr/lib64"),
        Item::Dir("bin"),
        Item::File("bin/sh", b"x"),
    ]);
    let problems = filesystem
        .apply_layer(base.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    assert_eq!(
        problems,
        LayerProblems {
            uncompressed_size: base.len() as u64,
            ..Default::default()
        }
    );
    assert!(filesystem.exists("/lib64/ld-linux-x86-64.so.2"));
    // `..` after a symlink climbs from where the link points, as the kernel does.
    assert!(filesystem.exists("/lib64/../lib64/ld-linux-x86-64.so.2"));
    assert!(!filesystem.exists("/lib64/../bin/sh"));
    assert!(matches!(
        filesystem.node("lib64"),
        Some(Node::Symlink { .. })
    ));

    let bad = layer(&[
        Item::File("var/runtime/bootstrap", b"#!/bin/sh\n"),
        Item::HardLink("bin/sh2", "bin/sh"),
        Item::File("../escape", b""),
    ]);
    let problems = filesystem
        .apply_layer(bad.as_slice(), LayerCompression::None, &|path| {
            (path == "var/runtime/bootstrap").then_some(2)
        })
        .unwrap();
    assert_eq!(
        problems.missing_parents,
        vec!["var/runtime/bootstrap".to_owned()]
    );
    assert_eq!(
        problems.hard_links,
        vec![("bin/sh2".to_owned(), "bin/sh".to_owned())]
    );
    assert_eq!(problems.unsafe_paths, vec!["../escape".to_owned()]);
    assert_eq!(
        filesystem.node("/var/runtime/bootstrap"),
        Some(&Node::File {
            mode: 0o755,
            size: 10,
            head: Some(b"#!".to_vec())
        })
    );
}

#[test]
fn lookup_says_why_a_path_names_nothing() {
    let mut filesystem = Filesystem::default();
    let items = layer(&[
        Item::Dir("var"),
        Item::File("var/file", b"x"),
        Item::Symlink("var/dangling", "/var/gone"),
        Item::Symlink("var/a", "b"),
        Item::Symlink("var/b", "a"),
        Item::Symlink("var/up", "../var/file"),
    ]);
    filesystem
        .apply_layer(items.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    let error = |path| filesystem.lookup(path).map(|(found, _)| found).unwrap_err();
    assert_eq!(
        error("/var/dangling"),
        LookupError::Missing("/var/gone".into())
    );
    assert_eq!(error("/opt/x"), LookupError::Missing("/opt".into()));
    assert_eq!(
        error("/var/file/x"),
        LookupError::NotADirectory("/var/file".into())
    );
    assert_eq!(error("/var/a"), LookupError::TooManyLinks);
    assert_eq!(filesystem.lookup("/var/up").unwrap().0, "var/file");
    assert_eq!(filesystem.resolve("/var/a"), None);
}

#[test]
fn whiteouts_delete_and_opaque_directories_hide_lower_layers() {
    let mut filesystem = Filesystem::default();
    let lower = layer(&[
        Item::Dir("a"),
        Item::File("a/one", b""),
        Item::File("a/two", b""),
        Item::Dir("b"),
        Item::File("b/x", b""),
    ]);
    filesystem
        .apply_layer(lower.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    let upper = layer(&[
        Item::File("a/.wh.one", b""),
        Item::File("b/.wh..wh..opq", b""),
        Item::File("b/y", b""),
    ]);
    filesystem
        .apply_layer(upper.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    assert!(!filesystem.exists("a/one"));
    assert!(filesystem.exists("a/two"));
    assert!(!filesystem.exists("b/x"));
    assert!(filesystem.exists("b/y"));
}

#[test]
fn an_opaque_marker_at_the_root_hides_every_lower_entry() {
    let mut filesystem = Filesystem::default();
    let lower = layer(&[
        Item::Dir("a"),
        Item::File("a/one", b""),
        Item::File("top", b""),
    ]);
    filesystem
        .apply_layer(lower.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    let upper = layer(&[Item::File(".wh..wh..opq", b""), Item::File("new", b"")]);
    filesystem
        .apply_layer(upper.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    assert!(!filesystem.exists("a/one"));
    assert!(!filesystem.exists("top"));
    assert!(filesystem.exists("new"));
}

/// Each opaque marker used to scan the whole tree: 20,000 directories with a marker each (a
/// 30 MB tar, well under 1 MB gzipped) took 32 s in a debug build, and five times as many would
/// take minutes more. Now a marker looks only below its own directory, once per layer.
#[test]
fn many_opaque_markers_cost_time_in_proportion() {
    let mut items = Vec::new();
    let names: Vec<[String; 3]> = (0..20_000)
        .map(|i| {
            [
                format!("d{i}"),
                format!("d{i}/f"),
                format!("d{i}/.wh..wh..opq"),
            ]
        })
        .collect();
    for [directory, file, marker] in &names {
        items.push(Item::Dir(directory));
        items.push(Item::File(file, b""));
        items.push(Item::File(marker, b""));
        items.push(Item::File(marker, b""));
    }
    let bytes = layer(&items);
    let start = std::time::Instant::now();
    let mut filesystem = Filesystem::default();
    filesystem
        .apply_layer(bytes.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    // Entries of the marker's own layer stay, whatever their order.
    assert!(filesystem.exists("d0/f") && filesystem.exists("d19999/f"));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

/// A symlink to a 2,000-component chain of itself with 2,000 entries below it (a 2 MB tar)
/// took 19 s in a debug build, each entry's parent lookup queueing 40 hops of 2,000 components.
#[test]
fn a_self_referencing_symlink_chain_is_given_up_on_quickly() {
    // Written with GNU long-name entries: the link target is over 100 bytes.
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    let chain = vec!["l"; 2000].join("/");
    builder.append_link(&mut header, "l", &chain).unwrap();
    for i in 0..2000 {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        builder
            .append_data(&mut header, format!("l/f{i}"), &[][..])
            .unwrap();
    }
    let bytes = builder.into_inner().unwrap();
    let start = std::time::Instant::now();
    let mut filesystem = Filesystem::default();
    let problems = filesystem
        .apply_layer(bytes.as_slice(), LayerCompression::None, &capture_nothing)
        .unwrap();
    assert_eq!(problems.missing_parents.len(), 2000);
    assert!(!filesystem.exists("l/f0"));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
