//! Reading one HTTP/1.1 request as hostile input (RFC 9112): the head by `httparse`, then the
//! body its framing gives (section 6.3), chunked bodies with their trailer fields (section 7.1.2)
//! and where the last chunk starts. Memory stays bounded whatever a client sends.

use std::io::{self, BufRead, Read, Write};

use super::{HttpReply, IncomingRequest, find_header};
use crate::emulator::invocation::MAX_RESPONSE_BYTES;

/// The most body bytes kept in memory: the largest response a runtime may post (6,291,556
/// bytes, see [`MAX_RESPONSE_BYTES`]) plus one, so that "one byte more" is seen. Larger bodies
/// are read to the end and counted ([`IncomingRequest::body_length`]), not kept.
pub const KEPT_BODY_BYTES: usize = MAX_RESPONSE_BYTES + 1;
/// A body longer than this (256 MiB) is not read to its end: the connection is answered `413`
/// and closed.
pub(super) const MAX_READ_BODY_BYTES: u64 = 256 * 1024 * 1024;
/// The longest request head, chunk-size line or trailer section accepted (64 KiB).
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields in a request head.
const MAX_HEADERS: usize = 100;

/// Reads one HTTP/1.1 request (RFC 9112) from `reader`: the head (parsed by `httparse`), then
/// the body its framing gives (section 6.3: `Transfer-Encoding: chunked` with its trailer
/// fields, else `Content-Length`, else none). `interim` gets `100 Continue` when the request
/// asks for it (RFC 9110 section 10.1.1). `Ok(None)`: the input ended cleanly before a request.
/// `Ok(Some((request, keep_alive)))`: `keep_alive` is false when the connection must close after
/// the reply (the client asked for it, HTTP/1.0 without `keep-alive`, or a framing that calls
/// for it). `Err(reply)`: the request cannot be read; send `reply` (a 4xx or 5xx naming what is
/// wrong) and close the connection, as nothing after it can be trusted.
///
/// Memory stays bounded whatever the input: a head or trailer section of at most 64 KiB and 100
/// fields, a body kept up to [`KEPT_BODY_BYTES`] (the rest only counted), nothing sized from a
/// length the client claims. The server reads from its sockets with this; it is public so that
/// the fuzz target can feed it arbitrary bytes.
pub fn read_request(
    reader: &mut impl BufRead,
    interim: &mut impl Write,
) -> std::result::Result<Option<(IncomingRequest, bool)>, HttpReply> {
    match read_head(reader)? {
        Some(head) => read_after_head(&head, reader, interim).map(Some),
        None => Ok(None),
    }
}

/// How a request's body is delimited (RFC 9112 section 6.3).
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    Sized(u64),
    Chunked,
}

/// The request after its head: its fields, then its body.
pub(super) fn read_after_head(
    head: &[u8],
    reader: &mut impl BufRead,
    interim: &mut impl Write,
) -> std::result::Result<(IncomingRequest, bool), HttpReply> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad_request("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HttpReply::plain(
                431,
                &format!("more than {MAX_HEADERS} header fields in the request head"),
            ));
        }
        Err(error) => return Err(bad_request(&format!("malformed request head: {error}"))),
    }
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|field| {
            (
                field.name.to_owned(),
                String::from_utf8_lossy(field.value).trim().to_owned(),
            )
        })
        .collect();
    let mut request = IncomingRequest {
        method: parsed.method.unwrap_or_default().to_owned(),
        path: parsed
            .path
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned(),
        headers,
        ..IncomingRequest::default()
    };
    let http_1_0 = parsed.version == Some(0);
    let connection = field_tokens(&request.headers, "Connection");
    let mut keep_alive = if http_1_0 {
        connection.iter().any(|token| token == "keep-alive")
    } else {
        !connection.iter().any(|token| token == "close")
    };

    let (framing, must_close) = framing(&request.headers, http_1_0)?;
    keep_alive &= !must_close;
    if let Framing::Sized(length) = framing
        && length > MAX_READ_BODY_BYTES
    {
        return Err(too_large());
    }
    // RFC 9110 section 10.1.1: only to an HTTP/1.1 client, and only when a body is to come.
    if !http_1_0
        && framing != Framing::Sized(0)
        && field_tokens(&request.headers, "Expect")
            .iter()
            .any(|token| token == "100-continue")
    {
        interim
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| interim.flush())
            .map_err(|error| bad_request(&error.to_string()))?;
    }
    let body = match framing {
        Framing::Chunked => read_chunked_body(reader),
        Framing::Sized(length) => read_sized_body(reader, length),
    };
    let body = body.map_err(|error| match error.kind() {
        io::ErrorKind::FileTooLarge => too_large(),
        io::ErrorKind::TimedOut => HttpReply::plain(
            408,
            "the request body made no progress for too long; the connection is closed",
        ),
        _ => bad_request(&format!("cannot read the request body: {error}")),
    })?;
    request.body = body.kept;
    request.body_length = body.length;
    request.trailers = body.trailers;
    request.last_chunk_at = body.last_chunk_at;
    Ok((request, keep_alive))
}

