//! Pushing a build's new layer while it is being compressed: `POST /blobs/uploads/`, then one
//! `PATCH` whose body is the gzip stream as it is written (chunked: its length is not known
//! yet), then `PUT <location>?digest=` with no body once the digest is known (OCI distribution
//! spec, "Pushing a blob in chunks", with a single chunk). So the upload ends shortly after the
//! compression instead of starting after it.
//!
//! A refused `POST` is the push's error, as it would be for any blob. Only one `PATCH`, so none of ECR's quirks with uploads in several chunks apply (its `Range`
//! answer stays at the first chunk: aws/containers-roadmap#2831). ECR answers the `PATCH` with
//! `201 Created` rather than the spec's `202 Accepted` (dotnet/sdk-container-builds#279,
//! openai/tart#273): both are taken as accepted. Anything that
//! goes wrong while streaming (a refused `PATCH`, a failed connection, a stall, a registry
//! asking for credentials again) is not an error: the layer is then pushed as any other blob,
//! from its finished file ([`super::push`]: `HEAD`, then `POST` and one `PUT` with retries),
//! which reports what still fails. A registry that refuses a streamed `PATCH` (a 4xx answer other
//! than 401, 403, 408 and 429) is remembered for the rest of the run and not asked again.
//!
//! A layer that came from the layer cache is not streamed: it goes the way of any blob, so a
//! registry that already has it only answers a `HEAD`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};

use super::http::client::SMALL_REQUEST_TIMEOUT;
use super::http::location::{downgrades_to_plain_http, resolve_location};
use super::progress::{BlobProgress, Progress};
use super::push::{
    Blob, Destination, Source, UploadAttempt, UploadStart, push_blob, send_body_once, start_upload,
};
use super::transfer::{Activity, blob_idle_timeout, run_watched};
use crate::error::Result;
use crate::layer::growing::GrowingFile;
use crate::layer::pending::PendingLayer;

/// Pushes one new layer of this build to `destination`: streamed while it is compressed when it
/// is being compressed and the registry has not refused a streamed upload in this run, else
/// (and after any failed stream) from its finished file. A layer that could not be made is left
/// alone (`Ok`): the build reports why it failed. Errors: the push from the file failed.
pub fn push_new_layer(
    destination: &Destination,
    layer: &PendingLayer,
    progress: &Progress,
) -> Result<()> {
    let host = destination.registry.host().to_owned();
    if !refuses_streams(&host)
        && let Some(growing) = layer.wait_stream()
    {
        let place = destination.name();
        let tracker = progress.stream(&format!("{} layer", layer.architecture.oci_name()), &place);
        match stream_layer(destination, &growing, tracker) {
            Streamed::Pushed => return Ok(()),
            Streamed::Refused => remember_refusal(&host),
            Streamed::Failed => {}
            Streamed::Error(error) => return Err(error),
        }
    }
    let Some(finished) = layer.wait_finished() else {
        return Ok(());
    };
    push_blob(
        destination,
        &Blob::File {
            digest: finished.digests.digest.clone(),
            size: finished.digests.size,
            path: &finished.file,
        },
        &Source::NONE,
        progress,
    )
}

/// How a streamed upload went.
enum Streamed {
    Pushed,
    /// The registry does not take a streamed `PATCH`: do not try again in this run.
    Refused,
    /// Anything else (including a layer that failed): push from the file, if there is one.
    Failed,
    /// The registry refused the upload itself (the `POST`, after its retries: a repository that
    /// does not exist, a credential not allowed to push): what the push from the file would
    /// meet too.
    Error(crate::error::Error),
}

