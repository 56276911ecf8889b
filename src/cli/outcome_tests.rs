//! The tests of [`super`]: how every command ends (stdout, stderr, exit status), the `--json`
//! rule, and the redaction of credentials from clap's errors.

use super::*;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Serialize)]
struct Report {
    zeta: u8,
    alpha: &'static str,
}

fn parsed(stdout: &[u8]) -> Value {
    let stdout = std::str::from_utf8(stdout).unwrap();
    assert!(stdout.ends_with('\n'), "{stdout:?}");
    assert_eq!(stdout.matches('\n').count(), 1, "one line: {stdout:?}");
    serde_json::from_str(stdout).unwrap()
}

#[test]
fn success_prints_the_report_and_exits_0() {
    let finished = || {
        Finished::report(
            &Report {
                zeta: 1,
                alpha: "a",
            },
            b"text\n".to_vec(),
            None,
        )
    };
    let text = finish(Ok(finished()), false);
    assert_eq!(
        text,
        Exit {
            stdout: b"text\n".to_vec(),
            stderr: None,
            code: 0
        }
    );
    let json = finish(Ok(finished()), true);
    // The report's own member order is kept.
    assert_eq!(json.stdout, b"{\"zeta\":1,\"alpha\":\"a\"}\n");
    assert_eq!((json.stderr, json.code), (None, 0));
}

#[test]
fn a_failed_report_gets_the_error_member_and_the_failures_code() {
    let finished = || {
        Finished::report(
            &Report {
                zeta: 1,
                alpha: "a",
            },
            b"findings\n".to_vec(),
            Some(Error::new(
                ErrorKind::ImageRejected,
                "Lambda would reject it",
            )),
        )
    };
    let json = finish(Ok(finished()), true);
    assert_eq!(json.code, 7);
    assert_eq!(
        parsed(&json.stdout),
        json!({"zeta": 1, "alpha": "a", "error": {
            "kind": "image_rejected", "message": "Lambda would reject it",
            "hint": null, "exit_code": 7}})
    );
    assert_eq!(
        json.stderr.as_deref(),
        Some("lambda-image: error: Lambda would reject it")
    );
    let text = finish(Ok(finished()), false);
    assert_eq!((&text.stdout[..], text.code), (&b"findings\n"[..], 7));
    assert!(text.stderr.is_some());
}

#[test]
fn an_error_is_only_the_error_object_on_stdout_with_json_and_nothing_without() {
    for kind in ErrorKind::ALL {
        let error = || Error::new(kind, "went wrong").hint("do this");
        let json = finish(Err(error()), true);
        assert_eq!(json.code, kind.exit_code());
        assert_eq!(
            parsed(&json.stdout),
            json!({"error": {"kind": kind.name(), "message": "went wrong",
                             "hint": "do this", "exit_code": kind.exit_code()}})
        );
        assert_eq!(
            json.stderr.as_deref(),
            Some("lambda-image: error: went wrong\n  hint: do this")
        );
        let text = finish(Err(error()), false);
        assert_eq!((text.stdout.len(), text.code), (0, kind.exit_code()));
        assert_eq!(text.stderr, json.stderr);
    }
}

