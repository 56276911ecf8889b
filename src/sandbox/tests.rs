//! Unit tests of the sandbox's parent side: the spec's wire form and the helper's command.
//! Running the helper needs the built binary: see `tests/it/sandbox/`.

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

#[cfg(target_os = "linux")]
#[test]
fn a_name_without_a_slash_is_looked_up_on_the_environments_path() {
    use std::path::Path;

    let environment = [("PATH".to_owned(), "/usr/local/bin::/bin".to_owned())];
    assert_eq!(
        helper::candidates("bootstrap", &environment),
        [
            Path::new("/usr/local/bin/bootstrap"),
            Path::new("./bootstrap"),
            Path::new("/bin/bootstrap")
        ]
    );
    assert_eq!(
        helper::candidates("./bootstrap", &environment),
        [Path::new("./bootstrap")]
    );
    assert_eq!(
        helper::candidates("sh", &[]).last().map(PathBuf::as_path),
        Some(Path::new("/bin/sh"))
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_failed_trial_run_says_what_to_do_for_each_isolation() {
    let said = "cannot set up the sandbox: create the namespaces: …";
    let unprivileged = helper::probe_error(Isolation::UserNamespace, said);
    assert!(unprivileged.message().ends_with(said));
    assert!(
        unprivileged
            .hint_text()
            .is_some_and(|hint| hint.contains("as root") && hint.contains("max_user_namespaces"))
    );
    let root = helper::probe_error(Isolation::Root, said);
    assert!(
        root.hint_text()
            .is_some_and(|hint| hint.contains("CAP_SYS_ADMIN"))
    );
}
