//! Included files that Lambda would execute but that have no execute bit.
//!
//! `--include` keeps a file's execute bit as it is on disk (0755 when any `x` bit is set, else
//! 0644), so a program that lost its modes on the way (artifacts downloaded in CI:
//! actions/upload-artifact, GitLab artifacts; zip files made on Windows) lands in the image or
//! package as 0644, and when the function execs it, `execve(2)` fails with `EACCES` ("permission
//! denied"). Such a file is told by its first bytes, as the kernel tells it (`fs/binfmt_elf.c`,
//! `fs/binfmt_script.c`): an ELF executable (`\x7fELF`, and what [`read_elf`] accepts: an
//! executable or PIE, not a shared library) or a `#!` script.
//!
//! Not flagged: shared libraries, which the dynamic loader opens and maps without needing an
//! execute bit (an ELF shared object without entry point, interpreter or PIE flag, and any ELF
//! named `lib*.so*`, such as glibc's `libc.so.6`, which can also be run but is loaded as a
//! library); data files; files that are executable already. The bootstrap is always 0755.

use std::io::Read;
use std::path::Path;

use object::read::ReadCache;

use crate::bootstrap::elf::read_elf;
use crate::error::{ErrorKind, IoContext, Result};
use crate::findings::{Finding, Level};
use crate::layer::contents::LayerEntry;

/// The check name of the findings.
pub const CHECK: &str = "execute-bit";

/// What kind of program a file without an execute bit is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// An ELF executable for this machine (`x86-64`, `aarch64`).
    Elf { machine: &'static str },
    /// A script starting with `#!`; the line as written, without the line end.
    Script { line: String },
}

/// One warning finding per file of `entries` that is a [`Program`] without an execute bit.
///
/// `entries` are `(path, entry)` with paths relative to `root` (`var/task/tool.sh` under `/`,
/// or `tool.sh` under `/var/task` for a `.zip`); `container` names what they go in ("image",
/// "package"). Reads the first bytes of each non-executable file (and an ELF's headers).
///
/// Errors: a file that cannot be opened or read (exit 2, usage: it is an `--include`d file).
pub fn findings<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a LayerEntry)>,
    root: &str,
    container: &str,
) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for (path, entry) in entries {
        let LayerEntry::File {
            source, executable, ..
        } = entry
        else {
            continue;
        };
        let shown = format!("{}/{path}", root.trim_end_matches('/'));
        if *executable {
            // A file that cannot be read here fails when it is written; nothing to add now.
            findings.extend(windows_shebang_finding(source, &shown, container).unwrap_or(None));
            continue;
        }
        let Some(program) = program(source)? else {
            continue;
        };
        let line_endings = match program {
            Program::Script { .. } => windows_shebang_finding(source, &shown, container)?,
            Program::Elf { .. } => None,
        };
        let what = match &program {
            Program::Elf { machine } => format!("an ELF executable ({machine})"),
            Program::Script { line } => format!("a script (`{line}`)"),
        };
        findings.push(
            Finding::new(
                CHECK,
                None,
                Level::Warning,
                format!(
                    "{} (at {shown} in the {container}) is {what} but has no execute permission: \
                     it is written with mode 0644, and running it on Lambda fails with \
                     \"permission denied\"",
                    source.display()
                ),
            )
            .hint(format!(
                "chmod +x {} before building; files downloaded as CI artifacts or zipped on \
                 Windows lose their modes (pack them in a tar archive, or chmod +x them after \
                 download)",
                source.display()
            )),
        );
        findings.extend(line_endings);
    }
    Ok(findings)
}

/// The check name of the finding for an included script whose `#!` line ends in `\r\n`.
pub const LINE_ENDINGS_CHECK: &str = "line-endings";

