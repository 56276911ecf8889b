//! Unit tests of `bootstrap::elf`: reading architecture, type, interpreter, `NEEDED` libraries
//! and glibc version needs from real and hand-made ELF files, including malformed ones.

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
