//! Reading what Lambda cares about from an ELF executable: its architecture, whether it is an
//! executable at all, and, when it is dynamically linked, its program interpreter (`PT_INTERP`),
//! its `NEEDED` libraries and the newest `GLIBC_x.y` symbol version it asks for.
//!
//! Everything after the header is read the way the kernel and the dynamic loader read it: from
//! the program headers and the dynamic segment (`PT_DYNAMIC`), never from section headers, which
//! neither of them uses and which `sstrip`, packers and `llvm-objcopy --strip-sections` remove.
//! The dynamic segment's addresses (`DT_STRTAB`, `DT_VERNEED`, `DT_SYMTAB`, ...) are virtual
//! addresses, mapped to file offsets through the `PT_LOAD` segments (System V ABI, "Program
//! Loading"; glibc's elf/dl-load.c and elf/dl-version.c read the same entries).
//!
//! Works on any [`ReadRef`]: a file read on demand (bootstraps can be hundreds of MB) or bytes
//! already in memory (a file found in an image layer). It judges nothing; `checks` does.

use object::elf::{self, FileHeader64, ProgramHeader64};
use object::read::ReadRef;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

use super::glibc::GlibcVersion;
use crate::platform::Architecture;

mod dynamic;

use dynamic::DynamicSegment;

/// What an ELF executable needs in order to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfFacts {
    pub architecture: Architecture,
    pub linkage: Linkage,
}

/// How an executable is linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linkage {
    /// No program interpreter: runs on any base (Go with `CGO_ENABLED=0`, Rust musl or
    /// `+crt-static`).
    Static,
    Dynamic(DynamicNeeds),
}

/// What a dynamically linked executable needs from the base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicNeeds {
    /// `PT_INTERP`, the program interpreter (dynamic loader) the kernel starts, e.g.
    /// `/lib64/ld-linux-x86-64.so.2` (glibc) or `/lib/ld-musl-x86_64.so.1` (musl).
    pub interpreter: String,
    /// What the dynamic segment asks of the loader, or why it could not be read (a missing or
    /// malformed `PT_DYNAMIC`, a string table outside every `PT_LOAD`): then the needs are
    /// unknown, never "nothing".
    pub libraries: Result<LibraryNeeds, ElfProblem>,
}

/// The libraries and glibc versions a dynamic executable's `PT_DYNAMIC` names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LibraryNeeds {
    /// `DT_NEEDED` libraries, e.g. `libc.so.6`, in order.
    pub needed: Vec<String>,
    /// The newest `GLIBC_x.y` version its `DT_VERNEED` entries reference, if any.
    pub glibc: Option<GlibcNeed>,
    /// `DT_RUNPATH` directories (`:`-separated in the string table), as written: `$ORIGIN` is
    /// not expanded.
    pub runpath: Vec<String>,
    /// `DT_RPATH` directories, as written; glibc's loader ignores them when `DT_RUNPATH` is set
    /// (`elf/dl-load.c`, `_dl_map_object`).
    pub rpath: Vec<String>,
}

/// The newest glibc symbol version an executable references, and one symbol that needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlibcNeed {
    pub version: GlibcVersion,
    pub symbol: Option<String>,
}

impl std::fmt::Display for GlibcNeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.symbol {
            Some(symbol) => write!(
                f,
                "GLIBC_{} (symbol {symbol}@GLIBC_{})",
                self.version, self.version
            ),
            None => write!(f, "GLIBC_{}", self.version),
        }
    }
}

/// Why a file cannot be a Lambda executable (or why its needs cannot be read); the caller names
/// the file.
pub type ElfProblem = String;

/// Reads the facts from an ELF file whose first bytes are `\x7fELF`.
///
/// Errors: a header that is not a 64-bit little-endian x86-64/aarch64 executable, program
/// headers or a `PT_INTERP` outside the file (the kernel could not load it either), or a shared
/// library given as an executable. A dynamic segment that cannot be read is not an error: it is
/// reported in [`DynamicNeeds::libraries`].
pub fn read_elf<'data, R: ReadRef<'data>>(data: R) -> Result<ElfFacts, ElfProblem> {
    let (header, endian, architecture) = read_header(data)?;
    let segments = header
        .program_headers(endian, data)
        .map_err(|error| format!("has malformed program headers ({error}); it may be truncated"))?;
    loaded_within(segments, endian, data)?;
    let interpreter = interpreter_of(segments, endian, data)?;
    let dynamic = DynamicSegment::find(segments, endian, data);
    let linkage = match interpreter {
        None => Linkage::Static,
        Some(interpreter) => Linkage::Dynamic(DynamicNeeds {
            interpreter,
            libraries: dynamic
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|dynamic| dynamic.library_needs()),
        }),
    };
    let pie = dynamic.as_ref().is_ok_and(|dynamic| {
        dynamic
            .value(elf::DT_FLAGS_1)
            .is_some_and(|flags| flags & elf::DF_1_PIE.0 != 0)
    });
    if header.e_type(endian) == elf::ET_DYN
        && linkage == Linkage::Static
        && header.e_entry(endian) == 0
        && !pie
    {
        return Err(
            "is a shared library (no entry point, no interpreter, not marked PIE), not an executable".into(),
        );
    }
    Ok(ElfFacts {
        architecture,
        linkage,
    })
}

