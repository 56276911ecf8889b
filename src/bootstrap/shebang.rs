//! Reading a script's `#!` line the way Linux's `binfmt_script` does, and finding the program it
//! will really run (`#!/usr/bin/env NAME` looks NAME up on `PATH`).
//!
//! The kernel's rules (fs/binfmt_script.c, Linux 5.1 and later): the line is the bytes after `#!`
//! up to the first `\n` within the first [`LINE_LIMIT`] bytes (without one, the last of those
//! bytes is dropped, and an interpreter not followed by a blank or the end of the file is
//! refused as truncated); spaces and tabs around the interpreter are
//! dropped; the interpreter ends at the first space or tab; whatever follows, trimmed of spaces
//! and tabs, is passed as **one** argument. A carriage return is an ordinary byte to the kernel,
//! so a Windows line ending makes the interpreter `/bin/sh\r`, which does not exist.
//!
//! This module only reads; `checks` (bootstraps) and `lint` (images) decide what a problem means.

/// Bytes of a `#!` line the kernel reads, `#!` included (`BINPRM_BUF_SIZE`, 256 since Linux 5.1).
pub const LINE_LIMIT: usize = 256;

/// A parsed `#!` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shebang {
    /// The program the kernel execs, as written (absolute or relative).
    pub interpreter: String,
    /// The single optional argument the kernel passes before the script's path.
    pub argument: Option<String>,
}

/// Why a `#!` line cannot start anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShebangProblem {
    /// The line ends in `\r\n`: the kernel looks for `interpreter` with a carriage return
    /// (in the interpreter, or at the end of its argument).
    CarriageReturn { line: String },
    /// `#!` is followed by nothing but blanks.
    NoInterpreter,
    /// No line end within [`LINE_LIMIT`] bytes and the interpreter itself runs past it.
    TooLong,
}

impl std::fmt::Display for ShebangProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShebangProblem::CarriageReturn { line } => write!(
                f,
                "has Windows line endings: its first line `{line}` ends in a carriage return (\\r), \
                 so the kernel looks for a program whose name ends in \\r and fails with \
                 \"No such file or directory\""
            ),
            ShebangProblem::NoInterpreter => write!(f, "starts with #! but names no interpreter"),
            ShebangProblem::TooLong => write!(
                f,
                "has a #! line whose interpreter runs past the {LINE_LIMIT} bytes Linux reads"
            ),
        }
    }
}

impl ShebangProblem {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            ShebangProblem::CarriageReturn { .. } => {
                "convert it to Unix line endings: dos2unix FILE, or sed -i 's/\\r$//' FILE \
                 (and set `* text eol=lf` in .gitattributes so git does not convert it back)"
            }
            ShebangProblem::NoInterpreter => "name the interpreter, e.g. #!/bin/sh",
            ShebangProblem::TooLong => "shorten the #! line, or start the script with #!/bin/sh",
        }
    }
}

/// The program a `#!` line finally runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program<'a> {
    /// The interpreter itself.
    Path(&'a str),
    /// `#!/usr/bin/env NAME` (or `env -S NAME ...`): `env` at `env`, then NAME looked up on `PATH`.
    OnPath { env: &'a str, name: &'a str },
}

