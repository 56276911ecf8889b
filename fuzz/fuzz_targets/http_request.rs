//! Fuzzes the emulator's HTTP/1.1 request reader (`read_request`, what the Runtime API and
//! `serve`'s invoke endpoint read every request with) on arbitrary bytes as one connection's
//! input: request after request (pipelined) until the input ends or a request is refused, each
//! through its head, its framing (`Content-Length` or `Transfer-Encoding`), a chunked body's
//! chunk-size lines and extensions, and its trailer section.
//!
//! Besides not crashing, hanging or running out of memory, it checks what the server relies on:
//! a kept body never passes `KEPT_BODY_BYTES` nor the counted length, the last chunk's offset
//! lies inside the kept body, and a refusal is a 4xx or 5xx.
#![no_main]

use lambda_image::emulator::http::{KEPT_BODY_BYTES, read_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut input = bytes;
    let mut interim = Vec::new();
    loop {
        match read_request(&mut input, &mut interim) {
            Ok(None) => break,
            Ok(Some((request, keep_alive))) => {
                assert!(request.body.len() <= KEPT_BODY_BYTES);
                assert!(request.body.len() as u64 <= request.body_length);
                if let Some(at) = request.last_chunk_at {
                    assert!(at < request.body.len());
                }
                if !keep_alive {
                    break;
                }
            }
            Err(refusal) => {
                assert!((400..600).contains(&refusal.status), "{refusal:?}");
                break;
            }
        }
    }
});
