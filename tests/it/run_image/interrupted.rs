//! `invoke --image` stopped while it unpacks a big layer: SIGINT removes the partial tree, in
//! the cache's `tmp/` and in `$TMPDIR`, before the exit (130); after SIGKILL the next run
//! removes the dead run's tree at once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{
    build_image, cache_dir, cannot_run_images, host_architecture, probe_script, run_unchecked,
    workdir,
};

/// 12,000 files of 25 KB (300 MB) in 60 directories: long enough to unpack that a signal lands
/// in the middle.
fn big_directory(work: &Path) -> std::path::PathBuf {
    let big = work.join("big");
    let content: Vec<u8> = (0..25_000u32).map(|i| (i % 251) as u8).collect();
    for directory in 0..60 {
        let directory = big.join(format!("d{directory}"));
        std::fs::create_dir_all(&directory).unwrap();
        for file in 0..200 {
            std::fs::write(directory.join(format!("f{file}")), &content).unwrap();
        }
    }
    big
}

fn start(image: &str, cache: &Path, tmpdir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lambda-image"))
        .args(["invoke", "--quiet", "--image", image, "--event", "{}"])
        .arg("--cache-dir")
        .arg(cache)
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a tree is being written in the cache's `tmp/` (up to two minutes).
fn wait_for_a_tree(cache: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let writing = std::fs::read_dir(cache.join("tmp")).is_ok_and(|listing| {
            listing.flatten().any(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".lambda-image-rootfs-")
                    && entry.path().join("tree").is_dir()
            })
        });
        if writing {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before unpacking"
        );
        assert!(
            Instant::now() < deadline,
            "no tree appeared in the cache's tmp/"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn entries(directory: &Path) -> Vec<String> {
    std::fs::read_dir(directory).map_or_else(
        |_| Vec::new(),
        |listing| {
            listing
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        },
    )
}

#[test]
fn sigint_while_unpacking_leaves_no_partial_tree_and_sigkill_leftovers_go_next_run() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let big = big_directory(work.path());
    let image = build_image(
        work.path(),
        "big-image",
        &[format!(
            "{}={}",
            host_architecture(),
            probe_script(work.path()).display()
        )],
        &["--include", &format!("{}:/var/task/big", big.display())],
    );
    std::fs::remove_dir_all(&big).unwrap();
    let tmpdir = work.path().join("tmpdir");
    std::fs::create_dir(&tmpdir).unwrap();

    // Right as the tree appears, and a little into it: removing a tree being written must
    // wait for the writer, else part of it stays (or the run retries without the cache).
    for (round, delay) in [0u64, 150, 400].into_iter().enumerate() {
        let cache = work.path().join(format!("cache-{round}"));
        let mut child = start(&image, &cache, &tmpdir);
        wait_for_a_tree(&cache, &mut child);
        std::thread::sleep(Duration::from_millis(delay));
        // SAFETY: kill(2) on a child this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "round {round}: {stderr}");
        assert_eq!(
            entries(&cache.join("tmp")),
            Vec::<String>::new(),
            "round {round}: the cache's tmp/ is empty"
        );
        assert_eq!(
            entries(&tmpdir),
            Vec::<String>::new(),
            "round {round}: nothing is left in $TMPDIR"
        );
        std::fs::remove_dir_all(&cache).unwrap();
    }

    // SIGKILL leaves the tree; the next run removes it at once (not an hour later).
    let cache = cache_dir(work.path());
    let mut child = start(&image, &cache, &tmpdir);
    wait_for_a_tree(&cache, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let left = entries(&cache.join("tmp"));
    assert_eq!(left.len(), 1, "a killed run leaves its tree: {left:?}");
    // Named relatively, as users do: the sandbox still gets an absolute root.
    let output = run_unchecked(
        Command::new("timeout")
            .arg("120")
            .arg(env!("CARGO_BIN_EXE_lambda-image"))
            .args(["invoke", "--json", "--image", &image, "--event", "{}"])
            .args(["--cache-dir", "cache"])
            .current_dir(work.path())
            .env("TMPDIR", &tmpdir)
            .stdin(Stdio::null()),
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert!(
        output.status.success() && answer.is_object(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        entries(&cache.join("tmp")),
        Vec::<String>::new(),
        "the next run removed the dead run's tree"
    );
}
