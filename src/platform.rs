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

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.oci_name())
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
}