/// Refuses a file cut short: the kernel maps each `PT_LOAD` segment's file range
/// (`p_offset .. p_offset + p_filesz`, `elf_map` in `fs/binfmt_elf.c`), and a range beyond the
/// end of the file maps pages that fault (SIGBUS/SIGSEGV) when touched: a truncated download or
/// copy (`head -c`) starts and crashes. Errors: "is truncated: its program headers say N bytes,
/// the file has M" (N the furthest segment end, M the file's length, both in bytes).
fn loaded_within<'data, R: ReadRef<'data>>(
    segments: &[ProgramHeader64<Endianness>],
    endian: Endianness,
    data: R,
) -> Result<(), ElfProblem> {
    let Ok(length) = data.len() else {
        return Ok(());
    };
    let needed = segments
        .iter()
        .filter(|segment| segment.p_type(endian) == elf::PT_LOAD)
        .map(|segment| {
            segment
                .p_offset(endian)
                .saturating_add(segment.p_filesz(endian))
        })
        .max()
        .unwrap_or(0);
    if needed > length {
        return Err(format!(
            "is truncated: its program headers say {needed} bytes, the file has {length}; \
             the kernel would map pages that are not there and it would crash at start-up"
        ));
    }
    Ok(())
}

/// The program interpreter (`PT_INTERP`, the dynamic loader the kernel starts) an ELF names:
/// `Ok(None)` for a static executable. Needs only the file header, the program headers and the
/// path, which linkers put in the first few hundred bytes, so the head of a file found in an image
/// layer is enough. Errors: the headers or the path lie beyond `data` or are malformed.
pub fn read_interpreter<'data, R: ReadRef<'data>>(data: R) -> Result<Option<String>, ElfProblem> {
    let (header, endian, _) = read_header(data)?;
    let segments = header
        .program_headers(endian, data)
        .map_err(|error| format!("has malformed program headers ({error}); it may be truncated"))?;
    interpreter_of(segments, endian, data)
}

/// The first `PT_INTERP` path among `segments`: the one the kernel opens (`load_elf_binary` in
/// `fs/binfmt_elf.c` stops at the first).
fn interpreter_of<'data, R: ReadRef<'data>>(
    segments: &[ProgramHeader64<Endianness>],
    endian: Endianness,
    data: R,
) -> Result<Option<String>, ElfProblem> {
    for segment in segments {
        let path = segment.interpreter(endian, data).map_err(|error| {
            format!("has a malformed program interpreter (PT_INTERP: {error}); it may be truncated")
        })?;
        if let Some(path) = path {
            return Ok(Some(String::from_utf8_lossy(path).into_owned()));
        }
    }
    Ok(None)
}

/// The architecture of an ELF executable, from its header alone (the first 64 bytes).
pub fn read_architecture<'data, R: ReadRef<'data>>(data: R) -> Result<Architecture, ElfProblem> {
    read_header(data).map(|(_, _, architecture)| architecture)
}

/// Checks the header describes a 64-bit little-endian executable for a Lambda architecture.
fn read_header<'data, R: ReadRef<'data>>(
    data: R,
) -> Result<(&'data FileHeader64<Endianness>, Endianness, Architecture), ElfProblem> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => {}
        Ok(FileKind::Elf32) => {
            return Err("is a 32-bit ELF; Lambda runs 64-bit x86-64 or aarch64 executables".into());
        }
        _ => return Err("has a truncated or malformed ELF header".into()),
    }
    let header = FileHeader64::<Endianness>::parse(data)
        .map_err(|error| format!("has a truncated or malformed ELF header ({error})"))?;
    let endian = header
        .endian()
        .map_err(|error| format!("has a truncated or malformed ELF header ({error})"))?;
    if endian != Endianness::Little {
        return Err("is a big-endian ELF; Lambda runs little-endian executables".into());
    }
    let file_type = header.e_type(endian);
    if file_type != elf::ET_EXEC && file_type != elf::ET_DYN {
        return Err(format!(
            "is an ELF {} file, not an executable",
            match file_type {
                elf::ET_REL => "relocatable object (.o)",
                elf::ET_CORE => "core dump",
                _ => "non-executable",
            }
        ));
    }
    let architecture = match header.e_machine(endian) {
        elf::EM_X86_64 => Architecture::Amd64,
        elf::EM_AARCH64 => Architecture::Arm64,
        machine => {
            let name = machine
                .name()
                .map(|name| name.trim_start_matches("EM_").to_owned())
                .unwrap_or_else(|| format!("machine {machine}"));
            return Err(format!(
                "is an ELF executable for {name}; Lambda runs only x86-64 (amd64) and aarch64 (arm64)"
            ));
        }
    };
    Ok((header, endian, architecture))
}

/// The newest `GLIBC_x.y` version a shared library (the base's `libc.so.6`) defines, from its
/// dynamic segment's `DT_VERDEF` records; `None` when it defines none or they cannot be read.
pub fn defined_glibc_version<'data, R: ReadRef<'data>>(data: R) -> Option<GlibcVersion> {
    let header = FileHeader64::<Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let segments = header.program_headers(endian, data).ok()?;
    let dynamic = DynamicSegment::find(segments, endian, data).ok()?;
    let strings = dynamic.strings().ok()?;
    dynamic
        .defined_versions(&strings)
        .ok()?
        .iter()
        .filter_map(|name| glibc_version(name))
        .max()
}

/// `2.34` from `GLIBC_2.34`; `None` for any other version name (`GLIBC_PRIVATE`, `GCC_3.0`).
fn glibc_version(name: &[u8]) -> Option<GlibcVersion> {
    std::str::from_utf8(name)
        .ok()?
        .strip_prefix("GLIBC_")?
        .parse()
        .ok()
}

#[cfg(test)]
#[path = "elf_tests.rs"]
mod tests;
