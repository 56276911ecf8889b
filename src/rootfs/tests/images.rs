//! Unit tests of whole images: the ChainID, the cache (reuse, nothing left after a refusal),
//! and images refused for their layers' media types, digests or diff_ids.

use super::*;

#[test]
fn chain_id_follows_the_oci_rule() {
    let a = Sha256Digest::of(b"a");
    let b = Sha256Digest::of(b"b");
    assert_eq!(chain_id(std::slice::from_ref(&a)), a);
    assert_eq!(
        chain_id(&[a.clone(), b.clone()]),
        Sha256Digest::of(format!("{a} {b}").as_bytes())
    );
    assert_eq!(chain_id(&[]), Sha256Digest::of(b""));
}

#[test]
fn a_diff_id_mismatch_is_refused_and_leaves_the_cache_clean() {
    let (_directory, cache) = cache();
    let tar = Tar::new().file("app", 0o644, b"x").bytes();
    let set = image_with(
        &[(tar, OCI_LAYER_GZIP)],
        Some(vec![Sha256Digest::of(b"something else")]),
    );
    let error = unpack(&set, Some(&cache)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Base);
    assert!(error.message().contains("diff_id"), "{}", error.message());
    assert!(
        error.message().contains("layer 1 of 1"),
        "{}",
        error.message()
    );
    let rootfs = cache.root().join("rootfs/user/sha256");
    assert_eq!(fs::read_dir(&rootfs).unwrap().count(), 0, "no tree kept");
    let leftovers: Vec<_> = fs::read_dir(cache.temporary_path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_cached_tree_is_reused_without_unpacking() {
    let (_directory, cache) = cache();
    let set = image(vec![Tar::new().file("app", 0o755, b"app")]);
    let first = unpack(&set, Some(&cache)).unwrap();
    assert!(!first.reused);
    assert_eq!(
        first.path,
        cache
            .root()
            .join("rootfs/user/sha256")
            .join(first.chain_id.hex())
    );
    assert_eq!(read(&first.path, "app"), "app");
    assert_eq!(
        fs::read_dir(cache.temporary_path()).unwrap().count(),
        0,
        "the tree was renamed into place"
    );

    // The same layers, with a store that has no blob: only the cache can answer.
    let mut empty = image(vec![Tar::new().file("app", 0o755, b"app")]);
    empty.blobs = Arc::new(MemoryBlobs(BTreeMap::new()));
    let second = unpack(&empty, Some(&cache)).unwrap();
    assert!(second.reused);
    assert_eq!(second.path, first.path);
    drop(second);
    assert!(
        first.path.exists(),
        "a cached tree stays when the value is dropped"
    );
    // Kept apart from trees unpacked with owners.
    let error = unpack_as(&empty, Some(&cache), Ownership::Preserved).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Base, "{}", error.message());
}

#[test]
fn unsupported_layer_media_types_are_refused_naming_the_layer() {
    let tar = Tar::new().file("app", 0o644, b"x").bytes();
    let set = image_with(&[(tar, OCI_LAYER_ZSTD)], None);
    let error = unpack(&set, None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Base);
    assert!(
        error.message().contains(OCI_LAYER_ZSTD),
        "{}",
        error.message()
    );
    assert!(
        error.message().contains("layer 1 of 1"),
        "{}",
        error.message()
    );
}

#[test]
fn a_corrupt_layer_blob_is_refused_as_the_bases_fault() {
    let mut set = image(vec![Tar::new().file("app", 0o644, b"x")]);
    let layer = &set.images.values().next().unwrap().layers[0];
    let digest = layer.digest();
    let mut blobs = BTreeMap::new();
    let mut bytes = gzip(Tar::new().file("app", 0o644, b"y").bytes().as_slice());
    bytes.resize(layer.descriptor.size() as usize, 0);
    blobs.insert(digest, bytes);
    set.blobs = Arc::new(MemoryBlobs(blobs));
    let error = unpack(&set, None).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Base);
    assert!(
        error.message().contains("layer 1 of 1"),
        "{}",
        error.message()
    );
}
