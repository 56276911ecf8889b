//! Bodies broken off mid-way or changed in transit, for the proxy's
//! [`super::proxy::ProxyBehaviour::BreakBody`]: what a flaky network, a crashed load balancer or
//! a stuck storage backend does to a blob transfer.
//!
//! Upload faults act on the request body as it arrives (through the body gate of
//! [`super::http::HttpServer::start_with_gate`], before anything is forwarded); download faults
//! act on the upstream's answer, forwarded whole otherwise. "Half" is half the body's bytes.

use super::http::{Cutoff, Reply, Request, Response};

/// One fault of a blob transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// An upload: half its body is read, then the connection is reset.
    ResetUpload,
    /// An upload: half its body is read, then nothing more is read and nothing is answered;
    /// the connection is held open.
    StallUpload,
    /// An upload: forwarded with its middle byte inverted, so it no longer matches its digest.
    CorruptUpload,
    /// A download: the head and half the body are sent, then the connection is reset.
    ResetDownload,
    /// A download: the head and half the body are sent, then nothing; the connection is held.
    StallDownload,
    /// A download: the head and half the body are sent, then the connection is closed in
    /// order, so the body is shorter than its `Content-Length`.
    TruncateDownload,
}

impl BodyFault {
    /// Whether the fault acts on the request body (else on the answer).
    pub fn is_upload(self) -> bool {
        matches!(
            self,
            BodyFault::ResetUpload | BodyFault::StallUpload | BodyFault::CorruptUpload
        )
    }

    /// How the body gate breaks an upload off, for the upload faults that do.
    pub fn upload_cutoff(self) -> Option<Cutoff> {
        match self {
            BodyFault::ResetUpload => Some(Cutoff::Reset),
            BodyFault::StallUpload => Some(Cutoff::Hold),
            _ => None,
        }
    }

    /// The reply that breaks `response` off half-way (download faults only).
    pub fn break_answer(self, response: Response) -> Reply {
        let then = match self {
            BodyFault::ResetDownload => Cutoff::Reset,
            BodyFault::StallDownload => Cutoff::Hold,
            BodyFault::TruncateDownload => Cutoff::Close,
            upload => panic!("{upload:?} is not a download fault"),
        };
        Reply::Partial {
            sent: response.body.len() / 2,
            response,
            then,
        }
    }
}

/// `body` with its middle byte inverted.
fn corrupted(mut body: Vec<u8>) -> Vec<u8> {
    if !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0xff;
    }
    body
}

/// The proxy's reply to a request that a `BreakBody` fault matches (the upload faults that break
/// a body off act earlier, in the body gate). `forward` sends a request upstream; `inject` says
/// whether this one is to be hit (and counts it).
pub fn answer(
    fault: BodyFault,
    request: &Request,
    min_body: usize,
    inject: impl FnOnce() -> bool,
    forward: impl Fn(&Request) -> Response,
) -> Reply {
    if fault == BodyFault::CorruptUpload {
        if request.body.len() >= min_body && inject() {
            let mut changed = request.clone();
            changed.body = corrupted(changed.body);
            return Reply::Send(forward(&changed));
        }
        return Reply::Send(forward(request));
    }
    let response = forward(request);
    let whole_or_partial = matches!(response.status, 200 | 206);
    if !fault.is_upload() && whole_or_partial && response.body.len() >= min_body && inject() {
        fault.break_answer(response)
    } else {
        Reply::Send(response)
    }
}
