//! The Runtime Interface Emulator's invoke endpoint, `POST
//! /2015-03-31/functions/function/invocations`: the event as the body in, the function's
//! answer out, with the statuses the RIE gives.
//!
//! A response is `200` with the function's body; a function error `200` with the error JSON
//! (plus `X-Amz-Function-Error: Unhandled`, as the Lambda Invoke API marks it); an init error
//! `502` with what the runtime posted; a bootstrap that exits `502` with a `Runtime.ExitError`
//! JSON; a timeout `200` with the RIE's `Task timed out after N.00 seconds`. lambda-image adds
//! `504` with a `Runtime.InitTimeout` JSON when no runtime started elsewhere (`serve
//! --external`) asks for the event within 10 s; a bootstrap lambda-image runs gets its init
//! retried instead, as on Lambda (see `execution_environment`).
//!
//! The body is the event: empty is `{}`, anything else is delivered unchanged, JSON or not
//! ([`EventPayload`], the same rule as `invoke`). A body of 6,291,456 bytes or more is refused
//! with Lambda's `413 RequestEntityTooLargeException` ([`MAX_REQUEST_BYTES`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use super::execution_environment::{ExecutionEnvironment, INIT_LIMIT, InvocationReport, Outcome};
use super::http::{HttpReply, IncomingRequest};
use super::invocation::{Event, EventPayload, MAX_REQUEST_BYTES};
use super::log::log_line;

/// The path the RIE serves invocations on.
pub const INVOCATIONS_PATH: &str = "/2015-03-31/functions/function/invocations";

/// Runs one invocation request through `environment` (one at a time: the lock is held for
/// the whole invocation, as one execution environment runs one event at a time).
pub fn invoke(
    request: &IncomingRequest,
    environment: &Mutex<ExecutionEnvironment>,
    timeout: Duration,
) -> HttpReply {
    if request.method != "POST" {
        return HttpReply::method_not_allowed("POST");
    }
    let event = match event_of(request) {
        Ok(event) => event,
        Err(reply) => return reply,
    };
    let mut environment = environment
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match environment.invoke(event) {
        Ok(report) => reply_for(&report, timeout),
        Err(error) => HttpReply::json(
            500,
            &json!({"errorMessage": error.to_string(), "errorType": "Runtime.StartError"}),
        ),
    }
}

/// The event an invocation request carries.
fn event_of(request: &IncomingRequest) -> Result<Event, HttpReply> {
    if request.body_length >= MAX_REQUEST_BYTES as u64 {
        return Err(HttpReply::json(
            413,
            &json!({
                "errorMessage": format!("Request must be smaller than {MAX_REQUEST_BYTES} bytes for the InvokeFunction operation"),
                "errorType": "RequestEntityTooLargeException",
            }),
        ));
    }
    let client_context = match request.header("X-Amz-Client-Context") {
        None => None,
        Some(encoded) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            match decoded {
                Some(context) => Some(context),
                None => {
                    return Err(HttpReply::json(
                        400,
                        &json!({
                            "errorMessage": "X-Amz-Client-Context must be base64-encoded UTF-8",
                            "errorType": "InvalidRequestContentException",
                        }),
                    ));
                }
            }
        }
    };
    let EventPayload { payload, not_json } = EventPayload::from_invoker(request.body.clone());
    if let Some(error) = not_json {
        log_line!(
            "lambda-image: warning: the event is not JSON ({error}); it is delivered unchanged, as the \
             Runtime Interface Emulator does (Lambda's Invoke API would refuse it: InvalidRequestContentException)"
        );
    }
    Ok(Event {
        payload,
        client_context,
        trace_id: request.header("X-Amzn-Trace-Id").map(str::to_owned),
    })
}

/// The reply the RIE gives for an outcome.
pub fn reply_for(report: &InvocationReport, timeout: Duration) -> HttpReply {
    let request_id = &report.request_id;
    match &report.outcome {
        Outcome::Response { body, content_type } => HttpReply::new(200)
            .with_header(
                "Content-Type",
                content_type.as_deref().unwrap_or("application/json"),
            )
            .with_body(body.clone()),
        Outcome::FunctionError { body } => HttpReply::new(200)
            .with_header("Content-Type", "application/json")
            .with_header("X-Amz-Function-Error", "Unhandled")
            .with_body(body.clone()),
        Outcome::InitError { body } => HttpReply::new(502)
            .with_header("Content-Type", "application/json")
            .with_body(body.clone()),
        Outcome::Exited { reason, .. } => HttpReply::json(
            502,
            &json!({
                "errorMessage": format!("RequestId: {request_id} Error: {reason}"),
                "errorType": "Runtime.ExitError",
            }),
        ),
        Outcome::TimedOut => HttpReply::new(200)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(timeout_message(timeout).into_bytes()),
        Outcome::NotTaken => HttpReply::json(
            504,
            &json!({
                "errorMessage": format!(
                    "RequestId: {request_id} Error: no runtime asked for the event within {} s",
                    INIT_LIMIT.as_secs()
                ),
                "errorType": "Runtime.InitTimeout",
            }),
        ),
    }
}

