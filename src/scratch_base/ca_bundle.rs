//! The CA certificate bundle of a `--base scratch` image: every root certificate of the
//! `webpki-root-certs` crate (Mozilla's root program, from the CCADB report the crate is
//! generated from), in the crate's order, as PEM (RFC 7468 section 2: `-----BEGIN
//! CERTIFICATE-----`, the DER in standard base64 in lines of 64 characters, `-----END
//! CERTIFICATE-----`, each line ending in `\n`). The same bytes on every machine for one build
//! of lambda-image; a new version of the crate (Cargo.lock) changes them.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Characters of base64 per PEM line (RFC 7468 section 2: "exactly 64 characters, except for
/// the final line").
const PEM_LINE: usize = 64;

/// The bundle, made on first use.
pub fn ca_bundle() -> &'static [u8] {
    static BUNDLE: OnceLock<Vec<u8>> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        pem_bundle(
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|certificate| certificate.as_ref()),
        )
    })
}

/// How many certificates the bundle holds.
pub fn certificate_count() -> usize {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS.len()
}

/// Each DER certificate as one PEM `CERTIFICATE` block, in the order given.
fn pem_bundle<'a>(certificates: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut bundle = String::new();
    for der in certificates {
        bundle.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = STANDARD.encode(der);
        // Base64 is ASCII, so any byte offset is a character boundary.
        for line in encoded.as_bytes().chunks(PEM_LINE) {
            bundle.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            bundle.push('\n');
        }
        bundle.push_str("-----END CERTIFICATE-----\n");
    }
    bundle.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn pem_blocks_have_64_character_lines_and_end_in_a_newline() {
        let der: Vec<u8> = (0..=255).collect();
        let text = String::from_utf8(pem_bundle([&der[..], b"ab"].into_iter())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        // 256 bytes are 344 base64 characters: five full lines and one of 24.
        assert!(lines[1..6].iter().all(|line| line.len() == 64));
        assert_eq!(lines[6].len(), 24);
        assert_eq!(lines[7], "-----END CERTIFICATE-----");
        assert_eq!(
            &lines[8..],
            [
                "-----BEGIN CERTIFICATE-----",
                "YWI=",
                "-----END CERTIFICATE-----"
            ]
        );
        assert!(text.ends_with("-----\n"));
    }

    /// The bundle reads back (with rustls' PEM reader) as the crate's certificates, in its
    /// order, and is the same bytes every time it is made.
    #[test]
    fn the_bundle_is_every_root_of_the_crate_in_order_and_deterministic() {
        let bundle = ca_bundle();
        let read: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bundle)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read.len(), certificate_count());
        assert!(
            read.len() > 100,
            "Mozilla's program has well over 100 roots"
        );
        assert!(
            read.iter()
                .zip(webpki_root_certs::TLS_SERVER_ROOT_CERTS)
                .all(|(read, root)| read.as_ref() == root.as_ref())
        );
        let again = pem_bundle(
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|certificate| certificate.as_ref()),
        );
        assert_eq!(again, bundle);
        assert!(bundle.is_ascii());
    }
}
