//! Unit tests of `lambda_layer`: `--layer` values, the layout warnings, the architectures a
//! layer is for.

use super::*;

#[test]
fn a_zip_of_the_folder_instead_of_its_contents_or_of_nothing_is_warned_about() {
    let spec: LayerSpec = "layer.zip".parse().unwrap();
    let file = || LayerEntry::File {
        source: PathBuf::from("/x"),
        size: 1,
        executable: true,
    };
    let entries = |paths: &[&str]| -> Vec<(String, LayerEntry)> {
        paths
            .iter()
            .map(|path| (format!("opt/{path}"), file()))
            .collect()
    };
    // `zip -r layer.zip mylayer/` from outside the folder.
    let note = layout_note(
        &spec,
        &entries(&["mylayer/extensions/agent", "mylayer/README"]),
    )
    .expect("one folder holding extensions/");
    assert_eq!(note.level, Level::Warning);
    assert!(
        note.message.contains("/opt/mylayer/extensions"),
        "{}",
        note.message
    );
    assert!(note.hint.unwrap().contains("cd mylayer && zip -r"));
    // Made right, or one folder that is what Lambda looks for, or a folder of data: nothing.
    assert!(layout_note(&spec, &entries(&["extensions/agent", "agent/config"])).is_none());
    assert!(layout_note(&spec, &entries(&["python/lib/python3.12/x.py"])).is_none());
    assert!(layout_note(&spec, &entries(&["data/a.bin", "data/b.bin"])).is_none());
    assert!(layout_note(&spec, &entries(&["mylayer/file-at-depth-one"])).is_none());
    // Two folders is no mistake of that kind; nor is a data folder with subfolders, or a file
    // named like a known directory.
    assert!(
        layout_note(
            &spec,
            &entries(&["mylayer/extensions/agent", "other/readme"])
        )
        .is_none()
    );
    assert!(layout_note(&spec, &entries(&["data/sub/a.bin", "data/sub/b.bin"])).is_none());
    assert!(layout_note(&spec, &entries(&["mylayer/extensions"])).is_none());
    // Directories only, or nothing at all.
    let empty = vec![("opt/d".to_owned(), LayerEntry::Directory)];
    assert!(
        layout_note(&spec, &empty)
            .unwrap()
            .message
            .contains("holds no files")
    );
    assert!(
        layout_note(&spec, &[])
            .unwrap()
            .message
            .contains("holds no files")
    );
}

#[test]
fn specs_take_a_zip_or_an_arn_with_an_optional_architecture() {
    let spec: LayerSpec = "layer.zip".parse().unwrap();
    assert_eq!(spec.architecture, None);
    assert_eq!(spec.source, LayerSource::Zip("layer.zip".into()));
    let spec: LayerSpec = "aarch64=./dir/l.zip".parse().unwrap();
    assert_eq!(spec.architecture, Some(Architecture::Arm64));
    assert_eq!(spec.source, LayerSource::Zip("./dir/l.zip".into()));
    assert_eq!(spec.to_string(), "aarch64=./dir/l.zip");
    let text = "x86_64=arn:aws:lambda:us-east-1:123456789012:layer:agent:7";
    let spec: LayerSpec = text.parse().unwrap();
    assert_eq!(spec.architecture, Some(Architecture::Amd64));
    let LayerSource::Arn(arn) = &spec.source else {
        panic!("{spec:?}")
    };
    assert_eq!(arn.version, 7);
    assert_eq!(spec.to_string(), text);
    assert!("a/b=c.zip".parse::<LayerSpec>().is_ok(), "a path with =");
}

#[test]
fn bad_specs_say_what_is_wrong() {
    let error = "riscv=arn:aws:lambda:us-east-1:123456789012:layer:a:1"
        .parse::<LayerSpec>()
        .unwrap_err();
    assert!(error.contains("unknown architecture `riscv`"), "{error}");
    assert!(
        "arm64="
            .parse::<LayerSpec>()
            .unwrap_err()
            .contains("names no layer")
    );
    assert!("".parse::<LayerSpec>().is_err());
    let error = "arn:aws:lambda:us-east-1:123456789012:layer:a"
        .parse::<LayerSpec>()
        .unwrap_err();
    assert!(error.contains("not a layer version"), "{error}");
}

#[test]
fn code_sha256_is_base64_of_the_raw_digest() {
    // sha256 of the empty string, as Lambda would show it.
    let digest = Sha256Digest::of(b"");
    assert_eq!(
        code_sha256(&digest),
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

fn spec(text: &str) -> LayerSpec {
    text.parse().unwrap()
}

#[test]
fn compatible_architectures_must_include_every_image_it_goes_into() {
    let text = "arn:aws:lambda:us-east-1:123456789012:layer:agent:7";
    let LayerSource::Arn(arn) = spec(text).source else {
        unreachable!()
    };
    let x86 = ["x86_64".to_owned()];
    check_architectures(&spec(text), &arn, &x86, &[Architecture::Amd64]).unwrap();
    check_architectures(&spec(text), &arn, &[], &[Architecture::Arm64]).unwrap();
    let error = check_architectures(
        &spec(text),
        &arn,
        &x86,
        &[Architecture::Amd64, Architecture::Arm64],
    )
    .unwrap_err();
    assert_eq!(error.kind(), crate::error::ErrorKind::Bootstrap);
    assert!(error.message().contains("is for x86_64"), "{error:?}");
    assert!(error.message().contains("arm64"), "{error:?}");
    assert!(
        error
            .hint_text()
            .unwrap()
            .contains(&format!("--layer amd64={text}")),
        "{error:?}"
    );
}

#[test]
fn a_prefix_that_names_no_architecture_is_refused_unless_the_path_exists() {
    // `nightly=7.zip` names no file here, and `build=` cannot start an ARN.
    let missing = "nightly=7.zip".parse::<LayerSpec>().unwrap_err();
    assert!(
        missing.contains("unknown architecture `nightly`"),
        "{missing}"
    );
    let arn = "build=arn:aws:lambda:us-east-1:123456789012:layer:x:1"
        .parse::<LayerSpec>()
        .unwrap_err();
    assert!(arn.contains("unknown architecture `build`"), "{arn}");
}
