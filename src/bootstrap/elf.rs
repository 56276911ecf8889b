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
#[path = "elf_tests.rs"]
mod tests;