/// The RIE's (and Lambda's) words for a timeout: `Task timed out after 3.00 seconds`.
pub fn timeout_message(timeout: Duration) -> String {
    format!("Task timed out after {:.2} seconds", timeout.as_secs_f64())
}

/// Serves the Runtime API, and the invoke endpoint when `environment` is given.
pub fn routes(
    api: Arc<super::runtime_api::RuntimeApi>,
    environment: Option<(Arc<Mutex<ExecutionEnvironment>>, Duration)>,
) -> Arc<super::http::RequestHandler> {
    Arc::new(move |request: &IncomingRequest| {
        if let Some(reply) = api.handle(request) {
            return reply;
        }
        match &environment {
            Some((environment, timeout)) if request.path == INVOCATIONS_PATH => {
                invoke(request, environment, *timeout)
            }
            Some(_) => HttpReply::not_found(&format!(
                "POST {INVOCATIONS_PATH} and the Lambda Runtime API under /2018-06-01/runtime/"
            )),
            None => HttpReply::not_found("the Lambda Runtime API under /2018-06-01/runtime/"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: Outcome) -> InvocationReport {
        InvocationReport {
            request_id: "id".into(),
            outcome,
        }
    }

    #[test]
    fn outcomes_get_the_rie_statuses() {
        let timeout = Duration::from_secs(3);
        let ok = reply_for(
            &report(Outcome::Response {
                body: b"1".to_vec(),
                content_type: None,
            }),
            timeout,
        );
        assert_eq!(
            (ok.status, ok.header("Content-Type")),
            (200, Some("application/json"))
        );
        let failed = reply_for(
            &report(Outcome::FunctionError {
                body: b"{}".to_vec(),
            }),
            timeout,
        );
        assert_eq!(
            (failed.status, failed.header("X-Amz-Function-Error")),
            (200, Some("Unhandled"))
        );
        let init = reply_for(
            &report(Outcome::InitError {
                body: b"{}".to_vec(),
            }),
            timeout,
        );
        assert_eq!(init.status, 502);
        let exited = reply_for(
            &report(Outcome::Exited {
                reason: "Runtime exited without providing a reason".into(),
                code: Some(0),
            }),
            timeout,
        );
        let body: serde_json::Value = serde_json::from_slice(&exited.body).unwrap();
        assert_eq!(body["errorType"], "Runtime.ExitError");
        assert_eq!(
            body["errorMessage"],
            "RequestId: id Error: Runtime exited without providing a reason"
        );
        let timed_out = reply_for(&report(Outcome::TimedOut), timeout);
        assert_eq!(timed_out.body, b"Task timed out after 3.00 seconds");
        assert_eq!(reply_for(&report(Outcome::NotTaken), timeout).status, 504);
    }

    #[test]
    fn client_context_and_trace_id_come_from_headers() {
        let mut request = IncomingRequest {
            method: "POST".into(),
            path: INVOCATIONS_PATH.into(),
            headers: vec![
                ("X-Amz-Client-Context".into(), "eyJhIjoxfQ==".into()),
                ("X-Amzn-Trace-Id".into(), "Root=1-0-0".into()),
            ],
            body: b"{}".to_vec(),
            body_length: 2,
            ..IncomingRequest::default()
        };
        let event = event_of(&request).unwrap();
        assert_eq!(event.client_context.as_deref(), Some("{\"a\":1}"));
        assert_eq!(event.trace_id.as_deref(), Some("Root=1-0-0"));
        request.headers[0].1 = "not base64!".into();
        assert_eq!(event_of(&request).unwrap_err().status, 400);
        request.headers.clear();
        request.body = Vec::new();
        assert_eq!(event_of(&request).unwrap().payload, b"{}");
        request.body_length = MAX_REQUEST_BYTES as u64 - 1;
        assert!(event_of(&request).is_ok());
        request.body_length = MAX_REQUEST_BYTES as u64;
        let refused = event_of(&request).unwrap_err();
        assert_eq!(refused.status, 413);
        assert!(String::from_utf8_lossy(&refused.body).contains(&format!(
            "Request must be smaller than {MAX_REQUEST_BYTES} bytes"
        )));
    }
}
