//! Inspecting a `bootstrap` before it goes into an image: is it there, is it code Lambda can exec,
//! and for which architecture.
//!
//! This module decides what a bootstrap *is*. It does not put it in a layer (see `layer`).

pub mod base_knowledge;
pub mod checks;
pub mod elf;
pub mod execute_bits;
pub mod extensions;
pub mod glibc;
pub mod per_architecture;
pub mod shebang;
mod spec;

pub use spec::BootstrapSpec;

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use object::read::ReadCache;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::platform::Architecture;
use elf::ElfFacts;
use shebang::{LINE_LIMIT, Shebang};

/// A bootstrap that is code Lambda can exec; [`checks`] decide whether it suits the image.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub path: PathBuf,
    /// The architecture it goes into the image as: the one stated (`ARCH=PATH`), else the ELF's.
    pub architecture: Architecture,
    pub kind: BootstrapKind,
    pub size: u64,
    /// Whether the file on disk has an execute bit (the layer gets 0755 either way).
    pub executable_on_disk: bool,
    /// How findings name it, when not by `path`: an extension is named by its place in the
    /// image and where it came from (`/opt/extensions/agent (from --layer otel.zip)`), not by
    /// the file on this machine it is read from.
    pub shown_as: Option<String>,
}

impl Bootstrap {
    /// A statically linked ELF needs nothing from the base.
    pub fn is_static(&self) -> bool {
        matches!(&self.kind, BootstrapKind::Elf(elf) if elf.linkage == elf::Linkage::Static)
    }

    /// How findings name it: [`Bootstrap::shown_as`], else its path.
    pub fn shown(&self) -> String {
        self.shown_as
            .clone()
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// What kind of executable a bootstrap is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapKind {
    /// A 64-bit little-endian ELF executable (or PIE).
    Elf(ElfFacts),
    /// A `#!` script whose line the kernel can use (no carriage return, an interpreter named);
    /// the architecture was stated by the user.
    Script { shebang: Shebang },
}

/// Inspects one `--bootstrap` argument.
pub fn inspect(spec: &BootstrapSpec) -> Result<Bootstrap> {
    let path = &spec.path;
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Error::bootstrap(format!("bootstrap {} does not exist", path.display()))
            .hint("pass the path of the compiled executable, e.g. --bootstrap ./target/lambda/fn/bootstrap"),
        _ => Error::bootstrap(format!("cannot read bootstrap {}: {error}", path.display()))
            .hint("pass a path that leads (through any symbolic links) to the compiled executable"),
    })?;
    if metadata.is_dir() {
        return Err(Error::bootstrap(format!(
            "bootstrap {} is a directory, not an executable file",
            path.display()
        ))
        .hint("pass the executable itself, e.g. --bootstrap ./bootstrap"));
    }
    if !metadata.is_file() {
        return Err(Error::bootstrap(format!(
            "bootstrap {} is not a regular file (device, socket or pipe)",
            path.display()
        )));
    }
    if metadata.len() == 0 {
        return Err(
            Error::bootstrap(format!("bootstrap {} is empty (0 bytes)", path.display()))
                .hint("rebuild the function; the build may have failed"),
        );
    }

    let file = File::open(path).path_context(ErrorKind::Bootstrap, "open bootstrap", path)?;
    let mut start = Vec::with_capacity(8);
    (&file).take(8).read_to_end(&mut start).path_context(
        ErrorKind::Bootstrap,
        "read bootstrap",
        path,
    )?;

    let (architecture, kind) = if start.starts_with(&object::elf::ELFMAG) {
        let facts = elf::read_elf(&ReadCache::new(file)).map_err(|problem| {
            let error = Error::bootstrap(format!("bootstrap {} {problem}", path.display()));
            if problem.contains("is truncated") {
                error.hint("copy, download or build it again whole (a cut copy starts and crashes with SIGSEGV or SIGBUS)")
            } else if problem.contains("Lambda runs only") {
                error.hint("cross-compile for x86_64-unknown-linux-* or aarch64-unknown-linux-* (GOARCH=amd64 or arm64)")
            } else {
                error
            }
        })?;
        (
            spec.architecture.unwrap_or(facts.architecture),
            BootstrapKind::Elf(facts),
        )
    } else if start.starts_with(b"#!") {
        let shebang = read_shebang(path)?;
        let Some(architecture) = spec.architecture else {
            return Err(Error::bootstrap(format!(
                "bootstrap {} is a script ({}), so its architecture cannot be read from it",
                path.display(),
                shebang.line().trim_start_matches("#!")
            ))
            .hint(format!(
                "state it: --bootstrap amd64={} or --bootstrap arm64={}",
                path.display(),
                path.display()
            )));
        };
        (architecture, BootstrapKind::Script { shebang })
    } else if let Some(after) = start.strip_prefix(UTF8_BOM) {
        return Err(byte_order_mark_error(path, after.starts_with(b"#!")));
    } else {
        return Err(Error::bootstrap(format!(
            "bootstrap {} is neither an ELF executable nor a #! script, so Lambda could not run it",
            path.display()
        ))
        .hint("pass the compiled executable (for Go: CGO_ENABLED=0 GOOS=linux go build -tags lambda.norpc -o bootstrap)"));
    };

    Ok(Bootstrap {
        path: path.clone(),
        architecture,
        kind,
        size: metadata.len(),
        executable_on_disk: metadata.permissions().mode() & 0o111 != 0,
        shown_as: None,
    })
}