/// A warning when `source` (at `shown` in the `container`) is a `#!` script whose first line
/// ends in a carriage return: the kernel takes the `\r` as part of the interpreter's name
/// (`fs/binfmt_script.c` ends the line at `\n` only), so running it fails with "No such file
/// or directory" (`bad interpreter`). A warning, not an error: Lambda fails only when the
/// function runs it. Reads the first [`crate::bootstrap::shebang::LINE_LIMIT`] bytes.
///
/// Errors: `source` cannot be opened or read (exit 2).
fn windows_shebang_finding(source: &Path, shown: &str, container: &str) -> Result<Option<Finding>> {
    let mut start = Vec::new();
    std::fs::File::open(source)
        .and_then(|file| {
            file.take(crate::bootstrap::shebang::LINE_LIMIT as u64)
                .read_to_end(&mut start)
        })
        .path_context(ErrorKind::Usage, "read", source)?;
    let Some(rest) = start.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = rest.split(|&byte| byte == b'\n').next().unwrap_or_default();
    if !line.contains(&b'\r') {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(line).replace('\r', "");
    Ok(Some(
        Finding::new(
            LINE_ENDINGS_CHECK,
            None,
            Level::Warning,
            format!(
                "{} (at {shown} in the {container}) is a script whose #! line (`#!{}`) ends with a \
                 carriage return (\\r, Windows line endings): the kernel looks for an interpreter whose \
                 name ends in \\r, so running it on Lambda fails with \"No such file or directory\" \
                 (bad interpreter)",
                source.display(),
                line.trim_end()
            ),
        )
        .hint(format!(
            "convert it: dos2unix {0} (or sed -i 's/\\r$//' {0})",
            source.display()
        )),
    ))
}

/// The kind of program `source` is, from its first bytes; `None` for anything else.
pub fn program(source: &Path) -> Result<Option<Program>> {
    let mut file = std::fs::File::open(source).path_context(ErrorKind::Usage, "open", source)?;
    let mut start = Vec::with_capacity(128);
    (&mut file)
        .take(128)
        .read_to_end(&mut start)
        .path_context(ErrorKind::Usage, "read", source)?;
    if let Some(rest) = start.strip_prefix(b"#!") {
        let line = rest.split(|&byte| byte == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        return Ok(Some(Program::Script {
            line: format!("#!{}", line.trim_end()),
        }));
    }
    if !start.starts_with(&object::elf::ELFMAG) || is_named_like_a_library(source) {
        return Ok(None);
    }
    // A shared library, object file, core dump or foreign ELF is not something Lambda execs.
    Ok(read_elf(&ReadCache::new(file))
        .ok()
        .map(|facts| Program::Elf {
            machine: facts.architecture.elf_machine_name(),
        }))
}

/// `lib*.so` or `lib*.so.N…`: loaded by the dynamic loader, which needs no execute bit.
fn is_named_like_a_library(source: &Path) -> bool {
    source
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| {
            name.starts_with("lib") && (name.ends_with(".so") || name.contains(".so."))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: &Path, executable: bool) -> LayerEntry {
        LayerEntry::File {
            source: source.to_owned(),
            size: std::fs::metadata(source).unwrap().len(),
            executable,
        }
    }

    #[test]
    fn scripts_and_executables_without_x_are_flagged_and_the_rest_is_not() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("tool.sh");
        std::fs::write(&script, b"#!/bin/sh -e\r\necho hi\n").unwrap();
        let data = directory.path().join("data.json");
        std::fs::write(&data, b"{}").unwrap();
        let elf = std::env::current_exe().unwrap();
        let entries = [
            ("var/task/tool.sh".to_owned(), entry(&script, false)),
            ("var/task/ran".to_owned(), entry(&script, true)),
            ("var/task/data.json".to_owned(), entry(&data, false)),
            ("var/task/bin/test".to_owned(), entry(&elf, false)),
            ("var/task".to_owned(), LayerEntry::Directory),
        ];
        let found = findings(
            entries.iter().map(|(path, entry)| (path.as_str(), entry)),
            "/",
            "image",
        )
        .unwrap();
        // tool.sh: no execute bit, and a #! line ending in \r; ran: the same \r, executable.
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0].check, CHECK);
        assert!(found[0].message.contains("/var/task/tool.sh in the image"));
        assert!(
            found[0].message.contains("`#!/bin/sh -e`"),
            "{}",
            found[0].message
        );
        assert_eq!(found[1].check, LINE_ENDINGS_CHECK);
        assert!(found[1].message.contains("/var/task/tool.sh in the image"));
        assert!(found[2].message.contains("/var/task/ran in the image"));
        assert!(found[2].message.contains("carriage return"));
        assert!(!found[2].message.contains('\r'), "{:?}", found[2].message);
        assert!(found[3].message.contains("an ELF executable"));
        assert!(found.iter().all(|finding| finding.level == Level::Warning));
    }

    #[test]
    fn shared_libraries_are_not_programs() {
        let library = [
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
            "/lib/aarch64-linux-gnu/libz.so.1",
        ]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
        .expect("zlib is installed");
        // Copied under a name that does not look like a library: the ELF itself tells.
        let directory = tempfile::tempdir().unwrap();
        let renamed = directory.path().join("plugin");
        std::fs::copy(library, &renamed).unwrap();
        assert_eq!(program(&renamed).unwrap(), None);
        // An executable ELF named like a library (glibc's libc.so.6 runs, but is loaded): not
        // flagged either.
        let named = directory.path().join("libtool.so.1");
        std::fs::copy(std::env::current_exe().unwrap(), &named).unwrap();
        assert_eq!(program(&named).unwrap(), None);
        assert!(is_named_like_a_library(Path::new("lib/libc.so.6")));
        assert!(is_named_like_a_library(Path::new("libfoo.so")));
        assert!(!is_named_like_a_library(Path::new("ld-linux-x86-64.so.2")));
    }
}
