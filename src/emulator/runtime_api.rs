//! The Lambda Runtime API (`/2018-06-01/runtime/…`) as a runtime sees it: one event at a time
//! handed out by `GET invocation/next`, answered once by `POST invocation/{id}/response` or
//! `…/error`, and `POST init/error` for a runtime that cannot start.
//!
//! Replies follow the real API and the Runtime Interface Emulator: `202 {"status":"OK"}` for an
//! accepted post, `400 {"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`
//! for an unknown, stale or already answered request id, `403 InvalidStateTransition` for an
//! init error after the runtime took an event, `413 RequestEntityTooLarge` for a response over
//! 6,291,556 bytes ([`MAX_RESPONSE_BYTES`]; the RIE's `RenderRequestEntityTooLarge` in
//! `internal/lambda/rapi/rendering/render_error.go`). `GET invocation/next` waits as long as it
//! takes, with no timeout, while its client is connected. One whose client went away (a runtime
//! killed while it waited, e.g. a container deleted under a runtime started elsewhere) stops
//! waiting and never takes an event: the event would be written to a closed connection and lost,
//! and stays queued for a runtime that is there. The client is looked at whenever an event is
//! queued and every [`CLIENT_CHECK_INTERVAL`] meanwhile.
//!
//! A response-streaming runtime (`Lambda-Runtime-Function-Response-Mode: streaming`, a chunked
//! body) that fails half-way ends its body with `Lambda-Runtime-Function-Error-Type` and
//! `Lambda-Runtime-Function-Error-Body` (base64): the invocation is then a function error, as the
//! Lambda guide's "Implementing response streaming in a custom runtime" (runtimes-custom) says
//! and as the RIE reads them (`internal/lambda/core/directinvoke/directinvoke.go`). They are read
//! as HTTP trailers, and also in the form `lambda_runtime` 1.x sends: the same two lines as the
//! body's last chunk (`lambda-runtime/src/requests.rs` and `types.rs`, `to_tailer`).
//!
//! This is the state machine only; it never blocks its caller except in `next`. Who queues
//! events and waits for their outcome is `environment`; the HTTP server is `http`.

use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use serde_json::{Value, json};

use super::http::{ClientConnection, HttpReply, IncomingRequest};
use super::invocation::{Answer, Event, MAX_RESPONSE_BYTES, Notice, new_trace_id};

/// The path prefix of every Runtime API route.
pub const RUNTIME_API_PREFIX: &str = "/2018-06-01/runtime/";

/// How often a waiting `GET invocation/next` looks whether its client is still connected
/// (200 ms), so that a thread waiting for a client that is gone ends soon.
pub const CLIENT_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// The header by which a runtime streams its response (value `streaming`).
const RESPONSE_MODE_HEADER: &str = "Lambda-Runtime-Function-Response-Mode";
/// The error type a response-streaming runtime reports after its last chunk.
const ERROR_TYPE_TRAILER: &str = "Lambda-Runtime-Function-Error-Type";
/// The error itself (base64) a response-streaming runtime reports after its last chunk.
const ERROR_BODY_TRAILER: &str = "Lambda-Runtime-Function-Error-Body";

/// When an invocation's deadline (`Lambda-Runtime-Deadline-Ms`) falls.
#[derive(Clone, Copy, Debug)]
pub enum Deadline {
    /// This long after the runtime takes the event (an ordinary invocation).
    AfterTaken(Duration),
    /// At this moment (an invocation whose time started earlier, e.g. with a retried init).
    At(SystemTime),
}

/// The Runtime API of one execution environment.
pub struct RuntimeApi {
    function_arn: String,
    state: Mutex<ApiState>,
    event_queued: Condvar,
    notices: Sender<Notice>,
}

#[derive(Default)]
struct ApiState {
    /// The event waiting for a runtime to ask for it.
    queued: Option<QueuedInvocation>,
    /// The request id handed to the runtime and not answered yet.
    in_flight: Option<String>,
    /// Bumped when the runtime process is replaced: requests from the old one stop waiting.
    generation: u64,
}

struct QueuedInvocation {
    request_id: String,
    event: Event,
    deadline: Deadline,
}

impl RuntimeApi {
    /// `function_arn` goes in every event's `Lambda-Runtime-Invoked-Function-Arn`; what
    /// happens is reported on `notices`.
    pub fn new(function_arn: String, notices: Sender<Notice>) -> Self {
        Self {
            function_arn,
            state: Mutex::new(ApiState::default()),
            event_queued: Condvar::new(),
            notices,
        }
    }

    /// Offers `event` to the runtime's next `GET invocation/next`, with `deadline`.
    pub fn queue(&self, request_id: &str, event: Event, deadline: Deadline) {
        self.lock().queued = Some(QueuedInvocation {
            request_id: request_id.to_owned(),
            event,
            deadline,
        });
        self.event_queued.notify_all();
    }

