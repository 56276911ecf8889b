//! The `base-images/` catalog is well formed, and the test stand-in for provided.al2023 carries
//! exactly the config the catalog records for the real base, so tests exercise what Lambda runs.

use crate::support::*;
use serde_json::Value;

fn catalog(name: &str) -> Value {
    read_json(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("base-images")
            .join(format!("{name}.json")),
    )
}

#[test]
fn catalog_entries_name_both_architectures_and_a_glibc() {
    for (name, glibc) in [("provided.al2023", "2.34"), ("provided.al2", "2.26")] {
        let entry = catalog(name);
        assert_eq!(entry["name"], name);
        assert!(
            entry["reference"]
                .as_str()
                .unwrap()
                .starts_with("public.ecr.aws/lambda/provided:")
        );
        for arch in ARCHES {
            assert!(
                entry["architectures"][arch].is_string(),
                "{name} lacks {arch}"
            );
        }
        assert_eq!(entry["glibc"], glibc);
    }
}

#[test]
fn the_stand_in_base_has_the_catalog_config_for_each_architecture() {
    let f = fixtures();
    let expected = &catalog("provided.al2023")["config"];
    for arch in ARCHES {
        let manifest = read_blob_json(&f.base_layout, &f.base_manifests[arch]);
        let config = read_blob_json(
            &f.base_layout,
            manifest["config"]["digest"].as_str().unwrap(),
        );
        for field in ["Entrypoint", "WorkingDir", "Env"] {
            assert_eq!(config["config"][field], expected[field], "{arch} {field}");
        }
        assert!(
            config["config"].get("Cmd").is_none_or(Value::is_null),
            "the real base has no Cmd"
        );
    }
}