/// The UTF-8 byte order mark (U+FEFF encoded), which Windows editors write at the start of
/// files saved as "UTF-8 with BOM".
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The command that removes a UTF-8 byte order mark from the start of `FILE`.
pub const REMOVE_BOM: &str = r"sed -i '1s/^\xEF\xBB\xBF//' FILE";

/// The error for a bootstrap starting with a UTF-8 byte order mark: the kernel recognises `#!`
/// only as a file's first two bytes (`fs/binfmt_script.c`), so `execve` fails with `ENOEXEC`
/// ("exec format error") whatever follows the mark.
fn byte_order_mark_error(path: &Path, before_shebang: bool) -> Error {
    let shown = path.display().to_string();
    let what = if before_shebang {
        "the #! line: the kernel recognises #! only as the first two bytes of a file, so it does not see the #! after it"
    } else {
        "its content: the kernel runs only ELF executables and files whose first two bytes are #!"
    };
    Error::bootstrap(format!(
        "bootstrap {shown} starts with a UTF-8 byte order mark (bytes EF BB BF, written by Windows editors) \
         before {what}; Lambda could not start it (exec format error)"
    ))
    .hint(format!(
        "remove the mark: {}, or save the file as UTF-8 without BOM",
        REMOVE_BOM.replace("FILE", &shown)
    ))
}

/// The lines after the first that end in `\r\n` among the first `limit` bytes of the script at
/// `path`: `(how many, the 1-based number of the first)`; `None` when there are none or the
/// file cannot be read (it was read when inspected).
pub fn later_windows_line_endings(path: &Path, limit: u64) -> Option<(usize, usize)> {
    let mut text = Vec::new();
    File::open(path)
        .and_then(|file| file.take(limit).read_to_end(&mut text))
        .ok()?;
    let mut count = 0;
    let mut first = None;
    // Only whole lines: a line cut by the limit has no end to judge.
    for (index, line) in text
        .split_inclusive(|&byte| byte == b'\n')
        .enumerate()
        .skip(1)
    {
        if line.ends_with(b"\r\n") {
            count += 1;
            first.get_or_insert(index + 1);
        }
    }
    first.map(|first| (count, first))
}

/// A script's `#!` line as the kernel reads it (its first [`LINE_LIMIT`] bytes); a line the
/// kernel cannot use (a Windows line ending, no interpreter) is refused here, by every command
/// that takes a bootstrap.
fn read_shebang(path: &Path) -> Result<Shebang> {
    let mut head = Vec::new();
    File::open(path)
        .and_then(|file| file.take(LINE_LIMIT as u64).read_to_end(&mut head))
        .path_context(ErrorKind::Bootstrap, "read bootstrap", path)?;
    Shebang::parse(&head).map_err(|problem| {
        let shown = path.display().to_string();
        Error::bootstrap(format!(
            "bootstrap {shown} {problem}; Lambda could not start it"
        ))
        .hint(problem.hint().replace("FILE", &shown))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_line_endings_are_counted_after_the_first_line_within_the_limit() {
        let directory = tempfile::tempdir().unwrap();
        let script = directory.path().join("run.sh");
        std::fs::write(&script, b"#!/bin/sh\nset -e\r\necho a\necho b\r\n").unwrap();
        assert_eq!(later_windows_line_endings(&script, 1 << 16), Some((2, 2)));
        // Only whole lines within the limit: the 2nd line ends at byte 18.
        assert_eq!(later_windows_line_endings(&script, 17), None);
        assert_eq!(later_windows_line_endings(&script, 18), Some((1, 2)));
        std::fs::write(&script, b"#!/bin/sh\necho a\n").unwrap();
        assert_eq!(later_windows_line_endings(&script, 1 << 16), None);
    }
}