    /// Forgets the invocation `request_id` (timed out, or its runtime died): a queued event is
    /// no longer handed out, and a late answer gets `400 InvalidRequestID`.
    pub fn withdraw(&self, request_id: &str) {
        let mut state = self.lock();
        if state
            .queued
            .as_ref()
            .is_some_and(|queued| queued.request_id == request_id)
        {
            state.queued = None;
        }
        if state.in_flight.as_deref() == Some(request_id) {
            state.in_flight = None;
        }
    }

    /// Ends every `GET invocation/next` still waiting: the process that sent them was replaced.
    pub fn release_waiting_runtimes(&self) {
        self.lock().generation += 1;
        self.event_queued.notify_all();
    }

    /// Answers a Runtime API request, or `None` when the path is not under the Runtime API.
    pub fn handle(&self, request: &IncomingRequest) -> Option<HttpReply> {
        let route: Vec<&str> = request
            .path
            .strip_prefix(RUNTIME_API_PREFIX)?
            .split('/')
            .collect();
        let expected_method = match route[..] {
            ["invocation", "next"] => "GET",
            ["invocation", _, "response" | "error"] | ["init", "error"] => "POST",
            _ => return None,
        };
        if request.method != expected_method {
            return Some(HttpReply::method_not_allowed(expected_method));
        }
        Some(match route[..] {
            ["invocation", "next"] => self.next(request.client.as_ref()),
            ["invocation", request_id, "response"] => self.answer(request_id, request, true),
            ["invocation", request_id, _] => self.answer(request_id, request, false),
            _ => self.init_error(request),
        })
    }

    /// `GET invocation/next`: waits for an event, hands it out and starts its deadline. Stops
    /// waiting, taking nothing, when `client` (the request's connection) is gone; the reply,
    /// which nobody reads, is then a `500`, as for a runtime that was replaced.
    fn next(&self, client: Option<&ClientConnection>) -> HttpReply {
        self.notify(Notice::RuntimeReady { at: Instant::now() });
        let mut state = self.lock();
        let generation = state.generation;
        let invocation = loop {
            if state.generation != generation {
                return internal_server_error();
            }
            // Looked at under the lock, right before the event would be taken: an event is never
            // taken for a client already gone, so it never has to be put back.
            if client.is_some_and(ClientConnection::is_gone) {
                return internal_server_error();
            }
            if let Some(invocation) = state.queued.take() {
                break invocation;
            }
            (state, _) = self
                .event_queued
                .wait_timeout(state, CLIENT_CHECK_INTERVAL)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        };
        state.in_flight = Some(invocation.request_id.clone());
        drop(state);

        let deadline = match invocation.deadline {
            Deadline::AfterTaken(timeout) => SystemTime::now() + timeout,
            Deadline::At(deadline) => deadline,
        };
        let deadline_ms = deadline
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let event = invocation.event;
        let mut reply = HttpReply::new(200)
            .with_header("Content-Type", "application/json")
            .with_header("Lambda-Runtime-Aws-Request-Id", &invocation.request_id)
            .with_header("Lambda-Runtime-Deadline-Ms", &deadline_ms.to_string())
            .with_header("Lambda-Runtime-Invoked-Function-Arn", &self.function_arn)
            .with_header(
                "Lambda-Runtime-Trace-Id",
                &event.trace_id.unwrap_or_else(new_trace_id),
            );
        if let Some(client_context) = &event.client_context {
            reply = reply.with_header("Lambda-Runtime-Client-Context", client_context);
        }
        self.notify(Notice::Delivered {
            request_id: invocation.request_id,
            deadline,
        });
        reply.with_body(event.payload)
    }

