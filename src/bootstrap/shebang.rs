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
//! `env` as the interpreter is followed as GNU coreutils' `src/env.c` reads its arguments (see
//! [`Program`]): the verdict for a line (the program to look for, a command known only at start,
//! a line that fails at every start, a doubtful argument) is decided here, once, for both
//! `checks` (bootstraps: build, zip, check --bootstrap) and `lint` (check IMAGE), which only look
//! the program up in their file trees and word the finding with [`unusable_message`],
//! [`unknown_message`] and [`doubt_message`].

mod env;

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
    /// The line ends in `\r\n`. `line` is the line without it; `argument` is `None` when the
    /// carriage return ends the interpreter's name (the kernel looks for `/bin/sh\r`), else the
    /// argument the kernel passes to `interpreter`, carriage return included (`-e\r`, `\r`,
    /// `bash\r` for env), which the interpreter refuses or cannot find.
    CarriageReturn {
        line: String,
        interpreter: String,
        argument: Option<String>,
    },
    /// `#!` is followed by nothing but blanks.
    NoInterpreter,
    /// No line end within [`LINE_LIMIT`] bytes and the interpreter itself runs past it.
    TooLong,
}

impl std::fmt::Display for ShebangProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShebangProblem::CarriageReturn {
                line,
                interpreter,
                argument: None,
            } => write!(
                f,
                "has Windows line endings: its first line `{line}` ends in a carriage return (\\r), \
                 so the kernel looks for a program named `{interpreter}\\r` and fails with \
                 \"No such file or directory\""
            ),
            ShebangProblem::CarriageReturn {
                line,
                interpreter,
                argument: Some(argument),
            } => {
                let shown = argument.escape_default();
                let outcome = if interpreter.rsplit('/').next() == Some("env") {
                    format!(
                        "env looks for a program named `{shown}` and fails with \"No such file or directory\""
                    )
                } else {
                    format!("{interpreter} refuses it (dash: \"Illegal option -\")")
                };
                write!(
                    f,
                    "has Windows line endings: its first line `{line}` ends in a carriage return (\\r), \
                     so the kernel runs {interpreter} with the argument `{shown}`, carriage return included, \
                     and {outcome}"
                )
            }
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

/// The program a `#!` line finally runs, or why none can be known or work.
///
/// `env` (`#!/usr/bin/env ...`, any interpreter named `env`) is followed as GNU coreutils'
/// `src/env.c` runs: its arguments are the kernel's single argument (if any) and then the
/// script's path (fs/binfmt_script.c always appends it); options are read by `getopt_long` with
/// `+a:C:iS:u:v0` (stopping at the first word that is not an option, or after `--`; a lone `-`
/// is `-i`); `-S STRING` / `--split-string` splits STRING with env's own quoting
/// (`build_argv`: `'...'`, `"..."`, backslash escapes, `#` starting a comment, `${NAME}`
/// expanded from the environment) and reads the words as arguments again; then words with `=`
/// are assignments, and the first remaining word is the command `execvp` finds on `PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program<'a> {
    /// The interpreter itself.
    Path(&'a str),
    /// `env` at `env`, then NAME looked up on `PATH` (`#!/usr/bin/env NAME`,
    /// `#!/usr/bin/env -S -i VAR=1 NAME ...`).
    OnPath { env: &'a str, name: String },
    /// `env` at `env` runs a command that cannot be known before the script starts (`${VAR}` in a
    /// `-S` string, an `env` option not modelled here); `reason` says which.
    Unknown { env: &'a str, reason: String },
    /// The line fails at every start whatever the image holds; `reason` says how (a clause:
    /// "env gets ... and ..."), `hint` what to write instead.
    Unusable { reason: String, hint: String },
}

/// A `#!` line that probably does not do what its author meant, but is not certain to fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Doubt {
    /// What happens, as a clause: "the kernel passes `-e -x` as one argument ...".
    pub reason: String,
    /// What to write instead.
    pub hint: String,
}

/// The finding message for [`Program::Unusable`], the same for `build`/`zip`/`check --bootstrap`
/// and `check IMAGE`: "the #! line `LINE` of PATH cannot work: REASON; Lambda could not start it".
pub fn unusable_message(line: &str, script: &str, reason: &str) -> String {
    format!("the #! line `{line}` of {script} cannot work: {reason}; Lambda could not start it")
}

/// The finding message for [`Program::Unknown`]: which command runs was not checked.
pub fn unknown_message(line: &str, script: &str, reason: &str) -> String {
    format!(
        "the command the #! line `{line}` of {script} runs was not checked: {reason}, so it is known \
         only when the function starts"
    )
}

/// The finding message for a [`Doubt`].
pub fn doubt_message(line: &str, script: &str, reason: &str) -> String {
    format!("the #! line `{line}` of {script} probably fails: {reason}")
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
        let split = line.iter().position(blank);
        if line.contains(&b'\r') {
            let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
            let name = &line[..split.unwrap_or(line.len())];
            let argument = &line[name.len()..];
            let argument = &argument[argument.iter().take_while(|b| blank(b)).count()..];
            return Err(ShebangProblem::CarriageReturn {
                line: format!("#!{}", text(line).trim_end_matches(['\r', ' ', '\t'])),
                interpreter: text(name).trim_end_matches('\r').to_owned(),
                argument: (!name.contains(&b'\r')).then(|| text(argument)),
            });
        }
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

    /// The program that will run (see [`Program`] for how `env` is followed).
    pub fn program(&self) -> Program<'_> {
        if self.interpreter.len() > 1 && self.interpreter.ends_with('/') {
            return Program::Unusable {
                reason: format!(
                    "the interpreter `{}` ends in a slash, so the kernel looks for a directory and fails \
                     with \"Not a directory\" (ENOTDIR)",
                    self.interpreter
                ),
                hint: format!(
                    "remove the trailing slash: #!{}",
                    self.line().trim_start_matches("#!").replacen(
                        &self.interpreter,
                        self.interpreter.trim_end_matches('/'),
                        1
                    )
                ),
            };
        }
        if self.interpreter.rsplit('/').next() != Some("env") {
            return Program::Path(&self.interpreter);
        }
        self.env_program()
    }

    /// A doubt about a line that is not certain to fail: an argument with blanks that starts
    /// with `-` reaches the interpreter as ONE argument (`#!/bin/sh -e -x` gives sh `-e -x`,
    /// which dash and bash refuse; perl re-reads its own `#!` line, so it is not certain).
    pub fn doubt(&self) -> Option<Doubt> {
        let argument = self.argument.as_deref()?;
        let is_env = self.interpreter.rsplit('/').next() == Some("env");
        if is_env || !argument.starts_with('-') || !argument.contains([' ', '\t']) {
            return None;
        }
        let letters: String = argument
            .split([' ', '\t'])
            .map(|word| word.trim_start_matches('-'))
            .collect();
        Some(Doubt {
            reason: format!(
                "Linux passes everything after the interpreter as one argument, so {} gets the single \
                 argument `{argument}` (dash says \"Illegal option -\", bash \"invalid option\")",
                self.interpreter
            ),
            hint: format!(
                "split the arguments with env: #!/usr/bin/env -S {} {argument}; or keep one option on the \
                 #! line and set the others in the script (for a shell: `set -{letters}`)",
                self.interpreter,
            ),
        })
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
#[path = "shebang_tests.rs"]
mod tests;
