//! The catalog of Lambda base images the tool knows by name (`base-images/*.json`, compiled in):
//! `--base provided.al2023` means `public.ecr.aws/lambda/provided:al2023`, and each entry records
//! the glibc the base ships (read by the bootstrap checks once they compare glibc versions).

use serde::Deserialize;

/// The catalog files, embedded at build time.
const ENTRIES: [&str; 2] = [
    include_str!("../base-images/provided.al2023.json"),
    include_str!("../base-images/provided.al2.json"),
];

/// The base used when `--base` is not given.
pub const DEFAULT_BASE: &str = "public.ecr.aws/lambda/provided:al2023";

/// One known base.
#[derive(Clone, Debug, Deserialize)]
pub struct CatalogBase {
    pub name: String,
    pub reference: String,
}

/// Every known base.
pub fn all() -> Vec<CatalogBase> {
    ENTRIES
        .iter()
        .map(|text| serde_json::from_str(text).expect("the embedded catalog is valid"))
        .collect()
}

/// The base with this short name, e.g. `provided.al2023`.
pub fn by_name(name: &str) -> Option<CatalogBase> {
    all().into_iter().find(|base| base.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_resolve_and_the_default_is_in_the_catalog() {
        assert_eq!(
            by_name("provided.al2").unwrap().reference,
            "public.ecr.aws/lambda/provided:al2"
        );
        assert!(all().iter().any(|base| base.reference == DEFAULT_BASE));
        assert!(by_name("alpine").is_none());
    }
}
