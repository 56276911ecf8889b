//! Reading one HTTP/1.1 request as hostile input (RFC 9112): the head by `httparse`, then the
//! body its framing gives (section 6.3), chunked bodies with their trailer fields (section 7.1.2)
//! and where the last chunk starts. Memory stays bounded whatever a client sends.

use std::io::{self, BufRead, Read, Write};

use super::{HttpReply, IncomingRequest, find_header};
use crate::emulator::invocation::MAX_RESPONSE_BYTES;

mod body;

use body::{read_chunked_body, read_sized_body};

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

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
