//! Fuzzes the layer scanner `check` runs on every layer: a tar stream, gzip-compressed or not
//! (the input's first byte chooses), applied twice over the same tree (so whiteouts and
//! replacements meet earlier entries), then looked up by path.
#![no_main]

use lambda_image::image::filesystem::{Filesystem, LayerCompression};
use libfuzzer_sys::fuzz_target;

/// What `check` keeps the first bytes of: the bootstrap and the provided bases' entrypoint.
fn capture(path: &str) -> Option<usize> {
    (path.ends_with("bootstrap") || path.ends_with("lambda-entrypoint.sh")).then_some(4096)
}

fuzz_target!(|input: &[u8]| {
    let Some((&choice, layer)) = input.split_first() else {
        return;
    };
    let compression = if choice & 1 == 0 {
        LayerCompression::None
    } else {
        LayerCompression::Gzip
    };
    let mut filesystem = Filesystem::default();
    for _ in 0..2 {
        if filesystem
            .apply_layer(layer, compression, &capture)
            .is_err()
        {
            return;
        }
    }
    for path in [
        "/var/runtime/bootstrap",
        "/lambda-entrypoint.sh",
        "/",
        "var/task/../runtime",
    ] {
        let _ = filesystem.node(path);
        let _ = filesystem.resolve(path);
        let _ = filesystem.exists(path);
    }
});
