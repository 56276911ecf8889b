//! Fuzzes what a base image's untrusted documents go through: an in-memory OCI layout is resolved
//! (`index.json`, its one image chosen as for an untagged `oci:DIR`, then an index or manifest,
//! each architecture's manifest and config, through `resolve_images` and `read_base_config`), each config is edited as `build` would, and the
//! result is linted as `check` does (config `Entrypoint`/`Cmd`, every layer streamed through the
//! filesystem scanner, the entrypoint's ELF header).
//!
//! The input is sections separated by `\n@@blob\n`: first the wanted architectures (words such as
//! `amd64 arm64`; none means every one the base has), then `index.json`, then the blobs. Every
//! document is read back verified against its digest, which a fuzzer cannot forge, so a section
//! names a later one by placeholders the harness fills in: `@digest:N` becomes `sha256:<hex>` of
//! section N and `@size:N` its length (sections are filled in from the last one back).
//! With `FUZZ_EXPLAIN` set, it says how far an input got (for writing seeds).
#![no_main]

use std::collections::HashMap;
use std::io::{self, Cursor, Read};

use lambda_image::digest::Sha256Digest;
use lambda_image::image::config::{ConfigChanges, KeyValue, edit_config};
use lambda_image::lint::{LintOptions, lint};
use lambda_image::platform::Architecture;
use lambda_image::transport::oci;
use lambda_image::transport::tree::TreeReader;
use libfuzzer_sys::fuzz_target;

const SECTION_SEPARATOR: &[u8] = b"\n@@blob\n";
const DIGEST_PLACEHOLDER: &[u8] = b"@digest:";
const SIZE_PLACEHOLDER: &[u8] = b"@size:";

/// An OCI layout held in memory: `index.json` and `blobs/sha256/<hex>` files.
struct MemoryLayout {
    files: HashMap<String, Vec<u8>>,
}

impl TreeReader for MemoryLayout {
    fn open(&self, path: &str) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let bytes = self
            .files
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.to_owned()))?;
        Ok((Box::new(Cursor::new(bytes.clone())), bytes.len() as u64))
    }
}

fn split_sections(input: &[u8]) -> Vec<Vec<u8>> {
    let mut sections = Vec::new();
    let mut rest = input;
    while let Some(at) = find(rest, SECTION_SEPARATOR) {
        sections.push(rest[..at].to_vec());
        rest = &rest[at + SECTION_SEPARATOR.len()..];
    }
    sections.push(rest.to_vec());
    sections
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Replaces the placeholders in `section` that name a section after `own_index`.
fn fill_placeholders(section: &[u8], own_index: usize, filled: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut output = Vec::with_capacity(section.len());
    let mut at = 0;
    while at < section.len() {
        let rest = &section[at..];
        let placeholder = [DIGEST_PLACEHOLDER, SIZE_PLACEHOLDER]
            .into_iter()
            .find(|placeholder| rest.starts_with(placeholder));
        if let Some(placeholder) = placeholder {
            let digits = rest[placeholder.len()..]
                .iter()
                .take(3)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let named = std::str::from_utf8(&rest[placeholder.len()..placeholder.len() + digits])
                .ok()
                .and_then(|number| number.parse::<usize>().ok())
                .filter(|&number| number > own_index)
                .and_then(|number| filled.get(number)?.as_ref());
            if let Some(target) = named {
                let replacement = if placeholder == DIGEST_PLACEHOLDER {
                    Sha256Digest::of(target).to_string()
                } else {
                    target.len().to_string()
                };
                output.extend_from_slice(replacement.as_bytes());
                at += placeholder.len() + digits;
                continue;
            }
        }
        output.push(section[at]);
        at += 1;
    }
    output
}

fn wanted_architectures(section: &[u8]) -> Vec<Architecture> {
    String::from_utf8_lossy(section)
        .split_whitespace()
        .filter_map(Architecture::parse)
        .collect()
}

fuzz_target!(|input: &[u8]| {
    let sections = split_sections(input);
    if sections.len() < 2 {
        return;
    }
    let mut filled: Vec<Option<Vec<u8>>> = vec![None; sections.len()];
    for index in (1..sections.len()).rev() {
        filled[index] = Some(fill_placeholders(&sections[index], index, &filled));
    }
    let mut documents = filled.into_iter().skip(1).flatten();
    let mut files = HashMap::new();
    // The marker every layout must have; not fuzzed (it is checked before anything else).
    files.insert(
        "oci-layout".to_owned(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    files.insert(
        "index.json".to_owned(),
        documents.next().unwrap_or_default(),
    );
    for blob in documents {
        files.insert(Sha256Digest::of(&blob).layout_path(), blob);
    }

    let wanted = wanted_architectures(&sections[0]);
    // As `--base oci:DIR` without a tag: the layout's one image (several are a usage error).
    let layout = MemoryLayout { files };
    let resolved = match oci::choose_entry(&layout, None) {
        Ok(oci::LayoutChoice::Entry(top)) => oci::resolve(Box::new(layout), *top, &wanted),
        Ok(_) => return,
        Err(error) => Err(error),
    };
    if std::env::var_os("FUZZ_EXPLAIN").is_some() {
        match &resolved {
            Ok(resolved) => eprintln!("resolved: {:?}", resolved.images.keys().collect::<Vec<_>>()),
            Err(error) => eprintln!("not resolved: {}", error.message()),
        }
    }
    let Ok(resolved) = resolved else {
        return;
    };
    for image in resolved.images.values() {
        let diff_id = Sha256Digest::of(b"new layer");
        let changes = ConfigChanges {
            cmd: &["handler".to_owned()],
            env: &["A=1".parse::<KeyValue>().unwrap()],
            labels: &[],
            created: "1970-01-01T00:00:00Z",
            diff_id: &diff_id,
            created_by: "lambda-image fuzz",
            variant: Some("v8"),
        };
        let _ = edit_config(&image.config.bytes, &changes);
    }
    let report = lint(
        &resolved,
        &|digest| digest.to_string(),
        LintOptions { as_image_uri: false },
    );
    if std::env::var_os("FUZZ_EXPLAIN").is_some() {
        match report {
            Ok(report) => eprintln!("linted:\n{}", report.to_text()),
            Err(error) => eprintln!("lint failed: {}", error.message()),
        }
    }
});