impl Shebang {
    /// Parses the first bytes of a file that starts with `#!`. `head` needs only the first line.
    pub fn parse(head: &[u8]) -> Result<Shebang, ShebangProblem> {
        let head = head.strip_prefix(b"#!").unwrap_or(head);
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        // The kernel looks for `\n` in all LINE_LIMIT bytes it read.
        let within = &head[..head.len().min(LINE_LIMIT - 2)];
        let (line, ended) = match within.iter().position(|&b| b == b'\n') {
            Some(end) => (&within[..end], true),
            None => {
                // No line end: the last byte read becomes the line's terminating NUL, and the
                // interpreter is whole only when a blank, or the end of a shorter file (read as
                // NUL padding), follows it within the bytes read.
                let line = &within[..within.len().min(LINE_LIMIT - 3)];
                let short_file = head.len() < LINE_LIMIT - 2;
                let blank_after = within.iter().skip_while(|b| blank(b)).any(blank);
                (line, short_file || blank_after)
            }
        };
        let start = line.iter().position(|b| !blank(b)).unwrap_or(line.len());
        let end = line
            .iter()
            .rposition(|b| !blank(b))
            .map_or(start, |i| i + 1);
        let line = &line[start..end.max(start)];
        if line.is_empty() {
            return Err(ShebangProblem::NoInterpreter);
        }
        if line.contains(&b'\r') {
            return Err(ShebangProblem::CarriageReturn {
                line: format!("#!{}", String::from_utf8_lossy(line).trim_end_matches('\r')),
            });
        }
        let split = line.iter().position(blank);
        if !ended && split.is_none() {
            return Err(ShebangProblem::TooLong);
        }
        let (interpreter, argument) = match split {
            Some(at) => {
                let rest = &line[at..];
                let first = rest.iter().position(|b| !blank(b)).unwrap_or(rest.len());
                (&line[..at], Some(&rest[first..]))
            }
            None => (line, None),
        };
        Ok(Shebang {
            interpreter: String::from_utf8_lossy(interpreter).into_owned(),
            argument: argument
                .filter(|argument| !argument.is_empty())
                .map(|argument| String::from_utf8_lossy(argument).into_owned()),
        })
    }

    /// The program that will run: the interpreter, or for an `env` interpreter the command it
    /// is given (after `-S`, the first word; `env`'s own options such as `-i` or `-u NAME` make
    /// the command unknowable here, so the interpreter is returned).
    pub fn program(&self) -> Program<'_> {
        let is_env = self.interpreter.rsplit('/').next() == Some("env");
        let Some(argument) = self.argument.as_deref().filter(|_| is_env) else {
            return Program::Path(&self.interpreter);
        };
        let command = match argument.strip_prefix("-S") {
            Some(rest) => rest.trim_start_matches([' ', '\t']),
            None => argument,
        };
        // Without -S, Linux passes `a b` as one word: env looks for a program named `a b`.
        let name = if argument.starts_with("-S") {
            command.split([' ', '\t']).next().unwrap_or_default()
        } else {
            command
        };
        if name.is_empty() || name.starts_with('-') || name.contains('=') {
            return Program::Path(&self.interpreter);
        }
        Program::OnPath {
            env: &self.interpreter,
            name,
        }
    }

    /// The line as written, for messages: `#!/usr/bin/env python3`.
    pub fn line(&self) -> String {
        match &self.argument {
            Some(argument) => format!("#!{} {argument}", self.interpreter),
            None => format!("#!{}", self.interpreter),
        }
    }
}

/// Where `execvp` (what `env` uses) finds `name` on a `PATH` value: the first directory whose
/// `DIR/NAME` `exists` says is there. A name with a `/` is not looked up. An empty entry means the
/// current directory, which for Lambda is the working directory `cwd`.
pub fn find_on_path(
    name: &str,
    path: &str,
    cwd: &str,
    exists: impl Fn(&str) -> bool,
) -> Option<String> {
    if name.contains('/') {
        return exists(name).then(|| name.to_owned());
    }
    path.split(':').find_map(|directory| {
        let directory = if directory.is_empty() { cwd } else { directory };
        let candidate = format!("{}/{name}", directory.trim_end_matches('/'));
        exists(&candidate).then_some(candidate)
    })
}

/// The `PATH` `env` searches when the environment has none (glibc's `confstr(_CS_PATH)`).
pub const DEFAULT_PATH: &str = "/bin:/usr/bin";

#[cfg(test)]
mod tests {
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
            let ShebangProblem::CarriageReturn { line } = &problem else {
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
        assert_eq!(program("#!/usr/bin/env python3 -u\n"), "PATH:python3 -u");
        assert_eq!(program("#!/usr/bin/env -i python3\n"), "/usr/bin/env");
        assert_eq!(program("#!/usr/bin/env A=1 python3\n"), "/usr/bin/env");
        assert_eq!(program("#!/usr/bin/env\n"), "/usr/bin/env");
        assert_eq!(program("#!/bin/sh -e\n"), "/bin/sh");
        assert_eq!(program("#!/usr/bin/envy x\n"), "/usr/bin/envy");
    }

    impl Program<'_> {
        fn clone_name(&self) -> String {
            match self {
                Program::Path(path) => (*path).to_owned(),
                Program::OnPath { name, .. } => format!("PATH:{name}"),
            }
        }
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
}