/// The body's framing from the `Transfer-Encoding` and `Content-Length` fields (RFC 9112
/// section 6.3), and whether the connection must close after the reply. A request with both is
/// framed by `Transfer-Encoding` and its connection closed (section 6.3 item 3: it may be a
/// request smuggling attempt; an honest client that sent both still gets its answer).
fn framing(
    headers: &[(String, String)],
    http_1_0: bool,
) -> std::result::Result<(Framing, bool), HttpReply> {
    let codings = field_tokens(headers, "Transfer-Encoding");
    let has_length = find_header(headers, "Content-Length").is_some();
    let has_coding = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Transfer-Encoding"));
    if has_coding {
        // Section 6.1: an HTTP/1.0 sender cannot have meant chunked framing.
        if http_1_0 {
            return Err(bad_request(
                "Transfer-Encoding in an HTTP/1.0 request: send HTTP/1.1, or a Content-Length",
            ));
        }
        return match codings.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["chunked"] => Ok((Framing::Chunked, has_length)),
            // Section 6.3 item 4: without chunked last, the body's end cannot be known.
            [.., last] if last != "chunked" => Err(bad_request(&format!(
                "Transfer-Encoding {:?} does not end with chunked: the body's length cannot be known",
                codings.join(", ")
            ))),
            [] => Err(bad_request("an empty Transfer-Encoding field")),
            // Section 7: chunked at most once.
            _ if codings.iter().filter(|coding| *coding == "chunked").count() > 1 => Err(
                bad_request("Transfer-Encoding applies chunked more than once"),
            ),
            // Section 6.1: a server SHOULD answer an unknown transfer coding with 501.
            _ => Err(HttpReply::plain(
                501,
                &format!(
                    "Transfer-Encoding {:?} is not implemented: send the body with \
                     Transfer-Encoding: chunked alone, or with a Content-Length",
                    codings.join(", ")
                ),
            )),
        };
    }
    // RFC 9110 section 8.6: Content-Length = 1*DIGIT. Several fields or a list are accepted
    // only when every value is the same number; anything else is an unrecoverable framing error
    // (RFC 9112 section 6.3 item 5).
    let mut length = None;
    for value in headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Content-Length"))
        .flat_map(|(_, value)| value.split(','))
    {
        let value = value.trim_matches([' ', '\t']);
        let parsed = (!value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| bad_request(&format!("Content-Length {value:?} is not a byte count")))?;
        if length.is_some_and(|length| length != parsed) {
            return Err(bad_request(
                "Content-Length fields that disagree: send one Content-Length",
            ));
        }
        length = Some(parsed);
    }
    Ok((Framing::Sized(length.unwrap_or(0)), false))
}

