//! Fuzzes every parser of a command-line word: image locations (`oci:`, `oci-archive:`,
//! `docker-archive:`), registry references, `--base` (catalog short names included), `--bootstrap`,
//! `--include`, `--env`/`--label`, `--creds`, glibc versions and digests. A registry reference
//! that parses must print as text that parses back to the same reference.
#![no_main]

use lambda_image::bootstrap::BootstrapSpec;
use lambda_image::bootstrap::glibc::GlibcVersion;
use lambda_image::digest::Sha256Digest;
use lambda_image::image::config::KeyValue;
use lambda_image::layer::contents::IncludeSpec;
use lambda_image::reference::registry::RegistryReference;
use lambda_image::catalog::BaseReference;
use lambda_image::credentials::parse_creds;
use lambda_image::reference::ImageLocation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = text.parse::<ImageLocation>();
    let _ = text.parse::<BaseReference>();
    if let Ok(reference) = text.parse::<RegistryReference>() {
        let shown = reference.to_string();
        let again = shown
            .parse::<RegistryReference>()
            .unwrap_or_else(|error| panic!("{text:?} shows as {shown:?}, which fails: {error}"));
        assert_eq!(again, reference, "{text:?} shows as {shown:?}");
    }
    let _ = text.parse::<BootstrapSpec>();
    let _ = text.parse::<IncludeSpec>();
    let _ = text.parse::<KeyValue>();
    let _ = text.parse::<GlibcVersion>();
    let _ = text.parse::<Sha256Digest>();
    let _ = parse_creds(text);
});
