//! The stream function: a real `lambda_runtime` function that answers in response-streaming mode
//! (a `lambda_runtime::streaming::Response`), for lambda-image's tests.
//!
//! The event `{"chunks": N, "fail": "message"}` makes it stream `chunk 1\n` … `chunk N\n`
//! (N defaults to 3), then, when `fail` is given, end the stream with that error, as a handler
//! whose stream fails half-way does: `lambda_runtime` reports such an error to the Runtime API
//! as `Lambda-Runtime-Function-Error-Type: Runtime.StreamError` and
//! `Lambda-Runtime-Function-Error-Body: <base64 of the message>` after the chunks.

use lambda_runtime::streaming::Response;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tokio_stream::Iter;

type Chunks = Iter<std::vec::IntoIter<Result<String, Error>>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(stream)).await
}

async fn stream(event: LambdaEvent<Value>) -> Result<Response<Chunks>, Error> {
    let count = event
        .payload
        .get("chunks")
        .and_then(Value::as_u64)
        .unwrap_or(3);
    let mut chunks: Vec<Result<String, Error>> = (1..=count)
        .map(|index| Ok(format!("chunk {index}\n")))
        .collect();
    if let Some(message) = event.payload.get("fail").and_then(Value::as_str) {
        chunks.push(Err(message.into()));
    }
    Ok(Response::from(tokio_stream::iter(chunks)))
}
