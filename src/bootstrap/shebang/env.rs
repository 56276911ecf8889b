//! How a `#!` line that runs `env` is followed to the command it execs, as GNU coreutils'
//! `src/env.c` reads its arguments: options by `getopt_long`, `-S` strings split by env's own
//! quoting (`build_argv`), assignments, then the command looked up on `PATH`. The verdict types
//! ([`Program`]) and the parsing of the line itself are in the parent module.

use super::{Program, Shebang};

/// An argument word of `env`: text, the script's own path (appended by the kernel), or a word
/// whose text depends on the environment at start (`${VAR}` in `-S`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Word {
    /// `whole` is true for the kernel's single argument, as written after the interpreter.
    Text {
        text: String,
        whole: bool,
    },
    Script,
    Unknown(String),
}

/// The bytes `isspace` accepts in the C locale (env.c `C_ISSPACE_CHARS`).
const C_SPACES: [char; 6] = [' ', '\t', '\n', '\x0b', '\x0c', '\r'];

/// Splits an `env -S` string as env.c's `build_argv` does. `Err` carries env's own message
/// (it then exits 125).
pub(super) fn split_string(text: &str) -> Result<Vec<Word>, String> {
    let mut words: Vec<Word> = Vec::new();
    let (mut single, mut double, mut separated) = (false, false, true);
    let mut chars = text.chars().peekable();
    // Starts a new word when the last one was ended by a separator (`check_start_new_arg`).
    fn start(words: &mut Vec<Word>, separated: &mut bool) {
        if std::mem::take(separated) {
            words.push(Word::Text {
                text: String::new(),
                whole: false,
            });
        }
    }
    fn push(words: &mut [Word], c: char) {
        if let Some(Word::Text { text, .. }) = words.last_mut() {
            text.push(c);
        }
    }
    while let Some(c) = chars.next() {
        let add = match c {
            '\'' if !double => {
                single = !single;
                start(&mut words, &mut separated);
                continue;
            }
            '"' if !single => {
                double = !double;
                start(&mut words, &mut separated);
                continue;
            }
            c if C_SPACES.contains(&c) && !single && !double => {
                separated = true;
                continue;
            }
            '#' if separated => return Ok(words),
            '\\' if !single || matches!(chars.peek(), Some('\\' | '\'')) => match chars.next() {
                Some(c @ ('"' | '#' | '$' | '\'' | '\\')) => c,
                Some('_') if !double => {
                    separated = true;
                    continue;
                }
                Some('_') => ' ',
                Some('c') if double => {
                    return Err("'\\c' must not appear in double-quoted -S string".into());
                }
                Some('c') => return Ok(words),
                Some('f') => '\x0c',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('t') => '\t',
                Some('v') => '\x0b',
                None => return Err("invalid backslash at end of string in -S".into()),
                Some(other) => return Err(format!("invalid sequence '\\{other}' in -S")),
            },
            '$' if !single => {
                let rest: String = chars.clone().collect();
                let name = rest
                    .strip_prefix('{')
                    .and_then(|rest| rest.split_once('}'))
                    .map(|(name, _)| name)
                    .filter(|name| {
                        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                let Some(name) = name else {
                    return Err(format!(
                        "only ${{VARNAME}} expansion is supported, error at: ${rest}"
                    ));
                };
                for _ in 0..name.len() + 2 {
                    chars.next();
                }
                // Unset, it adds nothing; set, it joins (or starts) a word: either way the
                // word is not known here.
                if separated {
                    separated = false;
                    words.push(Word::Unknown(format!("${{{name}}}")));
                } else if let Some(last) = words.last_mut() {
                    *last = Word::Unknown(format!("${{{name}}}"));
                }
                continue;
            }
            c => c,
        };
        start(&mut words, &mut separated);
        push(&mut words, add);
    }
    if single || double {
        return Err("no terminating quote in -S string".into());
    }
    Ok(words)
}

/// The long options of env.c's `longopts` that take an argument, and those that are followed
/// here as their short forms; any other known long option is not modelled.
const LONG_OPTIONS: [&str; 14] = [
    "argv0",
    "ignore-environment",
    "env0-from",
    "null",
    "unset",
    "chdir",
    "default-signal",
    "ignore-signal",
    "block-signal",
    "list-signal-handling",
    "debug",
    "split-string",
    "help",
    "version",
];

impl Shebang {
    /// Follows `env`'s argument handling (env.c `main`) to the command it execs.
    pub(super) fn env_program(&self) -> Program<'_> {
        let env = self.interpreter.as_str();
        let mut words: Vec<Word> = self
            .argument
            .iter()
            .map(|text| Word::Text {
                text: text.clone(),
                whole: true,
            })
            .chain([Word::Script])
            .collect();
        let argument = self.argument.as_deref().unwrap_or_default();
        let one_word =
            format!("Linux passes everything after {env} to it as one argument, `{argument}`,");
        let split_hint = || {
            let splits = argument.starts_with("-S") || argument.starts_with("--s");
            let fix = if argument.contains([' ', '\t']) && !splits {
                format!("split the arguments with -S: #!{env} -S {argument}")
            } else {
                format!("name the command env should run last (e.g. #!{env} -S -i bash)")
            };
            format!("{fix}; or name the interpreter directly (e.g. #!/bin/sh, #!/usr/bin/python3)")
        };
        let unusable = |reason: String| Program::Unusable {
            reason,
            hint: split_hint(),
        };
        let refused =
            |what: String| unusable(format!("{one_word} and env refuses it: {what} (exit 125)"));
        let unknown = |reason: String| Program::Unknown { env, reason };
        let (mut null, mut needs_command) = (false, None);
        let mut at = 0;
        'options: while let Some(word) = words.get(at) {
            let text = match word {
                Word::Script => break,
                Word::Unknown(name) => {
                    return unknown(format!(
                        "env expands {name} from the environment the function starts with"
                    ));
                }
                Word::Text { text, .. } => text.clone(),
            };
            if text == "--" {
                at += 1;
                break;
            }
            if text == "-" || !text.starts_with('-') {
                break;
            }
            // The value of an option that takes one: the rest of the word, or the next word.
            let value_of = |rest: &str, at: &mut usize, words: &[Word]| -> Option<Word> {
                if !rest.is_empty() {
                    return Some(Word::Text {
                        text: rest.to_owned(),
                        whole: false,
                    });
                }
                *at += 1;
                words.get(*at).cloned()
            };
            if let Some(long) = text.strip_prefix("--") {
                let (name, value) = match long.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (long, None),
                };
                let matches: Vec<&str> = LONG_OPTIONS
                    .iter()
                    .copied()
                    .filter(|option| option.starts_with(name))
                    .collect();
                let option = match matches.as_slice() {
                    [option] => *option,
                    _ if matches.contains(&name) => name,
                    [] => return refused(format!("\"unrecognized option '{text}'\"")),
                    _ => return refused(format!("\"option '{text}' is ambiguous\"")),
                };
                let value = match value {
                    Some(value) => Word::Text {
                        text: value.to_owned(),
                        whole: false,
                    },
                    None if matches!(option, "split-string" | "unset" | "chdir") => {
                        match value_of("", &mut at, &words) {
                            Some(value) => value,
                            None => {
                                return refused(format!(
                                    "\"option '--{option}' requires an argument\""
                                ));
                            }
                        }
                    }
                    None => Word::Script,
                };
                match option {
                    "split-string" => {
                        at = match self.split_at(&mut words, at, value) {
                            Ok(at) => at,
                            Err(problem) => return problem,
                        };
                        continue 'options;
                    }
                    "unset" | "ignore-environment" | "debug" => {}
                    "chdir" => needs_command = Some("--chdir (-C)"),
                    "null" => null = true,
                    other => {
                        return unknown(format!("env's option --{other} is not followed here"));
                    }
                }
                at += 1;
                continue;
            }
            let cluster: Vec<char> = text.chars().skip(1).collect();
            for (index, option) in cluster.iter().enumerate() {
                let rest: String = cluster[index + 1..].iter().collect();
                match option {
                    'i' | 'v' => {}
                    '0' => null = true,
                    'u' | 'C' | 'a' | 'S' => {
                        let Some(value) = value_of(&rest, &mut at, &words) else {
                            return refused(format!(
                                "\"option requires an argument -- '{option}'\""
                            ));
                        };
                        match option {
                            'C' => needs_command = Some("--chdir (-C)"),
                            'a' => needs_command = Some("--argv0 (-a)"),
                            'S' => {
                                at = match self.split_at(&mut words, at, value) {
                                    Ok(at) => at,
                                    Err(problem) => return problem,
                                };
                                continue 'options;
                            }
                            _ => {}
                        }
                        break;
                    }
                    c if C_SPACES.contains(c) => {
                        return refused(format!(
                            "\"invalid option -- '{}'\" (env's own advice: \"use -[v]S to pass options in \
                             shebang lines\")",
                            c.escape_default()
                        ));
                    }
                    other => {
                        return refused(format!("\"invalid option -- '{other}'\""));
                    }
                }
            }
            at += 1;
        }
        if let Some(Word::Text { text, .. }) = words.get(at)
            && text == "-"
        {
            at += 1;
        }
        while let Some(word) = words.get(at) {
            match word {
                Word::Text { text, .. } if text.contains('=') => at += 1,
                Word::Unknown(name) => {
                    return unknown(format!(
                        "env expands {name} from the environment the function starts with"
                    ));
                }
                _ => break,
            }
        }
        let loop_reason = |what: &str| {
            unusable(format!(
                "{what}, so env runs the script's own path as the command, which starts env again: an \
                 endless exec loop (Lambda's init times out)"
            ))
        };
        match words.get(at) {
            None => {
                if let Some(option) = needs_command {
                    return refused(format!("\"must specify command with {option}\""));
                }
                unusable(
                    "env finds no command (the script's path went to an option), so it prints the \
                     environment and exits: the script never runs"
                        .to_owned(),
                )
            }
            Some(_) if null => refused("\"cannot specify --null (-0) with command\"".into()),
            Some(Word::Script) => loop_reason(&if argument.is_empty() {
                "env gets no argument but the script's path".to_owned()
            } else if argument.contains([' ', '\t']) && !argument.starts_with('-') {
                format!("{one_word} which env takes as one assignment")
            } else {
                format!("env's arguments `{argument}` name no command")
            }),
            Some(Word::Unknown(name)) => unknown(format!(
                "env expands {name} from the environment the function starts with"
            )),
            Some(Word::Text { text, whole }) => {
                if *whole && text.contains([' ', '\t']) {
                    unusable(format!(
                        "{one_word} so env looks for a program named `{text}` and fails with \"No such \
                         file or directory\" (exit 127)"
                    ))
                } else if text.is_empty() || text.ends_with('/') {
                    unusable(format!(
                        "env cannot run the command `{text}` (exit 126 or 127)"
                    ))
                } else {
                    Program::OnPath {
                        env,
                        name: text.clone(),
                    }
                }
            }
        }
    }

    /// Replaces the option value at `at` (already consumed) by its `-S` split words, as env.c's
    /// `parse_split_string` does; returns where option reading goes on.
    fn split_at(
        &self,
        words: &mut Vec<Word>,
        at: usize,
        value: Word,
    ) -> Result<usize, Program<'_>> {
        // `at` is the word holding the value (or the option word itself when the value was
        // attached): everything up to it is consumed.
        let split = match value {
            Word::Text { text, .. } => split_string(&text).map_err(|problem| Program::Unusable {
                reason: format!("env refuses the -S string: \"{problem}\" (exit 125)"),
                hint: "fix the quoting after -S (env's -S has its own: '...', \"...\", \\ escapes, ${NAME})"
                    .to_owned(),
            })?,
            other => vec![other],
        };
        let rest = words.split_off((at + 1).min(words.len()));
        let start = words.len();
        words.extend(split);
        words.extend(rest);
        Ok(start)
    }
}
