//! Inspecting a `bootstrap` before it goes into an image: is it there, is it code Lambda can exec,
//! and for which architecture.
//!
//! This module decides what a bootstrap *is*. It does not put it in a layer (see `layer`).

pub mod base_knowledge;
pub mod checks;
pub mod elf;
pub mod glibc;
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
}

impl Bootstrap {
    /// A statically linked ELF needs nothing from the base.
    pub fn is_static(&self) -> bool {
        matches!(&self.kind, BootstrapKind::Elf(elf) if elf.linkage == elf::Linkage::Static)
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
    let mut start = [0u8; 4];
    let start_len = (&file).take(4).read(&mut start).path_context(
        ErrorKind::Bootstrap,
        "read bootstrap",
        path,
    )?;
    let start = &start[..start_len];

    let (architecture, kind) = if start == object::elf::ELFMAG {
        let facts = elf::read_elf(&ReadCache::new(file)).map_err(|problem| {
            let error = Error::bootstrap(format!("bootstrap {} {problem}", path.display()));
            if problem.contains("Lambda runs only") {
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
    })
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
