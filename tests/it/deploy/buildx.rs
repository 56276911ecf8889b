//! Images as `docker buildx` pushes them by default: an index that also holds an attestation
//! manifest (`unknown/unknown`) per image. Lambda refuses such an index (aws/aws-lambda-roadmap#82;
//! the usual workaround is `--provenance=false`, docker/buildx#1533); `deploy` gives the function
//! the image's own manifest and counts only the real platforms.

use std::path::Path;

use serde_json::{Value, json};

use super::{Setup, arch_digest};
use crate::support::{
    MEDIA_TYPE_CONFIG, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, REF_NAME_ANNOTATION, fixtures,
    layout_descriptor, read_blob_json, read_json, to_json_bytes, write_blob,
};

/// Adds to the index tagged `tag` in `layout` one attestation manifest per image manifest, as
/// buildx writes them, and tags the result `attested`.
fn add_attestations(layout: &Path, tag: &str) {
    let descriptor = layout_descriptor(layout, tag).expect("the copied tag");
    let top_blob = read_blob_json(layout, descriptor["digest"].as_str().unwrap());
    // One image is pushed as a manifest; buildx would push an index of it and its attestation.
    let mut index = if top_blob.get("manifests").is_some() {
        top_blob
    } else {
        let config = read_blob_json(layout, top_blob["config"]["digest"].as_str().unwrap());
        json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [{
                "mediaType": MEDIA_TYPE_MANIFEST,
                "digest": descriptor["digest"],
                "size": descriptor["size"],
                "platform": {"architecture": config["architecture"], "os": config["os"]},
            }],
        })
    };
    let images: Vec<Value> = index["manifests"].as_array().unwrap().clone();
    for image in images {
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"name": "fn", "digest": {"sha256": image["digest"].as_str().unwrap()
                .trim_start_matches("sha256:")}}],
        });
        let (layer, layer_size) = write_blob(layout, &to_json_bytes(&statement));
        let config = json!({
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer]},
        });
        let (config, config_size) = write_blob(layout, &to_json_bytes(&config));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "config": {"mediaType": MEDIA_TYPE_CONFIG, "digest": config, "size": config_size},
            "layers": [{
                "mediaType": "application/vnd.in-toto+json",
                "digest": layer,
                "size": layer_size,
                "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
            }],
        });
        let (manifest, manifest_size) = write_blob(layout, &to_json_bytes(&manifest));
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": MEDIA_TYPE_MANIFEST,
            "digest": manifest,
            "size": manifest_size,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.digest": image["digest"],
                "vnd.docker.reference.type": "attestation-manifest",
            },
        }));
    }
    let (digest, size) = write_blob(layout, &to_json_bytes(&index));
    let mut top = read_json(layout.join("index.json"));
    top["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": index["mediaType"],
        "digest": digest,
        "size": size,
        "annotations": {REF_NAME_ANNOTATION: "attested"},
    }));
    std::fs::write(layout.join("index.json"), to_json_bytes(&top)).unwrap();
}

#[test]
fn an_index_with_attestation_manifests_deploys_its_images_own_manifest() {
    let setup = Setup::new();
    let role = setup.aws().create_role();
    let fixtures = fixtures();
    // One image of arm64 only, and one of both, each with buildx's attestations.
    let cases: [(&str, Vec<&Path>); 2] = [
        ("single", vec![&fixtures.bootstrap_arm64]),
        (
            "both",
            vec![&fixtures.bootstrap_amd64, &fixtures.bootstrap_arm64],
        ),
    ];
    for (tag, bootstraps) in cases {
        let report = setup.build(&setup.reference(&format!("fn:{tag}")), &bootstraps, &[]);
        let layout = setup.dir(&format!("layout-{tag}"));
        setup.registry.skopeo_copy_from(
            &format!("fn:{tag}"),
            &format!("oci:{}:{tag}", layout.display()),
        );
        add_attestations(&layout, tag);
        let attested = format!("fn:{tag}-attested");
        setup
            .registry
            .skopeo_copy_to(&format!("oci:{}:attested", layout.display()), &attested);
        let raw: Value =
            serde_json::from_str(&setup.registry.skopeo_inspect_raw(&attested)).unwrap();
        assert_eq!(
            raw["manifests"].as_array().unwrap().len(),
            2 * bootstraps.len(),
            "{raw}"
        );

        // The single-image index: its one real architecture, no --architecture needed.
        // The two-image index: the function's architecture.
        let name = format!("fn-{tag}");
        let image = setup.reference(&attested);
        let mut args = vec![
            "--function",
            &name,
            "--image",
            &image,
            "--create",
            "--role",
            &role,
        ];
        let architecture = if bootstraps.len() == 2 {
            args.extend(["--architecture", "amd64"]);
            "amd64"
        } else {
            "arm64"
        };
        let deployed = setup.deploy_ok(&args);
        let digest = arch_digest(&report, architecture);
        let function = setup.aws().get_function(&name);
        assert_eq!(
            function["Code"]["ImageUri"],
            format!("{}@{digest}", setup.reference("fn")),
            "{tag}"
        );
        assert_eq!(deployed["image_digest"], digest.as_str());
    }
}
