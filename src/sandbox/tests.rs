//! Unit tests of the sandbox's parent side: the spec's wire form and the helper's command.
//! Running the helper needs the built binary: see `tests/it/sandbox.rs`.

use super::*;

#[test]
fn the_spec_goes_on_stdin_and_never_on_argv_or_in_the_environment() {
    let spec = SandboxSpec {
        root: PathBuf::from("/var/cache/tree"),
        args: vec!["/lambda-entrypoint.sh".into(), "bootstrap".into()],
        env: vec![("AWS_SECRET_ACCESS_KEY".into(), "very-secret".into())],
        working_dir: "/var/task".into(),
        tmp_size_mb: 512,
        hostname: "169.254.1.1".into(),
    };
    let (command, input) = launch(&spec).unwrap();
    let arguments: Vec<_> = command.get_args().collect();
    assert_eq!(arguments, [HELPER_ARGUMENT]);
    assert_eq!(command.get_program(), "/proc/self/exe");
    let text = String::from_utf8(input).unwrap();
    assert!(text.contains("very-secret"));
    let request: HelperRequest = serde_json::from_str(&text).unwrap();
    assert_eq!(request.spec, spec);
    assert!(!request.probe);
}
