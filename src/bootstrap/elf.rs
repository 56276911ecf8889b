//! Reading what Lambda cares about from an ELF executable: its architecture, whether it is an
//! executable at all, and, when it is dynamically linked, its interpreter, its `NEEDED` libraries
//! and the newest `GLIBC_x.y` symbol version it asks for.
//!
//! Works on any [`ReadRef`]: a file read on demand (bootstraps can be hundreds of MB) or bytes
//! already in memory (a file found in an image layer). It judges nothing; `checks` does.

use object::elf::{self, FileHeader64};
use object::read::ReadRef;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader, Sym};
use object::{Endianness, FileKind};

use super::glibc::GlibcVersion;
use crate::platform::Architecture;

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
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: String,
    /// `DT_NEEDED` libraries, e.g. `libc.so.6`.
    pub needed: Vec<String>,
    /// The newest `GLIBC_x.y` version it references, if any.
    pub glibc: Option<GlibcNeed>,
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

/// Why a file cannot be a Lambda executable; the caller names the file.
pub type ElfProblem = String;

/// Reads the facts from an ELF file whose first bytes are `\x7fELF`.
pub fn read_elf<'data, R: ReadRef<'data>>(data: R) -> Result<ElfFacts, ElfProblem> {
    let (header, endian, architecture) = read_header(data)?;
    let malformed =
        |error| format!("has malformed dynamic-linking sections ({error}); it may be truncated");
    let linkage = linkage(header, endian, data).map_err(malformed)?;
    if header.e_type(endian) == elf::ET_DYN
        && linkage == Linkage::Static
        && header.e_entry(endian) == 0
        && !has_pie_flag(header, endian, data).map_err(malformed)?
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

/// The newest `GLIBC_x.y` version a shared library (the base's `libc.so.6`) defines.
pub fn defined_glibc_version<'data, R: ReadRef<'data>>(data: R) -> Option<GlibcVersion> {
    let header = FileHeader64::<Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let sections = header.sections(endian, data).ok()?;
    let (mut definitions, strings_index) = sections.gnu_verdef(endian, data).ok()??;
    let strings = sections.strings(endian, data, strings_index).ok()?;
    let mut newest = None;
    while let Ok(Some((_, mut names))) = definitions.next() {
        while let Ok(Some(name)) = names.next() {
            let version = name
                .name(endian, strings)
                .ok()
                .and_then(|name| std::str::from_utf8(name).ok())
                .and_then(|name| name.strip_prefix("GLIBC_"))
                .and_then(|number| number.parse::<GlibcVersion>().ok());
            newest = newest.max(version);
        }
    }
    newest
}

/// Whether `DT_FLAGS_1` has `DF_1_PIE`, as a static PIE's does.
fn has_pie_flag<'data, R: ReadRef<'data>>(
    header: &FileHeader64<Endianness>,
    endian: Endianness,
    data: R,
) -> object::read::Result<bool> {
    let sections = header.sections(endian, data)?;
    for section in sections.iter() {
        if let Some((entries, _)) = section.dynamic(endian, data)? {
            return Ok(entries.iter().any(|entry| {
                entry.d_tag(endian) == elf::DT_FLAGS_1 && entry.d_val(endian) & elf::DF_1_PIE.0 != 0
            }));
        }
    }
    Ok(false)
}

/// Static, or what the dynamic linker will need.
fn linkage<'data, R: ReadRef<'data>>(
    header: &FileHeader64<Endianness>,
    endian: Endianness,
    data: R,
) -> object::read::Result<Linkage> {
    let mut interpreter = None;
    for segment in header.program_headers(endian, data)? {
        if let Some(path) = segment.interpreter(endian, data)? {
            interpreter = Some(String::from_utf8_lossy(path).into_owned());
        }
    }
    let Some(interpreter) = interpreter else {
        return Ok(Linkage::Static);
    };
    let sections = header.sections(endian, data)?;

    let mut needed = Vec::new();
    for section in sections.iter() {
        if let Some((entries, strings_index)) = section.dynamic(endian, data)? {
            let strings = sections.strings(endian, data, strings_index)?;
            for entry in entries {
                if entry.d_tag(endian) == elf::DT_NEEDED {
                    let offset = u32::try_from(entry.d_val(endian)).unwrap_or(u32::MAX);
                    if let Ok(name) = strings.get(offset) {
                        needed.push(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
        }
    }

    Ok(Linkage::Dynamic(DynamicNeeds {
        interpreter,
        needed,
        glibc: newest_glibc_need(&sections, endian, data)?,
    }))
}

/// The newest `GLIBC_x.y` among the versions the file needs, with an undefined symbol bound to it.
fn newest_glibc_need<'data, R: ReadRef<'data>>(
    sections: &object::read::elf::SectionTable<'data, FileHeader64<Endianness>, R>,
    endian: Endianness,
    data: R,
) -> object::read::Result<Option<GlibcNeed>> {
    let Some((mut needs, strings_index)) = sections.gnu_verneed(endian, data)? else {
        return Ok(None);
    };
    let strings = sections.strings(endian, data, strings_index)?;
    let mut newest: Option<(GlibcVersion, u16)> = None;
    while let Some((_, mut auxiliaries)) = needs.next()? {
        while let Some(auxiliary) = auxiliaries.next()? {
            let name = auxiliary.name(endian, strings)?;
            let Some(version) = std::str::from_utf8(name)
                .ok()
                .and_then(|name| name.strip_prefix("GLIBC_"))
                .and_then(|number| number.parse::<GlibcVersion>().ok())
            else {
                continue;
            };
            if newest.is_none_or(|(known, _)| version > known) {
                newest = Some((version, auxiliary.vna_other.get(endian).0));
            }
        }
    }
    let Some((version, version_index)) = newest else {
        return Ok(None);
    };
    Ok(Some(GlibcNeed {
        version,
        symbol: symbol_with_version(sections, endian, data, version_index),
    }))
}

/// The first undefined dynamic symbol bound to the version with this index, for the message.
fn symbol_with_version<'data, R: ReadRef<'data>>(
    sections: &object::read::elf::SectionTable<'data, FileHeader64<Endianness>, R>,
    endian: Endianness,
    data: R,
    version_index: u16,
) -> Option<String> {
    let versions = sections.versions(endian, data).ok()??;
    let symbols = sections.symbols(endian, data, elf::SHT_DYNSYM).ok()?;
    symbols.enumerate().find_map(|(index, symbol)| {
        let bound = versions.version_index(endian, index).index().0 == version_index;
        (bound && symbol.is_undefined(endian))
            .then(|| symbols.symbol_name(endian, symbol).ok())
            .flatten()
            .map(|name| String::from_utf8_lossy(name).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_itself_is_read() {
        // The unit-test executable is a dynamically linked x86-64 (or aarch64) glibc program.
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let facts = read_elf(bytes.as_slice()).unwrap();
        let Linkage::Dynamic(needs) = facts.linkage else {
            panic!("the test binary is dynamically linked");
        };
        assert!(needs.interpreter.starts_with('/'), "{}", needs.interpreter);
        assert!(
            needs.needed.iter().any(|library| library == "libc.so.6"),
            "{needs:?}"
        );
        let glibc = needs.glibc.expect("a glibc program needs GLIBC_ versions");
        assert!(glibc.version >= "2.2.5".parse().unwrap());
        assert!(glibc.symbol.is_some());
    }

    #[test]
    fn reads_the_glibc_version_the_system_libc_defines() {
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find_map(|path| std::fs::read(path).ok())
        .expect("a glibc system has libc.so.6");
        let version = defined_glibc_version(libc.as_slice()).unwrap();
        assert!(version >= "2.34".parse().unwrap(), "{version}");
    }

    #[test]
    fn a_shared_library_is_not_an_executable() {
        let library = [
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/usr/lib/x86_64-linux-gnu/libz.so.1",
        ]
        .into_iter()
        .find_map(|path| std::fs::read(path).ok())
        .expect("zlib is installed");
        let problem = read_elf(library.as_slice()).unwrap_err();
        assert!(problem.contains("shared library"), "{problem}");
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(read_elf(&bytes[..40]).unwrap_err().contains("ELF header"));
        let mut big_endian = bytes[..4096].to_vec();
        big_endian[5] = 2; // EI_DATA = ELFDATA2MSB
        assert!(read_elf(big_endian.as_slice()).is_err());
        let mut object_file = bytes.clone();
        object_file[16] = 1; // e_type = ET_REL
        assert!(
            read_elf(object_file.as_slice())
                .unwrap_err()
                .contains("relocatable")
        );
    }
}
