//! Unit tests of the temporary directories trees are written in, and of the sweep that removes
//! those of runs now gone: by their lock, else by age.

use std::os::unix::fs::PermissionsExt;

use super::super::scratch::{Scratch, remove_dead};
use crate::cache::blobs::STALE_TEMPORARY_AGE;

const PREFIX: &str = ".lambda-image-rootfs-";

/// A directory as a killed run leaves it: `lock` (no longer held) and a partial `tree` with a
/// read-only directory in it.
fn left_by_a_killed_run(parent: &std::path::Path, name: &str) -> std::path::PathBuf {
    let directory = parent.join(name);
    std::fs::create_dir_all(directory.join("tree/usr/lib")).unwrap();
    std::fs::write(directory.join("tree/usr/lib/libc.so"), b"elf").unwrap();
    std::fs::set_permissions(
        directory.join("tree/usr"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    std::fs::write(directory.join("lock"), b"").unwrap();
    directory
}

fn age(path: &std::path::Path, by: std::time::Duration) {
    let file = std::fs::File::open(path).unwrap();
    file.set_modified(std::time::SystemTime::now() - by)
        .unwrap();
}

#[test]
fn a_dead_runs_tree_is_removed_at_once_and_a_live_ones_kept() {
    let parent = tempfile::tempdir().unwrap();
    let dead = left_by_a_killed_run(parent.path(), ".lambda-image-rootfs-dead");
    let live = Scratch::make(Some(parent.path()), PREFIX).unwrap();
    std::fs::write(live.tree.join("app"), b"being written").unwrap();
    let unrelated = parent.path().join("other");
    std::fs::create_dir(&unrelated).unwrap();

    remove_dead(parent.path(), PREFIX, true);

    assert!(
        !dead.exists(),
        "a tree whose lock is free is removed, however young"
    );
    assert!(
        live.tree.join("app").exists(),
        "a tree whose lock is held (a run writing it) is kept"
    );
    assert!(unrelated.exists(), "only the tree prefix is swept");
    let outer = live.tree.parent().unwrap().to_owned();
    drop(live);
    assert!(!outer.exists(), "a dropped scratch directory is removed");
}

#[test]
fn without_a_lock_the_age_rule_decides_and_only_where_asked() {
    let parent = tempfile::tempdir().unwrap();
    let young = parent.path().join(".lambda-image-rootfs-young");
    let old = parent.path().join(".lambda-image-rootfs-old");
    for directory in [&young, &old] {
        std::fs::create_dir_all(directory.join("tree")).unwrap();
    }
    age(
        &old,
        STALE_TEMPORARY_AGE + std::time::Duration::from_secs(60),
    );

    remove_dead(parent.path(), PREFIX, false);
    assert!(young.exists() && old.exists(), "no age rule: both kept");

    remove_dead(parent.path(), PREFIX, true);
    assert!(
        young.exists(),
        "a young one may be a run making its directory now"
    );
    assert!(!old.exists(), "an old one without a lock is a dead run's");
}

#[test]
fn a_tree_renamed_into_place_leaves_nothing_behind() {
    let parent = tempfile::tempdir().unwrap();
    let scratch = Scratch::make(Some(parent.path()), PREFIX).unwrap();
    std::fs::write(scratch.tree.join("app"), b"x").unwrap();
    let place = parent.path().join("placed");
    scratch
        .into_place(&place)
        .map_err(|(_, error)| error)
        .unwrap();
    assert_eq!(std::fs::read(place.join("app")).unwrap(), b"x");
    let left: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("placed")]);
}
