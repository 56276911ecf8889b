//! Unit tests of `bootstrap::shebang`: parsing `#!` lines as `binfmt_script` does, finding the
//! program they run, and the wording of what is wrong with them.

use super::env::{Word, split_string};
use super::*;

fn parse(text: &str) -> Result<Shebang, ShebangProblem> {
    Shebang::parse(text.as_bytes())
}

#[test]
fn reads_the_interpreter_and_one_argument_as_linux_does() {
    let plain = parse("#!/bin/sh\necho hi\n").unwrap();
    assert_eq!(plain.interpreter, "/bin/sh");
    assert_eq!(plain.argument, None);
    let spaced = parse("#! \t/bin/bash  -e -u \t\nset -x\n").unwrap();
    assert_eq!(spaced.interpreter, "/bin/bash");
    assert_eq!(spaced.argument.as_deref(), Some("-e -u"));
    assert_eq!(spaced.line(), "#!/bin/bash -e -u");
    assert_eq!(parse("#!/bin/sh").unwrap().interpreter, "/bin/sh");
}

#[test]
fn a_carriage_return_anywhere_on_the_line_is_named() {
    for text in [
        "#!/bin/sh\r\nexit 0\r\n",
        "#!/usr/bin/env bash\r\n",
        "#!/bin/sh -e\r\n",
    ] {
        let problem = parse(text).unwrap_err();
        let ShebangProblem::CarriageReturn { line, .. } = &problem else {
            panic!("{text:?}: {problem:?}");
        };
        assert!(!line.contains('\r'), "{line:?}");
        assert!(problem.to_string().contains("carriage return"));
        assert!(problem.hint().contains("dos2unix"));
    }
}

#[test]
fn empty_and_overlong_lines_are_problems() {
    assert_eq!(parse("#!\n").unwrap_err(), ShebangProblem::NoInterpreter);
    assert_eq!(
        parse("#!   \t\n").unwrap_err(),
        ShebangProblem::NoInterpreter
    );
    let long = format!("#!/{}", "a".repeat(LINE_LIMIT));
    assert_eq!(parse(&long).unwrap_err(), ShebangProblem::TooLong);
    // Past the limit with no newline but a short interpreter: the argument is cut, as Linux
    // cuts it (the 256th byte becomes the terminating NUL), and the script still runs.
    let long_argument = format!("#!/bin/sh -{}", "x".repeat(LINE_LIMIT));
    let cut = parse(&long_argument).unwrap();
    assert_eq!(cut.interpreter, "/bin/sh");
    assert_eq!(
        cut.argument.unwrap().len(),
        LINE_LIMIT - 3 - "/bin/sh ".len()
    );
    // A short file without a newline is a whole line.
    assert_eq!(
        parse("#!/bin/sh -e").unwrap().argument.as_deref(),
        Some("-e")
    );
}

#[test]
fn an_interpreter_reaching_the_end_of_the_bytes_read_is_truncated_unless_the_file_ends() {
    // `#!/aaa...` with no blank and no newline: whole when the file ends within the 255
    // bytes the kernel keeps (the rest of its buffer is NUL padding), truncated at 256.
    let interpreter = |total: usize| format!("#!/{}", "a".repeat(total - 3));
    let whole = parse(&interpreter(LINE_LIMIT - 1)).unwrap();
    assert_eq!(whole.interpreter.len(), LINE_LIMIT - 3);
    assert_eq!(whole.argument, None);
    assert_eq!(
        parse(&interpreter(LINE_LIMIT)).unwrap_err(),
        ShebangProblem::TooLong
    );
    assert_eq!(
        parse(&interpreter(LINE_LIMIT + 40)).unwrap_err(),
        ShebangProblem::TooLong
    );
    // A newline just past the bytes read is not seen: the argument is cut.
    let newline_past = format!(
        "#!/bin/sh -{}\n",
        "x".repeat(LINE_LIMIT - 2 - "/bin/sh -".len())
    );
    assert_eq!(
        parse(&newline_past).unwrap().argument.unwrap().len(),
        LINE_LIMIT - 3 - "/bin/sh ".len()
    );
    // A blank as the last byte read still ends the interpreter.
    let blank_last = format!("{} x", interpreter(LINE_LIMIT - 1));
    let parsed = parse(&blank_last).unwrap();
    assert_eq!(parsed.interpreter.len(), LINE_LIMIT - 3);
    assert_eq!(parsed.argument, None);
    // A newline as the last byte read ends the line there.
    let newline_last = format!("{}\nrest", interpreter(LINE_LIMIT - 1));
    assert_eq!(
        parse(&newline_last).unwrap().interpreter.len(),
        LINE_LIMIT - 3
    );
    // Half the limit is nothing special.
    let half = interpreter(LINE_LIMIT / 2 + 10);
    assert_eq!(parse(&half).unwrap().interpreter.len(), LINE_LIMIT / 2 + 8);
}

