//! The CPU architectures Lambda runs (x86_64 and arm64), and how each is named in OCI platforms,
//! in ELF headers and by users.

use std::fmt;

/// A Lambda architecture. Lambda functions run on exactly one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Architecture {
    Amd64,
    Arm64,
}

impl Architecture {
    /// The per-architecture tag a build writes beside `tag`: `TAG-amd64`, `TAG-arm64`.
    pub fn tag(self, tag: &str) -> String {
        format!("{tag}-{self}")
    }

    /// The GOARCH-style name used in OCI platforms and image configs.
    pub fn oci_name(self) -> &'static str {
        match self {
            Architecture::Amd64 => "amd64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The platform variant written in an index for this architecture.
    pub fn oci_variant(self) -> Option<&'static str> {
        match self {
            Architecture::Amd64 => None,
            Architecture::Arm64 => Some("v8"),
        }
    }

    /// The name Lambda's own API uses (`--architectures x86_64|arm64`).
    pub fn lambda_name(self) -> &'static str {
        match self {
            Architecture::Amd64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The ELF machine this architecture executes, as `file(1)` and readelf name it.
    pub fn elf_machine_name(self) -> &'static str {
        match self {
            Architecture::Amd64 => "x86-64",
            Architecture::Arm64 => "aarch64",
        }
    }

    /// Accepts the names users write: the OCI names and Lambda's / uname's.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "amd64" | "x86_64" | "x86-64" => Some(Architecture::Amd64),
            "arm64" | "aarch64" => Some(Architecture::Arm64),
            _ => None,
        }
    }
}

/// On the command line (`base pull --arch`): `amd64` and `arm64` are the values `--help` and
/// completions list; `x86_64`, `x86-64` and `aarch64` are accepted as aliases, as in
/// [`Architecture::parse`] (with `ignore_case` on the argument, in any case).
impl clap::ValueEnum for Architecture {
    fn value_variants<'a>() -> &'a [Self] {
        &[Architecture::Amd64, Architecture::Arm64]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let value = clap::builder::PossibleValue::new(self.oci_name());
        Some(match self {
            Architecture::Amd64 => value.aliases(["x86_64", "x86-64"]),
            Architecture::Arm64 => value.alias("aarch64"),
        })
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.oci_name())
    }
}

/// In the `--json` reports an architecture is its OCI name (`amd64`, `arm64`; OCI image spec,
/// image-index.md `platform.architecture`).
impl serde::Serialize for Architecture {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.oci_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_user_names() {
        assert_eq!(Architecture::parse("x86_64"), Some(Architecture::Amd64));
        assert_eq!(Architecture::parse("AMD64"), Some(Architecture::Amd64));
        assert_eq!(Architecture::parse("aarch64"), Some(Architecture::Arm64));
        assert_eq!(Architecture::parse("riscv64"), None);
    }

    #[test]
    fn the_command_line_lists_the_oci_names_and_takes_the_aliases() {
        use clap::ValueEnum;
        let names: Vec<String> = Architecture::value_variants()
            .iter()
            .map(|a| a.to_possible_value().unwrap().get_name().to_owned())
            .collect();
        assert_eq!(names, ["amd64", "arm64"]);
        for (text, expected) in [
            ("x86_64", Architecture::Amd64),
            ("X86-64", Architecture::Amd64),
            ("aarch64", Architecture::Arm64),
            ("ARM64", Architecture::Arm64),
        ] {
            assert_eq!(Architecture::from_str(text, true), Ok(expected), "{text}");
            assert_eq!(Architecture::parse(text), Some(expected), "{text}");
        }
        assert!(Architecture::from_str("riscv64", true).is_err());
    }
}
