//! Unit tests of unpacking entries: modes, mtimes, owners, symlinks, hard links, whiteouts,
//! an entry replacing another, paths climbing out of the tree, and the sandbox's mount points.

use super::*;

#[test]
fn layers_unpack_with_modes_mtimes_symlinks_and_the_sandboxs_mount_points() {
    let first = Tar::new()
        .dir("./", 0o755)
        .dir("etc/", 0o755)
        .file("etc/passwd", 0o644, b"root:x:0:0::/root:/bin/sh\n")
        .file("/usr/bin/tool", 0o4755, b"\x7fELF") // absolute, parents missing
        .symlink("usr/bin/sh", "tool")
        .symlink("bin", "usr/bin")
        .entry(tar::EntryType::Char, "null", 0o666, b"", None, (0, 0))
        .entry(tar::EntryType::Fifo, "pipe", 0o644, b"", None, (0, 0))
        .bytes();
    let mut second = Tar::new().file("./var/task/app", 0o755, b"app").bytes();
    // Bytes after the end blocks count in the diff_id too.
    second.extend_from_slice(&[0; 4096]);
    let set = image_with(
        &[
            (first.clone(), OCI_LAYER_GZIP),
            (second.clone(), OCI_LAYER_TAR),
        ],
        None,
    );
    let tree = unpack(&set, None).unwrap();
    let root = tree.path.as_path();
    assert!(!tree.reused);
    assert_eq!(
        tree.chain_id,
        chain_id(&[Sha256Digest::of(&first), Sha256Digest::of(&second)])
    );
    assert_eq!(read(root, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    assert_eq!(read(root, "bin/tool"), "\x7fELF", "through the symlink bin");
    assert_eq!(mode(root, "usr/bin/tool"), 0o4755, "setuid kept");
    assert_eq!(mode(root, "usr"), 0o755, "a directory no entry made");
    assert_eq!(
        fs::read_link(root.join("usr/bin/sh")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(read(root, "var/task/app"), "app");
    for path in ["etc", "etc/passwd", "usr/bin/tool", "usr/bin/sh", "bin", ""] {
        let metadata = fs::symlink_metadata(root.join(path)).unwrap();
        assert_eq!(metadata.mtime(), MTIME as i64, "mtime of /{path}");
    }
    assert!(
        !exists(root, "null") && !exists(root, "pipe"),
        "no devices, no FIFOs"
    );
    // The sandbox's mount points.
    for path in ["proc", "dev", "tmp"] {
        assert!(root.join(path).is_dir(), "{path}");
    }
    assert_eq!(mode(root, "tmp"), 0o1777);
    for path in ["etc/resolv.conf", "etc/hosts"] {
        assert_eq!(read(root, path), "", "{path}");
    }
}

#[test]
fn mount_point_files_are_made_in_an_etc_made_when_missing_and_replace_symlinks() {
    // A busybox-only tree (umoci, skopeo) has no /etc: without the files, localhost would not
    // resolve in the sandbox.
    let without_etc = image(vec![Tar::new().file("app", 0o755, b"x")]);
    let tree = unpack(&without_etc, None).unwrap();
    assert_eq!(mode(&tree.path, "etc"), 0o755);
    for file in MOUNT_POINT_FILES {
        let metadata = fs::symlink_metadata(tree.path.join(file)).unwrap();
        assert!(metadata.is_file() && metadata.len() == 0, "{file}");
        assert_eq!(mode(&tree.path, file), 0o644, "{file}");
    }

    // A symlinked /etc is the image's own and is never followed; a file /etc is kept too.
    let linked = image(vec![
        Tar::new().dir("usr/etc", 0o755).symlink("etc", "/usr/etc"),
    ]);
    let tree = unpack(&linked, None).unwrap();
    assert!(
        fs::symlink_metadata(tree.path.join("etc"))
            .unwrap()
            .is_symlink()
    );
    assert!(!exists(&tree.path, "usr/etc/hosts"));
    let file = image(vec![Tar::new().file("etc", 0o644, b"not a directory")]);
    let tree = unpack(&file, None).unwrap();
    assert_eq!(read(&tree.path, "etc"), "not a directory");

    let hostile = image(vec![
        Tar::new()
            .dir("etc", 0o755)
            .symlink("etc/hosts", "/etc/shadow")
            .symlink("tmp", "/var/tmp"),
    ]);
    let tree = unpack(&hostile, None).unwrap();
    let hosts = fs::symlink_metadata(tree.path.join("etc/hosts")).unwrap();
    assert!(hosts.is_file(), "a mount onto a symlink would follow it");
    assert!(
        fs::symlink_metadata(tree.path.join("tmp"))
            .unwrap()
            .is_dir()
    );
}

#[test]
fn whiteouts_remove_lower_entries_and_are_never_created() {
    let set = image(vec![
        Tar::new()
            .dir("a", 0o755)
            .file("a/gone", 0o644, b"1")
            .file("a/kept", 0o644, b"2")
            .dir("b", 0o755)
            .file("b/c/deep", 0o644, b"3"),
        Tar::new()
            .file("a/.wh.gone", 0o644, b"")
            .file(".wh.b", 0o644, b"")
            .file("a/new", 0o644, b"4")
            // A whiteout hides lower layers only, not an entry of its own layer.
            .file("a/.wh.new", 0o644, b"")
            .file("missing/.wh.x", 0o644, b""),
    ]);
    let tree = unpack(&set, None).unwrap();
    let root = tree.path.as_path();
    assert!(!exists(root, "a/gone"));
    assert_eq!(read(root, "a/kept"), "2");
    assert_eq!(read(root, "a/new"), "4");
    assert!(!exists(root, "b"));
    assert!(!exists(root, "missing"), "a whiteout makes no directory");
    assert!(
        !listing(root).iter().any(|path| path.contains(".wh.")),
        "{:?}",
        listing(root)
    );
}

#[test]
fn an_opaque_whiteout_keeps_the_same_layers_entries_before_and_after_it() {
    let set = image(vec![
        Tar::new()
            .dir("d", 0o755)
            .file("d/old", 0o644, b"old")
            .dir("d/sub", 0o755)
            .file("d/sub/old", 0o644, b"old")
            .file("other/kept", 0o644, b"kept"),
        Tar::new()
            .dir("d", 0o750)
            .file("d/before", 0o644, b"before")
            .file("d/sub/before", 0o644, b"before")
            .file("d/.wh..wh..opq", 0o644, b"")
            .file("d/after", 0o644, b"after"),
    ]);
    let tree = unpack(&set, None).unwrap();
    let root = tree.path.as_path();
    let under_d: Vec<String> = listing(root)
        .into_iter()
        .filter(|path| path.starts_with("d/"))
        .collect();
    assert_eq!(
        under_d,
        ["d/after", "d/before", "d/sub", "d/sub/before"],
        "lower entries gone, this layer's kept whatever their order"
    );
    assert_eq!(mode(root, "d"), 0o750);
    assert_eq!(read(root, "other/kept"), "kept");
}

#[test]
fn a_later_entry_of_another_type_replaces_the_earlier_one() {
    let set = image(vec![
        Tar::new()
            .file("file-then-dir", 0o644, b"f")
            .dir("dir-then-file", 0o755)
            .file("dir-then-file/inner", 0o644, b"i")
            .file("target", 0o644, b"t")
            .symlink("link-then-dir", "target")
            .dir("dir-then-link", 0o755)
            .file("dir-then-link/inner", 0o644, b"i")
            .dir("merged", 0o700)
            .file("merged/lower", 0o644, b"l"),
        Tar::new()
            .dir("file-then-dir", 0o755)
            .file("file-then-dir/inner", 0o644, b"new")
            .file("dir-then-file", 0o600, b"now a file")
            .dir("link-then-dir", 0o755)
            .symlink("dir-then-link", "target")
            .dir("merged", 0o755)
            .file("merged/upper", 0o644, b"u"),
    ]);
    let tree = unpack(&set, None).unwrap();
    let root = tree.path.as_path();
    assert_eq!(read(root, "file-then-dir/inner"), "new");
    assert_eq!(read(root, "dir-then-file"), "now a file");
    assert_eq!(mode(root, "dir-then-file"), 0o600);
    let link_then_dir = fs::symlink_metadata(root.join("link-then-dir")).unwrap();
    assert!(link_then_dir.is_dir() && !link_then_dir.file_type().is_symlink());
    assert_eq!(read(root, "target"), "t", "the symlink's target untouched");
    assert_eq!(
        fs::read_link(root.join("dir-then-link")).unwrap(),
        Path::new("target")
    );
    assert_eq!(
        read(root, "merged/lower"),
        "l",
        "a directory over one merges"
    );
    assert_eq!(read(root, "merged/upper"), "u");
    assert_eq!(mode(root, "merged"), 0o755, "with the later entry's mode");
}

#[test]
fn hard_links_share_the_earlier_file_and_survive_its_replacement() {
    let set = image(vec![
        Tar::new()
            .file("bin/original", 0o755, b"v1")
            .hard_link("bin/copy", "bin/original")
            .hard_link("bin/absolute", "/bin/original"),
        Tar::new().file("bin/original", 0o755, b"v2"),
    ]);
    let tree = unpack(&set, None).unwrap();
    let root = tree.path.as_path();
    let copy = fs::metadata(root.join("bin/copy")).unwrap();
    let absolute = fs::metadata(root.join("bin/absolute")).unwrap();
    assert_eq!(copy.ino(), absolute.ino(), "one inode");
    assert_eq!(copy.nlink(), 2);
    assert_eq!(
        read(root, "bin/copy"),
        "v1",
        "replacing a path unlinks it first"
    );
    assert_eq!(read(root, "bin/original"), "v2");
}

#[test]
fn symlink_parents_are_followed_inside_the_tree_never_out_of_it() {
    let outside = tempfile::tempdir().unwrap();
    let outside_path = outside.path().to_str().unwrap().to_owned();
    let climbing = format!("../../../../../../../..{outside_path}");
    let set = image(vec![
        Tar::new()
            .symlink("absolute", &outside_path)
            .symlink("climbing", &climbing)
            .symlink("loop", "loop"),
        Tar::new()
            .file("absolute/through-absolute", 0o644, b"a")
            .file("climbing/through-climbing", 0o644, b"c"),
    ]);
    let tree = unpack(&set, None).unwrap();
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside the tree"
    );
    let inside = tree.path.join(outside_path.trim_start_matches('/'));
    assert_eq!(
        fs::read_to_string(inside.join("through-absolute")).unwrap(),
        "a"
    );
    assert_eq!(
        fs::read_to_string(inside.join("through-climbing")).unwrap(),
        "c"
    );

    let looping = image(vec![
        Tar::new()
            .symlink("loop", "loop")
            .file("loop/x", 0o644, b""),
    ]);
    let error = unpack(&looping, None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Base);
    assert!(error.message().contains("loop/x"), "{}", error.message());
}

#[test]
fn entries_climbing_out_with_dot_dot_are_refused() {
    for (tar, entry) in [
        (
            Tar::new().file("a/../../escaped", 0o644, b"x"),
            "a/../../escaped",
        ),
        (Tar::new().file("/../escaped", 0o644, b"x"), "/../escaped"),
        (
            Tar::new()
                .file("here", 0o644, b"x")
                .hard_link("link", "../../etc/passwd"),
            "link",
        ),
        (Tar::new().hard_link("link", "not/there"), "link"),
    ] {
        let set = image(vec![tar]);
        let error = unpack(&set, None).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Base, "{entry}");
        assert!(
            error.message().contains(&format!("entry {entry} ")),
            "{}",
            error.message()
        );
        assert!(
            error.message().contains("layer 1 of 1"),
            "{}",
            error.message()
        );
    }
    // A `..` that stays inside is only a roundabout path.
    let set = image(vec![Tar::new().file("a/../b", 0o644, b"b")]);
    assert_eq!(read(&unpack(&set, None).unwrap().path, "b"), "b");
}

#[test]
fn read_only_directory_modes_are_applied_after_the_last_layer() {
    let set = image(vec![
        Tar::new()
            .dir("ro", 0o555)
            .file("ro/lower", 0o644, b"l")
            .dir("ro/none", 0o000),
        Tar::new().file("ro/upper", 0o644, b"u"),
    ]);
    let tree = unpack(&set, None).unwrap();
    let root = tree.path.as_path();
    assert_eq!(mode(root, "ro"), 0o555);
    assert_eq!(mode(root, "ro/none"), 0o000);
    assert_eq!(read(root, "ro/upper"), "u");
    assert_eq!(read(root, "ro/lower"), "l");
    let path = tree.path.clone();
    drop(tree);
    assert!(
        !path.exists(),
        "a temporary tree goes, read-only directories and all"
    );
}

#[test]
fn a_read_only_file_is_replaced_by_a_later_layer() {
    let set = image(vec![
        Tar::new().file("etc/config", 0o444, b"old"),
        Tar::new().file("etc/config", 0o644, b"new"),
    ]);
    let tree = unpack(&set, None).unwrap();
    assert_eq!(read(&tree.path, "etc/config"), "new");
    assert_eq!(mode(&tree.path, "etc/config"), 0o644);
}

#[test]
fn preserved_ownership_keeps_the_headers_owners() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: keeping owners needs root (chown), and this test is not root");
        return;
    }
    let set = image(vec![
        Tar::new()
            .entry(tar::EntryType::Directory, "home/", 0o700, b"", None, (7, 8))
            .entry(
                tar::EntryType::Regular,
                "home/tool",
                0o4750,
                b"x",
                None,
                (1234, 5678),
            )
            .entry(
                tar::EntryType::Symlink,
                "home/link",
                0o777,
                b"",
                Some("tool"),
                (42, 43),
            ),
    ]);
    let tree = unpack_as(&set, None, Ownership::Preserved).unwrap();
    let owner = |path: &str| {
        let metadata = fs::symlink_metadata(tree.path.join(path)).unwrap();
        (metadata.uid(), metadata.gid())
    };
    assert_eq!(owner("home"), (7, 8));
    assert_eq!(owner("home/tool"), (1234, 5678));
    assert_eq!(owner("home/link"), (42, 43));
    assert_eq!(
        mode(&tree.path, "home/tool"),
        0o4750,
        "chown did not clear setuid"
    );
    assert_eq!(mode(&tree.path, "home"), 0o700);

    let mine = unpack(&set, None).unwrap();
    let metadata = fs::symlink_metadata(mine.path.join("home/tool")).unwrap();
    assert_eq!(
        metadata.uid(),
        unsafe { libc::geteuid() },
        "CurrentUser: no chown"
    );
}

#[test]
fn directories_stay_writable_by_their_owner_until_the_last_layer() {
    // Root ignores modes, so this looks at the modes themselves between layers.
    let root = tempfile::tempdir().unwrap();
    let mut unpacker = unpack::Unpacker::new(root.path(), Ownership::CurrentUser);
    let layer = Tar::new()
        .dir("locked", 0o000)
        .dir("read-only", 0o555)
        .bytes();
    unpacker.apply_layer(&mut layer.as_slice()).unwrap();
    assert_eq!(mode(root.path(), "locked") & 0o700, 0o700);
    assert_eq!(mode(root.path(), "read-only") & 0o700, 0o700);
    unpacker.finish().unwrap();
    assert_eq!(mode(root.path(), "locked"), 0o000);
    assert_eq!(mode(root.path(), "read-only"), 0o555);
    crate::temporary::remove_tree(root.path());
}