#[test]
fn env_lines_name_the_program_looked_up_on_path() {
    let program = |text: &str| parse(text).unwrap().program().clone_name();
    assert_eq!(program("#!/usr/bin/env python3\n"), "PATH:python3");
    assert_eq!(program("#!/usr/bin/env -S python3 -u\n"), "PATH:python3");
    assert_eq!(program("#!/usr/bin/env -Spython3 -u\n"), "PATH:python3");
    assert_eq!(program("#!/bin/env node\n"), "PATH:node");
    // Without -S the kernel passes "python3 -u" as one word.
    assert_eq!(program("#!/usr/bin/env python3 -u\n"), "UNUSABLE");
    assert_eq!(program("#!/usr/bin/env -i python3\n"), "UNUSABLE");
    assert_eq!(program("#!/usr/bin/env A=1 python3\n"), "UNUSABLE");
    assert_eq!(program("#!/usr/bin/env\n"), "UNUSABLE");
    assert_eq!(program("#!/bin/sh -e\n"), "/bin/sh");
    assert_eq!(program("#!/usr/bin/envy x\n"), "/usr/bin/envy");
}

impl Program<'_> {
    fn clone_name(&self) -> String {
        match self {
            Program::Path(path) => (*path).to_owned(),
            Program::OnPath { name, .. } => format!("PATH:{name}"),
            Program::Unknown { .. } => "UNKNOWN".to_owned(),
            Program::Unusable { .. } => "UNUSABLE".to_owned(),
        }
    }
}

fn outcome(line: &str) -> String {
    parse(&format!("{line}\necho hi\n"))
        .unwrap()
        .program()
        .clone_name()
}

fn reason(line: &str) -> String {
    match parse(line).unwrap().program() {
        Program::Unusable { reason, hint } => format!("{reason} | {hint}"),
        Program::Unknown { reason, .. } => reason,
        other => panic!("{line}: {other:?}"),
    }
}

// Outcomes as GNU env 9.1 gives them for these lines (run as scripts on Debian), and as
// src/env.c's getopt string `+a:C:iS:u:v0` and `build_argv` read them.
#[test]
fn env_options_after_dash_s_are_read_and_the_command_is_the_first_other_word() {
    for line in [
        "#!/usr/bin/env -S -i bash",
        "#!/usr/bin/env -S VAR=1 bash",
        "#!/usr/bin/env -vS bash",
        "#!/usr/bin/env -S -u HOME bash",
        "#!/usr/bin/env -S -uHOME bash",
        "#!/usr/bin/env -S -- bash",
        "#!/usr/bin/env -S -S bash",
        "#!/usr/bin/env -S - bash",
        "#!/usr/bin/env -S -C /tmp A=1 B='x y' bash -e",
        "#!/usr/bin/env -S \"bash\" -e # a comment",
        "#!/usr/bin/env -Sbash",
        "#!/usr/bin/env --split-string=bash -e",
        "#!/usr/bin/env -S --ignore-environment --unset=HOME bash",
        "#!/usr/bin/env -S -i -- VAR=1 bash",
    ] {
        assert_eq!(outcome(line), "PATH:bash", "{line}");
    }
    assert_eq!(outcome("#!/usr/bin/env -S '${X}' bash"), "PATH:${X}");
    assert_eq!(outcome("#!/usr/bin/env -S ${HOME}/x bash"), "UNKNOWN");
}

