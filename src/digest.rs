//! SHA-256 digests: computing them while bytes stream past, and refusing bytes that do not match.
//!
//! Every blob read from a layout, an archive or (later) a registry passes through a
//! [`VerifyingReader`]; every blob we create passes through a [`HashingWriter`]. Nothing here
//! buffers a whole blob.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A `sha256:<64 hex>` content digest, the only algorithm this tool produces or accepts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest {
    hex: String,
}

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(hasher: Sha256) -> Self {
        Self {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The 64 lowercase hex characters, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Where a blob with this digest lives in an OCI image layout.
    pub fn layout_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Why a string is not a digest we accept.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a sha256 digest (expected sha256: followed by 64 lowercase hex characters)")]
pub struct InvalidDigest(String);

impl FromStr for Sha256Digest {
    type Err = InvalidDigest;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex = text
            .strip_prefix("sha256:")
            .filter(|hex| {
                hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
            .ok_or_else(|| InvalidDigest(text.chars().take(100).collect()))?;
        Ok(Self {
            hex: hex.to_owned(),
        })
    }
}

/// A writer that hashes and counts everything written through it before passing it on.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The inner writer, the digest and the byte count of everything written.
    pub fn finish(self) -> (W, Sha256Digest, u64) {
        (
            self.inner,
            Sha256Digest::from_hasher(self.hasher),
            self.written,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The sha256 and size (bytes) of the content of the file at `path`, read once.
pub fn file_digest(path: &std::path::Path) -> io::Result<(Sha256Digest, u64)> {
    let mut reading = HashingReader::new(std::fs::File::open(path)?);
    let size = io::copy(&mut reading, &mut io::sink())?;
    Ok((reading.finish(), size))
}

/// A reader that hashes everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// The digest of everything read so far.
    pub fn finish(self) -> Sha256Digest {
        Sha256Digest::from_hasher(self.hasher)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// A reader that fails, instead of reporting end of file, when the bytes it passed on do not have
/// the expected size and digest. Consumers therefore never see a clean EOF on bad content.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    expected_digest: Sha256Digest,
    expected_size: u64,
    read: u64,
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected_digest: Sha256Digest, expected_size: u64) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            expected_digest,
            expected_size,
            read: 0,
            verified: false,
        }
    }

    fn check_at_end(&mut self) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        if self.read != self.expected_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "content of {} has {} bytes, but its descriptor says {}",
                    self.expected_digest, self.read, self.expected_size
                ),
            ));
        }
        let actual = Sha256Digest::from_hasher(std::mem::take(&mut self.hasher));
        if actual != self.expected_digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "content does not match its digest: expected {}, got {actual}",
                    self.expected_digest
                ),
            ));
        }
        self.verified = true;
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Never read past the declared size: an oversized blob is as wrong as a short one.
        let remaining = self.expected_size.saturating_sub(self.read);
        let limit = buf
            .len()
            .min(usize::try_from(remaining + 1).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..limit])?;
        if n == 0 {
            self.check_at_end()?;
            return Ok(0);
        }
        self.read += n as u64;
        if self.read > self.expected_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "content of {} is longer than the {} bytes its descriptor says",
                    self.expected_digest, self.expected_size
                ),
            ));
        }
        self.hasher.update(&buf[..n]);
        if self.read == self.expected_size {
            // Check on the read that delivers the last byte, not only at end of file: consumers
            // that stop after the declared size (an HTTP body of known length) never ask again.
            self.check_at_end()?;
        }
        Ok(n)
    }
}

/// Reads a small blob (a manifest or config) whole, verifying it; refuses anything over `limit`.
pub fn read_verified(
    reader: impl Read,
    digest: &Sha256Digest,
    size: u64,
    limit: u64,
) -> io::Result<Vec<u8>> {
    if size > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{digest} is {size} bytes, over the {limit}-byte limit for this kind of document"
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    VerifyingReader::new(reader, digest.clone(), size).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_a_digest() {
        let digest = Sha256Digest::of(b"");
        assert_eq!(
            digest.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(digest.to_string().parse::<Sha256Digest>().unwrap(), digest);
        assert!("sha256:E3B0".parse::<Sha256Digest>().is_err());
        assert!("md5:abc".parse::<Sha256Digest>().is_err());
    }

    #[test]
    fn verifying_reader_rejects_wrong_content() {
        let digest = Sha256Digest::of(b"hello");
        assert!(read_verified(&b"hello"[..], &digest, 5, 100).is_ok());
        assert!(read_verified(&b"hellO"[..], &digest, 5, 100).is_err());
        assert!(read_verified(&b"hell"[..], &digest, 5, 100).is_err());
        assert!(read_verified(&b"hello!"[..], &digest, 5, 100).is_err());
        assert!(read_verified(&b"hello"[..], &digest, 5, 4).is_err());
    }

    #[test]
    fn verifying_reader_checks_on_the_last_byte_without_waiting_for_eof() {
        // An HTTP client sending a body of known length reads exactly that many bytes.
        let digest = Sha256Digest::of(b"hello");
        let mut buffer = [0u8; 5];
        VerifyingReader::new(&b"hello"[..], digest.clone(), 5)
            .read_exact(&mut buffer)
            .unwrap();
        let error = VerifyingReader::new(&b"hellO"[..], digest, 5)
            .read_exact(&mut buffer)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
