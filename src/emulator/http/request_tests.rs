//! Unit tests of `emulator::http::request`: heads, body framing, chunked bodies, trailers and
//! the replies hostile requests get.

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
            format!("POST / HTTP/1.1\r\nTransfer-Encoding: {coding}\r\n\r\n0\r\n\r\n").as_bytes(),
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
