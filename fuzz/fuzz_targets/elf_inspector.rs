//! Fuzzes the bootstrap ELF inspector on arbitrary bytes: the full inspection (`read_elf`:
//! architecture, PIE, linkage, needed glibc), the header-only architecture read that `check`
//! uses on an image's entrypoint, and the glibc version a `libc.so.6` defines.
#![no_main]

use lambda_image::bootstrap::elf::{defined_glibc_version, read_architecture, read_elf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = read_elf(bytes);
    let _ = read_architecture(bytes);
    let _ = defined_glibc_version(bytes);
});
