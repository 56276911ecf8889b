//! Unit tests of `emulator::runtime_api`: the Runtime API routes, one event at a time, the
//! answers to out-of-order or malformed runtime requests, and no event for a runtime gone while
//! it waited.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;

use super::*;

fn api() -> (Arc<RuntimeApi>, Receiver<Notice>) {
    let (sender, receiver) = channel();
    let arn = "arn:aws:lambda:us-east-1:012345678912:function:f".to_owned();
    (Arc::new(RuntimeApi::new(arn, sender)), receiver)
}

fn request(method: &str, route: &str, body: &[u8]) -> IncomingRequest {
    IncomingRequest {
        method: method.into(),
        path: format!("{RUNTIME_API_PREFIX}{route}"),
        headers: vec![],
        body: body.to_vec(),
        body_length: body.len() as u64,
        ..IncomingRequest::default()
    }
}

fn status_and_error_type(reply: &HttpReply) -> (u16, String) {
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    (
        reply.status,
        body["errorType"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn an_event_is_handed_out_once_and_answered_once() {
    let (api, notices) = api();
    let event = Event {
        payload: b"{\"a\":1}".to_vec(),
        ..Event::default()
    };
    api.queue("id-1", event, Deadline::AfterTaken(Duration::from_secs(3)));
    let next = api.handle(&request("GET", "invocation/next", b"")).unwrap();
    assert_eq!(next.status, 200);
    assert_eq!(next.body, b"{\"a\":1}");
    assert_eq!(next.header("Lambda-Runtime-Aws-Request-Id"), Some("id-1"));
    let deadline: u128 = next
        .header("Lambda-Runtime-Deadline-Ms")
        .unwrap()
        .parse()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(deadline > now + 2_000 && deadline <= now + 3_000);
    assert!(
        next.header("Lambda-Runtime-Trace-Id")
            .unwrap()
            .starts_with("Root=1-")
    );
    assert!(matches!(
        notices.try_recv(),
        Ok(Notice::RuntimeReady { .. })
    ));
    assert!(
        matches!(notices.try_recv(), Ok(Notice::Delivered { request_id, .. }) if request_id == "id-1")
    );

    let wrong = api
        .handle(&request("POST", "invocation/id-2/response", b"{}"))
        .unwrap();
    assert_eq!(
        status_and_error_type(&wrong),
        (400, "InvalidRequestID".into())
    );
    let first = api
        .handle(&request("POST", "invocation/id-1/response", b"42"))
        .unwrap();
    assert_eq!(first.status, 202);
    assert_eq!(first.body, br#"{"status":"OK"}"#);
    let second = api
        .handle(&request("POST", "invocation/id-1/error", b"{}"))
        .unwrap();
    assert_eq!(
        status_and_error_type(&second),
        (400, "InvalidRequestID".into())
    );
    match notices.try_recv() {
        Ok(Notice::Answered {
            request_id,
            answer: Answer::Response { body, .. },
        }) => {
            assert_eq!(
                (request_id.as_str(), body.as_slice()),
                ("id-1", b"42".as_slice())
            );
        }
        other => panic!("expected the answer, got {other:?}"),
    }
    assert!(notices.try_recv().is_err(), "refused posts notify nobody");
}

#[test]
fn next_waits_for_an_event_and_a_replaced_runtime_stops_waiting() {
    let (api, _notices) = api();
    let waiting = {
        let api = Arc::clone(&api);
        std::thread::spawn(move || api.handle(&request("GET", "invocation/next", b"")).unwrap())
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(!waiting.is_finished(), "next must wait for an event");
    api.release_waiting_runtimes();
    assert_eq!(waiting.join().unwrap().status, 500);
}

/// A connection on loopback: the server's side, as requests carry it, and the client's.
fn connection() -> (ClientConnection, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (served, _) = listener.accept().unwrap();
    (ClientConnection::new(served), client)
}

/// `GET invocation/next` on `client`'s connection, answered on a thread of its own.
fn next_on(api: &Arc<RuntimeApi>, client: &ClientConnection) -> JoinHandle<HttpReply> {
    let api = Arc::clone(api);
    let request = IncomingRequest {
        client: Some(client.clone()),
        ..request("GET", "invocation/next", b"")
    };
    std::thread::spawn(move || api.handle(&request).unwrap())
}

#[test]
fn a_client_is_gone_once_it_closed_or_reset_its_connection_not_while_it_sends_or_waits() {
    let (served, mut client) = connection();
    assert!(!served.is_gone(), "waiting for a reply");
    client.write_all(b"GET /next-one HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!served.is_gone(), "a pipelined request is not an end");

    let (served, client) = connection();
    drop(client);
    std::thread::sleep(Duration::from_millis(50));
    assert!(served.is_gone(), "closed after its request");

    let (served, client) = connection();
    // Closing with SO_LINGER 0 sends a reset.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) reads `linger`, which outlives the call, on a socket we own.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&client),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0);
    drop(client);
    std::thread::sleep(Duration::from_millis(50));
    assert!(served.is_gone(), "reset");
}

// A runtime killed while its `GET invocation/next` waited (a container deleted under a runtime
// started elsewhere): the event must not be handed to that request, which nobody reads any more,
// but stay for the next runtime.
#[test]
fn a_next_whose_client_is_gone_takes_no_event_and_stops_waiting() {
    let (api, notices) = api();
    let (killed_side, killed) = connection();
    let killed_next = next_on(&api, &killed_side);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!killed_next.is_finished(), "next must wait for an event");
    drop(killed);
    std::thread::sleep(Duration::from_millis(100));
    api.queue(
        "id",
        Event::default(),
        Deadline::AfterTaken(Duration::from_secs(3)),
    );
    assert_eq!(killed_next.join().unwrap().status, 500);
    assert!(
        !notices
            .try_iter()
            .any(|notice| matches!(notice, Notice::Delivered { .. })),
        "the event was handed to a request whose client is gone"
    );

    let (live_side, _live) = connection();
    let next = next_on(&api, &live_side).join().unwrap();
    assert_eq!(next.header("Lambda-Runtime-Aws-Request-Id"), Some("id"));

    // With no event coming, a gone client's request ends by itself soon.
    let (killed_side, killed) = connection();
    let killed_next = next_on(&api, &killed_side);
    drop(killed);
    let started = Instant::now();
    assert_eq!(killed_next.join().unwrap().status, 500);
    assert!(started.elapsed() < CLIENT_CHECK_INTERVAL * 5);
}

#[test]
fn a_next_waits_past_its_client_checks_while_its_client_is_there() {
    let (api, _notices) = api();
    let (live_side, mut live) = connection();
    // A client that already sent its next request after this one is still there.
    live.write_all(b"POST /2018-06-01/runtime/invocation/id/response HTTP/1.1\r\n")
        .unwrap();
    let next = next_on(&api, &live_side);
    std::thread::sleep(CLIENT_CHECK_INTERVAL * 4);
    assert!(!next.is_finished(), "next must wait for an event");
    api.queue(
        "id",
        Event::default(),
        Deadline::AfterTaken(Duration::from_secs(3)),
    );
    let next = next.join().unwrap();
    assert_eq!(next.status, 200);
    assert_eq!(next.header("Lambda-Runtime-Aws-Request-Id"), Some("id"));
}

#[test]
fn init_errors_are_refused_once_an_event_was_taken_and_withdrawn_events_are_not_handed_out() {
    let (api, notices) = api();
    let accepted = api.handle(&request("POST", "init/error", b"{}")).unwrap();
    assert_eq!(accepted.status, 202);
    assert!(matches!(notices.try_recv(), Ok(Notice::InitError { .. })));

    api.queue(
        "gone",
        Event::default(),
        Deadline::AfterTaken(Duration::from_secs(1)),
    );
    api.withdraw("gone");
    api.queue(
        "id",
        Event::default(),
        Deadline::AfterTaken(Duration::from_secs(1)),
    );
    let next = api.handle(&request("GET", "invocation/next", b"")).unwrap();
    assert_eq!(next.header("Lambda-Runtime-Aws-Request-Id"), Some("id"));
    let refused = api.handle(&request("POST", "init/error", b"{}")).unwrap();
    assert_eq!(
        status_and_error_type(&refused),
        (403, "InvalidStateTransition".into())
    );
    api.withdraw("id");
    let late = api
        .handle(&request("POST", "invocation/id/response", b"{}"))
        .unwrap();
    assert_eq!(late.status, 400);
}

/// Takes an event as `id` and posts `request` as its response; returns the reply and the
/// answer the invocation got.
fn respond(request: IncomingRequest) -> (HttpReply, Answer) {
    let (api, notices) = api();
    api.queue(
        "id",
        Event::default(),
        Deadline::AfterTaken(Duration::from_secs(3)),
    );
    api.handle(&self::request("GET", "invocation/next", b""))
        .unwrap();
    let reply = api.handle(&request).unwrap();
    let answer = notices
        .try_iter()
        .find_map(|notice| match notice {
            Notice::Answered { answer, .. } => Some(answer),
            _ => None,
        })
        .expect("an answer");
    (reply, answer)
}

fn streamed(
    body: &[u8],
    last_chunk_at: Option<usize>,
    trailers: &[(&str, &str)],
) -> IncomingRequest {
    let mut request = request("POST", "invocation/id/response", body);
    request.headers = vec![
        (
            "Lambda-Runtime-Function-Response-Mode".into(),
            "streaming".into(),
        ),
        (
            "Trailer".into(),
            "Lambda-Runtime-Function-Error-Type".into(),
        ),
        (
            "Trailer".into(),
            "Lambda-Runtime-Function-Error-Body".into(),
        ),
    ];
    request.last_chunk_at = last_chunk_at;
    request.trailers = trailers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    request
}

fn error_of(answer: &Answer) -> Value {
    match answer {
        Answer::FunctionError { body } => serde_json::from_slice(body).unwrap(),
        other => panic!("expected a function error, got {other:?}"),
    }
}

#[test]
fn a_response_may_be_6291556_bytes_and_no_more() {
    let mut largest = request("POST", "invocation/id/response", b"x");
    largest.body_length = MAX_RESPONSE_BYTES as u64;
    let (reply, answer) = respond(largest);
    assert_eq!(reply.status, 202);
    assert!(matches!(answer, Answer::Response { .. }));

    let mut too_large = request("POST", "invocation/id/response", b"x");
    too_large.body_length = MAX_RESPONSE_BYTES as u64 + 1;
    let (reply, answer) = respond(too_large);
    assert_eq!(
        status_and_error_type(&reply),
        (413, "RequestEntityTooLarge".into())
    );
    assert_eq!(
        error_of(&answer),
        json!({
            "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            "errorType": "Function.ResponseSizeTooLarge",
        })
    );
}

#[test]
fn stream_error_trailers_make_a_function_error() {
    // HTTP trailers carrying a JSON error (aws-lambda-go's form).
    let json_error = base64::engine::general_purpose::STANDARD
        .encode(r#"{"errorMessage":"disk full","errorType":"IOError"}"#);
    let (reply, answer) = respond(streamed(
        b"hello",
        Some(0),
        &[
            ("Lambda-Runtime-Function-Error-Type", "IOError"),
            ("Lambda-Runtime-Function-Error-Body", &json_error),
        ],
    ));
    assert_eq!(reply.status, 202);
    assert_eq!(
        error_of(&answer),
        json!({"errorMessage": "disk full", "errorType": "IOError"})
    );

    // lambda_runtime 1.x's form: the two lines as the last chunk, the message as text.
    let body = b"chunk 1\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body: Ym9vbQ==\r\n";
    let (_, answer) = respond(streamed(body, Some(8), &[]));
    assert_eq!(
        error_of(&answer),
        json!({"errorMessage": "boom", "errorType": "Runtime.StreamError"})
    );

    // The same text anywhere but as a whole last chunk, or without streaming, is data.
    let (_, answer) = respond(streamed(body, Some(0), &[]));
    assert!(matches!(answer, Answer::Response { .. }));
    let mut buffered = streamed(body, Some(8), &[]);
    buffered.headers.remove(0);
    let (_, answer) = respond(buffered);
    assert!(matches!(answer, Answer::Response { .. }));
    // An empty error type reports nothing (the RIE's trailers when all went well).
    let (_, answer) = respond(streamed(
        b"ok",
        Some(0),
        &[("Lambda-Runtime-Function-Error-Type", "")],
    ));
    assert!(matches!(answer, Answer::Response { .. }));
}

#[test]
fn other_paths_and_methods() {
    let (api, _notices) = api();
    assert!(api.handle(&request("GET", "nothing/here", b"")).is_none());
    let wrong_method = api
        .handle(&request("POST", "invocation/next", b""))
        .unwrap();
    assert_eq!(wrong_method.status, 405);
}