#[test]
fn an_env_command_from_the_environment_is_unknown_not_missing() {
    for line in [
        "#!/usr/bin/env -S ${X} bash",
        "#!/usr/bin/env -S ${X}",
        "#!/usr/bin/env -S -i ${RUNTIME} -e",
        "#!/usr/bin/env -S A=${X} ${Y}",
    ] {
        assert_eq!(outcome(line), "UNKNOWN", "{line}");
        assert!(reason(line).contains("${"), "{}", reason(line));
    }
    assert_eq!(
        outcome("#!/usr/bin/env -S --default-signal=PIPE bash"),
        "UNKNOWN"
    );
}

#[test]
fn env_lines_that_fail_at_every_start_say_how() {
    // env refuses the one argument the kernel passes (exit 125).
    for (line, says) in [
        ("#!/usr/bin/env -i sh", "invalid option -- ' '"),
        ("#!/usr/bin/env -- bash", "unrecognized option '-- bash'"),
        (
            "#!/usr/bin/env -0",
            "cannot specify --null (-0) with command",
        ),
        ("#!/usr/bin/env -S -0 bash", "cannot specify --null"),
        ("#!/usr/bin/env -x", "invalid option -- 'x'"),
        ("#!/usr/bin/env -S 'bash", "no terminating quote"),
        ("#!/usr/bin/env -S bash\\q", "invalid sequence"),
        ("#!/usr/bin/env -S $X", "only ${VARNAME}"),
        (
            "#!/usr/bin/env --split bash",
            "unrecognized option '--split bash'",
        ),
        ("#!/usr/bin/env -S -C /tmp", "endless exec loop"),
        ("#!/usr/bin/env -S -C", "must specify command with --chdir"),
    ] {
        assert_eq!(outcome(line), "UNUSABLE", "{line}");
        assert!(reason(line).contains(says), "{line}: {}", reason(line));
    }
    // env runs the script itself again: an endless exec loop.
    for line in [
        "#!/usr/bin/env",
        "#!/usr/bin/env VAR=1 bash",
        "#!/usr/bin/env -S",
        "#!/usr/bin/env -i",
        "#!/usr/bin/env -",
        "#!/usr/bin/env --",
        "#!/usr/bin/env -uHOME",
        "#!/usr/bin/env -S -i",
        "#!/usr/bin/env -S # bash",
    ] {
        assert_eq!(outcome(line), "UNUSABLE", "{line}");
        assert!(reason(line).contains("endless exec loop"), "{line}");
    }
    assert!(reason("#!/usr/bin/env VAR=1 bash").contains("one assignment"));
    assert!(reason("#!/usr/bin/env VAR=1 bash").contains("#!/usr/bin/env -S VAR=1 bash"));
    // `-u` takes the script's path as the name to unset: env prints the environment.
    assert!(reason("#!/usr/bin/env -u").contains("the script never runs"));
    // One word with blanks: env looks for a program named so.
    assert!(reason("#!/usr/bin/env python3 -u").contains("named `python3 -u`"));
    assert!(reason("#!/usr/bin/env python3 -u").contains("-S python3 -u"));
}

#[test]
fn an_interpreter_path_ending_in_a_slash_is_unusable() {
    assert_eq!(outcome("#!/bin/sh/"), "UNUSABLE");
    assert!(reason("#!/bin/sh/ -e").contains("Not a directory"));
    assert!(reason("#!/bin/sh/ -e").contains("#!/bin/sh -e"));
    assert_eq!(outcome("#!/usr/bin/env -S bash/"), "UNUSABLE");
}

#[test]
fn an_argument_that_looks_like_several_options_is_a_doubt() {
    let doubt = parse("#!/bin/sh -e -x\n").unwrap().doubt().unwrap();
    assert!(doubt.reason.contains("`-e -x`"), "{}", doubt.reason);
    assert!(doubt.hint.contains("#!/usr/bin/env -S /bin/sh -e -x"));
    assert!(doubt.hint.contains("set -ex"), "{}", doubt.hint);
    for fine in ["#!/bin/sh -e", "#!/bin/sh", "#!/usr/bin/env -S sh -e -x"] {
        assert_eq!(parse(fine).unwrap().doubt(), None, "{fine}");
    }
}