    /// `POST invocation/{id}/response` and `POST invocation/{id}/error`.
    fn answer(&self, request_id: &str, request: &IncomingRequest, is_response: bool) -> HttpReply {
        let mut state = self.lock();
        if request_id.is_empty() || state.in_flight.as_deref() != Some(request_id) {
            return HttpReply::json(
                400,
                &json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}),
            );
        }
        state.in_flight = None;
        drop(state);

        let stream_error = is_response.then(|| stream_error(request)).flatten();
        let (answer, reply) = if request.body_length > MAX_RESPONSE_BYTES as u64 {
            // Lambda's words (its error names the limit; the RIE's also names the size).
            let answer = Answer::FunctionError {
                body: json!({
                    "errorMessage": format!("Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
                    "errorType": "Function.ResponseSizeTooLarge",
                })
                .to_string()
                .into_bytes(),
            };
            let reply = HttpReply::json(
                413,
                &json!({
                    "errorMessage": format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."),
                    "errorType": "RequestEntityTooLarge",
                }),
            );
            (answer, reply)
        } else if let Some(body) = stream_error {
            (Answer::FunctionError { body }, accepted())
        } else if is_response {
            let answer = Answer::Response {
                body: request.body.clone(),
                content_type: request.header("Content-Type").map(str::to_owned),
            };
            (answer, accepted())
        } else {
            // The error type is also in `Lambda-Runtime-Function-Error-Type`; the body, which
            // is what Lambda returns to the invoker, carries it too.
            let answer = Answer::FunctionError {
                body: request.body.clone(),
            };
            (answer, accepted())
        };
        self.notify(Notice::Answered {
            request_id: request_id.to_owned(),
            answer,
        });
        reply
    }

    /// `POST init/error`: accepted until the runtime has taken an event.
    fn init_error(&self, request: &IncomingRequest) -> HttpReply {
        if self.lock().in_flight.is_some() {
            return HttpReply::json(
                403,
                &json!({
                    "errorMessage": "State transition from Running to InitError failed for runtime. Error: State transition is not allowed",
                    "errorType": "InvalidStateTransition",
                }),
            );
        }
        self.notify(Notice::InitError {
            body: request.body.clone(),
        });
        accepted()
    }

    fn notify(&self, notice: Notice) {
        // Nobody listening means lambda-image is shutting down: nothing left to tell.
        let _ = self.notices.send(notice);
    }

    fn lock(&self) -> MutexGuard<'_, ApiState> {
        // The state stays consistent at every unlock, so a panicked holder left nothing half-done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The error a response-streaming runtime reported after its last chunk, as the JSON Lambda
/// returns for a function error (`{"errorMessage", "errorType"}`), or `None` for a response
/// that is not streamed or ended well.
///
/// The error type comes from `Lambda-Runtime-Function-Error-Type`; the message from
/// `Lambda-Runtime-Function-Error-Body`, base64: a JSON object there (what aws-lambda-go sends)
/// is kept as it is, other text (what `lambda_runtime` sends, the error's `Display`) becomes the
/// `errorMessage`.
fn stream_error(request: &IncomingRequest) -> Option<Vec<u8>> {
    let streaming = request
        .header(RESPONSE_MODE_HEADER)
        .is_some_and(|mode| mode.eq_ignore_ascii_case("streaming"));
    if !streaming {
        return None;
    }
    let (error_type, error_body) = match request.trailer(ERROR_TYPE_TRAILER) {
        Some(error_type) => (
            error_type.to_owned(),
            request.trailer(ERROR_BODY_TRAILER).map(str::to_owned),
        ),
        None => error_fields_in_last_chunk(request)?,
    };
    if error_type.is_empty() {
        return None;
    }
    let decoded = error_body.as_deref().map(|encoded| {
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_else(|| encoded.to_owned())
    });
    let body = match decoded
        .as_deref()
        .map(serde_json::from_str::<Value>)
        .and_then(Result::ok)
    {
        Some(Value::Object(mut error)) => {
            error
                .entry("errorType")
                .or_insert_with(|| Value::from(error_type.as_str()));
            Value::Object(error)
        }
        _ => json!({
            "errorMessage": decoded.unwrap_or_default(),
            "errorType": error_type,
        }),
    };
    Some(body.to_string().into_bytes())
}

/// `lambda_runtime` 1.x (`requests.rs`, `Err(err) => err.into().to_tailer().into()`) declares
/// the two error fields in `Trailer:` but writes them as the body's last chunk:
/// `Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body:
/// <base64>\r\n`. Read only a last chunk made of exactly such lines, in a request that declared them.
fn error_fields_in_last_chunk(request: &IncomingRequest) -> Option<(String, Option<String>)> {
    let declared = request.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("Trailer")
            && value
                .split(',')
                .any(|field| field.trim().eq_ignore_ascii_case(ERROR_TYPE_TRAILER))
    });
    let last_chunk = std::str::from_utf8(request.body.get(request.last_chunk_at?..)?).ok()?;
    if !declared || !last_chunk.ends_with("\r\n") {
        return None;
    }
    let (mut error_type, mut error_body) = (None, None);
    for line in last_chunk.trim_end_matches("\r\n").split("\r\n") {
        let (name, value) = line.split_once(':')?;
        let value = Some(value.trim().to_owned());
        if name.eq_ignore_ascii_case(ERROR_TYPE_TRAILER) {
            error_type = value;
        } else if name.eq_ignore_ascii_case(ERROR_BODY_TRAILER) {
            error_body = value;
        } else {
            return None;
        }
    }
    Some((error_type?, error_body))
}

/// `202 {"status":"OK"}`, the real API's answer to an accepted post.
fn accepted() -> HttpReply {
    HttpReply::json(202, &json!({"status": "OK"}))
}

fn internal_server_error() -> HttpReply {
    HttpReply::json(
        500,
        &json!({"errorMessage": "Internal Server Error", "errorType": "InternalServerError"}),
    )
}

#[cfg(test)]
#[path = "runtime_api_tests.rs"]
mod tests;
