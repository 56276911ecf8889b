//! `serve --external` hands each event to a runtime that is still there. A runtime started
//! elsewhere can be killed while its `GET invocation/next` waits (a container deleted with
//! `runc delete -f` while idle): that request must never take an event, which would be written
//! to a closed connection and lost while the next runtime waits until the invocation times out.
//!
//! The runtime here is a thread speaking the Runtime API over plain HTTP/1.1 on one kept-alive
//! connection, as runtime clients do; the killed one is a connection closed while it waits.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::local_lambda::{Serve, curl_post};

const NEXT: &[u8] = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: api\r\n\r\n";

/// Reads one HTTP/1.1 reply: its status line, its `Lambda-Runtime-Aws-Request-Id` (empty when
/// it has none) and its body (by `Content-Length`).
fn read_reply(reader: &mut impl BufRead) -> (String, String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "closed: {head}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let field = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = field("Content-Length").map_or(0, |length| length.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let status = head.lines().next().unwrap_or_default().to_owned();
    let id = field("Lambda-Runtime-Aws-Request-Id").unwrap_or_default();
    (status, id, body)
}

/// A runtime at `address` that takes `events` events and answers each `{"echo": EVENT}`.
fn runtime(address: SocketAddr, events: usize) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut connection = TcpStream::connect(address).unwrap();
        connection
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(connection.try_clone().unwrap());
        for _ in 0..events {
            connection.write_all(NEXT).unwrap();
            let (status, id, event) = read_reply(&mut reader);
            assert!(status.starts_with("HTTP/1.1 200 "), "{status}");
            let event: Value = serde_json::from_slice(&event).unwrap();
            let answer = json!({ "echo": event }).to_string();
            let post = format!(
                "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: api\r\n\
                 Content-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            connection.write_all(post.as_bytes()).unwrap();
            let (status, _, _) = read_reply(&mut reader);
            assert!(status.starts_with("HTTP/1.1 202 "), "{status}");
        }
    })
}

/// A runtime that asks for an event and is killed while it waits: its connection closes.
fn killed_while_waiting(address: SocketAddr) {
    let mut connection = TcpStream::connect(address).unwrap();
    connection.write_all(NEXT).unwrap();
    // Its request now waits in serve.
    std::thread::sleep(Duration::from_millis(300));
}

/// Invokes with `event` and checks that the runtime's echo came back well within the 5 s
/// timeout.
fn assert_answered_promptly(serve: &Serve, invocation: JoinHandle<(Duration, String)>, n: u32) {
    let (took, body) = invocation.join().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&body).ok(),
        Some(json!({"echo": {"n": n}})),
        "invocation {n} after {took:?}: {body}\n{}",
        serve.stderr()
    );
    assert!(took < Duration::from_secs(3), "invocation {n}: {took:?}");
}

fn invoke_in_background(serve: &Serve, n: u32) -> JoinHandle<(Duration, String)> {
    let url = serve.invocations_url();
    std::thread::spawn(move || {
        let started = Instant::now();
        let answer = curl_post(&url, &json!({ "n": n }).to_string());
        (started.elapsed(), answer.body)
    })
}

#[test]
fn serve_external_gives_no_event_to_a_runtime_killed_while_it_waited() {
    let serve = Serve::start(&["--external", "--timeout", "5"]);

    // Killed while waiting, and nothing else waits when the invocation comes: the event stays
    // queued for the runtime started next.
    killed_while_waiting(serve.address);
    let invocation = invoke_in_background(&serve, 1);
    std::thread::sleep(Duration::from_millis(500));
    let runtime = runtime(serve.address, 2);
    assert_answered_promptly(&serve, invocation, 1);

    // Killed while waiting beside a live runtime's request: the live one gets the event.
    std::thread::sleep(Duration::from_millis(300));
    killed_while_waiting(serve.address);
    let invocation = invoke_in_background(&serve, 2);
    assert_answered_promptly(&serve, invocation, 2);
    runtime.join().unwrap();
    assert!(serve.stop().success());
}
