//! glibc version numbers (`2.34`, `2.2.5`) as they appear in `GLIBC_x.y` symbol versions and in
//! the base-image catalog, compared numerically (2.9 < 2.26 < 2.34).

use std::fmt;
use std::str::FromStr;

/// A glibc version: up to three numeric components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion {
    components: [u32; 3],
    count: usize,
}

impl FromStr for GlibcVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("`{text}` is not a glibc version such as 2.34");
        let mut components = [0; 3];
        let mut count = 0;
        for part in text.split('.') {
            if count == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            components[count] = part.parse().map_err(|_| invalid())?;
            count += 1;
        }
        if count < 2 {
            return Err(invalid());
        }
        Ok(Self { components, count })
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.components[..self.count]
            .iter()
            .map(u32::to_string)
            .collect();
        f.write_str(&parts.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> GlibcVersion {
        text.parse().unwrap()
    }

    #[test]
    fn compares_numerically_and_round_trips() {
        assert!(version("2.9") < version("2.26"));
        assert!(version("2.26") < version("2.34"));
        assert!(version("2.2.5") < version("2.3"));
        assert_eq!(version("2.2.5").to_string(), "2.2.5");
        assert_eq!(version("2.34").to_string(), "2.34");
        for bad in ["", "2", "2.", "a.b", "2.34.1.1", "-2.3"] {
            assert!(bad.parse::<GlibcVersion>().is_err(), "{bad}");
        }
    }
}
