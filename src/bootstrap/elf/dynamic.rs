//! The dynamic segment (`PT_DYNAMIC`) of an ELF file, read as the dynamic loader reads it:
//! entries whose addresses map to file offsets through the `PT_LOAD` segments, the dynamic string
//! table, `DT_NEEDED` libraries, and the symbol versions `DT_VERNEED` asks for and `DT_VERDEF`
//! defines. The ELF header and program headers are read by the parent module.

use object::elf::{
    self, Dyn64, FileHeader64, ProgramHeader64, Sym64, Verdaux, Verdef, Vernaux, Verneed,
};
use object::read::elf::{Dyn, HashTable, ProgramHeader};
use object::read::{ReadRef, StringTable};
use object::{Endianness, U16};

use super::{ElfProblem, GlibcNeed, LibraryNeeds, glibc_version};
use crate::bootstrap::glibc::GlibcVersion;

/// The most version-need or version-definition records followed, and the most dynamic symbols
/// scanned for a message: far above any real program's, low enough that a hostile file whose
/// counts or links loop cannot keep the reader busy.
const RECORD_LIMIT: u64 = 1 << 16;
const SYMBOL_LIMIT: u64 = 1 << 20;

/// A file's `PT_DYNAMIC` entries (up to `DT_NULL`, where the loader stops) and the `PT_LOAD`
/// segments that map their addresses to file offsets.
pub(super) struct DynamicSegment<'data, R: ReadRef<'data>> {
    pub(super) endian: Endianness,
    pub(super) data: R,
    /// `(p_vaddr, p_filesz, p_offset)` of each `PT_LOAD`.
    pub(super) loads: Vec<(u64, u64, u64)>,
    pub(super) entries: &'data [Dyn64<Endianness>],
}

impl<'data, R: ReadRef<'data>> DynamicSegment<'data, R> {
    /// The dynamic segment; an error when there is none or it lies outside the file.
    pub(super) fn find(
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
    pub(super) fn value(&self, tag: elf::DynamicTag) -> Option<u64> {
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
    pub(super) fn offset_of(&self, address: u64) -> Option<(u64, u64)> {
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
    pub(super) fn strings(&self) -> Result<StringTable<'data, R>, ElfProblem> {
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
    pub(super) fn library_needs(&self) -> Result<LibraryNeeds, ElfProblem> {
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
    pub(super) fn defined_versions(
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
    pub(super) fn symbol_count(&self, symbols: u64, entry_size: u64) -> Option<u64> {
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
