//! Inspecting a `bootstrap` before it goes into an image: is it there, is it code Lambda can exec,
//! and for which architecture.
//!
//! This module decides what a bootstrap *is*. It does not put it in a layer (see `layer`).

mod spec;

pub use spec::BootstrapSpec;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use object::elf::{self, FileHeader64};
use object::read::ReadCache;
use object::read::elf::FileHeader;
use object::{Endianness, FileKind};

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::platform::Architecture;

/// A bootstrap that passed inspection.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub path: PathBuf,
    pub architecture: Architecture,
    pub kind: BootstrapKind,
    pub size: u64,
}

/// What kind of executable a bootstrap is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootstrapKind {
    /// A 64-bit little-endian ELF executable (or PIE) for the architecture.
    Elf,
    /// A `#!` script; the architecture was stated by the user.
    Script { interpreter: String },
}

/// Inspects one `--bootstrap` argument.
pub fn inspect(spec: &BootstrapSpec) -> Result<Bootstrap> {
    let path = &spec.path;
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Error::bootstrap(format!("bootstrap {} does not exist", path.display()))
            .hint("pass the path of the compiled executable, e.g. --bootstrap ./target/lambda/fn/bootstrap"),
        _ => Error::bootstrap(format!("cannot read bootstrap {}: {error}", path.display())),
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

    let (architecture, kind) = if start == elf::ELFMAG {
        let detected = elf_architecture(file, path)?;
        if let Some(stated) = spec.architecture
            && stated != detected
        {
            return Err(Error::bootstrap(format!(
                "bootstrap {} is an ELF executable for {} ({}), but it was given as {}",
                path.display(),
                detected,
                detected.elf_machine_name(),
                stated
            ))
            .hint(format!(
                "drop the `{stated}=` prefix to use the architecture from the ELF header, or build the function for {stated}"
            )));
        }
        (detected, BootstrapKind::Elf)
    } else if start.starts_with(b"#!") {
        let interpreter = script_interpreter(path)?;
        let Some(architecture) = spec.architecture else {
            return Err(Error::bootstrap(format!(
                "bootstrap {} is a script ({interpreter}), so its architecture cannot be read from it",
                path.display()
            ))
            .hint(format!("state it: --bootstrap amd64={} or --bootstrap arm64={}", path.display(), path.display())));
        };
        (architecture, BootstrapKind::Script { interpreter })
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
    })
}

/// Reads the architecture from an ELF header, refusing anything Lambda cannot execute.
fn elf_architecture(file: File, path: &Path) -> Result<Architecture> {
    let cache = ReadCache::new(file);
    let not_usable = |why: String| Error::bootstrap(format!("bootstrap {} {why}", path.display()));
    match FileKind::parse(&cache) {
        Ok(FileKind::Elf64) => {}
        Ok(FileKind::Elf32) => {
            return Err(not_usable(
                "is a 32-bit ELF; Lambda runs 64-bit x86-64 or aarch64 executables".into(),
            ));
        }
        _ => return Err(not_usable("has a truncated or malformed ELF header".into())),
    }
    let header = FileHeader64::<Endianness>::parse(&cache)
        .map_err(|error| not_usable(format!("has a malformed ELF header: {error}")))?;
    let endian = header
        .endian()
        .map_err(|error| not_usable(format!("has a malformed ELF header: {error}")))?;
    if endian != Endianness::Little {
        return Err(not_usable(
            "is a big-endian ELF; Lambda runs little-endian executables".into(),
        ));
    }
    let file_type = header.e_type(endian);
    if file_type != elf::ET_EXEC && file_type != elf::ET_DYN {
        return Err(not_usable(format!(
            "is an ELF {} file, not an executable",
            match file_type {
                elf::ET_REL => "relocatable object (.o)",
                elf::ET_CORE => "core dump",
                _ => "non-executable",
            }
        )));
    }
    match header.e_machine(endian) {
        elf::EM_X86_64 => Ok(Architecture::Amd64),
        elf::EM_AARCH64 => Ok(Architecture::Arm64),
        machine => {
            let name = machine
                .name()
                .map(|name| name.trim_start_matches("EM_").to_owned())
                .unwrap_or_else(|| format!("machine {machine}"));
            Err(not_usable(format!(
                "is an ELF executable for {name}; Lambda runs only x86-64 (amd64) and aarch64 (arm64)"
            ))
            .hint("cross-compile for x86_64-unknown-linux-* or aarch64-unknown-linux-* (GOARCH=amd64 or arm64)"))
        }
    }
}

/// The interpreter named on a script's `#!` line.
fn script_interpreter(path: &Path) -> Result<String> {
    let mut first_line = Vec::new();
    File::open(path)
        .and_then(|file| file.take(512).read_to_end(&mut first_line))
        .path_context(ErrorKind::Bootstrap, "read bootstrap", path)?;
    let line = first_line.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(&line[2..]);
    Ok(line.trim().to_owned())
}
