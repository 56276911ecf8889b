//! The body of a request, read as its framing says: a `Content-Length` body or a chunked one
//! (RFC 9112 section 7.1) with its trailer fields and where the last chunk starts. At most
//! [`KEPT_BODY_BYTES`] are kept and [`MAX_READ_BODY_BYTES`] read. The head, and which framing
//! applies, are the parent module's part.

use std::io::{self, BufRead, Read};

use super::{KEPT_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADERS, MAX_READ_BODY_BYTES, read_field_lines};

/// A body as read: what was kept, its whole length, and what a chunked body carried besides.
#[derive(Debug, Default)]
pub(super) struct Body {
    pub(super) kept: Vec<u8>,
    pub(super) length: u64,
    pub(super) trailers: Vec<(String, String)>,
    pub(super) last_chunk_at: Option<usize>,
}

impl Body {
    /// Reads `count` bytes of body data, keeping what fits in [`KEPT_BODY_BYTES`].
    fn take(&mut self, reader: &mut impl Read, count: u64) -> io::Result<()> {
        if self.length.saturating_add(count) > MAX_READ_BODY_BYTES {
            return Err(io::ErrorKind::FileTooLarge.into());
        }
        let keep = (KEPT_BODY_BYTES.saturating_sub(self.kept.len()) as u64).min(count);
        let kept = reader.by_ref().take(keep).read_to_end(&mut self.kept)? as u64;
        let skipped = io::copy(&mut reader.by_ref().take(count - kept), &mut io::sink())?;
        if kept + skipped < count {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.length += count;
        Ok(())
    }
}

/// A body of exactly `length` bytes (`Content-Length`).
pub(super) fn read_sized_body(reader: &mut impl Read, length: u64) -> io::Result<Body> {
    let mut body = Body::default();
    body.take(reader, length)?;
    Ok(body)
}

/// A chunked body (RFC 9112 section 7.1): chunks until the zero-size one, then trailer fields
/// until an empty line, parsed as header fields are (by `httparse`). Chunk extensions are
/// ignored (section 7.1.1).
pub(super) fn read_chunked_body(reader: &mut impl BufRead) -> io::Result<Body> {
    let mut body = Body::default();
    loop {
        let size = chunk_size(&read_line(reader)?)?;
        if size == 0 {
            break;
        }
        let start = body.kept.len();
        body.take(reader, size)?;
        if body.kept.len() as u64 - start as u64 == size {
            body.last_chunk_at = Some(start);
        } else {
            body.last_chunk_at = None;
        }
        if !read_line(reader)?.is_empty() {
            return Err(invalid(
                "chunk data longer than its size, or not followed by CRLF",
            ));
        }
    }
    let trailer_section = read_field_lines(reader, false).map_err(|error| match error.kind() {
        io::ErrorKind::FileTooLarge => invalid(&format!(
            "trailer section larger than {MAX_HEAD_BYTES} bytes"
        )),
        _ => error,
    })?;
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(&trailer_section, &mut fields) {
        Ok(httparse::Status::Complete((_, fields))) => {
            body.trailers = fields
                .iter()
                .map(|field| {
                    (
                        field.name.to_owned(),
                        String::from_utf8_lossy(field.value).trim().to_owned(),
                    )
                })
                .collect();
            Ok(body)
        }
        Ok(httparse::Status::Partial) => Err(invalid("an incomplete trailer section")),
        Err(error) => Err(invalid(&format!("malformed trailer section: {error}"))),
    }
}

/// The size of a chunk-size line (RFC 9112 section 7.1: `chunk-size [ chunk-ext ]`, the size
/// 1*HEXDIG, extensions after `;` ignored); `InvalidData` for anything else, and for a size
/// that does not fit in 64 bits.
fn chunk_size(line: &str) -> io::Result<u64> {
    let size = line
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_end_matches([' ', '\t']);
    if size.is_empty() || !size.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid(&format!(
            "bad chunk size line {line:?}: a chunk starts with its size in hexadecimal"
        )));
    }
    u64::from_str_radix(size, 16)
        .map_err(|_| invalid(&format!("chunk size {size:?} does not fit in 64 bits")))
}

/// One line (up to [`MAX_HEAD_BYTES`]) without its CRLF or LF.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_HEAD_BYTES as u64)
        .read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\n") {
        return Err(if line.len() >= MAX_HEAD_BYTES {
            invalid("line too long")
        } else {
            io::ErrorKind::UnexpectedEof.into()
        });
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| invalid("a line that is not UTF-8"))
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}
