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

use object::elf::{
    self, Dyn64, FileHeader64, ProgramHeader64, Sym64, Verdaux, Verdef, Vernaux, Verneed,
};
use object::read::elf::{Dyn, FileHeader, HashTable, ProgramHeader};
use object::read::{ReadRef, StringTable};
use object::{Endianness, FileKind, U16};

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

/// The most version-need or version-definition records followed, and the most dynamic symbols
/// scanned for a message: far above any real program's, low enough that a hostile file whose
/// counts or links loop cannot keep the reader busy.
const RECORD_LIMIT: u64 = 1 << 16;
const SYMBOL_LIMIT: u64 = 1 << 20;

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

/// A file's `PT_DYNAMIC` entries (up to `DT_NULL`, where the loader stops) and the `PT_LOAD`
/// segments that map their addresses to file offsets.
struct DynamicSegment<'data, R: ReadRef<'data>> {
    endian: Endianness,
    data: R,
    /// `(p_vaddr, p_filesz, p_offset)` of each `PT_LOAD`.
    loads: Vec<(u64, u64, u64)>,
    entries: &'data [Dyn64<Endianness>],
}

impl<'data, R: ReadRef<'data>> DynamicSegment<'data, R> {
    /// The dynamic segment; an error when there is none or it lies outside the file.
    fn find(
        segments: &'data [ProgramHeader64<Endianness>],
        endian: Endianness,
        data: R,
    ) -> Result<Self, ElfProblem> {
        let mut entries = None;
        for segment in segments {
            if let Some(found) = segment.dynamic(endian, data).map_err(|error| {
                format!("its dynamic segment (PT_DYNAMIC) cannot be read: {error}")
            })? {
                entries = Some(found);
                break;
            }
        }
        let entries = entries.ok_or_else(|| {
            "it has a program interpreter but no dynamic segment (PT_DYNAMIC)".to_owned()
        })?;
        let end = entries
            .iter()
            .position(|entry| entry.d_tag(endian) == elf::DT_NULL)
            .unwrap_or(entries.len());
        let loads = segments
            .iter()
            .filter(|segment| segment.p_type(endian) == elf::PT_LOAD)
            .map(|segment| {
                (
                    segment.p_vaddr(endian),
                    segment.p_filesz(endian),
                    segment.p_offset(endian),
                )
            })
            .collect();
        Ok(Self {
            endian,
            data,
            loads,
            entries: &entries[..end],
        })
    }

    /// The value of the first entry with `tag`.
    fn value(&self, tag: elf::DynamicTag) -> Option<u64> {
        self.values(tag).next()
    }

    fn values(&self, tag: elf::DynamicTag) -> impl Iterator<Item = u64> + '_ {
        self.entries
            .iter()
            .filter(move |entry| entry.d_tag(self.endian) == tag)
            .map(|entry| entry.d_val(self.endian))
    }

    /// The file offset of a virtual address inside a `PT_LOAD`'s file-backed bytes, and how
    /// many file bytes that segment has from there.
    fn offset_of(&self, address: u64) -> Option<(u64, u64)> {
        self.loads.iter().find_map(|&(vaddr, filesz, offset)| {
            let within = address
                .checked_sub(vaddr)
                .filter(|&within| within < filesz)?;
            Some((offset.checked_add(within)?, filesz - within))
        })
    }

    /// The file offset of the address a dynamic entry holds, or why it cannot be used.
    fn offset_of_entry(&self, tag: elf::DynamicTag, name: &str) -> Result<Option<u64>, ElfProblem> {
        let Some(address) = self.value(tag) else {
            return Ok(None);
        };
        self.offset_of(address)
            .map(|(offset, _)| Some(offset))
            .ok_or_else(|| {
                format!("its {name} address {address:#x} is outside every loaded segment")
            })
    }

    /// The dynamic string table (`DT_STRTAB`, `DT_STRSZ` bytes).
    fn strings(&self) -> Result<StringTable<'data, R>, ElfProblem> {
        let start = self
            .offset_of_entry(elf::DT_STRTAB, "DT_STRTAB")?
            .ok_or("its dynamic segment has no string table (DT_STRTAB)")?;
        let size = self
            .value(elf::DT_STRSZ)
            .ok_or("its dynamic segment gives no string table size (DT_STRSZ)")?;
        let end = start
            .checked_add(size)
            .filter(|&end| self.data.read_bytes_at(start, size).is_ok() && end > start)
            .ok_or_else(|| {
                format!("its string table ({size} bytes at offset {start:#x}) is outside the file")
            })?;
        Ok(StringTable::new(self.data, start, end))
    }

    fn string(
        &self,
        strings: &StringTable<'data, R>,
        offset: u64,
        what: &str,
    ) -> Result<String, ElfProblem> {
        u32::try_from(offset)
            .ok()
            .and_then(|offset| strings.get(offset).ok())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .ok_or_else(|| {
                format!("its {what} name at string offset {offset} is outside the string table")
            })
    }

    /// `DT_NEEDED` and the newest `GLIBC_` version of `DT_VERNEED`.
    fn library_needs(&self) -> Result<LibraryNeeds, ElfProblem> {
        let strings = self.strings()?;
        let needed = self
            .values(elf::DT_NEEDED)
            .map(|offset| self.string(&strings, offset, "DT_NEEDED"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut newest: Option<(GlibcVersion, u16)> = None;
        for (name, index) in self.needed_versions(&strings)? {
            if let Some(version) = glibc_version(name.as_bytes())
                && newest.is_none_or(|(known, _)| version > known)
            {
                newest = Some((version, index));
            }
        }
        let directories = |tag, name| -> Result<Vec<String>, ElfProblem> {
            let mut directories = Vec::new();
            for offset in self.values(tag) {
                let list = self.string(&strings, offset, name)?;
                directories.extend(
                    list.split(':')
                        .filter(|directory| !directory.is_empty())
                        .map(str::to_owned),
                );
            }
            Ok(directories)
        };
        let runpath = directories(elf::DT_RUNPATH, "DT_RUNPATH")?;
        let rpath = directories(elf::DT_RPATH, "DT_RPATH")?;
        Ok(LibraryNeeds {
            runpath,
            rpath,
            needed,
            glibc: newest.map(|(version, index)| GlibcNeed {
                version,
                symbol: self.symbol_with_version(&strings, index),
            }),
        })
    }

    /// Every version `DT_VERNEED` names (`DT_VERNEEDNUM` records linked by `vn_next`, each with
    /// `vn_cnt` auxiliaries linked by `vna_next`), with the version index symbols use for it.
    fn needed_versions(
        &self,
        strings: &StringTable<'data, R>,
    ) -> Result<Vec<(String, u16)>, ElfProblem> {
        let Some(mut offset) = self.offset_of_entry(elf::DT_VERNEED, "DT_VERNEED")? else {
            return Ok(Vec::new());
        };
        let endian = self.endian;
        let count = self
            .value(elf::DT_VERNEEDNUM)
            .unwrap_or(RECORD_LIMIT)
            .min(RECORD_LIMIT);
        let malformed =
            |what: &str| format!("its version needs (DT_VERNEED) are malformed: {what}");
        let mut versions = Vec::new();
        for _ in 0..count {
            let need: &Verneed<Endianness> = self
                .data
                .read_at(offset)
                .map_err(|()| malformed("a record lies outside the file"))?;
            let mut auxiliary = offset.checked_add(need.vn_aux.get(endian).into());
            for _ in 0..need.vn_cnt.get(endian) {
                let entry: &Vernaux<Endianness> = auxiliary
                    .and_then(|at| self.data.read_at(at).ok())
                    .ok_or_else(|| malformed("an auxiliary record lies outside the file"))?;
                versions.push((
                    self.string(strings, entry.vna_name.get(endian).into(), "version")?,
                    entry.vna_other.get(endian).0,
                ));
                match entry.vna_next.get(endian) {
                    0 => break,
                    next => auxiliary = auxiliary.and_then(|at| at.checked_add(next.into())),
                }
            }
            match need.vn_next.get(endian) {
                0 => break,
                next => {
                    offset = offset
                        .checked_add(next.into())
                        .ok_or_else(|| malformed("a record links past the end"))?;
                }
            }
        }
        Ok(versions)
    }

    /// Every version name `DT_VERDEF` defines (`DT_VERDEFNUM` records, each with `vd_cnt`
    /// auxiliaries: the version, then its parents).
    fn defined_versions(
        &self,
        strings: &StringTable<'data, R>,
    ) -> Result<Vec<Vec<u8>>, ElfProblem> {
        let Some(mut offset) = self.offset_of_entry(elf::DT_VERDEF, "DT_VERDEF")? else {
            return Ok(Vec::new());
        };
        let endian = self.endian;
        let count = self
            .value(elf::DT_VERDEFNUM)
            .unwrap_or(RECORD_LIMIT)
            .min(RECORD_LIMIT);
        let mut names = Vec::new();
        for _ in 0..count {
            let definition: &Verdef<Endianness> = self
                .data
                .read_at(offset)
                .map_err(|()| "a version definition lies outside the file".to_owned())?;
            let mut auxiliary = offset.checked_add(definition.vd_aux.get(endian).into());
            for _ in 0..definition.vd_cnt.get(endian) {
                let Some(entry) =
                    auxiliary.and_then(|at| self.data.read_at::<Verdaux<Endianness>>(at).ok())
                else {
                    break;
                };
                if let Ok(name) = strings.get(entry.vda_name.get(endian)) {
                    names.push(name.to_vec());
                }
                match entry.vda_next.get(endian) {
                    0 => break,
                    next => auxiliary = auxiliary.and_then(|at| at.checked_add(next.into())),
                }
            }
            match definition.vd_next.get(endian) {
                0 => break,
                next => match offset.checked_add(next.into()) {
                    Some(next) => offset = next,
                    None => break,
                },
            }
        }
        Ok(names)
    }

    /// How many entries the dynamic symbol table has. The dynamic segment records no count (the
    /// loader never needs one): `DT_HASH`'s `nchain` is exact; without it (GNU hash only, whose
    /// buckets list only defined symbols) the table ends where the next table the linker laid out
    /// after it begins (`.dynsym` is followed by `.dynstr`, `.gnu.version`, ...).
    fn symbol_count(&self, symbols: u64, entry_size: u64) -> Option<u64> {
        if let Some((offset, available)) = self
            .value(elf::DT_HASH)
            .and_then(|address| self.offset_of(address))
        {
            let bytes = self.data.read_bytes_at(offset, available).ok()?;
            let table = HashTable::<FileHeader64<Endianness>>::parse(self.endian, bytes).ok()?;
            return Some(table.symbol_table_length().into());
        }
        let tables = [
            elf::DT_STRTAB,
            elf::DT_VERSYM,
            elf::DT_VERNEED,
            elf::DT_VERDEF,
            elf::DT_GNU_HASH,
            elf::DT_RELA,
            elf::DT_REL,
            elf::DT_JMPREL,
        ];
        let end = tables
            .into_iter()
            .filter_map(|tag| self.value(tag))
            .filter(|&address| address > symbols)
            .min()?;
        Some((end - symbols) / entry_size.max(1))
    }

    /// The first undefined dynamic symbol bound to the version with this index (through
    /// `DT_VERSYM`), for the message.
    fn symbol_with_version(
        &self,
        strings: &StringTable<'data, R>,
        version_index: u16,
    ) -> Option<String> {
        let symbols = self.offset_of_entry(elf::DT_SYMTAB, "DT_SYMTAB").ok()??;
        let versions = self.offset_of_entry(elf::DT_VERSYM, "DT_VERSYM").ok()??;
        let size = self
            .value(elf::DT_SYMENT)
            .unwrap_or(std::mem::size_of::<Sym64<Endianness>>() as u64);
        let count = self.symbol_count(self.value(elf::DT_SYMTAB)?, size)?;
        let endian = self.endian;
        (0..count.min(SYMBOL_LIMIT)).find_map(|index| {
            let version: &U16<Endianness> =
                self.data.read_at(versions.checked_add(index * 2)?).ok()?;
            let symbol: &Sym64<Endianness> = self
                .data
                .read_at(symbols.checked_add(index.checked_mul(size)?)?)
                .ok()?;
            let bound = version.get(endian) & elf::VERSYM_VERSION == version_index;
            (bound && symbol.st_shndx.get(endian) == elf::SHN_UNDEF)
                .then(|| {
                    self.string(strings, symbol.st_name.get(endian).into(), "symbol")
                        .ok()
                })
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::Sym;

    /// This unit-test executable: a dynamically linked glibc PIE for x86-64 or aarch64.
    fn test_binary() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
    }

    fn u64_at(bytes: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
    }

    /// What `sstrip` does to the header: no section header table (e_shoff, e_shnum and
    /// e_shstrndx zeroed; ELF-64 offsets 0x28, 0x3c, 0x3e).
    fn without_section_headers(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes[0x28..0x30].fill(0);
        bytes[0x3c..0x40].fill(0);
        bytes
    }

    /// The file offsets of the program headers (e_phoff at 0x20, e_phentsize at 0x36, e_phnum
    /// at 0x38).
    fn program_headers(bytes: &[u8]) -> Vec<usize> {
        let start = u64_at(bytes, 0x20) as usize;
        let size = usize::from(u16_at(bytes, 0x36));
        (0..usize::from(u16_at(bytes, 0x38)))
            .map(|index| start + index * size)
            .collect()
    }

    fn p_type(bytes: &[u8], header: usize) -> u32 {
        u32::from_le_bytes(bytes[header..header + 4].try_into().unwrap())
    }

    /// Turns every program header of type `from` into `to`.
    fn retype_segments(bytes: &mut [u8], from: u32, to: u32) {
        for header in program_headers(bytes) {
            if p_type(bytes, header) == from {
                bytes[header..header + 4].copy_from_slice(&to.to_le_bytes());
            }
        }
    }

    /// The file offsets of the `PT_DYNAMIC` entries (16 bytes each: d_tag, d_val).
    fn dynamic_entries(bytes: &[u8]) -> Vec<usize> {
        let header = program_headers(bytes)
            .into_iter()
            .find(|&header| p_type(bytes, header) == elf::PT_DYNAMIC.0)
            .expect("a dynamic segment");
        let offset = u64_at(bytes, header + 8) as usize;
        let size = u64_at(bytes, header + 32) as usize;
        (offset..offset + size).step_by(16).collect()
    }

    fn dynamic_entry(bytes: &[u8], tag: elf::DynamicTag) -> usize {
        dynamic_entries(bytes)
            .into_iter()
            .find(|&entry| u64_at(bytes, entry) == tag.0 as u64)
            .unwrap_or_else(|| panic!("no {tag:?} entry"))
    }

    fn needs(bytes: &[u8]) -> DynamicNeeds {
        match read_elf(bytes).unwrap().linkage {
            Linkage::Dynamic(needs) => needs,
            Linkage::Static => panic!("the test binary is dynamically linked"),
        }
    }

    #[test]
    fn the_test_binary_itself_is_read() {
        let needs = needs(&test_binary());
        assert!(needs.interpreter.starts_with('/'), "{}", needs.interpreter);
        let libraries = needs.libraries.unwrap();
        assert!(
            libraries
                .needed
                .iter()
                .any(|library| library == "libc.so.6"),
            "{libraries:?}"
        );
        let glibc = libraries
            .glibc
            .expect("a glibc program needs GLIBC_ versions");
        assert!(glibc.version >= "2.2.5".parse().unwrap());
        assert!(glibc.symbol.is_some());
    }

    #[test]
    fn without_section_headers_the_needs_are_the_same() {
        let bytes = test_binary();
        let stripped = without_section_headers(bytes.clone());
        assert_eq!(read_elf(stripped.as_slice()), read_elf(bytes.as_slice()));
    }

    #[test]
    fn a_missing_or_unmappable_dynamic_segment_makes_the_needs_unknown_not_empty() {
        let mut bytes = without_section_headers(test_binary());
        let mut no_dynamic = bytes.clone();
        retype_segments(&mut no_dynamic, elf::PT_DYNAMIC.0, elf::PT_NULL.0);
        let problem = needs(&no_dynamic).libraries.unwrap_err();
        assert!(problem.contains("no dynamic segment"), "{problem}");

        // DT_STRTAB pointing past every PT_LOAD.
        let strtab = dynamic_entry(&bytes, elf::DT_STRTAB);
        bytes[strtab + 8..strtab + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        let problem = needs(&bytes).libraries.unwrap_err();
        assert!(problem.contains("DT_STRTAB"), "{problem}");
        assert!(
            problem.contains("outside every loaded segment"),
            "{problem}"
        );
    }

    #[test]
    fn a_dynamic_segment_outside_the_file_makes_the_needs_unknown() {
        let mut bytes = test_binary();
        let header = program_headers(&bytes)
            .into_iter()
            .find(|&header| p_type(&bytes, header) == elf::PT_DYNAMIC.0)
            .unwrap();
        let past_the_end = bytes.len() as u64;
        bytes[header + 8..header + 16].copy_from_slice(&past_the_end.to_le_bytes());
        let problem = needs(&bytes).libraries.unwrap_err();
        assert!(problem.contains("PT_DYNAMIC"), "{problem}");
    }

    #[test]
    fn the_pie_flag_is_read_from_the_dynamic_segment() {
        // No interpreter and no entry point: an executable only when DT_FLAGS_1 has DF_1_PIE.
        let mut bytes = without_section_headers(test_binary());
        retype_segments(&mut bytes, elf::PT_INTERP.0, elf::PT_NULL.0);
        bytes[0x18..0x20].fill(0); // e_entry
        let flags = dynamic_entry(&bytes, elf::DT_FLAGS_1);
        assert_ne!(u64_at(&bytes, flags + 8) & elf::DF_1_PIE.0, 0);
        assert_eq!(read_elf(bytes.as_slice()).unwrap().linkage, Linkage::Static);
        let cleared = u64_at(&bytes, flags + 8) & !elf::DF_1_PIE.0;
        bytes[flags + 8..flags + 16].copy_from_slice(&cleared.to_le_bytes());
        let problem = read_elf(bytes.as_slice()).unwrap_err();
        assert!(problem.contains("shared library"), "{problem}");
    }

    #[test]
    fn the_newest_glibc_version_and_its_symbol_agree_with_the_section_tables() {
        let bytes = test_binary();
        let data = bytes.as_slice();
        let glibc = needs(data).libraries.unwrap().glibc.unwrap();
        // The oracle: the same facts through the section headers (.dynsym, .gnu.version,
        // .gnu.version_r), which this binary still has.
        let header = FileHeader64::<Endianness>::parse(data).unwrap();
        let endian = header.endian().unwrap();
        let sections = header.sections(endian, data).unwrap();
        let versions = sections.versions(endian, data).unwrap().unwrap();
        let symbols = sections.symbols(endian, data, elf::SHT_DYNSYM).unwrap();
        let mut bound = Vec::new();
        for (index, symbol) in symbols.enumerate() {
            let version = versions
                .version(versions.version_index(endian, index).index())
                .unwrap();
            if let Some(version) = version.and_then(|version| glibc_version(version.name())) {
                let name = symbols.symbol_name(endian, symbol).unwrap().to_vec();
                bound.push((version, name, symbol.is_undefined(endian)));
            }
        }
        let newest = bound.iter().map(|(version, ..)| *version).max().unwrap();
        let oldest = bound.iter().map(|(version, ..)| *version).min().unwrap();
        assert!(
            oldest < newest,
            "the test binary needs several glibc versions"
        );
        assert_eq!(glibc.version, newest);
        let symbol = glibc.symbol.unwrap();
        assert!(
            bound.iter().any(|(version, name, undefined)| {
                *version == newest && name == symbol.as_bytes() && *undefined
            }),
            "{symbol} is not an undefined symbol bound to GLIBC_{newest}"
        );

        // The symbol count the dynamic segment implies is the .dynsym's.
        let segments = header.program_headers(endian, data).unwrap();
        let dynamic = DynamicSegment::find(segments, endian, data).unwrap();
        let table = dynamic.value(elf::DT_SYMTAB).unwrap();
        assert_eq!(dynamic.symbol_count(table, 24), Some(symbols.len() as u64));
    }

    #[test]
    fn glibc_needs_are_shown_with_a_symbol_when_one_is_known() {
        let need = GlibcNeed {
            version: "2.38".parse().unwrap(),
            symbol: Some("strlcpy".into()),
        };
        assert_eq!(need.to_string(), "GLIBC_2.38 (symbol strlcpy@GLIBC_2.38)");
        let bare = GlibcNeed {
            symbol: None,
            ..need
        };
        assert_eq!(bare.to_string(), "GLIBC_2.38");
    }

    #[test]
    fn addresses_map_to_file_offsets_only_inside_a_loaded_segment() {
        let data: &[u8] = &[0; 16];
        let segment = DynamicSegment {
            endian: Endianness::Little,
            data,
            loads: vec![(0x1000, 0x100, 0x200), (0x4000, 0x10, 0x300)],
            entries: &[],
        };
        assert_eq!(segment.offset_of(0x1000), Some((0x200, 0x100)));
        assert_eq!(segment.offset_of(0x10ff), Some((0x2ff, 1)));
        assert_eq!(segment.offset_of(0x1100), None);
        assert_eq!(segment.offset_of(0xfff), None);
        assert_eq!(segment.offset_of(0x4008), Some((0x308, 8)));
    }

    #[test]
    fn a_string_table_outside_the_file_or_empty_makes_the_needs_unknown() {
        let bytes = without_section_headers(test_binary());
        let size = dynamic_entry(&bytes, elf::DT_STRSZ);
        for bad in [u64::from(u32::MAX), 0] {
            let mut broken = bytes.clone();
            broken[size + 8..size + 16].copy_from_slice(&bad.to_le_bytes());
            let problem = needs(&broken).libraries.unwrap_err();
            assert!(problem.contains("string table ("), "{problem}");
            assert!(problem.contains("is outside the file"), "{problem}");
        }
    }

    #[test]
    fn a_32_bit_elf_is_named_as_such() {
        let mut bytes = test_binary();
        bytes[4] = 1; // EI_CLASS = ELFCLASS32
        let problem = read_elf(bytes.as_slice()).unwrap_err();
        assert!(problem.contains("32-bit"), "{problem}");
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
        // The same from the dynamic segment alone.
        let stripped = without_section_headers(libc);
        assert_eq!(defined_glibc_version(stripped.as_slice()), Some(version));
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
        for bytes in [library.clone(), without_section_headers(library)] {
            let problem = read_elf(bytes.as_slice()).unwrap_err();
            assert!(problem.contains("shared library"), "{problem}");
        }
    }

    #[test]
    fn truncated_and_foreign_files_are_refused() {
        let bytes = test_binary();
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
        // Program headers cut off: the kernel could not load it either.
        let problem = read_elf(&bytes[..0x50]).unwrap_err();
        assert!(problem.contains("program headers"), "{problem}");
        // Cut after the headers but inside a loaded segment (`head -c 3000`).
        let problem = read_elf(&bytes[..3000]).unwrap_err();
        assert!(
            problem.contains("is truncated: its program headers say "),
            "{problem}"
        );
        assert!(problem.contains("the file has 3000"), "{problem}");
    }
}
