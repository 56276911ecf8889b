//! `serve --image` keeps its sandbox warm as `serve --bootstrap` keeps a bootstrap: after a
//! timeout or a crash one cold start, then warm again; nothing is left when serve is killed, and
//! no zombie is left by a restart, even where nothing else would reap it.

use super::*;

/// A runtime in busybox sh that answers `{"count": N}`, N counting the events this process
/// answered (in its own `/tmp`, which a new sandbox starts empty): an event holding `"sleep"`
/// first sleeps 5 s, one holding `"crash"` makes it exit 3. With `MARKER` set, it starts
/// `busybox sleep $MARKER` in the background first, for finding what it left behind.
const COUNTING_RUNTIME: &str = r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
if [ -n "$MARKER" ]; then busybox sleep "$MARKER" & fi
while true; do
  busybox wget -q -S -O /tmp/event "$api/invocation/next" 2>/tmp/headers || exit 1
  id=$(busybox grep -i 'Lambda-Runtime-Aws-Request-Id' /tmp/headers | busybox cut -d: -f2 | busybox tr -d ' \r')
  if busybox grep -q sleep /tmp/event; then busybox sleep 5; fi
  if busybox grep -q crash /tmp/event; then exit 3; fi
  echo answered >> /tmp/answered
  count=$(busybox wc -l < /tmp/answered)
  busybox wget -q -O /dev/null --post-data "{\"count\":$count}" "$api/invocation/$id/response" || exit 1
done
"#;

/// `serve --image` of the counting runtime with `--timeout 1` and `extra` flags.
fn serve_counting(work: &Path, extra: &[&str]) -> Serve {
    serve_counting_under(&[], work, extra)
}

/// [`serve_counting`] run by `wrapper` ([`Serve::start_under`]).
fn serve_counting_under(wrapper: &[&str], work: &Path, extra: &[&str]) -> Serve {
    let script = work.join("counting.sh");
    std::fs::write(&script, COUNTING_RUNTIME).unwrap();
    let image = build_image(
        work,
        "counting",
        &[format!("{}={}", host_architecture(), script.display())],
        &[],
    );
    let cache = cache_dir(work);
    let mut args = vec![
        "--image",
        &image,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--timeout",
        "1",
    ];
    args.extend_from_slice(extra);
    Serve::start_under(wrapper, &args)
}

/// The `count` the counting runtime answered to `event`.
fn count_of(serve: &Serve, event: &str) -> Value {
    let answer = curl_post(&serve.invocations_url(), event);
    assert_eq!(answer.status, 200, "{event}: {}", serve.stderr());
    answer.json()["count"].clone()
}

/// An event that outlasts `--timeout 1` times out, and the next starts a new sandbox.
fn times_out_then_starts_cold(serve: &Serve) {
    let timed_out = curl_post(&serve.invocations_url(), r#""sleep""#);
    assert!(
        timed_out.body.contains("Task timed out"),
        "{}",
        timed_out.body
    );
    assert_eq!(count_of(serve, r#""cold""#), 1, "{}", serve.stderr());
}

#[test]
fn after_a_timeout_or_a_crash_the_restarted_sandbox_stays_warm() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let work = workdir();
    let serve = serve_counting(work.path(), &[]);
    assert_eq!(count_of(&serve, r#""first""#), 1, "{}", serve.stderr());
    assert_eq!(count_of(&serve, r#""warm""#), 2, "{}", serve.stderr());

    // A restart happens while a request is served, on that request's thread, which ends after
    // it: the sandbox started then must outlive it (it died with it: every later request was
    // a cold start, after "exited while idle (signal: killed)").
    times_out_then_starts_cold(&serve);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        count_of(&serve, r#""warm""#),
        2,
        "the sandbox started after the timeout stays warm: {}",
        serve.stderr()
    );
    assert_eq!(count_of(&serve, r#""warm""#), 3, "{}", serve.stderr());

    let crashed = curl_post(&serve.invocations_url(), r#""crash""#);
    assert_eq!(crashed.status, 502, "{}", crashed.body);
    assert_eq!(count_of(&serve, r#""cold""#), 1, "{}", serve.stderr());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        count_of(&serve, r#""warm""#),
        2,
        "the sandbox started after the crash stays warm: {}",
        serve.stderr()
    );
    let stderr = serve.stderr();
    assert!(!stderr.contains("exited while idle"), "{stderr}");
    assert!(serve.stop().success());
}

#[test]
fn a_killed_serve_image_leaves_no_sandbox_process_behind() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    let marker = "987655";
    let work = workdir();
    let serve = serve_counting(work.path(), &["--env", &format!("MARKER={marker}")]);
    // The first sandbox, from serve's start; a timeout; the second, from a request.
    assert_eq!(count_of(&serve, r#""first""#), 1, "{}", serve.stderr());
    times_out_then_starts_cold(&serve);
    let left = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let command = std::fs::read(entry.path().join("cmdline")).ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // `busybox sleep MARKER` (serve's own command line holds MARKER too).
                let sleeping = format!("busybox\0sleep\0{marker}\0");
                (command == sleeping.as_bytes() && !stat.contains(") Z "))
                    .then(|| entry.file_name())
            })
            .count()
    };
    assert_eq!(left(), 1, "the sandbox's background process runs");
    serve.kill();
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        left() == 0
    });
    assert!(gone, "the sandbox outlived a SIGKILL of lambda-image");
}

/// A container's entrypoint is its PID 1, to which every orphan is reparented and which must reap
/// it; a program that does not piles up zombies (PikoCI/pikoci#681). Each sandbox killed by a
/// timeout leaves its PID 1, whose parent died with it, to whoever reaps orphans: serve, run here
/// as the PID 1 of a PID namespace of its own (`unshare --pid --fork`) as in such a container,
/// must reap them itself.
#[test]
fn serve_image_as_a_containers_pid_1_reaps_the_sandboxes_it_kills() {
    if let Some(reason) = cannot_run_images() {
        eprintln!("skipped: {reason}");
        return;
    }
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: a PID namespace for serve needs root");
        return;
    }
    let work = workdir();
    let serve = serve_counting_under(
        &["unshare", "--pid", "--fork", "--kill-child"],
        work.path(),
        &[],
    );
    for _ in 0..2 {
        times_out_then_starts_cold(&serve);
    }
    // serve is the only child of unshare; its zombie children, if any, are the sandboxes'
    // PID 1s it did not reap.
    let children = |pid: u32| -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|child| child.parse().ok())
            .collect()
    };
    let lambda_image = children(serve.pid())[0];
    let zombies = || {
        children(lambda_image)
            .into_iter()
            .filter(|child| {
                std::fs::read_to_string(format!("/proc/{child}/stat"))
                    .is_ok_and(|stat| stat.contains(") Z "))
            })
            .count()
    };
    let reaped = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        zombies() == 0
    });
    assert!(
        reaped,
        "{} zombies under serve after two timeouts: {}",
        zombies(),
        serve.stderr()
    );
    // unshare does not pass SIGTERM on: serve gets it directly, and ends, and unshare with it.
    unsafe { libc::kill(lambda_image as i32, libc::SIGTERM) };
    assert!(serve.stop().success());
}
