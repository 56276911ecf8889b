//! The cache's unpacked trees stay few: every build of a function is a new image with its own
//! tree, so runs of many images with one `--cache-dir` keep only the most recently used ones,
//! and the latest still answers from its cached tree.

use super::*;

/// Trees the cache keeps per ownership directory (`src/rootfs/retention.rs`, `TREES_KEPT`).
const TREES_KEPT: usize = 4;

/// The unpacked trees in `cache` (their ChainID hex names), by ownership directory.
fn trees(cache: &Path) -> Vec<(String, Vec<String>)> {
    ["preserved", "user"]
        .iter()
        .map(|ownership| {
            let directory = cache.join("rootfs").join(ownership).join("sha256");
            let mut names: Vec<String> = std::fs::read_dir(&directory)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            (ownership.to_string(), names)
        })
        .collect()
}

#[test]
fn runs_of_many_images_keep_only_the_most_recently_used_trees() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let cache = cache_dir(work.path());
    let cache_flag = cache.to_str().unwrap().to_owned();
    let mut images = Vec::new();
    // Six builds of the probe, each a little different, as a function is rebuilt while worked on.
    for number in 0..TREES_KEPT + 2 {
        let script = work.path().join(format!("probe-{number}.sh"));
        std::fs::write(&script, format!("{PROBE_RUNTIME}# build {number}\n")).unwrap();
        let image = build_image(
            work.path(),
            &format!("build-{number}"),
            &[format!("{}={}", host_architecture(), script.display())],
            &[],
        );
        let (output, report) = invoke_cached(&image, &cache_flag);
        let stderr = stderr_of(&output);
        assert!(output.status.success(), "build {number}: {stderr}");
        assert_eq!(report["response"]["uid"], 993, "build {number}: {report}");
        images.push((image, stderr));
    }

    let after = trees(&cache);
    let total: usize = after.iter().map(|(_, names)| names.len()).sum();
    for (ownership, names) in &after {
        assert!(
            names.len() <= TREES_KEPT,
            "{ownership}: {} trees are kept: {names:?}",
            names.len()
        );
    }
    assert_eq!(total, TREES_KEPT, "{after:?}");
    // The tree each run used is named in its log line; the first builds' are gone.
    let tree_of = |stderr: &str| {
        let path = stderr
            .lines()
            .find_map(|line| line.split(" unpacked in ").nth(1))
            .unwrap_or_else(|| panic!("no unpacked tree in {stderr}"))
            .trim()
            .to_owned();
        PathBuf::from(path)
    };
    for (number, (_, stderr)) in images.iter().enumerate() {
        let kept = number >= 2;
        assert_eq!(tree_of(stderr).is_dir(), kept, "build {number}: {after:?}");
        assert_eq!(
            tree_of(stderr).with_extension("json").exists(),
            kept,
            "build {number}: its record goes with it"
        );
    }
    assert!(
        std::fs::read_dir(cache.join("tmp"))
            .unwrap()
            .flatten()
            .all(|entry| !entry
                .file_name()
                .to_string_lossy()
                .starts_with(".lambda-image-rootfs-")),
        "the removed trees are not left in tmp/"
    );

    // The latest still answers, from its cached tree.
    let (latest, _) = images.last().unwrap();
    let (output, report) = invoke_cached(latest, &cache_flag);
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("layers cached in"), "{stderr}");
    assert_eq!(report["response"]["uid"], 993, "{report}");
    assert_eq!(trees(&cache), after, "nothing more went");
}