#[test]
fn a_carriage_return_is_named_where_it_is() {
    let message = |text: &str| parse(text).unwrap_err().to_string();
    assert!(message("#!/bin/sh\r\n").contains("a program named `/bin/sh\\r`"));
    let argument = message("#!/bin/sh -e\r\n");
    assert!(
        argument.contains("runs /bin/sh with the argument `-e\\r`"),
        "{argument}"
    );
    assert!(argument.contains("`#!/bin/sh -e`"), "{argument}");
    assert!(!argument.contains("program named"), "{argument}");
    assert!(message("#!/bin/sh \r\n").contains("with the argument `\\r`"));
    assert!(message("#!/usr/bin/env bash\r\n").contains("env looks for a program named `bash\\r`"));
}

fn words(text: &str) -> Vec<String> {
    split_string(text)
        .unwrap()
        .into_iter()
        .map(|word| match word {
            Word::Text { text, .. } => text,
            Word::Script => "<script>".to_owned(),
            Word::Unknown(name) => format!("?{name}"),
        })
        .collect()
}

// Each expectation is what `env -S "printf <%s> STRING"` printed with GNU env 9.1.
#[test]
fn dash_s_strings_split_as_env_c_build_argv_splits_them() {
    assert_eq!(words("a  b\tc"), ["a", "b", "c"]);
    assert_eq!(words("'a b' \"c d\""), ["a b", "c d"]);
    assert_eq!(words("'a\"b' \"c'd\""), ["a\"b", "c'd"]);
    assert_eq!(words("a'' ''"), ["a", ""]);
    assert_eq!(words("a#b #c d"), ["a#b"]);
    assert_eq!(
        words("\\#a \\$b \\\\c \\'d \\\"e"),
        ["#a", "$b", "\\c", "'d", "\"e"]
    );
    assert_eq!(words("a\\_b \"c\\_d\""), ["a", "b", "c d"]);
    assert_eq!(words("a\\cb c"), ["a"]);
    assert_eq!(words("\\t\\n\\f\\v\\r"), ["\t\n\x0c\x0b\r"]);
    assert_eq!(words("'a\\b' 'c\\\\d' 'e\\'f'"), ["a\\b", "c\\d", "e'f"]);
    assert_eq!(words("'${X}' \"${Y}\"z ${Z}"), ["${X}", "?${Y}", "?${Z}"]);
    for (text, says) in [
        ("\"\\c\"", "must not appear in double-quoted"),
        ("a\\", "invalid backslash at end"),
        ("'a", "no terminating quote"),
        ("\"a", "no terminating quote"),
        ("${1X}", "only ${VARNAME}"),
        ("${X", "only ${VARNAME}"),
        ("a\\q", "invalid sequence '\\q'"),
    ] {
        let problem = split_string(text).unwrap_err();
        assert!(problem.contains(says), "{text}: {problem}");
    }
}

#[test]
fn messages_have_one_shape_for_both_consumers() {
    assert_eq!(
        unusable_message("#!/x", "/s", "why"),
        "the #! line `#!/x` of /s cannot work: why; Lambda could not start it"
    );
    assert!(
        unknown_message("#!/x", "/s", "why").contains("`#!/x` of /s runs was not checked: why")
    );
    assert_eq!(
        doubt_message("#!/x", "/s", "why"),
        "the #! line `#!/x` of /s probably fails: why"
    );
    // The root directory alone is left to the file-tree lookup.
    assert_eq!(outcome("#!/"), "/");
}

#[test]
fn path_lookup_takes_the_first_directory_that_has_the_name() {
    let files = [
        "/usr/bin/python3",
        "/var/lang/bin/python3",
        "/var/task/tool",
    ];
    let exists = |path: &str| files.contains(&path);
    let path = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin";
    assert_eq!(
        find_on_path("python3", path, "/var/task", exists).as_deref(),
        Some("/var/lang/bin/python3")
    );
    assert_eq!(find_on_path("node", path, "/var/task", exists), None);
    assert_eq!(
        find_on_path("tool", "/bin::/usr/bin", "/var/task", exists).as_deref(),
        Some("/var/task/tool")
    );
    assert_eq!(
        find_on_path("/usr/bin/python3", "", "/", exists).as_deref(),
        Some("/usr/bin/python3")
    );
    assert_eq!(
        find_on_path("python3", DEFAULT_PATH, "/", exists).as_deref(),
        Some("/usr/bin/python3")
    );
}
