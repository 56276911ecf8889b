//! The vocabulary of one invocation: the event going in, the answer a runtime posts, and the
//! notices the Runtime API and the bootstrap's watcher send to whoever waits for the outcome.
//!
//! Also the identifiers Lambda gives an invocation (a UUID request id, an X-Ray trace id). This
//! file holds data only; the state machine is in `runtime_api`, the waiting in `environment`.

use std::process::ExitStatus;
use std::time::{Instant, SystemTime};

/// The Invoke API refuses a synchronous request whose payload is not smaller than this (6 MiB,
/// 6,291,456 bytes): "Request must be smaller than 6291456 bytes for the InvokeFunction
/// operation" (`RequestEntityTooLargeException`; Lambda quotas page, "Invocation payload
/// (request and response): 6 MB each for request and response (synchronous)"). Taken as Lambda
/// words it: a payload of exactly 6,291,456 bytes is refused.
pub const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;

/// The largest response a runtime may post for a synchronous invocation: 6 MiB + 100 bytes
/// (6,291,556), as Lambda names it ("Response payload size exceeded maximum allowed payload size
/// (6291556 bytes)."). The RIE has the same number, `MaxPayloadSize = 6*1024*1024 + 100`
/// (`internal/lambda/interop/model.go`), and refuses only what is larger (`len(data) >
/// interop.MaxPayloadSize`, `internal/lambda/rapidcore/server.go`): a response of exactly this
/// size passes.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024 + 100;

/// An invoker's payload as the event the function gets, the same for `invoke` and `serve`.
#[derive(Debug, PartialEq, Eq)]
pub struct EventPayload {
    /// The event bytes.
    pub payload: Vec<u8>,
    /// Why the payload is not JSON, when it is not (it is delivered anyway).
    pub not_json: Option<String>,
}

impl EventPayload {
    /// Empty input (nothing, or only whitespace) is the event `{}`, what Lambda gives a function
    /// invoked without a payload. Anything else is delivered byte for byte, JSON or not, as the
    /// RIE does: its invoke handler passes the body on unread (`bytes.NewReader(bodyBytes)`,
    /// `internal/lambda/rie/handlers.go`). Lambda's Invoke API would refuse a payload that is not
    /// JSON (`InvalidRequestContentException`); `not_json` says why, so callers can warn.
    pub fn from_invoker(bytes: Vec<u8>) -> Self {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Self {
                payload: b"{}".to_vec(),
                not_json: None,
            };
        }
        let not_json = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
            .err()
            .map(|error| error.to_string());
        Self {
            payload: bytes,
            not_json,
        }
    }
}

/// An event to deliver to the function, with the optional context an invoker may attach.
#[derive(Clone, Debug, Default)]
pub struct Event {
    pub payload: Vec<u8>,
    /// Delivered as `Lambda-Runtime-Client-Context` (already decoded from base64).
    pub client_context: Option<String>,
    /// Delivered as `Lambda-Runtime-Trace-Id`; one is made up when absent.
    pub trace_id: Option<String>,
}

/// What a runtime posted for an invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `POST /runtime/invocation/{id}/response`.
    Response {
        body: Vec<u8>,
        content_type: Option<String>,
    },
    /// `POST /runtime/invocation/{id}/error`: usually `{"errorMessage", "errorType"}`.
    FunctionError { body: Vec<u8> },
}

/// What happened, reported to the one waiting for an invocation's outcome.
#[derive(Debug)]
pub enum Notice {
    /// A runtime asked for an event (`GET /runtime/invocation/next`): the first time, its
    /// init is over.
    RuntimeReady { at: Instant },
    /// A runtime took the event with `GET /runtime/invocation/next`; its deadline starts now.
    Delivered {
        request_id: String,
        deadline: SystemTime,
    },
    /// A runtime answered the invocation.
    Answered { request_id: String, answer: Answer },
    /// A runtime reported that it could not initialize (`POST /runtime/init/error`).
    InitError { body: Vec<u8> },
    /// The bootstrap process `pid` exited (it may not be reaped yet).
    Exited { pid: u32, status: ExitStatus },
}

/// A new request id: a random (version 4) UUID, as Lambda's are.
pub fn new_request_id() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A new X-Ray trace header, `Root=1-<epoch seconds>-<96 random bits>;Parent=…;Sampled=0`.
pub fn new_trace_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "Root=1-{seconds:08x}-{};Parent={};Sampled=0",
        hex::encode(random_bytes::<12>()),
        hex::encode(random_bytes::<8>())
    )
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is not worth stopping an invocation for: ids stay unique
    // enough for one local session through the time mixed in below.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        for (byte, noise) in bytes.iter_mut().zip(nanos.iter().cycle()) {
            *byte ^= noise;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_limits_are_the_numbers_lambda_names() {
        // "Request must be smaller than 6291456 bytes"; "... maximum allowed payload size
        // (6291556 bytes)".
        assert_eq!(MAX_REQUEST_BYTES, 6_291_456);
        assert_eq!(MAX_RESPONSE_BYTES, 6_291_556);
    }

    #[test]
    fn empty_payloads_are_the_empty_object_and_others_pass_unchanged() {
        for empty in [&b""[..], b"  \n"] {
            assert_eq!(
                EventPayload::from_invoker(empty.to_vec()),
                EventPayload {
                    payload: b"{}".to_vec(),
                    not_json: None
                }
            );
        }
        let json = EventPayload::from_invoker(br#"{"a": 1}"#.to_vec());
        assert_eq!(
            (json.payload.as_slice(), json.not_json),
            (&br#"{"a": 1}"#[..], None)
        );
        let text = EventPayload::from_invoker(b"hello".to_vec());
        assert_eq!(text.payload, b"hello");
        assert!(text.not_json.is_some());
    }

    #[test]
    fn request_ids_are_version_4_uuids_and_differ() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert!(matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn trace_ids_have_the_x_ray_shape() {
        let trace = new_trace_id();
        let parts: Vec<&str> = trace.split(';').collect();
        assert!(parts[0].starts_with("Root=1-") && parts[0].len() == "Root=1-".len() + 8 + 1 + 24);
        assert!(parts[1].starts_with("Parent=") && parts[1].len() == "Parent=".len() + 16);
        assert_eq!(parts[2], "Sampled=0");
    }
}
