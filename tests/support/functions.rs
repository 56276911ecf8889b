//! Real Lambda functions for the tests, built from `tests/functions/` once per test process.
//!
//! [`echo_function`] is `tests/functions/echo` (the official `lambda_runtime` crate; see its
//! `src/main.rs` for what it answers), built with `cargo build --release --locked` into
//! `target/test-deps/functions/` and linked statically (`-C target-feature=+crt-static`), so it
//! also runs in the stand-in base image, which has no C library. The first build downloads its
//! crates from crates.io and takes about 30 s on the 2-core test machine; later ones are
//! incremental no-ops. [`stream_function`] is `tests/functions/stream`, a response-streaming
//! `lambda_runtime` function, built the same way into `target/test-deps/functions-stream/` (its
//! binary is also named `bootstrap`, so it needs a target directory of its own).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::run;

/// ELF program header type of the dynamic loader's path (present only in dynamic executables).
const PT_INTERP: u32 = 3;

/// The echo function's statically linked `bootstrap`, built on first use.
pub fn echo_function() -> &'static Path {
    static ECHO: OnceLock<PathBuf> = OnceLock::new();
    ECHO.get_or_init(|| build_function("echo"))
}

/// The stream function's statically linked `bootstrap`, built on first use.
#[allow(dead_code)]
pub fn stream_function() -> &'static Path {
    static STREAM: OnceLock<PathBuf> = OnceLock::new();
    STREAM.get_or_init(|| build_function_into("stream", "target/test-deps/functions-stream"))
}

fn build_function(name: &str) -> PathBuf {
    build_function_into(name, "target/test-deps/functions")
}

fn build_function_into(name: &str, target_dir: &str) -> PathBuf {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = repository
        .join("tests/functions")
        .join(name)
        .join("Cargo.toml");
    let target_dir = repository.join(target_dir);
    let host = host_triple();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // An explicit --target keeps RUSTFLAGS off the build scripts and proc macros, which
    // cannot be linked statically.
    run(Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--target",
            &host,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET"));
    let bootstrap = target_dir.join(host).join("release/bootstrap");
    assert!(
        is_static_elf(&bootstrap),
        "{} is not a statically linked ELF executable",
        bootstrap.display()
    );
    bootstrap
}

/// The triple rustc builds for by default (`host:` in `rustc -vV`).
fn host_triple() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = run(Command::new(rustc).arg("-vV"));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names its host")
        .trim()
        .to_owned()
}

/// A 64-bit little-endian ELF executable with no `PT_INTERP` program header: it needs no
/// dynamic loader, so no C library in the image.
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(elf) = fs::read(path) else {
        return false;
    };
    if elf.len() < 64 || elf[..4] != *b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return false;
    }
    let read_u16 = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let program_headers = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (entry_size, count) = (read_u16(0x36), read_u16(0x38));
    (0..count).all(|index| {
        let at = program_headers + index * entry_size;
        elf.get(at..at + 4)
            .is_some_and(|kind| u32::from_le_bytes(kind.try_into().unwrap()) != PT_INTERP)
    })
}
