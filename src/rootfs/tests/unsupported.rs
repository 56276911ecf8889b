//! Unit tests of the entries Lambda's unpacker refuses (bazel-contrib/rules_oci#777: a layer
//! with a hard link; #645: entries without their parent directories): noted per layer as
//! `check` finds them, kept with a cached tree so that a cached run refuses as the first did,
//! found again for a tree without its record, and the refusal's words.

use super::super::unsupported::{ENTRIES_KEPT, HardLink, RefusedEntries, refusal};
use super::*;
use crate::image::filesystem::{Filesystem, LayerCompression};

/// Layers as a daemonless builder makes them: the base with its directories; then a layer
/// with a hard link, an entry under a directory no layer has (`opt/tools`), a whiteout in a
/// directory no layer has, and a file whose parent is a symlink to a directory (not missing).
fn defective_layers() -> Vec<Tar> {
    vec![
        Tar::new()
            .dir("bin", 0o755)
            .file("bin/app", 0o755, b"app")
            .dir("var", 0o755)
            .symlink("lib", "var"),
        Tar::new()
            .hard_link("bin/app-link", "bin/app")
            .file("opt/tools/run", 0o755, b"run")
            .file("gone/.wh.old", 0o644, b"")
            .file("lib/through-link", 0o644, b"x"),
        Tar::new().dir("etc", 0o755).file("etc/ok", 0o644, b"ok"),
    ]
}

/// What `check`'s scan finds in each layer of `tars`, kept as the unpacker keeps it.
fn as_check_finds(tars: &[Vec<u8>]) -> Vec<RefusedEntries> {
    let mut filesystem = Filesystem::default();
    tars.iter()
        .map(|tar| {
            let problems = filesystem
                .apply_layer(tar.as_slice(), LayerCompression::None, &|_| None)
                .unwrap();
            RefusedEntries::of_layer(&problems)
        })
        .collect()
}

#[test]
fn hard_links_and_missing_parents_are_noted_per_layer_as_check_finds_them() {
    let tars: Vec<Vec<u8>> = defective_layers().into_iter().map(Tar::bytes).collect();
    let layers: Vec<(Vec<u8>, &str)> = tars
        .iter()
        .map(|tar| (tar.clone(), OCI_LAYER_GZIP))
        .collect();
    let set = image_with(&layers, None);
    let tree = unpack(&set, None).unwrap();

    let expected = RefusedEntries {
        hard_links: vec![HardLink {
            path: "bin/app-link".to_owned(),
            target: "bin/app".to_owned(),
        }],
        hard_link_count: 1,
        missing_parents: vec!["opt/tools/run".to_owned(), "gone/.wh.old".to_owned()],
        missing_parent_count: 2,
    };
    assert_eq!(tree.unsupported_layers.len(), 1, "{tree:?}");
    assert_eq!(tree.unsupported_layers[0].index, 1);
    assert_eq!(tree.unsupported_layers[0].entries, expected);
    let checked = as_check_finds(&tars);
    assert_eq!(checked[1], expected, "check finds the same entries");
    assert!(checked[0].is_empty() && checked[2].is_empty());
    // Unpacked all the same: the refusal is the caller's.
    assert_eq!(read(&tree.path, "bin/app-link"), "app");
    assert_eq!(read(&tree.path, "opt/tools/run"), "run");

    let clean = image(vec![
        Tar::new().dir("bin", 0o755).file("bin/app", 0o755, b"a"),
    ]);
    assert!(unpack(&clean, None).unwrap().unsupported_layers.is_empty());
}

#[test]
fn a_few_entries_are_kept_and_all_are_counted() {
    let mut tar = Tar::new().dir("bin", 0o755).file("bin/app", 0o755, b"a");
    for number in 0..ENTRIES_KEPT + 3 {
        tar = tar
            .hard_link(&format!("bin/link-{number}"), "bin/app")
            .file(&format!("missing-{number}/file"), 0o644, b"x");
    }
    let tree = unpack(&image(vec![tar]), None).unwrap();
    let entries = &tree.unsupported_layers[0].entries;
    assert_eq!(entries.hard_links.len(), ENTRIES_KEPT);
    assert_eq!(entries.hard_link_count, ENTRIES_KEPT + 3);
    assert_eq!(entries.missing_parents.len(), ENTRIES_KEPT);
    assert_eq!(entries.missing_parent_count, ENTRIES_KEPT + 3);
    assert_eq!(entries.hard_links[0].path, "bin/link-0", "the first ones");
}

#[test]
fn a_cached_tree_keeps_its_findings_and_one_without_a_record_is_scanned_again() {
    let (_directory, cache) = cache();
    let set = image(defective_layers());
    let first = unpack(&set, Some(&cache)).unwrap();
    assert!(!first.reused);
    assert_eq!(first.unsupported_layers.len(), 1);
    let record = first.path.with_extension("json");
    assert!(record.is_file(), "the record is kept beside the tree");
    drop(first);

    // Only the cache can answer: the store has no blob.
    let mut cached_only = image(defective_layers());
    cached_only.blobs = Arc::new(MemoryBlobs(BTreeMap::new()));
    let second = unpack(&cached_only, Some(&cache)).unwrap();
    assert!(second.reused);
    assert_eq!(
        second.unsupported_layers,
        unpack(&set, None).unwrap().unsupported_layers,
        "a cached run refuses as the first did"
    );
    drop(second);

    // A tree an older version left, without its record: never taken as clean. With no blob
    // to scan it fails; with the layers it is scanned again, and the record written.
    fs::remove_file(&record).unwrap();
    let error = unpack(&cached_only, Some(&cache)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Base, "{}", error.message());
    let scanned = unpack(&set, Some(&cache)).unwrap();
    assert!(scanned.reused, "scanned, not unpacked again");
    assert_eq!(scanned.unsupported_layers.len(), 1);
    assert!(record.is_file());

    // A record that is not this format's is not trusted either.
    drop(scanned);
    fs::write(&record, br#"{"format": 0, "unsupported_layers": []}"#).unwrap();
    assert!(unpack(&cached_only, Some(&cache)).is_err());
}

#[test]
fn the_refusal_names_the_layer_its_entries_and_lambdas_error() {
    let set = image(defective_layers());
    let image = set.images.values().next().unwrap();
    let tree = unpack(&set, None).unwrap();
    let error = refusal("oci:out:fn", image, &tree.unsupported_layers).unwrap();
    let digest = image.layers[1].digest().to_string();
    let message = error.message();
    assert_eq!(error.kind(), ErrorKind::ImageRejected);
    for expected in [
        "image oci:out:fn: layer 2 of 3",
        "a hard link (/bin/app-link -> /bin/app)",
        "/opt/tools/run, /gone/.wh.old",
        &format!(
            "InvalidImage(ImageLayerFailure: UnsupportedImageLayerDetected - Layer Digest {digest})"
        ),
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let hint = error.hint_text().unwrap();
    assert!(hint.contains("copied rather than hard-linked"), "{hint}");
    assert!(hint.contains("every parent directory"), "{hint}");
    assert!(hint.contains("lambda-image check oci:out:fn"), "{hint}");

    assert!(refusal("oci:out:fn", image, &[]).is_none());
}