/// The comma-separated tokens of every field `name`, trimmed and in lowercase, in order.
fn field_tokens(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .flat_map(|(_, value)| value.split(','))
        .map(|token| token.trim_matches([' ', '\t']).to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

fn bad_request(message: &str) -> HttpReply {
    HttpReply::plain(400, message)
}

fn too_large() -> HttpReply {
    HttpReply::plain(
        413,
        &format!("request body larger than {MAX_READ_BODY_BYTES} bytes"),
    )
}

/// The request line and header fields up to the empty line, or `None` at a clean end of input.
/// Empty lines before the request line are skipped (RFC 9112 section 2.2).
pub(super) fn read_head(
    reader: &mut impl BufRead,
) -> std::result::Result<Option<Vec<u8>>, HttpReply> {
    let head = read_field_lines(reader, true).map_err(|error| match error.kind() {
        io::ErrorKind::TimedOut => HttpReply::plain(
            408,
            "the request head did not arrive whole in time; the connection is closed",
        ),
        io::ErrorKind::FileTooLarge => HttpReply::plain(
            431,
            &format!("request head larger than {MAX_HEAD_BYTES} bytes"),
        ),
        io::ErrorKind::UnexpectedEof => bad_request("the request head ended early"),
        _ => bad_request(&format!("cannot read the request head: {error}")),
    })?;
    Ok((!head.is_empty()).then_some(head))
}

/// Lines up to and including the first empty one (LF or CRLF), at most [`MAX_HEAD_BYTES`] in
/// all (`FileTooLarge` past it). With `skip_leading_empty`, empty lines before the first line
/// are dropped; an input that ends before any line gives an empty result. An input that ends
/// after a line but before the empty one is `UnexpectedEof`.
fn read_field_lines(reader: &mut impl BufRead, skip_leading_empty: bool) -> io::Result<Vec<u8>> {
    let mut lines = Vec::new();
    loop {
        let start = lines.len();
        let read = reader
            .by_ref()
            .take((MAX_HEAD_BYTES - start) as u64)
            .read_until(b'\n', &mut lines)?;
        let line = &lines[start..];
        if read == 0 && start == 0 && skip_leading_empty {
            return Ok(lines);
        }
        if !line.ends_with(b"\n") {
            return Err(if lines.len() >= MAX_HEAD_BYTES {
                io::ErrorKind::FileTooLarge.into()
            } else {
                io::ErrorKind::UnexpectedEof.into()
            });
        }
        if line == b"\r\n" || line == b"\n" {
            if start == 0 && skip_leading_empty {
                lines.clear();
                continue;
            }
            return Ok(lines);
        }
    }
}

/// A body as read: what was kept, its whole length, and what a chunked body carried besides.
#[derive(Debug, Default)]
struct Body {
    kept: Vec<u8>,
    length: u64,
    trailers: Vec<(String, String)>,
    last_chunk_at: Option<usize>,
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

fn read_sized_body(reader: &mut impl Read, length: u64) -> io::Result<Body> {
    let mut body = Body::default();
    body.take(reader, length)?;
    Ok(body)
}

/// A chunked body (RFC 9112 section 7.1): chunks until the zero-size one, then trailer fields
/// until an empty line, parsed as header fields are (by `httparse`). Chunk extensions are
/// ignored (section 7.1.1).
fn read_chunked_body(reader: &mut impl BufRead) -> io::Result<Body> {
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

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    fn read(raw: &[u8]) -> std::result::Result<Option<(IncomingRequest, bool)>, HttpReply> {
        read_request(&mut BufReader::new(raw), &mut Vec::new())
    }

    #[test]
    fn a_chunked_body_keeps_its_trailers_and_where_its_last_chunk_starts() {
        let raw = b"POST /2018-06-01/runtime/invocation/id/response?x=1 HTTP/1.1\r\n\
            Transfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n\
            5\r\nhello\r\n3;ext=1\r\n!!!\r\n0\r\n\
            Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\
            Lambda-Runtime-Function-Error-Body: Ym9vbQ==\r\n\r\n";
        let (request, keep_alive) = read(raw).unwrap().unwrap();
        assert!(keep_alive);
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/2018-06-01/runtime/invocation/id/response");
        assert_eq!(request.body, b"hello!!!");
        assert_eq!(request.body_length, 8);
        assert_eq!(request.last_chunk_at, Some(5));
        assert_eq!(
            request.trailer("lambda-runtime-function-error-type"),
            Some("Runtime.StreamError")
        );
        assert_eq!(
            request.trailer("Lambda-Runtime-Function-Error-Body"),
            Some("Ym9vbQ==")
        );
    }

    #[test]
    fn the_limits_are_one_byte_past_lambdas_response_limit_and_256_mib() {
        assert_eq!(KEPT_BODY_BYTES, 6_291_557);
        assert_eq!(MAX_READ_BODY_BYTES, 268_435_456);
    }

    #[test]
    fn bodies_past_the_kept_size_are_counted_not_kept() {
        let length = KEPT_BODY_BYTES + 10;
        let mut raw =
            format!("POST / HTTP/1.1\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
                .into_bytes();
        raw.extend(std::iter::repeat_n(b'x', length));
        let (request, keep_alive) = read(&raw).unwrap().unwrap();
        assert!(!keep_alive);
        assert_eq!(request.body.len(), KEPT_BODY_BYTES);
        assert_eq!(request.body_length, length as u64);
    }

    #[test]
    fn broken_requests_get_400_and_a_clean_end_is_none() {
        assert!(read(b"").unwrap().is_none());
        let truncated = read(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").unwrap_err();
        assert_eq!(truncated.status, 400);
        let bad_chunk =
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").unwrap_err();
        assert_eq!(bad_chunk.status, 400);
        assert!(String::from_utf8_lossy(&bad_chunk.body).contains("bad chunk size"));
    }

    #[test]
    fn expect_100_continue_is_answered_before_the_body() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}";
        let mut written = Vec::new();
        let (request, _) = read_request(&mut BufReader::new(&raw[..]), &mut written)
            .unwrap()
            .unwrap();
        assert_eq!(written, b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(request.body, b"{}");
    }

    /// The status and body text of a refused request.
    fn refused(raw: &[u8]) -> (u16, String) {
        let reply = read(raw).expect_err("the request should be refused");
        (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    }

    /// Reads a request whose head is `head` and whose body is `length` bytes of `x`, generated
    /// as it is read (never held whole).
    fn read_generated(
        head: String,
        length: u64,
    ) -> std::result::Result<Option<(IncomingRequest, bool)>, HttpReply> {
        let body = io::repeat(b'x').take(length);
        let mut reader = BufReader::new(io::Cursor::new(head.into_bytes()).chain(body));
        read_request(&mut reader, &mut Vec::new())
    }

    #[test]
    fn bodies_of_exactly_the_read_limit_are_read_and_one_byte_more_is_413() {
        let sized = |length: u64| {
            format!("POST / HTTP/1.1\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
        };
        let (request, _) = read_generated(sized(MAX_READ_BODY_BYTES), MAX_READ_BODY_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(request.body_length, MAX_READ_BODY_BYTES);
        assert_eq!(request.body.len(), KEPT_BODY_BYTES);
        let refused = read_generated(sized(MAX_READ_BODY_BYTES + 1), 0).unwrap_err();
        assert_eq!(refused.status, 413);
        // The same limit counted over chunks.
        let chunk = |length: u64| {
            format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{length:x}\r\n")
        };
        let mut head = chunk(MAX_READ_BODY_BYTES).into_bytes();
        let tail = b"\r\n0\r\n\r\n".to_vec();
        let body = io::repeat(b'x').take(MAX_READ_BODY_BYTES);
        let mut reader = BufReader::new(
            io::Cursor::new(std::mem::take(&mut head))
                .chain(body)
                .chain(io::Cursor::new(tail)),
        );
        let (request, _) = read_request(&mut reader, &mut Vec::new()).unwrap().unwrap();
        assert_eq!(request.body_length, MAX_READ_BODY_BYTES);
        let refused = read_generated(chunk(MAX_READ_BODY_BYTES + 1), 0).unwrap_err();
        assert_eq!(refused.status, 413);
    }

    #[test]
    fn an_empty_transfer_encoding_is_refused() {
        let (status, message) =
            refused(b"POST / HTTP/1.1\r\nTransfer-Encoding: \r\nContent-Length: 2\r\n\r\nhi");
        assert_eq!(status, 400, "{message}");
        assert!(message.contains("empty Transfer-Encoding"), "{message}");
    }

    fn chunked(body: &str) -> Vec<u8> {
        format!("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{body}").into_bytes()
    }

    // seanmonstar/httparse#19: a chunk size past 64 bits must be an error, not a wrapped number.
    #[test]
    fn chunk_size_lines_are_hexdigits_that_fit_in_64_bits() {
        let (status, message) = refused(&chunked("ffffffffffffffffff\r\nx\r\n0\r\n\r\n"));
        assert_eq!(status, 400);
        assert!(message.contains("does not fit in 64 bits"), "{message}");
        // u64::from_str_radix takes a sign; RFC 9112 section 7.1 does not.
        for line in ["+5", "-5", " 5", "0x5", "5 x", "", "g"] {
            let (status, message) = refused(&chunked(&format!("{line}\r\nhello\r\n0\r\n\r\n")));
            assert_eq!(status, 400, "{line:?}");
            assert!(message.contains("chunk size"), "{line:?}: {message}");
        }
        // Leading zeros, extensions and whitespace before them are the client's right.
        let (request, _) = read(&chunked(
            "00000000000000000005;name=\"quoted;value\"\r\nhello\r\n6 ;x\r\n world\r\n0;last\r\n\r\n",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(request.body, b"hello world");
        // A chunk size that fits in 64 bits but not in the body limit: 413, nothing allocated.
        assert_eq!(refused(&chunked("7fffffffffffffff\r\nx")).0, 413);
    }

    #[test]
    fn chunk_data_must_end_where_its_size_says() {
        for body in [
            "5\r\nhello0\r\n\r\n",
            "5\r\nhello world\r\n0\r\n\r\n",
            "5\r\nhel",
            "5\r\nhello\r\n",
            "5\r\nhello\r\n0\r\nX-Trailer: no end",
        ] {
            assert_eq!(refused(&chunked(body)).0, 400, "{body:?}");
        }
    }

    #[test]
    fn trailer_fields_are_parsed_as_header_fields() {
        for trailers in [
            "Bad Name: x\r\n\r\n",
            "no colon\r\n\r\n",
            " folded: x\r\n\r\n",
        ] {
            let (status, message) = refused(&chunked(&format!("1\r\na\r\n0\r\n{trailers}")));
            assert_eq!(status, 400, "{trailers:?}");
            assert!(message.contains("trailer"), "{message}");
        }
        let many: String = (0..=MAX_HEADERS).map(|n| format!("X-{n}: v\r\n")).collect();
        assert_eq!(refused(&chunked(&format!("0\r\n{many}\r\n"))).0, 400);
        let long = format!("0\r\nX: {}\r\n\r\n", "v".repeat(MAX_HEAD_BYTES));
        assert_eq!(refused(&chunked(&long)).0, 400);
    }

    // kazuho/Starlet#34 and httpwg/http-core#879: a request with both framings may be a
    // smuggling attempt; RFC 9112 section 6.3 item 3 lets chunked win but the connection must
    // close after the reply, so nothing that follows it is read as another request.
    #[test]
    fn content_length_with_transfer_encoding_is_read_chunked_then_the_connection_closes() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
            2\r\n{}\r\n0\r\n\r\nPOST /smuggled HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        let (request, keep_alive) = read(raw).unwrap().unwrap();
        assert_eq!(request.body, b"{}");
        assert!(
            !keep_alive,
            "the connection must close after a request with both framings"
        );
    }

    #[test]
    fn transfer_codings_other_than_chunked_alone_are_refused() {
        let with = |coding: &str| {
            refused(
                format!("POST / HTTP/1.1\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n")
                    .as_bytes(),
            )
        };
        let (status, message) = with("gzip, chunked");
        assert_eq!(status, 501);
        assert!(message.contains("gzip, chunked"), "{message}");
        assert_eq!(with("xchunked").0, 400);
        assert_eq!(with("chunked, gzip").0, 400);
        assert_eq!(with("chunked, chunked").0, 400);
        assert_eq!(with("identity").0, 400);
        // Two fields are one list (RFC 9110 section 5.3).
        assert_eq!(
            refused(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .0,
            501
        );
        assert!(read(&chunked("0\r\n\r\n")).unwrap().is_some());
        assert!(
            read(b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked \r\n\r\n0\r\n\r\n")
                .unwrap()
                .is_some()
        );
        // RFC 9112 section 6.1: from an HTTP/1.0 client the framing is faulty.
        let (status, message) =
            refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert_eq!(status, 400);
        assert!(message.contains("HTTP/1.0"), "{message}");
    }

    // litespeedtech/openlitespeed#392: a server that takes the first of two Content-Length
    // fields reads a different body than a proxy that takes the last.
    #[test]
    fn content_length_is_digits_and_one_number() {
        for fields in [
            "Content-Length: +2",
            "Content-Length: -2",
            "Content-Length: 0x2",
            "Content-Length: 2, 3",
            "Content-Length: 2\r\nContent-Length: 3",
            "Content-Length: ",
            "Content-Length: 99999999999999999999999",
        ] {
            let raw = format!("POST / HTTP/1.1\r\n{fields}\r\n\r\n{{}}");
            let (status, message) = refused(raw.as_bytes());
            assert_eq!(status, 400, "{fields:?}");
            assert!(message.contains("Content-Length"), "{fields:?}: {message}");
        }
        for fields in [
            "Content-Length: 2, 2",
            "Content-Length: 2\r\nContent-Length: 2",
        ] {
            let raw = format!("POST / HTTP/1.1\r\n{fields}\r\n\r\n{{}}");
            assert_eq!(read(raw.as_bytes()).unwrap().unwrap().0.body, b"{}");
        }
    }

    #[test]
    fn a_huge_content_length_is_neither_allocated_nor_announced_with_100_continue() {
        // Within the read limit but far past the input: a clear 400 once the input ends.
        let (status, message) = refused(b"POST / HTTP/1.1\r\nContent-Length: 200000000\r\n\r\nabc");
        assert_eq!(status, 400);
        assert!(
            message.contains("cannot read the request body"),
            "{message}"
        );
        // Past the read limit: 413 at once, and no `100 Continue` inviting the body first.
        let raw = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            u64::MAX
        );
        let mut interim = Vec::new();
        let reply = read_request(&mut BufReader::new(raw.as_bytes()), &mut interim).unwrap_err();
        assert_eq!(reply.status, 413);
        assert!(interim.is_empty(), "{}", String::from_utf8_lossy(&interim));
    }

    #[test]
    fn http_1_0_is_answered_without_100_continue_and_closed_unless_kept_alive() {
        let raw = b"POST / HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}";
        let mut interim = Vec::new();
        let (request, keep_alive) = read_request(&mut BufReader::new(&raw[..]), &mut interim)
            .unwrap()
            .unwrap();
        assert_eq!(request.body, b"{}");
        assert!(!keep_alive);
        assert!(
            interim.is_empty(),
            "RFC 9110 section 10.1.1: no 100 to HTTP/1.0"
        );
        let (_, keep_alive) = read(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(keep_alive);
        // Connection is a list: `close` anywhere in it closes.
        let (_, keep_alive) = read(b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!keep_alive);
    }

    #[test]
    fn heads_past_the_limits_get_431() {
        let many: String = (0..=MAX_HEADERS).map(|n| format!("X-{n}: v\r\n")).collect();
        let (status, message) = refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert_eq!(status, 431);
        assert!(message.contains("header fields"), "{message}");
        let long = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "v".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(refused(long.as_bytes()).0, 431);
        let endless = "\r\n".repeat(MAX_HEAD_BYTES);
        assert!(read(endless.as_bytes()).unwrap().is_none());
    }

    #[test]
    fn pipelined_requests_are_read_in_turn_from_one_buffer() {
        let raw = b"POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nxPOST /b HTTP/1.1\r\n\
            Transfer-Encoding: chunked\r\n\r\n1\r\ny\r\n0\r\n\r\nGET /c HTTP/1.1\r\n\r\n";
        let mut reader = BufReader::new(&raw[..]);
        let mut paths = Vec::new();
        while let Some((request, _)) = read_request(&mut reader, &mut Vec::new()).unwrap() {
            paths.push((request.path, request.body));
        }
        assert_eq!(
            paths,
            [
                ("/a".to_owned(), b"x".to_vec()),
                ("/b".to_owned(), b"y".to_vec()),
                ("/c".to_owned(), Vec::new())
            ]
        );
    }
}
