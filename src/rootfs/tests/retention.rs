//! Unit tests of keeping the cache's trees few: which trees a prune removes (all but the most
//! recently used, never one a live run holds, never the one just used), what is left of trees
//! already gone, and the bound holding through [`prepare`].

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::super::retention::{TreeLock, prune};
use super::*;

/// A tree named by `seed`'s hex as a run leaves it in `directory`: the tree (with a read-only
/// directory in it, as images have), its record and its lock file, last used `age` ago.
fn left_tree(directory: &Path, seed: &str, age: Duration) -> PathBuf {
    let place = directory.join(Sha256Digest::of(seed.as_bytes()).hex());
    fs::create_dir_all(place.join("usr/lib")).unwrap();
    fs::write(place.join("usr/lib/libc.so"), b"elf").unwrap();
    fs::set_permissions(place.join("usr"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::write(place.with_extension("json"), b"{}").unwrap();
    let lock = fs::File::create(place.with_extension("lock")).unwrap();
    lock.set_modified(SystemTime::now() - age).unwrap();
    place
}

fn names(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn hours(count: u64) -> Duration {
    Duration::from_secs(count * 3600)
}

#[test]
fn all_but_the_most_recently_used_go_unless_a_run_holds_them() {
    let parent = tempfile::tempdir().unwrap();
    let directory = parent.path().join("sha256");
    let temporary = parent.path().join("tmp");
    fs::create_dir_all(&directory).unwrap();
    fs::create_dir_all(&temporary).unwrap();
    let trees: Vec<PathBuf> = (0..7)
        .map(|number| left_tree(&directory, &number.to_string(), hours(number)))
        .collect();
    // The oldest is in use by a live run (a `serve` started long ago).
    let held = TreeLock::shared(&trees[6]).unwrap().unwrap();
    // Its lock was just touched: set it back, as a run started hours ago left it.
    fs::File::options()
        .write(true)
        .open(trees[6].with_extension("lock"))
        .unwrap()
        .set_modified(SystemTime::now() - hours(6))
        .unwrap();
    let unrelated = directory.join("notes.txt");
    fs::write(&unrelated, b"not a tree").unwrap();

    prune(&directory, &temporary, 4);

    for (number, tree) in trees.iter().enumerate() {
        let kept = number < 4 || number == 6;
        assert_eq!(tree.is_dir(), kept, "tree {number}");
        assert_eq!(
            tree.with_extension("json").exists(),
            kept,
            "record {number}"
        );
        assert_eq!(tree.with_extension("lock").exists(), kept, "lock {number}");
    }
    assert!(unrelated.exists(), "only trees and their files are touched");
    assert!(names(&temporary).is_empty(), "removed, not left in tmp/");

    drop(held);
    prune(&directory, &temporary, 4);
    assert!(!trees[6].exists(), "once no run holds it, it goes");
    assert!(trees[..4].iter().all(|tree| tree.is_dir()));
}

#[test]
fn taking_a_trees_lock_marks_it_used_so_it_stays() {
    let parent = tempfile::tempdir().unwrap();
    let directory = parent.path().join("sha256");
    let temporary = parent.path().join("tmp");
    fs::create_dir_all(&temporary).unwrap();
    let trees: Vec<PathBuf> = (0..5)
        .map(|number| left_tree(&directory, &number.to_string(), hours(number + 1)))
        .collect();
    // The oldest is used again, and its run has ended.
    drop(TreeLock::shared(&trees[4]).unwrap().unwrap());

    prune(&directory, &temporary, 4);
    assert!(trees[4].is_dir(), "the tree just used stays");
    assert!(!trees[3].exists(), "the least recently used goes instead");
}

#[test]
fn leftovers_of_gone_trees_go_and_an_older_versions_tree_ranks_by_its_own_mtime() {
    let parent = tempfile::tempdir().unwrap();
    let directory = parent.path().join("sha256");
    let temporary = parent.path().join("tmp");
    fs::create_dir_all(&temporary).unwrap();
    let trees: Vec<PathBuf> = (0..4)
        .map(|number| left_tree(&directory, &number.to_string(), hours(number + 1)))
        .collect();
    // A tree as the version before records and locks left it: its mtime is its root
    // directory's, from the image (often the epoch).
    let old = directory.join(Sha256Digest::of(b"old").hex());
    fs::create_dir(&old).unwrap();
    fs::File::open(&old)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH)
        .unwrap();
    // A record and a lock whose tree is gone (a run killed between the two renames).
    let gone = directory.join(Sha256Digest::of(b"gone").hex());
    fs::write(gone.with_extension("json"), b"{}").unwrap();
    fs::write(gone.with_extension("lock"), b"").unwrap();
    // A lock whose run is unpacking its tree now.
    let being_made = directory.join(Sha256Digest::of(b"being made").hex());
    let making = TreeLock::shared(&being_made).unwrap().unwrap();

    prune(&directory, &temporary, 4);
    assert!(trees.iter().all(|tree| tree.is_dir()));
    assert!(!old.exists(), "ranked by its own mtime, it is the oldest");
    assert!(!old.with_extension("lock").exists());
    assert!(!gone.with_extension("json").exists() && !gone.with_extension("lock").exists());
    assert!(
        being_made.with_extension("lock").exists(),
        "the lock of a run unpacking its tree stays"
    );
    drop(making);
}

#[test]
fn prepare_keeps_only_the_most_recently_used_trees_and_never_one_in_use() {
    let (_directory, cache) = cache();
    let images: Vec<ImageSet> = (0..TREES_KEPT + 2)
        .map(|number| {
            image(vec![Tar::new().file(
                "app",
                0o755,
                format!("{number}").as_bytes(),
            )])
        })
        .collect();
    // The first stays in use throughout (a `serve` of it).
    let serving = unpack(&images[0], Some(&cache)).unwrap();
    let mut last = None;
    for set in &images[1..] {
        // Distinct mtimes, on filesystems that keep only seconds.
        std::thread::sleep(Duration::from_millis(20));
        last = Some(unpack(set, Some(&cache)).unwrap());
    }
    let last = last.unwrap();
    let trees: Vec<String> = names(&cache.root().join("rootfs/user/sha256"))
        .into_iter()
        .filter(|name| !name.contains('.'))
        .collect();
    assert_eq!(trees.len(), TREES_KEPT + 1, "{trees:?}");
    assert!(serving.path.is_dir(), "a tree in use is never removed");
    assert_eq!(read(&serving.path, "app"), "0");
    assert!(last.path.is_dir(), "the tree just used stays");
    let first = serving.path.clone();
    drop(serving);
    drop(last);

    // The next run, with nothing held, brings them down to the bound.
    let again = unpack(&images[TREES_KEPT + 1], Some(&cache)).unwrap();
    assert!(again.reused);
    let trees = names(&cache.root().join("rootfs/user/sha256"))
        .into_iter()
        .filter(|name| !name.contains('.'))
        .count();
    assert_eq!(trees, TREES_KEPT);
    assert!(!first.exists(), "the least recently used went");
}