#[test]
fn an_interruption_is_an_error_with_128_plus_the_signal() {
    let terminated = interruption(15, true, true);
    let exit = finish(Err(terminated), true);
    assert_eq!(exit.code, 143);
    let object = parsed(&exit.stdout);
    assert_eq!(object["error"]["kind"], "interrupted");
    assert_eq!(object["error"]["exit_code"], 143);
    assert_eq!(
        object["error"]["message"],
        "interrupted by SIGTERM; the bootstrap was killed"
    );
    assert!(
        object["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("half-written")
    );
    let interrupted = interruption(2, false, false);
    assert_eq!(interrupted.kind().exit_code(), 130);
    assert_eq!(interrupted.message(), "interrupted by SIGINT");
}

#[test]
fn a_stdout_write_error_is_a_failure_but_a_broken_pipe_is_not() {
    use std::io::{Error as IoError, ErrorKind as IoKind};
    assert_eq!(after_writing_stdout(Ok(()), 0), 0);
    assert_eq!(
        after_writing_stdout(Err(IoError::from(IoKind::BrokenPipe)), 0),
        0
    );
    assert_eq!(
        after_writing_stdout(Err(IoError::from_raw_os_error(28)), 0),
        1
    );
    // A failure keeps its own code.
    assert_eq!(
        after_writing_stdout(Err(IoError::from_raw_os_error(9)), 6),
        6
    );
}

#[test]
fn a_command_without_a_json_report_prints_its_text() {
    let exit = finish(Ok(Finished::nothing()), true);
    assert_eq!((exit.stdout.len(), exit.code), (0, 0));
}

#[test]
fn json_is_requested_only_before_a_lone_double_dash() {
    let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
    assert!(json_requested(args(&["check", "--json", "x"])));
    assert!(!json_requested(args(&["check", "x"])));
    assert!(!json_requested(args(&["check", "--", "--json"])));
    assert!(!json_requested(args(&["check", "--jsonx"])));
}

#[test]
fn json_with_a_value_asks_for_json_too() {
    let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
    for given in ["--json=yes", "--json=true", "--json=", "--json=false"] {
        assert!(json_requested(args(&["build", given])), "{given}");
        assert!(!json_requested(args(&["build", "--", given])), "{given}");
    }
    // clap refuses the value: the usage error object is what stdout gets.
    let error = crate::cli::Cli::try_parse_from(["lambda-image", "zip", "--json=yes"]).unwrap_err();
    assert_eq!(clap_error(&error).kind(), ErrorKind::Usage);
}

#[test]
fn clap_never_quotes_the_password_of_a_reference() {
    // (command line, what clap shows instead of the value)
    let cases: &[(&[&str], &str)] = &[
        (
            &["build", "--tag", "alice:s3cret@host.io/x:y"],
            "alice:***@host.io/x:y",
        ),
        (
            &["check", "https://alice:s3cret@host.io/x:y"],
            "alice:***@host.io/x:y",
        ),
        (
            &["check", "a", "alice:s3cret@host.io/x:y"],
            "alice:***@host.io/x:y",
        ),
        // Credentials without a repository path.
        (&["check", "alice:s3cret@127.0.0.1"], "alice:***@127.0.0.1"),
        (
            &[
                "build",
                "--bootstrap",
                "b",
                "--tag",
                "alice:s3cret@127.0.0.1:5302",
            ],
            "alice:***@127.0.0.1:5302",
        ),
        (&["check", "alice:s3cret@"], "alice:***@"),
        // A docker-archive's NAME:TAG.
        (
            &["check", "docker-archive:f.tar:alice:s3cret@h/x:v1"],
            "docker-archive:***@h/x:v1",
        ),
        // --insecure-registry.
        (
            &[
                "check",
                "--insecure-registry",
                "https://alice:s3cret@h",
                "x",
            ],
            "https://alice:***@h",
        ),
        // A stray USER:PASS, an unrecognized subcommand, and the tip quoting them.
        (
            &["check", "127.0.0.1:5302/fn:v1", "alice:s3cret"],
            "'alice:***'",
        ),
        (&["alice:s3cret@localhost"], "'alice:***@localhost'"),
        (&["check", "a", "s3cret@h"], "'***@h'"),
        (&["check", "--alice:s3cret"], "use '-- --alice:***'"),
    ];
    for (args, shown) in cases {
        let args = std::iter::once("lambda-image").chain(args.iter().copied());
        let error = without_credentials(crate::cli::Cli::try_parse_from(args).unwrap_err());
        let rendered = error.render().to_string();
        assert!(!rendered.contains("s3cret"), "{rendered}");
        assert!(rendered.contains(shown), "{shown}: {rendered}");
        let json = clap_error(&error).to_json();
        assert!(!json.contains("s3cret"), "{json}");
        assert!(json.contains("***"), "{json}");
    }
    // A digest's `@` is no credential: the reference is quoted as typed.
    let error = without_credentials(
        crate::cli::Cli::try_parse_from(["lambda-image", "check", "host.io/fn@sha256:zz"])
            .unwrap_err(),
    );
    assert!(
        error
            .render()
            .to_string()
            .contains("'host.io/fn@sha256:zz'")
    );
}

#[test]
fn clap_errors_become_usage_errors_with_the_tip_as_hint() {
    let error = crate::cli::Cli::try_parse_from(["lambda-image", "check", "--jsno"]).unwrap_err();
    let converted = clap_error(&error);
    assert_eq!(converted.kind(), ErrorKind::Usage);
    assert_eq!(converted.message(), "unexpected argument '--jsno' found");
    assert!(
        converted.hint_text().unwrap().contains("--json"),
        "{converted}"
    );
    assert!(!converted.message().contains("Usage:"), "{converted}");
}