fn stream_layer(
    destination: &Destination,
    growing: &GrowingFile,
    mut tracker: BlobProgress,
) -> Streamed {
    let registry = &destination.registry;
    let repository = &destination.repository;
    let location = match start_upload(destination, None, None) {
        Ok(UploadStart::Session(location)) => location,
        Ok(UploadStart::Mounted) => return Streamed::Failed,
        Err(error) => return Streamed::Error(error),
    };
    let operation = format!("stream a new layer to {repository}");
    let activity = Activity::new();
    let body = activity.watch_source(tracker.track(growing.follow()));
    let patched = run_watched(&activity, blob_idle_timeout(), {
        let registry = Arc::clone(registry);
        let operation = operation.clone();
        let location = location.clone();
        // Chunked: the length is not known yet.
        move || {
            send_body_once(
                &registry,
                &operation,
                &|http| {
                    http.patch(location.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                },
                body,
                None,
            )
        }
    });
    let response = match patched {
        Some(UploadAttempt::Answered(response)) => response,
        // A failed or stalled connection, or a registry that asked for credentials again
        // once the body was gone.
        Some(UploadAttempt::Failed(_) | UploadAttempt::BodySpent) | None => {
            return Streamed::Failed;
        }
    };
    match response.status() {
        // 202 is the spec's answer; ECR answers 201.
        StatusCode::ACCEPTED | StatusCode::CREATED => {}
        status if refuses_streaming(status) => return Streamed::Refused,
        _ => return Streamed::Failed,
    }
    let Some(digests) = growing.wait_end() else {
        return Streamed::Failed;
    };
    let Some(mut url) = next_location(&response) else {
        return Streamed::Failed;
    };
    url.query_pairs_mut()
        .append_pair("digest", &digests.digest.to_string());
    let operation = format!("finish upload of blob {} to {repository}", digests.digest);
    let finished = registry.send(&operation, &|http| {
        http.put(url.clone())
            .header(CONTENT_LENGTH, 0)
            .timeout(SMALL_REQUEST_TIMEOUT)
    });
    match finished {
        Ok(response) if response.status() == StatusCode::CREATED => {
            tracker.identify(&digests.digest, digests.size);
            tracker.finish("pushed");
            Streamed::Pushed
        }
        _ => Streamed::Failed,
    }
}

/// Where to send the `PUT` after the `PATCH`: its answer's `Location`, resolved against the URL
/// that answered; never a downgrade from HTTPS to plain HTTP.
fn next_location(response: &reqwest::blocking::Response) -> Option<reqwest::Url> {
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let url = resolve_location(response.url(), location).ok()?;
    (!downgrades_to_plain_http(response.url(), &url)).then_some(url)
}

/// A 4xx answer to the `PATCH` that says the registry does not take this kind of upload, as
/// opposed to credentials (401, 403), a timeout (408) or too many requests (429).
fn refuses_streaming(status: StatusCode) -> bool {
    status.is_client_error()
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::TOO_MANY_REQUESTS
        )
}

/// The hosts that refused a streamed upload in this run.
fn refusals() -> &'static Mutex<BTreeSet<String>> {
    static REFUSED: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    REFUSED.get_or_init(Mutex::default)
}

fn refuses_streams(host: &str) -> bool {
    refusals().lock().expect("refusals").contains(host)
}

fn remember_refusal(host: &str) {
    refusals().lock().expect("refusals").insert(host.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_about_the_upload_itself_count_as_refusing_streams() {
        for refusing in [400, 404, 405, 411, 413, 415, 416] {
            assert!(
                refuses_streaming(StatusCode::from_u16(refusing).unwrap()),
                "{refusing}"
            );
        }
        for other in [202, 301, 401, 403, 408, 429, 500, 502, 503] {
            assert!(
                !refuses_streaming(StatusCode::from_u16(other).unwrap()),
                "{other}"
            );
        }
    }

    #[test]
    fn a_refusal_is_remembered_per_host() {
        assert!(!refuses_streams("refusing.example:5000"));
        remember_refusal("refusing.example:5000");
        assert!(refuses_streams("refusing.example:5000"));
        assert!(!refuses_streams("other.example:5000"));
    }
}
